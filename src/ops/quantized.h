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
// float8 E4M3FN products (FP8, issue 13): X and W both float8, zero point 0, the products of
// the float8 values accumulated in double by the reference, scaled as the integer ones.
inline bool is_quantized_float8(DataType t) { return t == DataType::kFloat8E4M3FN; }
inline bool is_quantized_operand(DataType t) { return is_quantized_int(t) || is_quantized_float8(t); }

// The type of a requantized output (ConvAttrs::q_y_scale) and of a quantized residual: the next
// layer's input type, float8 for float8 products and int8 otherwise.
inline DataType requantized_type(DataType x) {
  return is_quantized_float8(x) ? x : DataType::kInt8;
}

// X (input 0) int8/uint8 with its zero point in range and W (input 1) int8 (symmetric weights:
// the folding pass only makes those), or X and W float8 with zero point 0; scales positive and
// finite, q_out a float type.
inline void check_quantized_operands(InferContext& ctx, int64_t x_zero,
                                     const std::vector<double>& w_scale, DataType q_out) {
  const DataType xt = ctx.dtype(0);
  if (!is_quantized_operand(xt))
    ctx.error(cat("a quantized product takes int8, uint8 or float8e4m3fn X, got ", dtype_name(xt)));
  const DataType wt = is_quantized_float8(xt) ? xt : DataType::kInt8;
  if (ctx.dtype(1) != wt)
    ctx.error(cat("a quantized product with ", dtype_name(xt), " X takes ", dtype_name(wt),
                  " weights, got ", dtype_name(ctx.dtype(1))));
  if (is_quantized_float8(xt)) {
    if (x_zero != 0) ctx.error("a float8 product's zero point must be 0");
  } else {
    const int64_t lo = xt == DataType::kInt8 ? -128 : 0, hi = xt == DataType::kInt8 ? 127 : 255;
    if (x_zero < lo || x_zero > hi)
      ctx.error(cat("zero point ", x_zero, " is outside ", dtype_name(xt), "'s range"));
  }
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

// Element i of a requantized output y (int8 or float8, requantized_type()).
inline void requantize_into(Tensor& y, int64_t i, double v, double scale) {
  if (is_quantized_float8(y.dtype()))
    y.data<uint8_t>()[i] = float_to_e4m3fn_bits(v / scale);
  else
    y.data<int8_t>()[i] = requantize_int8(v, scale);
}

// A float8 tensor as float32 (exactly), so that the reference computes read it as any float;
// other tensors as they are.
inline Tensor widen_float8(const Tensor& t) {
  if (!t.defined() || !is_quantized_float8(t.dtype())) return t;
  Tensor f(DataType::kFloat, t.dims());
  for (int64_t i = 0; i < t.numel(); ++i) f.data<float>()[i] = static_cast<float>(t.get_f64(i));
  return f;
}

}  // namespace kiln
