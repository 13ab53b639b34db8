// CumSum: running sums along one axis. Floats accumulate in double; integers wrap like their type.
#include "ops/cum_sum.h"

#include "ops/op_util.h"

namespace kiln {

namespace {

int64_t axis_of(const Tensor& t, int64_t rank) {
  if (t.numel() != 1 || t.rank() > 1)
    fail(StatusCode::kInvalidModel, "the CumSum axis must be a scalar, got shape ",
         dims_to_string(t.dims()));
  return normalize_axis(t.get_i64(0), rank, "CumSum axis");
}

void infer(InferContext& ctx) {
  DataType t = ctx.dtype(0);
  if (!dtype_is_supported(t) || t == DataType::kBool)
    ctx.error(cat("CumSum does not take ", dtype_name(t), " input"));
  DataType at = ctx.dtype(1);
  if (at != DataType::kInt64 && at != DataType::kInt32)
    ctx.error(cat("the CumSum axis must be int32 or int64, got ", dtype_name(at)));
  const Shape& s = ctx.shape(0);
  if (const Tensor* av = ctx.value(1); av && s.rank_known)
    axis_of(*av, static_cast<int64_t>(s.rank()));
  ctx.set_output(0, t, s);
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<CumSumAttrs>();
  const Tensor& x = args.in(0);
  Tensor& y = args.out(0);
  const Dims& d = x.dims();
  int64_t rank = static_cast<int64_t>(d.size());
  int64_t axis = axis_of(args.in(1), rank);
  int64_t n = rank ? d[axis] : 1, outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= d[i];
  for (int64_t i = axis + 1; i < rank; ++i) inner *= d[i];
  bool floaty = dtype_is_float(x.dtype());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      double fs = 0;
      uint64_t is = 0;  // modular: the same bits as signed or unsigned wrap-around
      for (int64_t jj = 0; jj < n; ++jj) {
        int64_t j = a.reverse ? n - 1 - jj : jj;
        int64_t e = (o * n + j) * inner + in;
        if (floaty) {
          double v = x.get_f64(e);
          if (!a.exclusive) fs += v;
          y.set_f64(e, fs);
          if (a.exclusive) fs += v;
        } else {
          uint64_t v = static_cast<uint64_t>(x.get_i64(e));
          if (!a.exclusive) is += v;
          y.set_i64(e, static_cast<int64_t>(is));
          if (a.exclusive) is += v;
        }
      }
    }
}

}  // namespace

const OpDef& kiln_op_cum_sum() {
  static const OpDef d{"CumSum", make_attrs_of<CumSumAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
