// GatherElements: element-wise gather along one axis (numpy take_along_axis).
#include "ops/gather_elements.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  DataType dt = ctx.dtype(0);
  expect_int_input(ctx, 1, "indices");
  Shape data = known_shape(ctx, 0), ind = known_shape(ctx, 1);
  if (data.rank_known && ind.rank_known) {
    int64_t r = static_cast<int64_t>(data.rank());
    if (ind.rank() != data.rank())
      ctx.error(cat("indices ", ind.str(), " and data ", data.str(), " differ in rank"));
    int64_t axis = ctx.node().a<GatherElementsAttrs>().axis;
    if (r == 0 || axis < -r || axis >= r)
      ctx.error(cat("axis ", axis, " is out of range for rank ", r));
  }
  ctx.set_output(0, dt, ind);
}

void compute(const ComputeArgs& a) {
  const Tensor& x = a.in(0);
  const Tensor& ind = a.in(1);
  int64_t r = static_cast<int64_t>(x.rank());
  KILN_EXPECT(ind.rank() == x.rank() && r > 0, StatusCode::kInvalidArgument, "indices ",
              dims_to_string(ind.dims()), " and data ", dims_to_string(x.dims()),
              " must have one, non-zero rank");
  int64_t axis = normalize_axis(a.node.a<GatherElementsAttrs>().axis, r);
  for (int64_t k = 0; k < r; ++k)
    KILN_EXPECT(k == axis || ind.dim(k) <= x.dim(k), StatusCode::kInvalidArgument, "indices ",
                dims_to_string(ind.dims()), " exceed data ", dims_to_string(x.dims()), " on axis ",
                k);
  Tensor& y = output_tensor(a, 0, x.dtype(), ind.dims());
  auto st = strides_of(x.dims());
  std::vector<int64_t> idx(r, 0);
  int64_t d = x.dim(axis);
  for (int64_t o = 0; o < y.numel(); ++o) {
    int64_t off = 0;
    for (int64_t k = 0; k < r; ++k)
      if (k != axis) off += idx[k] * st[k];
    off += checked_index(ind.get_i64(o), d, axis, x.dims()) * st[axis];
    copy_element(x, off, y, o);
    for (int64_t k = r - 1; k >= 0; --k) {
      if (++idx[k] < ind.dim(k)) break;
      idx[k] = 0;
    }
  }
}

}  // namespace

const OpDef& kiln_op_gather_elements() {
  static const OpDef d{"GatherElements", make_attrs_of<GatherElementsAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
