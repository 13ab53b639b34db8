// GatherND: gathers slices addressed by index tuples.
#include "ops/gather_nd.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  DataType dt = ctx.dtype(0);
  if (ctx.dtype(1) != DataType::kInt64) ctx.error("indices must be int64");
  int64_t b = ctx.node().a<GatherNDAttrs>().batch_dims;
  Shape data = known_shape(ctx, 0), ind = known_shape(ctx, 1);
  if (!data.rank_known || !ind.rank_known) return ctx.set_output(0, dt, Shape::unknown_rank());
  int64_t r = static_cast<int64_t>(data.rank()), q = static_cast<int64_t>(ind.rank());
  if (r < 1 || q < 1) ctx.error("data and indices must have rank >= 1");
  if (b < 0 || b >= std::min(r, q))
    ctx.error(cat("batch_dims ", b, " must be less than both ranks (", r, ", ", q, ")"));
  const Dim& last = ind.dims[q - 1];
  if (!last.known()) return ctx.set_output(0, dt, Shape::unknown_rank());
  int64_t m = last.value;
  if (m < 1 || m > r - b)
    ctx.error(cat("indices ", ind.str(), " address ", m, " dims but data ", data.str(),
                  " has only ", r - b, " after the batch dims"));
  Shape out;
  out.dims.assign(ind.dims.begin(), ind.dims.end() - 1);
  out.dims.insert(out.dims.end(), data.dims.begin() + b + m, data.dims.end());
  ctx.set_output(0, dt, out);
}

void compute(const ComputeArgs& a) {
  const Tensor& x = a.in(0);
  const Tensor& ind = a.in(1);
  int64_t b = a.node.a<GatherNDAttrs>().batch_dims;
  int64_t r = static_cast<int64_t>(x.rank()), q = static_cast<int64_t>(ind.rank());
  KILN_EXPECT(q >= 1 && b >= 0 && b < std::min(r, q), StatusCode::kInvalidArgument,
              "bad ranks or batch_dims");
  int64_t m = ind.dim(q - 1);
  KILN_EXPECT(m >= 1 && m <= r - b, StatusCode::kInvalidArgument, "indices address ", m,
              " dims of data ", dims_to_string(x.dims()));
  for (int64_t k = 0; k < b; ++k)
    KILN_EXPECT(ind.dim(k) == x.dim(k), StatusCode::kInvalidArgument, "batch dim ", k,
                " differs between data ", dims_to_string(x.dims()), " and indices ",
                dims_to_string(ind.dims()));
  Dims od(ind.dims().begin(), ind.dims().end() - 1);
  od.insert(od.end(), x.dims().begin() + b + m, x.dims().end());
  Tensor& y = output_tensor(a, 0, x.dtype(), od);
  auto st = strides_of(x.dims());
  int64_t batches = 1, per_batch = 1, slice = 1;
  for (int64_t k = 0; k < b; ++k) batches *= x.dim(k);
  for (int64_t k = b; k < q - 1; ++k) per_batch *= ind.dim(k);
  for (int64_t k = b + m; k < r; ++k) slice *= x.dim(k);
  int64_t batch_stride = b > 0 ? st[b - 1] : 0;
  size_t es = dtype_size(x.dtype());
  const Ints idx = to_int64s(ind);
  const auto* src = static_cast<const char*>(x.raw());
  auto* dst = static_cast<char*>(y.raw());
  for (int64_t bi = 0; bi < batches; ++bi) {
    for (int64_t j = 0; j < per_batch; ++j) {
      const int64_t* t = &idx[(bi * per_batch + j) * m];
      int64_t off = bi * batch_stride;
      for (int64_t k = 0; k < m; ++k)
        off += checked_index(t[k], x.dim(b + k), b + k, x.dims()) * st[b + k];
      size_t n = static_cast<size_t>(slice) * es;
      if (n) std::memcpy(dst, src + off * static_cast<int64_t>(es), n);
      dst += n;
    }
  }
}

}  // namespace

const OpDef& kiln_op_gather_nd() {
  static const OpDef d{"GatherND", make_attrs_of<GatherNDAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
