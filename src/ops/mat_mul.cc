// MatMul: the reference batched matrix product. See mat_mul.h for the semantics.
//
// Each batch's operands are copied into accumulator-typed row-major matrices (transposing on the
// way in), so the product itself is an i-k-j loop whose inner loop is a contiguous multiply-add
// over a row of B, which vectorises.
#include "ops/mat_mul.h"

#include "ops/accumulate.h"
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

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<MatMulAttrs>();
  DataType t = ctx.dtype(0);
  if (!dtype_is_supported(t)) ctx.error(cat("A has unsupported type ", dtype_name(t)));
  if (ctx.dtype(1) != t)
    ctx.error(cat("A is ", dtype_name(t), " but B is ", dtype_name(ctx.dtype(1)),
                  "; they must have one type"));
  if (!dtype_is_float(t) && a.alpha != 1.0)
    ctx.error(
        cat("alpha ", a.alpha, " is only allowed for floating-point types, not ", dtype_name(t)));
  const Shape& as = ctx.shape(0);
  const Shape& bs = ctx.shape(1);
  if ((as.rank_known && as.rank() == 0) || (bs.rank_known && bs.rank() == 0))
    ctx.error(cat("MatMul operands must be at least 1-D, got A ", as.str(), " and B ", bs.str()));
  if (!as.rank_known || !bs.rank_known) {
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
  const Tensor& a = args.in(0);
  const Tensor& b = args.in(1);
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

  dispatch_acc(a.dtype(), [&]<class Acc>() {
    std::vector<Acc> am(m * k), bm(k * n), ym(m * n), scratch;
    int64_t last_a = -1, last_b = -1;
    for (int64_t bi = 0; bi < nb; ++bi) {
      int64_t ia = 0, ib = 0;
      for (size_t d = 0; d < batch.size(); ++d) {
        int64_t idx = (bi / bst[d]) % batch[d];
        ia += idx * sa[d];
        ib += idx * sb[d];
      }
      if (ia != last_a) load_matrix(a, ia * m * k, m, k, ta, scratch, am.data());
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
      }
      store_acc(ym.data(), y, bi * m * n, m * n);
    }
  });
}

}  // namespace

const OpDef& kiln_op_mat_mul() {
  static const OpDef d{"MatMul", make_attrs_of<MatMulAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
