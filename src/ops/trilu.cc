// Trilu: triangular masks of (batched) matrices.
#include "ops/trilu.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  Shape in = known_shape(ctx, 0);
  if (in.rank_known && in.rank() < 2) ctx.error(cat("input ", in.str(), " must have rank >= 2"));
  if (ctx.has_input(1)) {
    if (ctx.dtype(1) != DataType::kInt64) ctx.error("k must be int64");
    if (const Tensor* k = ctx.value(1); k && k->numel() != 1) ctx.error("k must be a scalar");
  }
  ctx.set_output(0, ctx.dtype(0), in);
}

void compute(const ComputeArgs& a) {
  const Tensor& x = a.in(0);
  KILN_EXPECT(x.rank() >= 2, StatusCode::kInvalidArgument, "input ", dims_to_string(x.dims()),
              " must have rank >= 2");
  int64_t k = a.has(1) ? scalar_i64(a.in(1), "k") : 0;
  bool upper = a.node.a<TriluAttrs>().upper != 0;
  Tensor& y = output_tensor(a, 0, x.dtype(), x.dims());
  if (x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
  int64_t n = x.dim(x.rank() - 2), m = x.dim(x.rank() - 1);
  int64_t mats = n * m == 0 ? 0 : x.numel() / (n * m);
  size_t es = dtype_size(x.dtype());
  auto* p = static_cast<char*>(y.raw());
  for (int64_t b = 0; b < mats; ++b)
    for (int64_t i = 0; i < n; ++i) {
      // Zero the columns outside the kept triangle: j < i + k (upper) or j > i + k (lower).
      // The bounds are computed in 128 bits: k may be anything.
      __int128 edge = static_cast<__int128>(i) + k;
      int64_t lo, hi;
      if (upper) {
        lo = 0;
        hi = static_cast<int64_t>(std::clamp<__int128>(edge, 0, m));
      } else {
        lo = static_cast<int64_t>(std::clamp<__int128>(edge + 1, 0, m));
        hi = m;
      }
      if (hi > lo) std::memset(p + ((b * n + i) * m + lo) * es, 0, (hi - lo) * es);
    }
}

}  // namespace

const OpDef& kiln_op_trilu() {
  static const OpDef d{"Trilu", make_attrs_of<TriluAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
