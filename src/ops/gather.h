#pragma once
#include "ir/attrs.h"

namespace kiln {

// out = data[..., indices, ...] along `axis`: shape data[:axis] + indices.shape + data[axis+1:].
// Indices (int32/int64) may be negative; out-of-range ones are a run-time error.
struct GatherAttrs : AttrsOf<GatherAttrs> {
  Int axis = 0;
  template <class V>
  void reflect(V& v) {
    v("axis", axis);
  }
};

}  // namespace kiln
