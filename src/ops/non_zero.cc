// NonZero: coordinates of non-zero elements; the output shape depends on the data.
#include "ops/non_zero.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

bool nonzero_at(const Tensor& x, int64_t i) {
  // NaN counts as non-zero and -0.0 as zero, as in numpy.
  return dtype_is_float(x.dtype()) ? x.get_f64(i) != 0 : x.get_i64(i) != 0;
}

void infer(InferContext& ctx) {
  Shape in = known_shape(ctx, 0);
  if (!dtype_is_supported(ctx.dtype(0))) ctx.error("unsupported input type");
  Dim rank = in.rank_known ? Dim(std::max<int64_t>(in.rank(), 1)) : Dim::unknown();
  Dim count = Dim::unknown();
  if (const Tensor* x = ctx.value(0)) {
    int64_t n = 0;
    for (int64_t i = 0; i < x->numel(); ++i) n += nonzero_at(*x, i);
    count = Dim(n);
  }
  ctx.set_output(0, DataType::kInt64, Shape({rank, count}));
}

void compute(const ComputeArgs& a) {
  const Tensor& x = a.in(0);
  Dims dims = x.rank() ? x.dims() : Dims{1};
  std::vector<int64_t> hits;
  for (int64_t i = 0; i < x.numel(); ++i)
    if (nonzero_at(x, i)) hits.push_back(i);
  int64_t r = static_cast<int64_t>(dims.size()), n = static_cast<int64_t>(hits.size());
  Tensor& y = output_tensor(a, 0, DataType::kInt64, {r, n});
  auto st = strides_of(dims);
  auto* out = y.data<int64_t>();
  for (int64_t j = 0; j < n; ++j)
    for (int64_t k = 0; k < r; ++k) out[k * n + j] = hits[j] / st[k] % dims[k];
}

}  // namespace

const OpDef& kiln_op_non_zero() {
  static const OpDef d{"NonZero", make_attrs_of<NonZeroAttrs>, infer, compute, true};
  return d;
}

}  // namespace kiln
