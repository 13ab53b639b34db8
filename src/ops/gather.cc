// Gather: picks slices of data along one axis by index.
#include "ops/gather.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  DataType dt = ctx.dtype(0);
  expect_int_input(ctx, 1, "indices");
  Shape data = known_shape(ctx, 0), ind = known_shape(ctx, 1);
  if (!data.rank_known) return ctx.set_output(0, dt, Shape::unknown_rank());
  int64_t r = static_cast<int64_t>(data.rank());
  int64_t axis = ctx.node().a<GatherAttrs>().axis;
  if (r == 0) ctx.error("cannot gather from a scalar");
  if (axis < -r || axis >= r) ctx.error(cat("axis ", axis, " is out of range for rank ", r));
  if (axis < 0) axis += r;
  if (!ind.rank_known) return ctx.set_output(0, dt, Shape::unknown_rank());
  // Constant indices are checked at build time too (run-time ones by compute, as bad input).
  if (const Tensor* iv = ctx.value(1);
      iv && ctx.node().inputs[1]->is_constant() && data.dims[axis].known()) {
    int64_t d = data.dims[axis].value;
    for (int64_t i = 0; i < iv->numel(); ++i) {
      int64_t v = iv->get_i64(i);
      if (v < -d || v >= d)
        ctx.error(cat("index ", v, " is out of range for axis ", axis, " of size ", d,
                      " (data shape ", data.str(), ")"));
    }
  }
  Shape out;
  out.dims.assign(data.dims.begin(), data.dims.begin() + axis);
  out.dims.insert(out.dims.end(), ind.dims.begin(), ind.dims.end());
  out.dims.insert(out.dims.end(), data.dims.begin() + axis + 1, data.dims.end());
  ctx.set_output(0, dt, out);
}

void compute(const ComputeArgs& a) {
  const Tensor& x = a.in(0);
  const Tensor& ind = a.in(1);
  int64_t r = static_cast<int64_t>(x.rank());
  KILN_EXPECT(r > 0, StatusCode::kInvalidArgument, "data is a scalar");
  int64_t axis = normalize_axis(a.node.a<GatherAttrs>().axis, r);
  int64_t d = x.dim(axis);
  Ints idx = to_int64s(ind);
  for (int64_t& v : idx) v = checked_index(v, d, axis, x.dims());
  Dims od(x.dims().begin(), x.dims().begin() + axis);
  od.insert(od.end(), ind.dims().begin(), ind.dims().end());
  od.insert(od.end(), x.dims().begin() + axis + 1, x.dims().end());
  Tensor& y = output_tensor(a, 0, x.dtype(), od);
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= x.dim(k);
  for (int64_t k = axis + 1; k < r; ++k) inner *= x.dim(k);
  size_t es = dtype_size(x.dtype()), chunk = static_cast<size_t>(inner) * es;
  if (chunk == 0) return;
  const auto* src = static_cast<const char*>(x.raw());
  auto* dst = static_cast<char*>(y.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (size_t j = 0; j < idx.size(); ++j, dst += chunk)
      std::memcpy(dst, src + (o * d + idx[j]) * chunk, chunk);
}

}  // namespace

const OpDef& kiln_op_gather() {
  static const OpDef d{"Gather", make_attrs_of<GatherAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
