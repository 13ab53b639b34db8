// Pad: constant, reflect and edge padding, with cropping by negative pads.
#include "ops/pad.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

// Begin and end pads for each of r axes.
template <class Err>
void full_pads(const Tensor& pads_t, const Tensor* axes_t, int64_t r, Ints& begin, Ints& end,
               Err&& error) {
  Ints pads = to_int64s(pads_t);
  Ints axes;
  if (axes_t) {
    for (int64_t a : to_int64s(*axes_t)) {
      if (a < -r || a >= r) error(cat("axis ", a, " is out of range for rank ", r));
      axes.push_back(a < 0 ? a + r : a);
    }
  } else {
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  }
  if (pads.size() != 2 * axes.size())
    error(cat("pads has ", pads.size(), " entries but ", 2 * axes.size(), " are needed"));
  begin.assign(r, 0);
  end.assign(r, 0);
  size_t n = axes.size();
  for (size_t i = 0; i < n; ++i) {
    begin[axes[i]] = pads[i];
    end[axes[i]] = pads[n + i];
  }
}

void infer(InferContext& ctx) {
  const auto& mode = ctx.node().a<PadAttrs>().mode;
  if (mode != "constant" && mode != "reflect" && mode != "edge")
    ctx.error(cat("unknown pad mode '", mode, "'"));
  DataType dt = ctx.dtype(0);
  expect_int_input(ctx, 1, "pads");
  if (ctx.has_input(2) && ctx.dtype(2) != dt)
    ctx.error(cat("constant_value is ", dtype_name(ctx.dtype(2)), " but data is ", dtype_name(dt)));
  if (ctx.has_input(3)) expect_int_input(ctx, 3, "axes");
  Shape in = known_shape(ctx, 0);
  if (!in.rank_known) return ctx.set_output(0, dt, in);
  int64_t r = static_cast<int64_t>(in.rank());
  const Tensor* pads = ctx.value(1);
  const Tensor* axes = ctx.value(3);
  if (!pads || (ctx.has_input(3) && !axes)) {
    for (auto& d : in.dims) d = Dim::unknown();
    return ctx.set_output(0, dt, in);
  }
  Ints b, e;
  full_pads(*pads, axes, r, b, e, [&](const std::string& m) { ctx.error(m); });
  for (int64_t k = 0; k < r; ++k) {
    if (b[k] == 0 && e[k] == 0) continue;
    Dim& d = in.dims[k];
    if (!d.known()) {
      d = Dim::unknown();
      continue;
    }
    int64_t n = d.value + b[k] + e[k];
    if (n < 0)
      ctx.error(cat("pads ", dims_to_string(to_int64s(*pads)), " crop axis ", k, " of ", in.str(),
                    " below zero"));
    if (mode != "constant" && d.value == 0 && n > 0)
      ctx.error(cat("cannot ", mode, "-pad axis ", k, ", which is empty"));
    d = Dim(n);
  }
  ctx.set_output(0, dt, in);
}

void compute(const ComputeArgs& a) {
  const std::string& mode = a.node.a<PadAttrs>().mode;
  const Tensor& x = a.in(0);
  int64_t r = static_cast<int64_t>(x.rank());
  Ints b, e;
  full_pads(a.in(1), a.has(3) ? &a.in(3) : nullptr, r, b, e,
            [&](const std::string& m) { fail(StatusCode::kInvalidArgument, m); });
  Dims od(r);
  for (int64_t k = 0; k < r; ++k) {
    od[k] = x.dim(k) + b[k] + e[k];
    KILN_EXPECT(od[k] >= 0, StatusCode::kInvalidArgument, "pads crop axis ", k, " of ",
                dims_to_string(x.dims()), " below zero");
    KILN_EXPECT(mode == "constant" || x.dim(k) > 0 || od[k] == 0, StatusCode::kInvalidArgument,
                "cannot ", mode, "-pad empty axis ", k);
  }
  Tensor& y = output_tensor(a, 0, x.dtype(), od);
  if (y.numel() == 0) return;
  // Per axis, the source coordinate of every output coordinate (-1: the constant).
  auto st = strides_of(x.dims());
  std::vector<std::vector<int64_t>> src(r);
  for (int64_t k = 0; k < r; ++k) {
    int64_t d = x.dim(k);
    src[k].resize(od[k]);
    for (int64_t o = 0; o < od[k]; ++o) {
      int64_t i = o - b[k];
      if (i < 0 || i >= d) {
        if (mode == "constant") {
          i = -1;
        } else if (mode == "edge") {
          i = std::clamp<int64_t>(i, 0, d - 1);
        } else if (d == 1) {
          i = 0;
        } else {  // reflect, repeating the mirror as numpy does when pads exceed the dim
          int64_t period = 2 * (d - 1);
          i %= period;
          if (i < 0) i += period;
          if (i >= d) i = period - i;
        }
      }
      src[k][o] = i < 0 ? -1 : i * st[k];
    }
  }
  Tensor fill(x.dtype(), {});
  if (a.has(2)) {
    KILN_EXPECT(a.in(2).numel() == 1, StatusCode::kInvalidArgument,
                "constant_value must be a scalar");
    copy_element(a.in(2), 0, fill, 0);
  }
  std::vector<int64_t> idx(r, 0);
  for (int64_t o = 0; o < y.numel(); ++o) {
    int64_t off = 0;
    bool pad = false;
    for (int64_t k = 0; k < r; ++k) {
      int64_t s = src[k][idx[k]];
      if (s < 0) pad = true;
      off += s;
    }
    if (pad)
      copy_element(fill, 0, y, o);
    else
      copy_element(x, off, y, o);
    for (int64_t k = r - 1; k >= 0; --k) {
      if (++idx[k] < od[k]) break;
      idx[k] = 0;
    }
  }
}

}  // namespace

const OpDef& kiln_op_pad() {
  static const OpDef d{"Pad", make_attrs_of<PadAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
