#pragma once
#include "ir/attrs.h"

namespace kiln {

// DequantizeLinear: y = (x - zero_point) * scale, in scale's float type. Inputs: x, scale,
// zero_point (optional). scale/zero_point are scalars (per tensor) or 1-D along `axis`.
struct DequantizeLinearAttrs : AttrsOf<DequantizeLinearAttrs> {
  Int axis = 1;
  template <class V>
  void reflect(V& v) {
    v("axis", axis);
  }
};

}  // namespace kiln
