#pragma once
#include "ir/attrs.h"

namespace kiln {

// ReverseSequence(input, sequence_lens): for every batch entry b, reverses the first
// sequence_lens[b] steps along time_axis and copies the rest. batch_axis and time_axis are 0 and 1
// in either order.
struct ReverseSequenceAttrs : AttrsOf<ReverseSequenceAttrs> {
  Int batch_axis = 1;
  Int time_axis = 0;
  template <class V>
  void reflect(V& v) {
    v("batch_axis", batch_axis);
    v("time_axis", time_axis);
  }
};

}  // namespace kiln
