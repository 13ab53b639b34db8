// MatMul: the reference batched matrix product. See mat_mul.h for the semantics.
//
// Each batch's operands are copied into accumulator-typed row-major matrices (transposing on the
// way in), so the product itself is an i-k-j loop whose inner loop is a contiguous multiply-add
// over a row of B, which vectorises.
#include "ops/mat_mul.h"

#include <cmath>

#include "ops/accumulate.h"
#include "ops/epilogue.h"
#include "ops/quantized.h"
#include "ops/op_util.h"

namespace kiln {

namespace {

struct Operand {
  bool vector = false;  // 1-D
  Dim rows, cols;       // of op(X), the matrix actually multiplied
  Shape batch;
};

Operand describe(const Shape& s, bool trans, bool is_a) {
  Operand o;
  if (s.rank() == 1) {
    o.vector = true;
    o.rows = is_a ? Dim(1) : s[0];
    o.cols = is_a ? s[0] : Dim(1);
    return o;
  }
  Dim r = s[s.rank() - 2], c = s[s.rank() - 1];
  o.rows = trans ? c : r;
  o.cols = trans ? r : c;
  o.batch.dims.assign(s.dims.begin(), s.dims.end() - 2);
  return o;
}

// Y and Z agree where both are known.
bool shapes_conflict(const Shape& a, const Shape& b) {
  if (!a.rank_known || !b.rank_known) return false;
  if (a.rank() != b.rank()) return true;
  for (size_t i = 0; i < a.rank(); ++i)
    if (a[i].known() && b[i].known() && a[i].value != b[i].value) return true;
  return false;
}

// The fused epilogue: activation, bias (input 2, [N]) and residual (input 3, Y's shape).
void check_epilogue(InferContext& ctx, const MatMulAttrs& a, DataType t, Dim n, const Shape& y) {
  if (!is_matmul_activation(a.activation))
    ctx.error(cat("activation '", a.activation,
                  "' is not one of \"\" (none), relu, gelu_erf and gelu_tanh"));
  if (!a.activation.empty() && !dtype_is_float(t))
    ctx.error(cat("a fused activation needs a floating-point type, got ", dtype_name(t)));
  if (has_epilogue_program(a.epilogue)) {
    std::string why = epilogue_program_problem(a.epilogue, t);
    if (!why.empty()) ctx.error(why);
  }
  if (ctx.num_inputs() > 4)
    ctx.error(cat("MatMul takes at most 4 inputs (A, B, bias, Z), got ", ctx.num_inputs()));
  if (ctx.has_input(2)) {
    if (ctx.dtype(2) != t)
      ctx.error(cat("the bias is ", dtype_name(ctx.dtype(2)), " but A is ", dtype_name(t)));
    const Shape& bs = ctx.shape(2);
    if (bs.rank_known && bs.rank() != 1) ctx.error(cat("the bias must be 1-D [N], got ", bs.str()));
    if (bs.rank_known && bs[0].known() && n.known() && bs[0].value != n.value)
      ctx.error(cat("the bias has ", bs[0].value, " elements but the product has ", n.value,
                    " columns"));
  }
  if (ctx.has_input(3)) {
    if (ctx.dtype(3) != t)
      ctx.error(cat("the residual Z is ", dtype_name(ctx.dtype(3)), " but A is ", dtype_name(t)));
    if (shapes_conflict(ctx.shape(3), y))
      ctx.error(cat("the residual Z ", ctx.shape(3).str(), " does not have the output's shape ",
                    y.str()));
  }
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<MatMulAttrs>();
  DataType t = ctx.dtype(0);
  if (a.quantized()) {
    check_quantized_operands(ctx, a.q_x_zero, a.q_w_scale, a.q_out);
    if (a.alpha != 1.0) ctx.error("a quantized MatMul takes alpha 1 (its scales hold it)");
    t = a.q_out;
  } else {
    if (!dtype_is_supported(t)) ctx.error(cat("A has unsupported type ", dtype_name(t)));
    if (ctx.dtype(1) != t)
      ctx.error(cat("A is ", dtype_name(t), " but B is ", dtype_name(ctx.dtype(1)),
                    "; they must have one type"));
  }
  if (!dtype_is_float(t) && a.alpha != 1.0)
    ctx.error(
        cat("alpha ", a.alpha, " is only allowed for floating-point types, not ", dtype_name(t)));
  const Shape& as = ctx.shape(0);
  const Shape& bs = ctx.shape(1);
  if ((as.rank_known && as.rank() == 0) || (bs.rank_known && bs.rank() == 0))
    ctx.error(cat("MatMul operands must be at least 1-D, got A ", as.str(), " and B ", bs.str()));
  if (!as.rank_known || !bs.rank_known) {
    check_epilogue(ctx, a, t, Dim::unknown(), Shape::unknown_rank());
    ctx.set_output(0, t, Shape::unknown_rank());
    return;
  }
  Operand oa = describe(as, a.trans_a, true), ob = describe(bs, a.trans_b, false);
  if (oa.cols.known() && ob.rows.known() && oa.cols.value != ob.rows.value)
    ctx.error(cat("inner dimensions differ: A ", as.str(), (a.trans_a ? " (transposed)" : ""),
                  " has K = ", oa.cols.value, " but B ", bs.str(),
                  (a.trans_b ? " (transposed)" : ""), " has K = ", ob.rows.value));
  Shape out;
  try {
    out = broadcast_shapes({oa.batch, ob.batch});
  } catch (const Error&) {
    ctx.error(cat("batch dimensions of A ", as.str(), " and B ", bs.str(), " do not broadcast"));
  }
  if (!oa.vector) out.dims.push_back(oa.rows);
  if (!ob.vector) out.dims.push_back(ob.cols);
  if (a.quantized() && a.q_w_scale.size() != 1 && ob.cols.known() &&
      static_cast<int64_t>(a.q_w_scale.size()) != ob.cols.value)
    ctx.error(cat("q_w_scale has ", a.q_w_scale.size(), " scales but the product has ",
                  ob.cols.value, " columns"));
  if (ob.vector && ctx.has_input(2))
    ctx.error(cat("a bias needs B to be at least 2-D (its columns are the bias's length), got B ",
                  bs.str()));
  check_epilogue(ctx, a, t, ob.cols, out);
  ctx.set_output(0, t, std::move(out));
}

// Copies one batch of operand X (a rows x cols matrix stored at `offset`, or its transpose) into
// dst as a row-major matrix of op(X).
template <class Acc>
void load_matrix(const Tensor& x, int64_t offset, int64_t rows, int64_t cols, bool trans,
                 std::vector<Acc>& scratch, Acc* dst) {
  if (!trans) {
    load_acc(x, offset, rows * cols, dst);
    return;
  }
  scratch.resize(rows * cols);
  load_acc(x, offset, rows * cols, scratch.data());  // stored as cols x rows
  for (int64_t i = 0; i < cols; ++i)
    for (int64_t j = 0; j < rows; ++j) dst[j * cols + i] = scratch[i * rows + j];
}

void compute(const ComputeArgs& args) {
  const auto& attrs = args.node.a<MatMulAttrs>();
  // float8 operands are read as the float32 values they hold.
  const Tensor a = widen_float8(args.in(0));
  const Tensor b = widen_float8(args.in(1));
  Tensor& y = args.out(0);
  KILN_EXPECT(a.rank() >= 1 && b.rank() >= 1, StatusCode::kInvalidArgument,
              "MatMul: operands must be at least 1-D");
  bool ta = attrs.trans_a && a.rank() >= 2, tb = attrs.trans_b && b.rank() >= 2;
  // Matrix dims of op(A): m x k; op(B): k x n.
  int64_t m, k, n, kb;
  if (a.rank() == 1) {
    m = 1;
    k = a.dim(0);
  } else {
    int64_t r = a.dim(a.rank() - 2), c = a.dim(a.rank() - 1);
    m = ta ? c : r;
    k = ta ? r : c;
  }
  if (b.rank() == 1) {
    kb = b.dim(0);
    n = 1;
  } else {
    int64_t r = b.dim(b.rank() - 2), c = b.dim(b.rank() - 1);
    kb = tb ? c : r;
    n = tb ? r : c;
  }
  KILN_EXPECT(k == kb, StatusCode::kInvalidArgument, "MatMul: inner dimensions differ (", k, " vs ",
              kb, ")");
  auto batch_of = [](const Tensor& t) {
    return t.rank() <= 2 ? Dims{} : Dims(t.dims().begin(), t.dims().end() - 2);
  };
  Dims a_batch = batch_of(a), b_batch = batch_of(b);
  Dims batch = broadcast_dims({a_batch, b_batch});
  int64_t nb = dims_volume(batch);
  KILN_CHECK(y.numel() == nb * m * n, "MatMul output ", dims_to_string(y.dims()));
  // Batch strides (in matrices) of A and B against the broadcast batch; 0 where broadcast.
  auto batch_strides = [&](const Dims& own) {
    std::vector<int64_t> s(batch.size(), 0);
    Ints st = strides_of(own);
    size_t off = batch.size() - own.size();
    for (size_t i = 0; i < own.size(); ++i) s[off + i] = own[i] == 1 ? 0 : st[i];
    return s;
  };
  std::vector<int64_t> sa = batch_strides(a_batch), sb = batch_strides(b_batch);
  Ints bst = strides_of(batch);
  Tensor none;
  const Tensor& bias = args.has(2) ? args.in(2) : none;
  const Tensor& z = args.has(3) ? args.in(3) : none;
  if (bias.defined())
    KILN_EXPECT(b.rank() >= 2 && bias.numel() == n, StatusCode::kInvalidArgument,
                "MatMul: the bias has ", bias.numel(), " elements but the product has ", n,
                " columns");
  if (z.defined())
    KILN_EXPECT(z.dims() == y.dims(), StatusCode::kInvalidArgument, "MatMul: the residual Z ",
                dims_to_string(z.dims()), " does not have the output's shape ",
                dims_to_string(y.dims()));
  KILN_EXPECT(is_matmul_activation(attrs.activation), StatusCode::kInvalidModel,
              "MatMul: activation '", attrs.activation, "' is not supported");

  // Quantized: integer operands in double (exact), A's zero point taken off, each output column
  // scaled once after the accumulation.
  std::vector<double> q_scale;
  if (attrs.quantized()) {
    KILN_EXPECT(attrs.q_w_scale.size() == 1 || static_cast<int64_t>(attrs.q_w_scale.size()) == n,
                StatusCode::kInvalidArgument, "MatMul: ", attrs.q_w_scale.size(),
                " weight scales for ", n, " columns");
    for (int64_t j = 0; j < n; ++j)
      q_scale.push_back(attrs.q_x_scale * attrs.q_w_scale[attrs.q_w_scale.size() == 1 ? 0 : j]);
  }
  auto run = [&]<class Acc>() {
    std::vector<Acc> am(m * k), bm(k * n), ym(m * n), scratch, zm(z.defined() ? m * n : 0);
    std::vector<Acc> bv;
    if (bias.defined()) bv = load_acc<Acc>(bias);
    int64_t last_a = -1, last_b = -1;
    for (int64_t bi = 0; bi < nb; ++bi) {
      int64_t ia = 0, ib = 0;
      for (size_t d = 0; d < batch.size(); ++d) {
        int64_t idx = (bi / bst[d]) % batch[d];
        ia += idx * sa[d];
        ib += idx * sb[d];
      }
      if (ia != last_a) {
        load_matrix(a, ia * m * k, m, k, ta, scratch, am.data());
        if (!q_scale.empty() && attrs.q_x_zero != 0)
          for (Acc& v : am) v -= static_cast<Acc>(attrs.q_x_zero);
      }
      if (ib != last_b) load_matrix(b, ib * k * n, k, n, tb, scratch, bm.data());
      last_a = ia;
      last_b = ib;
      std::fill(ym.begin(), ym.end(), Acc(0));
      for (int64_t i = 0; i < m; ++i) {
        Acc* yr = &ym[i * n];
        for (int64_t p = 0; p < k; ++p) {
          const Acc av = am[i * k + p];
          const Acc* br = &bm[p * n];
          for (int64_t j = 0; j < n; ++j) yr[j] += av * br[j];
        }
      }
      if constexpr (std::is_floating_point_v<Acc>) {
        if (attrs.alpha != 1.0)
          for (auto& v : ym) v *= attrs.alpha;
        if (!q_scale.empty())
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) ym[i * n + j] *= static_cast<Acc>(q_scale[j]);
      }
      if (!bv.empty())
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) ym[i * n + j] += bv[j];
      if (z.defined()) {
        load_acc(z, bi * m * n, m * n, zm.data());
        for (int64_t i = 0; i < m * n; ++i) ym[i] += zm[i];
      }
      if constexpr (std::is_floating_point_v<Acc>) {
        if (!attrs.activation.empty())
          for (auto& v : ym) v = static_cast<Acc>(apply_activation(attrs.activation, v));
      }
      store_acc(ym.data(), y, bi * m * n, m * n);
    }
  };
  if (attrs.quantized())
    run.template operator()<double>();
  else
    dispatch_acc(a.dtype(), run);
  if (has_epilogue_program(attrs.epilogue)) apply_epilogue_program(attrs.epilogue, y);
}

}  // namespace

const OpDef& kiln_op_mat_mul() {
  static const OpDef d{"MatMul", make_attrs_of<MatMulAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
