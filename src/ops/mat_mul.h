// MatMul: numpy matmul with broadcast batch dims, 1-D operands per numpy (a 1-D A is a row
// vector, a 1-D B a column vector, and the added dim is dropped from the result), optional
// transposes of the last two dims of A and B, and a scale: Y = alpha * op(A) @ op(B).
// Gemm lowers to MatMul plus a Pointwise for beta * C.
#pragma once
#include "ir/attrs.h"

namespace kiln {

struct MatMulAttrs : AttrsOf<MatMulAttrs> {
  bool trans_a = false;  // ignored for a 1-D A
  bool trans_b = false;  // ignored for a 1-D B
  Float alpha = 1.0;     // integer types require 1
  // Set by the precision pass when the build allows TF32: float32 products may then use TF32
  // tensor cores. Off, they keep full float32 products.
  bool allow_tf32 = false;
  template <class V>
  void reflect(V& v) {
    v("trans_a", trans_a);
    v("trans_b", trans_b);
    v("alpha", alpha);
    v("allow_tf32", allow_tf32);
  }
};

}  // namespace kiln
