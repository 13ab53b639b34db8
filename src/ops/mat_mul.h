// MatMul: numpy matmul with broadcast batch dims, 1-D operands per numpy (a 1-D A is a row
// vector, a 1-D B a column vector, and the added dim is dropped from the result), optional
// transposes of the last two dims of A and B, and a scale: Y = alpha * op(A) @ op(B).
// Gemm lowers to MatMul plus a Pointwise for beta * C.
//
// Fused epilogue (set by the epilogue-fusion passes, never by importers; see ops/epilogue.h):
//   Y = epilogue(act(alpha * op(A) @ op(B) + bias + Z))
// with the optional input 2, bias, of shape [N] (N = op(B)'s columns, B at least 2-D) added along
// Y's last axis, and the optional input 3, Z, a residual of Y's shape; both of Y's type. act is
// computed before Y is rounded to its type; `epilogue` reads the rounded Y.
#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

struct MatMulAttrs : AttrsOf<MatMulAttrs> {
  bool trans_a = false;  // ignored for a 1-D A
  bool trans_b = false;  // ignored for a 1-D B
  Float alpha = 1.0;     // integer types require 1
  // Set by the precision pass when the build allows TF32: float32 products may then use TF32
  // tensor cores. Off, they keep full float32 products.
  bool allow_tf32 = false;
  // "" (none), "relu", "gelu_erf" or "gelu_tanh" (ops/epilogue.h); float types only.
  std::string activation;
  // Empty, or a program with one input and one output, both of Y's type, applied to every
  // element of Y last.
  expr::Program epilogue;
  // Quantized (set by the Q/DQ folding pass; see ConvAttrs): A is int8/uint8 and B int8; the
  // products accumulate exactly over (a - q_x_zero) * b, and Y = epilogue(act(acc * q_x_scale *
  // q_w_scale[n] + bias + Z)) in type q_out (alpha must be 1). q_w_scale: one per output column
  // n, or one for all. q_x_scale 0: not quantized.
  Float q_x_scale = 0;
  Int q_x_zero = 0;
  Floats q_w_scale;
  DataType q_out = DataType::kUndefined;
  bool quantized() const { return q_x_scale > 0; }
  template <class V>
  void reflect(V& v) {
    v("trans_a", trans_a);
    v("trans_b", trans_b);
    v("alpha", alpha);
    v("allow_tf32", allow_tf32);
    v("activation", activation);
    v("epilogue", epilogue);
    v("q_x_scale", q_x_scale);
    v("q_x_zero", q_x_zero);
    v("q_w_scale", q_w_scale);
    v("q_out", q_out);
  }
};

}  // namespace kiln
