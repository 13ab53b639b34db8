#pragma once
#include "ir/attrs.h"

namespace kiln {

// Range(start, limit, delta): scalars of one numeric type; output [max(ceil((limit - start) /
// delta), 0)] with element i = start + i * delta. The length is known once the inputs are.
struct RangeAttrs : AttrsOf<RangeAttrs> {
  template <class V>
  void reflect(V&) {}
};

}  // namespace kiln
