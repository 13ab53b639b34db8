// OneHot: one-hot encoding along a new axis.
#include "ops/one_hot.h"

#include <cmath>

#include "ops/movement_util.h"

namespace kiln {

namespace {

template <class Err>
int64_t depth_of(const Tensor& t, Err&& error) {
  if (t.numel() != 1) error("depth must be a scalar");
  double d = dtype_is_float(t.dtype()) ? t.get_f64(0) : static_cast<double>(t.get_i64(0));
  if (!(d >= 1) || d > double(int64_t{1} << 40)) error(cat("depth ", d, " must be positive"));
  return static_cast<int64_t>(d);
}

void infer(InferContext& ctx) {
  Shape in = known_shape(ctx, 0);
  DataType vt = ctx.dtype(2);
  if (const Tensor* v = ctx.value(2); v && v->numel() != 2)
    ctx.error("values must hold two elements (off, on)");
  if (!in.rank_known) return ctx.set_output(0, vt, in);
  int64_t r = static_cast<int64_t>(in.rank()) + 1;
  int64_t axis = ctx.node().a<OneHotAttrs>().axis;
  if (axis < -r || axis >= r) ctx.error(cat("axis ", axis, " is out of range for rank ", r));
  if (axis < 0) axis += r;
  Dim depth = Dim::unknown();
  if (const Tensor* d = ctx.value(1))
    depth = Dim(depth_of(*d, [&](const std::string& m) { ctx.error(m); }));
  in.dims.insert(in.dims.begin() + axis, depth);
  ctx.set_output(0, vt, in);
}

void compute(const ComputeArgs& a) {
  const Tensor &ind = a.in(0), &vals = a.in(2);
  int64_t depth =
      depth_of(a.in(1), [&](const std::string& m) { fail(StatusCode::kInvalidArgument, m); });
  KILN_EXPECT(vals.numel() == 2, StatusCode::kInvalidArgument,
              "values must hold two elements (off, on)");
  int64_t r = static_cast<int64_t>(ind.rank()) + 1;
  int64_t axis = normalize_axis(a.node.a<OneHotAttrs>().axis, r);
  Dims od = ind.dims();
  od.insert(od.begin() + axis, depth);
  Tensor& y = output_tensor(a, 0, vals.dtype(), od);
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= od[k];
  for (int64_t k = axis + 1; k < r; ++k) inner *= od[k];
  bool float_ind = dtype_is_float(ind.dtype());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t d = 0; d < depth; ++d)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t src = o * inner + i;
        int64_t v;
        if (float_ind) {
          double f = ind.get_f64(src);
          v = std::isfinite(f) && std::fabs(f) < 9e18 ? static_cast<int64_t>(f) : depth;
        } else {
          v = ind.get_i64(src);
        }
        if (v < 0) v += depth;  // still < 0 when out of range: matches nothing
        copy_element(vals, v == d ? 1 : 0, y, (o * depth + d) * inner + i);
      }
}

}  // namespace

const OpDef& kiln_op_one_hot() {
  static const OpDef d{"OneHot", make_attrs_of<OneHotAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
