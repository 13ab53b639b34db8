// Shape: a tensor's dims as data. Folded at build time when the dims are known.
#include "ops/shape.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

// [first, last) of the dims selected for rank r.
std::pair<int64_t, int64_t> dim_range(const ShapeAttrs& at, int64_t r) {
  auto clampi = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  int64_t b = clampi(at.start), e = clampi(at.end);
  return {b, std::max(b, e)};
}

void infer(InferContext& ctx) {
  const auto& at = ctx.node().a<ShapeAttrs>();
  Shape in = known_shape(ctx, 0);
  if (!in.rank_known) {
    ctx.set_output(0, DataType::kInt64, Shape({Dim::unknown()}));
    return;
  }
  auto [b, e] = dim_range(at, static_cast<int64_t>(in.rank()));
  ctx.set_output(0, DataType::kInt64, Shape({Dim(e - b)}));
}

void compute(const ComputeArgs& a) {
  const Tensor& x = a.in(0);
  auto [b, e] = dim_range(a.node.a<ShapeAttrs>(), static_cast<int64_t>(x.rank()));
  Tensor& y = output_tensor(a, 0, DataType::kInt64, {e - b});
  for (int64_t i = b; i < e; ++i) y.data<int64_t>()[i - b] = x.dim(i);
}

}  // namespace

const OpDef& kiln_op_shape() {
  static const OpDef d{"Shape", make_attrs_of<ShapeAttrs>, infer, compute,
                       /*data_dependent_shape=*/false, /*reads_only_dims=*/true};
  return d;
}

}  // namespace kiln
