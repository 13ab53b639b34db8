#pragma once
#include "ir/attrs.h"

namespace kiln {

// Compress(input, condition): keeps the slices along `axis` (or, without an axis, the elements of
// the flattened input) whose condition entry is true. condition is bool 1-D and may be shorter
// than the axis (missing entries are false). The output length depends on condition's values.
struct CompressAttrs : AttrsOf<CompressAttrs> {
  Int axis = 0;
  bool has_axis = false;
  template <class V>
  void reflect(V& v) {
    v("axis", axis);
    v("has_axis", has_axis);
  }
};

}  // namespace kiln
