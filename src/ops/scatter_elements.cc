// ScatterElements: the inverse of GatherElements, with optional reduction.
#include "ops/scatter_elements.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  const auto& at = ctx.node().a<ScatterElementsAttrs>();
  parse_scatter_reduction(at.reduction, &ctx);
  DataType dt = ctx.dtype(0);
  expect_int_input(ctx, 1, "indices");
  if (ctx.dtype(2) != dt)
    ctx.error(cat("updates are ", dtype_name(ctx.dtype(2)), " but data is ", dtype_name(dt)));
  Shape data = known_shape(ctx, 0), ind = known_shape(ctx, 1), upd = known_shape(ctx, 2);
  if (data.rank_known) {
    int64_t r = static_cast<int64_t>(data.rank());
    if (r == 0 || at.axis < -r || at.axis >= r)
      ctx.error(cat("axis ", at.axis, " is out of range for rank ", r));
    if ((ind.rank_known && ind.rank() != data.rank()) ||
        (upd.rank_known && upd.rank() != data.rank()))
      ctx.error(cat("data ", data.str(), ", indices ", ind.str(), " and updates ", upd.str(),
                    " must have one rank"));
  }
  if (ind.rank_known && upd.rank_known && ind.rank() == upd.rank())
    for (size_t k = 0; k < ind.rank(); ++k)
      if (ind.dims[k].known() && upd.dims[k].known() && ind.dims[k].value != upd.dims[k].value)
        ctx.error(cat("indices ", ind.str(), " and updates ", upd.str(), " differ in shape"));
  ctx.set_output(0, dt, data);
}

void compute(const ComputeArgs& a) {
  const auto& at = a.node.a<ScatterElementsAttrs>();
  ScatterReduce red = parse_scatter_reduction(at.reduction, nullptr);
  const Tensor& x = a.in(0);
  const Tensor& ind = a.in(1);
  const Tensor& upd = a.in(2);
  int64_t r = static_cast<int64_t>(x.rank());
  KILN_EXPECT(r > 0 && ind.rank() == x.rank() && upd.dims() == ind.dims(),
              StatusCode::kInvalidArgument, "data ", dims_to_string(x.dims()), ", indices ",
              dims_to_string(ind.dims()), " and updates ", dims_to_string(upd.dims()),
              " do not fit together");
  int64_t axis = normalize_axis(at.axis, r);
  for (int64_t k = 0; k < r; ++k)
    KILN_EXPECT(k == axis || ind.dim(k) <= x.dim(k), StatusCode::kInvalidArgument, "indices ",
                dims_to_string(ind.dims()), " exceed data ", dims_to_string(x.dims()), " on axis ",
                k);
  Tensor& y = output_tensor(a, 0, x.dtype(), x.dims());
  if (x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
  auto st = strides_of(x.dims());
  std::vector<int64_t> idx(r, 0);
  int64_t d = x.dim(axis);
  for (int64_t j = 0; j < ind.numel(); ++j) {
    int64_t off = 0;
    for (int64_t k = 0; k < r; ++k)
      if (k != axis) off += idx[k] * st[k];
    off += checked_index(ind.get_i64(j), d, axis, x.dims()) * st[axis];
    scatter_reduce(red, upd, j, y, off);
    for (int64_t k = r - 1; k >= 0; --k) {
      if (++idx[k] < ind.dim(k)) break;
      idx[k] = 0;
    }
  }
}

}  // namespace

const OpDef& kiln_op_scatter_elements() {
  static const OpDef d{"ScatterElements", make_attrs_of<ScatterElementsAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
