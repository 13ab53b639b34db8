#pragma once
#include "ir/attrs.h"

namespace kiln {

// NonZero(x): int64 [rank, count] holding the coordinates of x's non-zero elements in row-major
// order (numpy.nonzero; a scalar counts as 1-D). The count depends on x's values.
struct NonZeroAttrs : AttrsOf<NonZeroAttrs> {
  template <class V>
  void reflect(V&) {}
};

}  // namespace kiln
