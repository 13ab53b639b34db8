// Shared by the integer and quantized importers (ConvInteger, QLinearConv, MatMulInteger,
// QLinearMatMul): they compute exactly in float64, where inputs minus zero points are small
// integers and a float64 sum of their products stays far below 2^53.
#pragma once
#include "onnx/importer.h"
#include "ops/dequantize_linear.h"
#include "ops/op.h"
#include "ops/quantize_linear.h"

namespace kiln::onnx {

constexpr DataType F64 = DataType::kDouble;

inline void check_float(ImportContext& c, Value* v, const char* what) {
  if (!dtype_is_float(v->dtype))
    c.invalid(cat(what, " must be a floating-point tensor, got ", dtype_name(v->dtype)));
}

// x - zero_point as float64, the zero point per tensor or per `axis` (as DequantizeLinear with a
// unit scale, which is exact).
inline Value* centered_f64(ImportContext& c, Value* x, Value* zp, int64_t axis) {
  if (!zp) return c.cast(x, F64);
  if (zp->dtype != x->dtype)
    c.invalid(
        cat("zero point is ", dtype_name(zp->dtype), " but its input is ", dtype_name(x->dtype)));
  if (!zp->shape.fully_known())
    c.unsupported(cat("zero point shape ", zp->shape.str(), " must be known at import"));
  if (!find_op("DequantizeLinear")) c.unsupported("needs the DequantizeLinear op");
  Tensor ones(F64, zp->shape.concrete());
  for (int64_t i = 0; i < ones.numel(); ++i) ones.set_f64(i, 1.0);
  auto a = std::make_unique<DequantizeLinearAttrs>();
  a->axis = axis;
  return c.add1("DequantizeLinear", {x, c.constant(std::move(ones)), zp}, std::move(a));
}

// (x - zero_point) * scale in float64 (exact: a small integer times a float32), per tensor or per
// `axis`.
inline Value* dequantize_f64(ImportContext& c, Value* x, Value* scale, Value* zp, int64_t axis) {
  if (!find_op("DequantizeLinear")) c.unsupported("needs the DequantizeLinear op");
  check_float(c, scale, "scale");
  auto a = std::make_unique<DequantizeLinearAttrs>();
  a->axis = axis;
  std::vector<Value*> ins = {x, c.cast(scale, F64)};
  if (zp) ins.push_back(zp);
  return c.add1("DequantizeLinear", ins, std::move(a));
}

inline Value* requantize(ImportContext& c, Value* y, Value* scale, Value* zp, DataType out,
                         int64_t axis = 1) {
  if (!find_op("QuantizeLinear")) c.unsupported("needs the QuantizeLinear op");
  check_float(c, scale, "y_scale");
  auto a = std::make_unique<QuantizeLinearAttrs>();
  a->output_dtype = out;
  a->axis = axis;
  std::vector<Value*> ins = {y, c.cast(scale, F64)};
  if (zp) ins.push_back(zp);
  return c.add1("QuantizeLinear", ins, std::move(a));
}

}  // namespace kiln::onnx
