// Matrix products: MatMul, Gemm, MatMulInteger, QLinearMatMul and Einsum, lowered to the canonical
// MatMul (Gemm adds beta * C with a Pointwise; Einsum adds Reduce/Transpose/Reshape where it can
// and otherwise stays an Einsum node). The integer forms compute exactly in float64; see
// integer_lowering.h.
#include <algorithm>
#include <cmath>
#include <map>

#include "onnx/importer.h"
#include "onnx/importers/integer_lowering.h"
#include "ops/einsum.h"
#include "ops/mat_mul.h"
#include "ops/reduce.h"
#include "ops/reshape.h"
#include "ops/transpose.h"

namespace kiln::onnx {

namespace {

using expr::Op;

// A model naming more outputs than the op has is invalid (it would leave outputs unbound).
void expect_outputs(ImportContext& c, size_t n) {
  if (c.num_outputs() > n)
    c.invalid(cat(c.proto().op_type, " has ", n, " output(s), the node names ", c.num_outputs()));
}

void check_same_type(ImportContext& c, Value* a, Value* b) {
  if (a->dtype != b->dtype)
    c.invalid(cat("A is ", dtype_name(a->dtype), " but B is ", dtype_name(b->dtype)));
  if (!dtype_is_supported(a->dtype)) c.unsupported(cat("type ", dtype_name(a->dtype)));
}

void imp_MatMul(ImportContext& c) {
  expect_outputs(c, 1);
  Value* a = c.input(0);
  Value* b = c.input(1);
  check_same_type(c, a, b);
  c.set_output(0, c.add1("MatMul", {a, b}, std::make_unique<MatMulAttrs>()));
}

// Y = alpha * op(A) @ op(B) + beta * C, C broadcast to [M, N].
void imp_Gemm(ImportContext& c) {
  expect_outputs(c, 1);
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
  expect_outputs(c, 1);
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
  expect_outputs(c, 1);
  Value* a = c.input(0);
  Value* b = c.input(3);
  Value* y_zp = c.input_or_null(7);
  DataType out = y_zp ? y_zp->dtype : a->dtype;
  Value* af = dequantize_f64(c, a, c.input(1), c.input_or_null(2), param_axis(c, a, kRowAxis));
  Value* bf = dequantize_f64(c, b, c.input(4), c.input_or_null(5), param_axis(c, b, kColAxis));
  Value* y = c.add1("MatMul", {af, bf}, std::make_unique<MatMulAttrs>());
  c.set_output(0, requantize(c, y, c.input(6), y_zp, out, param_axis(c, y, kColAxis)));
}

// ---- Einsum ---------------------------------------------------------------------------------

Value* transpose_to(ImportContext& c, Value* v, const std::vector<int>& from,
                    const std::vector<int>& to) {
  Ints perm;
  for (int l : to) perm.push_back(std::find(from.begin(), from.end(), l) - from.begin());
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i) identity = identity && perm[i] == int64_t(i);
  if (identity) return v;
  auto a = std::make_unique<TransposeAttrs>();
  a->perm = std::move(perm);
  return c.add1("Transpose", {v}, std::move(a));
}

Value* reshape_to(ImportContext& c, Value* v, const Dims& dims) {
  if (v->shape.fully_known() && v->shape.concrete() == dims) return v;
  return c.add1("Reshape", {v, c.const_i64(dims)}, std::make_unique<ReshapeAttrs>());
}

// Lowers one- and two-operand equations without repeated labels in a term, on known shapes:
// labels only one operand has and the output lacks are summed first (Reduce); then batch, kept
// and contracted labels are grouped by Transpose/Reshape into one batched MatMul, whose result
// is reshaped and transposed into the output's label order. Returns false to leave the node to
// the Einsum op (diagonals, three or more operands, broadcasting ellipsis dims, symbolic shapes).
bool lower_einsum(ImportContext& c, const EinsumEquation& e) {
  size_t n = e.inputs.size();
  if (n < 1 || n > 2) return false;
  for (const char* op : {"Reduce", "Transpose", "Reshape"})
    if (!find_op(op)) return false;
  // Ellipsis dims become labels 100, 101, ... aligned from the right.
  constexpr int kEllBase = 100;
  std::vector<std::vector<int>> lab(n);
  std::map<int, int64_t> size;
  int64_t max_ell = 0;
  std::vector<int64_t> ell_rank(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const Shape& s = c.input(i)->shape;
    if (!s.fully_known()) return false;
    const auto& t = e.inputs[i];
    bool has_ell = std::count(t.begin(), t.end(), kEinsumEllipsis) > 0;
    ell_rank[i] =
        static_cast<int64_t>(s.rank()) - static_cast<int64_t>(t.size()) + (has_ell ? 1 : 0);
    if (ell_rank[i] < 0 || (!has_ell && ell_rank[i] != 0)) return false;  // the op reports it
    max_ell = std::max(max_ell, ell_rank[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    Dims d = c.input(i)->shape.concrete();
    size_t k = 0;
    for (int l : e.inputs[i]) {
      if (l == kEinsumEllipsis) {
        for (int64_t j = 0; j < ell_rank[i]; ++j)
          lab[i].push_back(kEllBase + max_ell - ell_rank[i] + j);
        continue;
      }
      lab[i].push_back(l);
    }
    for (int l : lab[i]) {
      if (std::count(lab[i].begin(), lab[i].end(), l) > 1) return false;  // a diagonal
      int64_t v = d[k++];
      if (size.count(l) && size[l] != v) return false;  // broadcasting, or an error for the op
      size[l] = v;
    }
  }
  std::vector<int> out;
  for (int l : e.output) {
    if (l != kEinsumEllipsis) {
      out.push_back(l);
      continue;
    }
    for (int64_t j = 0; j < max_ell; ++j) out.push_back(kEllBase + j);
  }
  auto has = [](const std::vector<int>& v, int l) {
    return std::find(v.begin(), v.end(), l) != v.end();
  };
  std::vector<Value*> cur = {c.input(0)};
  if (n == 2) cur.push_back(c.input(1));
  // Sum away what only one operand has and the output does not want.
  for (size_t i = 0; i < n; ++i) {
    Ints axes;
    std::vector<int> kept;
    for (size_t p = 0; p < lab[i].size(); ++p) {
      int l = lab[i][p];
      if (!has(out, l) && (n == 1 || !has(lab[1 - i], l)))
        axes.push_back(int64_t(p));
      else
        kept.push_back(l);
    }
    if (axes.empty()) continue;
    auto a = std::make_unique<ReduceAttrs>();
    a->kind = "sum";
    a->axes = std::move(axes);
    a->keepdims = false;
    cur[i] = c.add1("Reduce", {cur[i]}, std::move(a));
    lab[i] = std::move(kept);
  }
  if (n == 1) {
    c.set_output(0, transpose_to(c, cur[0], lab[0], out));
    return true;
  }
  std::vector<int> batch, a_keep, b_keep, contract;
  for (int l : out) {
    if (has(lab[0], l) && has(lab[1], l))
      batch.push_back(l);
    else if (has(lab[0], l))
      a_keep.push_back(l);
    else
      b_keep.push_back(l);
  }
  for (int l : lab[0])
    if (has(lab[1], l) && !has(out, l)) contract.push_back(l);
  auto cat_labels = [](std::initializer_list<const std::vector<int>*> parts) {
    std::vector<int> r;
    for (auto* p : parts) r.insert(r.end(), p->begin(), p->end());
    return r;
  };
  auto volume = [&](const std::vector<int>& ls) {
    int64_t v = 1;
    for (int l : ls) v *= size[l];
    return v;
  };
  Dims batch_dims;
  for (int l : batch) batch_dims.push_back(size[l]);
  auto with = [&](std::initializer_list<int64_t> tail) {
    Dims d = batch_dims;
    d.insert(d.end(), tail.begin(), tail.end());
    return d;
  };
  int64_t m = volume(a_keep), k = volume(contract), nn = volume(b_keep);
  Value* a = transpose_to(c, cur[0], lab[0], cat_labels({&batch, &a_keep, &contract}));
  Value* b = transpose_to(c, cur[1], lab[1], cat_labels({&batch, &contract, &b_keep}));
  a = reshape_to(c, a, with({m, k}));
  b = reshape_to(c, b, with({k, nn}));
  Value* y = c.add1("MatMul", {a, b}, std::make_unique<MatMulAttrs>());
  Dims y_dims = batch_dims;
  for (int l : a_keep) y_dims.push_back(size[l]);
  for (int l : b_keep) y_dims.push_back(size[l]);
  y = reshape_to(c, y, y_dims);
  c.set_output(0, transpose_to(c, y, cat_labels({&batch, &a_keep, &b_keep}), out));
  return true;
}

void imp_Einsum(ImportContext& c) {
  expect_outputs(c, 1);
  if (!c.has_attr("equation")) c.invalid("equation is required");
  std::string equation = c.attr_string("equation", "");
  if (c.num_inputs() == 0) c.invalid("Einsum needs at least one input");
  std::vector<Value*> ins;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    ins.push_back(c.input(i));
    if (ins.back()->dtype != ins[0]->dtype)
      c.invalid(cat("input ", i, " is ", dtype_name(ins.back()->dtype), " but input 0 is ",
                    dtype_name(ins[0]->dtype)));
  }
  EinsumEquation e;
  try {
    e = parse_einsum(equation, ins.size());
  } catch (const Error& err) {
    c.invalid(err.message());
  }
  if (lower_einsum(c, e)) return;
  auto a = std::make_unique<EinsumAttrs>();
  a->equation = equation;
  c.set_output(0, c.add1("Einsum", ins, std::move(a)));
}

}  // namespace

const ImporterList& kiln_import_matmul() {
  static const ImporterList l{{
      {"MatMul", imp_MatMul},
      {"Gemm", imp_Gemm, 1},
      {"MatMulInteger", imp_MatMulInteger, 10},
      {"QLinearMatMul", imp_QLinearMatMul, 10},
      {"Einsum", imp_Einsum, 12},
  }};
  return l;
}

}  // namespace kiln::onnx
