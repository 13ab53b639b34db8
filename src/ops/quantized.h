// Quantized Conv and MatMul (ConvAttrs / MatMulAttrs q_* fields, set by the Q/DQ folding pass):
// the checks their infer() share. The arithmetic is TensorRT's and ONNX Runtime's for a
// DequantizeLinear on each operand feeding a float product: integer products accumulated
// exactly, scaled once per output channel.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "ops/op_util.h"

namespace kiln {

inline bool is_quantized_int(DataType t) { return t == DataType::kInt8 || t == DataType::kUInt8; }

// X (input 0) int8/uint8 with its zero point in range, W (input 1) int8 (symmetric weights: the
// folding pass only makes those), scales positive and finite, q_out a float type.
inline void check_quantized_operands(InferContext& ctx, int64_t x_zero,
                                     const std::vector<double>& w_scale, DataType q_out) {
  const DataType xt = ctx.dtype(0);
  if (!is_quantized_int(xt))
    ctx.error(cat("a quantized product takes int8 or uint8 X, got ", dtype_name(xt)));
  if (ctx.dtype(1) != DataType::kInt8)
    ctx.error(cat("a quantized product takes int8 weights, got ", dtype_name(ctx.dtype(1))));
  const int64_t lo = xt == DataType::kInt8 ? -128 : 0, hi = xt == DataType::kInt8 ? 127 : 255;
  if (x_zero < lo || x_zero > hi)
    ctx.error(cat("zero point ", x_zero, " is outside ", dtype_name(xt), "'s range"));
  if (w_scale.empty()) ctx.error("a quantized product needs weight scales");
  for (double s : w_scale)
    if (!(s > 0) || !std::isfinite(s)) ctx.error(cat("weight scale ", s, " is not positive"));
  if (!dtype_is_float(q_out))
    ctx.error(cat("a quantized product's output type must be a float type, got ",
                  dtype_name(q_out)));
}

// A requantized output element: saturate(round_half_even(v / scale)) in int8, NaN to 0, as
// QuantizeLinear with zero point 0 computes it.
inline int8_t requantize_int8(double v, double scale) {
  const double q = std::nearbyint(v / scale);
  if (std::isnan(q)) return 0;
  return static_cast<int8_t>(q <= -128 ? -128 : q >= 127 ? 127 : q);
}

}  // namespace kiln
