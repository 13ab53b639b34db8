// Tile: the output viewed as [r0, d0, r1, d1, ...] is a broadcast of the input, so the reference
// is one strided copy with zero strides on the repeat dims.
#include "ops/tile.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  DataType dt = ctx.dtype(0);
  expect_int_input(ctx, 1, "repeats");
  Shape in = known_shape(ctx, 0);
  if (!in.rank_known) return ctx.set_output(0, dt, in);
  const Tensor* rep = ctx.value(1);
  if (!rep) {
    for (auto& d : in.dims) d = Dim::unknown();
    return ctx.set_output(0, dt, in);
  }
  Ints r = to_int64s(*rep);
  if (r.size() != in.rank())
    ctx.error(cat("repeats has ", r.size(), " entries but the input has rank ", in.rank()));
  for (size_t k = 0; k < r.size(); ++k) {
    if (r[k] < 0) ctx.error(cat("repeats ", dims_to_string(r), " has a negative entry"));
    Dim& d = in.dims[k];
    if (d.known())
      d = Dim(d.value * r[k]);
    else if (r[k] == 0)
      d = Dim(0);
    else if (r[k] != 1)
      d = Dim::unknown();
  }
  ctx.set_output(0, dt, in);
}

void compute(const ComputeArgs& a) {
  const Tensor& x = a.in(0);
  Ints r = to_int64s(a.in(1));
  KILN_EXPECT(r.size() == x.rank(), StatusCode::kInvalidArgument, "repeats ", dims_to_string(r),
              " does not match input rank ", x.rank());
  auto st = strides_of(x.dims());
  Dims od, view;
  std::vector<int64_t> vs;
  for (size_t k = 0; k < r.size(); ++k) {
    KILN_EXPECT(r[k] >= 0, StatusCode::kInvalidArgument, "negative repeats ", dims_to_string(r));
    od.push_back(x.dim(k) * r[k]);
    view.insert(view.end(), {r[k], x.dim(k)});
    vs.insert(vs.end(), {0, st[k]});
  }
  Tensor& y = output_tensor(a, 0, x.dtype(), od);
  if (y.numel()) strided_copy(x, 0, view, vs, y);
}

}  // namespace

const OpDef& kiln_op_tile() {
  static const OpDef d{"Tile", make_attrs_of<TileAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
