// ScatterND: writes slices addressed by index tuples, with optional reduction.
#include "ops/scatter_nd.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  parse_scatter_reduction(ctx.node().a<ScatterNDAttrs>().reduction, &ctx);
  DataType dt = ctx.dtype(0);
  if (ctx.dtype(1) != DataType::kInt64) ctx.error("indices must be int64");
  if (ctx.dtype(2) != dt)
    ctx.error(cat("updates are ", dtype_name(ctx.dtype(2)), " but data is ", dtype_name(dt)));
  Shape data = known_shape(ctx, 0), ind = known_shape(ctx, 1), upd = known_shape(ctx, 2);
  if (data.rank_known && ind.rank_known && upd.rank_known && ind.rank() >= 1 &&
      ind.dims.back().known()) {
    int64_t k = ind.dims.back().value;
    int64_t r = static_cast<int64_t>(data.rank()), q = static_cast<int64_t>(ind.rank());
    if (k < 1 || k > r)
      ctx.error(cat("indices ", ind.str(), " address ", k, " dims of data ", data.str()));
    if (static_cast<int64_t>(upd.rank()) != q - 1 + r - k)
      ctx.error(cat("updates ", upd.str(), " should have rank ", q - 1 + r - k, " for data ",
                    data.str(), " and indices ", ind.str()));
  }
  ctx.set_output(0, dt, data);
}

void compute(const ComputeArgs& a) {
  ScatterReduce red = parse_scatter_reduction(a.node.a<ScatterNDAttrs>().reduction, nullptr);
  const Tensor& x = a.in(0);
  const Tensor& ind = a.in(1);
  const Tensor& upd = a.in(2);
  int64_t r = static_cast<int64_t>(x.rank()), q = static_cast<int64_t>(ind.rank());
  KILN_EXPECT(q >= 1, StatusCode::kInvalidArgument, "indices is a scalar");
  int64_t k = ind.dim(q - 1);
  Dims want(ind.dims().begin(), ind.dims().end() - 1);
  if (k >= 1 && k <= r) want.insert(want.end(), x.dims().begin() + k, x.dims().end());
  KILN_EXPECT(k >= 1 && k <= r && upd.dims() == want, StatusCode::kInvalidArgument, "updates ",
              dims_to_string(upd.dims()), " do not fit data ", dims_to_string(x.dims()),
              " and indices ", dims_to_string(ind.dims()));
  Tensor& y = output_tensor(a, 0, x.dtype(), x.dims());
  if (x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
  auto st = strides_of(x.dims());
  int64_t slice = 1;
  for (int64_t d = k; d < r; ++d) slice *= x.dim(d);
  int64_t tuples = dims_volume(Dims(ind.dims().begin(), ind.dims().end() - 1));
  const Ints idx = to_int64s(ind);
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = 0;
    for (int64_t d = 0; d < k; ++d)
      off += checked_index(idx[t * k + d], x.dim(d), d, x.dims()) * st[d];
    for (int64_t e = 0; e < slice; ++e) scatter_reduce(red, upd, t * slice + e, y, off + e);
  }
}

}  // namespace

const OpDef& kiln_op_scatter_nd() {
  static const OpDef d{"ScatterND", make_attrs_of<ScatterNDAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
