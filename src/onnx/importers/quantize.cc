// QuantizeLinear, DequantizeLinear (per-axis from 13; float8e4m3fn and saturate from 19) and
// DynamicQuantizeLinear.
#include "onnx/importer.h"
#include "ops/dequantize_linear.h"
#include "ops/op.h"
#include "ops/pointwise.h"
#include "ops/quantize_linear.h"
#include "ops/reduce.h"

namespace kiln::onnx {

namespace {

void check_supported(ImportContext& c, size_t i) {
  if (c.has_input(i) && c.input(i)->dtype == DataType::kFloat8E4M3FN && c.opset() >= 19) return;
  if (c.has_input(i) && !dtype_is_supported(c.input(i)->dtype))
    c.unsupported(cat("input ", i, " has unsupported type ", dtype_name(c.input(i)->dtype)));
}

void imp_QuantizeLinear(ImportContext& c) {
  for (size_t i = 0; i < 3; ++i) check_supported(c, i);
  if (c.has_attr("saturate") && c.opset() < 19)
    c.unsupported("the saturate attribute (float8) needs opset 19");
  auto a = std::make_unique<QuantizeLinearAttrs>();
  a->saturate = c.opset() >= 19 ? c.attr_int("saturate", 1) : 1;
  a->axis = c.opset() >= 13 ? c.attr_int("axis", 1) : 1;
  a->output_dtype = c.has_input(2) ? c.input(2)->dtype : DataType::kUInt8;
  std::vector<Value*> ins = {c.input(0), c.input(1)};
  if (c.has_input(2)) ins.push_back(c.input(2));
  c.set_output(0, c.add1("QuantizeLinear", ins, std::move(a)));
}

void imp_DequantizeLinear(ImportContext& c) {
  for (size_t i = 0; i < 3; ++i) check_supported(c, i);
  auto a = std::make_unique<DequantizeLinearAttrs>();
  a->axis = c.opset() >= 13 ? c.attr_int("axis", 1) : 1;
  std::vector<Value*> ins = {c.input(0), c.input(1)};
  if (c.has_input(2)) ins.push_back(c.input(2));
  c.set_output(0, c.add1("DequantizeLinear", ins, std::move(a)));
}

// Lowered to two Reduce nodes (the data's range) and two Pointwise programs (scale and zero point;
// then the quantization), all in float32 as the ONNX definition computes them.
void imp_DynamicQuantizeLinear(ImportContext& c) {
  using expr::Op;
  constexpr DataType F = DataType::kFloat, U8 = DataType::kUInt8;
  Value* x = c.input(0);
  if (x->dtype != F) c.invalid(cat("x must be float32, got ", dtype_name(x->dtype)));
  if (!find_op("Reduce")) c.unsupported("needs the Reduce op, which this build lacks");
  auto reduce = [&](const char* kind) {
    auto a = std::make_unique<ReduceAttrs>();
    a->kind = kind;
    a->keepdims = false;
    return c.add1("Reduce", {x}, std::move(a));
  };
  Value* mn = reduce("min");
  Value* mx = reduce("max");

  auto clamp255 = [](expr::Program& p, int32_t v) {
    return p.binary(Op::kMin, p.binary(Op::kMax, v, p.constant(F, 0)), p.constant(F, 255));
  };
  expr::Program p;
  p.input_types = {F, F};
  int32_t lo = p.binary(Op::kMin, p.input(0), p.constant(F, 0));  // the range includes 0
  int32_t hi = p.binary(Op::kMax, p.input(1), p.constant(F, 0));
  int32_t scale = p.binary(Op::kDiv, p.binary(Op::kSub, hi, lo), p.constant(F, 255));
  int32_t zpf =
      p.unary(Op::kRound, p.binary(Op::kDiv, p.binary(Op::kSub, p.constant(F, 0), lo), scale));
  // An all-zero x gives scale 0: zero point 0 instead of 0/0.
  zpf = p.select(p.binary(Op::kEq, scale, p.constant(F, 0)), p.constant(F, 0), clamp255(p, zpf));
  p.outputs = {scale, p.cast(zpf, U8)};
  auto pa = std::make_unique<PointwiseAttrs>();
  pa->program = p;
  auto sz = c.add("Pointwise", {mn, mx}, std::move(pa), 2);

  expr::Program q;
  q.input_types = {F, F, U8};
  int32_t zp = q.cast(q.input(2), F);
  int32_t v = q.unary(Op::kRound, q.binary(Op::kDiv, q.input(0), q.input(1)));
  v = clamp255(q, q.binary(Op::kAdd, v, zp));
  v = q.select(q.binary(Op::kEq, q.input(1), q.constant(F, 0)), zp, v);
  q.outputs = {q.cast(v, U8)};
  c.set_output(0, c.pointwise(q, {x, sz[0], sz[1]}));
  c.set_output(1, sz[0]);
  c.set_output(2, sz[1]);
}

}  // namespace

const ImporterList& kiln_import_quantize() {
  static const ImporterList l{{
      {"QuantizeLinear", imp_QuantizeLinear, 10, 20},  // 21: block quantization
      {"DequantizeLinear", imp_DequantizeLinear, 10, 20},
      {"DynamicQuantizeLinear", imp_DynamicQuantizeLinear, 11},
  }};
  return l;
}

}  // namespace kiln::onnx
