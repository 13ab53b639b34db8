// Compress: boolean selection along an axis; the output shape depends on the condition's values.
#include "ops/compress.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

// Selected positions along an axis of length n; throws when the condition selects past the end.
template <class Err>
std::vector<int64_t> selected(const Tensor& cond, int64_t n, Err&& error) {
  if (cond.rank() != 1) error(cat("condition must be 1-D, not ", dims_to_string(cond.dims())));
  std::vector<int64_t> sel;
  for (int64_t i = 0; i < cond.numel(); ++i) {
    if (!cond.get_i64(i)) continue;
    if (i >= n) error(cat("condition selects position ", i, " of an axis of length ", n));
    sel.push_back(i);
  }
  return sel;
}

void infer(InferContext& ctx) {
  const auto& at = ctx.node().a<CompressAttrs>();
  DataType dt = ctx.dtype(0);
  if (ctx.dtype(1) != DataType::kBool) ctx.error("condition must be bool");
  Shape in = known_shape(ctx, 0);
  const Tensor* cond = ctx.value(1);
  auto err = [&](const std::string& m) { ctx.error(m); };
  if (!at.has_axis) {
    Dim n = Dim::unknown();
    if (cond && in.fully_known()) n = Dim(selected(*cond, *in.volume(), err).size());
    return ctx.set_output(0, dt, Shape({n}));
  }
  if (!in.rank_known) return ctx.set_output(0, dt, in);
  int64_t r = static_cast<int64_t>(in.rank());
  if (at.axis < -r || at.axis >= r)
    ctx.error(cat("axis ", at.axis, " is out of range for rank ", r));
  Dim& d = in.dims[at.axis < 0 ? at.axis + r : at.axis];
  if (cond && d.known())
    d = Dim(selected(*cond, d.value, err).size());
  else
    d = Dim::unknown();
  ctx.set_output(0, dt, in);
}

void compute(const ComputeArgs& a) {
  const auto& at = a.node.a<CompressAttrs>();
  const Tensor& x = a.in(0);
  auto err = [&](const std::string& m) { fail(StatusCode::kInvalidArgument, m); };
  if (!at.has_axis) {
    auto sel = selected(a.in(1), x.numel(), err);
    Tensor& y = output_tensor(a, 0, x.dtype(), {static_cast<int64_t>(sel.size())});
    for (size_t i = 0; i < sel.size(); ++i) copy_element(x, sel[i], y, static_cast<int64_t>(i));
    return;
  }
  int64_t r = static_cast<int64_t>(x.rank());
  int64_t axis = normalize_axis(at.axis, r);
  auto sel = selected(a.in(1), x.dim(axis), err);
  Dims od = x.dims();
  od[axis] = static_cast<int64_t>(sel.size());
  Tensor& y = output_tensor(a, 0, x.dtype(), od);
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= x.dim(k);
  for (int64_t k = axis + 1; k < r; ++k) inner *= x.dim(k);
  size_t chunk = static_cast<size_t>(inner) * dtype_size(x.dtype());
  if (chunk == 0) return;
  const auto* src = static_cast<const char*>(x.raw());
  auto* dst = static_cast<char*>(y.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t s : sel) {
      std::memcpy(dst, src + (o * x.dim(axis) + s) * chunk, chunk);
      dst += chunk;
    }
}

}  // namespace

const OpDef& kiln_op_compress() {
  static const OpDef d{"Compress", make_attrs_of<CompressAttrs>, infer, compute, true};
  return d;
}

}  // namespace kiln
