#pragma once
#include "ir/attrs.h"

namespace kiln {

// QuantizeLinear: y = saturate(round_half_even(x / scale) + zero_point), or for float8 y the
// nearest float8 of x / scale (zero point 0; see `saturate`). Inputs: x, scale,
// zero_point (optional). scale/zero_point are scalars (per tensor) or 1-D along `axis`.
struct QuantizeLinearAttrs : AttrsOf<QuantizeLinearAttrs> {
  Int axis = 1;
  // The quantized type; must equal zero_point's type when that input is given.
  DataType output_dtype = DataType::kUInt8;
  // float8 outputs (opset 19): values past the type's range saturate to its largest finite value
  // (1) or become NaN (0).
  Int saturate = 1;
  template <class V>
  void reflect(V& v) {
    v("axis", axis);
    v("output_dtype", output_dtype);
    v("saturate", saturate);
  }
};

}  // namespace kiln
