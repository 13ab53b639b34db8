// Matrix products: MatMul, Gemm, MatMulInteger and QLinearMatMul, lowered to the canonical MatMul
// (Gemm adds beta * C with a Pointwise). The integer forms compute exactly in float64; see
// integer_lowering.h.
#include <cmath>

#include "onnx/importer.h"
#include "onnx/importers/integer_lowering.h"
#include "ops/mat_mul.h"

namespace kiln::onnx {

namespace {

using expr::Op;

void check_same_type(ImportContext& c, Value* a, Value* b) {
  if (a->dtype != b->dtype)
    c.invalid(cat("A is ", dtype_name(a->dtype), " but B is ", dtype_name(b->dtype)));
  if (!dtype_is_supported(a->dtype)) c.unsupported(cat("type ", dtype_name(a->dtype)));
}

void imp_MatMul(ImportContext& c) {
  Value* a = c.input(0);
  Value* b = c.input(1);
  check_same_type(c, a, b);
  c.set_output(0, c.add1("MatMul", {a, b}, std::make_unique<MatMulAttrs>()));
}

// Y = alpha * op(A) @ op(B) + beta * C, C broadcast to [M, N].
void imp_Gemm(ImportContext& c) {
  Value* a = c.input(0);
  Value* b = c.input(1);
  check_same_type(c, a, b);
  for (Value* v : {a, b})
    if (v->shape.rank_known && v->shape.rank() != 2)
      c.invalid(cat("Gemm operands must be 2-D, got ", v->shape.str()));
  auto attrs = std::make_unique<MatMulAttrs>();
  attrs->trans_a = c.attr_int("transA", 0) != 0;
  attrs->trans_b = c.attr_int("transB", 0) != 0;
  double alpha = c.attr_float("alpha", 1.0), beta = c.attr_float("beta", 1.0);
  DataType t = a->dtype;
  bool float_type = dtype_is_float(t);
  if (float_type) attrs->alpha = alpha;
  Value* y = c.add1("MatMul", {a, b}, std::move(attrs));
  if (!float_type && alpha != 1.0) {
    if (alpha != std::floor(alpha)) c.unsupported("a fractional alpha for an integer Gemm");
    y = c.binary(Op::kMul, y, c.const_scalar(t, alpha));
  }
  Value* cv = c.input_or_null(2);
  if (!cv && c.opset() < 11) c.invalid("C is required before opset 11");
  if (cv && beta != 0.0) {
    if (cv->dtype != t) c.invalid(cat("C is ", dtype_name(cv->dtype), " but A is ", dtype_name(t)));
    // C must broadcast to Y's shape (unidirectionally); a C that would grow Y is invalid.
    const Shape& ys = y->shape;
    const Shape& cs = cv->shape;
    if (ys.rank_known && cs.rank_known) {
      if (cs.rank() > 2) c.invalid(cat("C ", cs.str(), " has rank above 2"));
      for (size_t i = 0; i < cs.rank(); ++i) {
        const Dim& cd = cs[i];
        const Dim& yd = ys[ys.rank() - cs.rank() + i];
        if (cd.known() && cd.value != 1 && yd.known() && cd.value != yd.value)
          c.invalid(cat("C ", cs.str(), " does not broadcast to the product's shape ", ys.str()));
      }
    }
    expr::Program p;
    p.input_types = {t, t};
    int32_t cterm = p.input(1);
    if (beta != 1.0) cterm = p.binary(Op::kMul, cterm, p.constant(t, beta));
    p.outputs = {p.binary(Op::kAdd, p.input(0), cterm)};
    y = c.pointwise(p, {y, cv});
  }
  c.set_output(0, y);
}

// The axis of A's per-row and B's per-column parameters.
constexpr int64_t kRowAxis = -2, kColAxis = -1;

int64_t param_axis(ImportContext& c, Value* x, int64_t axis) {
  // DequantizeLinear wants a non-negative axis only when it must index; a 1-D x (vector operand)
  // has no rows, so its parameters are per tensor and the axis does not matter.
  if (x->shape.rank_known && x->shape.rank() < 2) return 0;
  return axis;
}

void imp_MatMulInteger(ImportContext& c) {
  Value* a = c.input(0);
  Value* b = c.input(1);
  for (Value* v : {a, b})
    if (v->dtype != DataType::kUInt8 && v->dtype != DataType::kInt8)
      c.invalid(cat("inputs must be int8 or uint8, got ", dtype_name(v->dtype)));
  Value* af = centered_f64(c, a, c.input_or_null(2), param_axis(c, a, kRowAxis));
  Value* bf = centered_f64(c, b, c.input_or_null(3), param_axis(c, b, kColAxis));
  Value* y = c.add1("MatMul", {af, bf}, std::make_unique<MatMulAttrs>());
  c.set_output(0, c.cast(y, DataType::kInt32));
}

// Dequantize (A per tensor or per row, B per tensor or per column), multiply in float64,
// requantize with round-half-even and saturation.
void imp_QLinearMatMul(ImportContext& c) {
  Value* a = c.input(0);
  Value* b = c.input(3);
  Value* y_zp = c.input_or_null(7);
  DataType out = y_zp ? y_zp->dtype : a->dtype;
  Value* af = dequantize_f64(c, a, c.input(1), c.input_or_null(2), param_axis(c, a, kRowAxis));
  Value* bf = dequantize_f64(c, b, c.input(4), c.input_or_null(5), param_axis(c, b, kColAxis));
  Value* y = c.add1("MatMul", {af, bf}, std::make_unique<MatMulAttrs>());
  c.set_output(0, requantize(c, y, c.input(6), y_zp, out, param_axis(c, y, kColAxis)));
}

}  // namespace

const ImporterList& kiln_import_matmul() {
  static const ImporterList l{{
      {"MatMul", imp_MatMul},
      {"Gemm", imp_Gemm, 7},
      {"MatMulInteger", imp_MatMulInteger, 10},
      {"QLinearMatMul", imp_QLinearMatMul, 10},
  }};
  return l;
}

}  // namespace kiln::onnx
