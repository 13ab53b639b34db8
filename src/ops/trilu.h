#pragma once
#include "ir/attrs.h"

namespace kiln {

// Trilu(x, [k]): keeps the upper (j - i >= k) or lower (j - i <= k) triangle of the last two dims
// of x and zeroes the rest. k is an optional int64 scalar input, default 0.
struct TriluAttrs : AttrsOf<TriluAttrs> {
  Int upper = 1;
  template <class V>
  void reflect(V& v) {
    v("upper", upper);
  }
};

}  // namespace kiln
