// Slice: a strided view of the input (copied by the reference).
#include "ops/slice.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

constexpr int64_t kToEnd = 2147483647;  // ends at or past this reach the end of any real dim

struct Params {
  Ints axes, starts, ends, steps;
};

// Reads and checks starts/ends/axes/steps for rank r. `error` reports problems.
template <class Err>
Params params(const Tensor& starts, const Tensor* ends, const Tensor* axes, const Tensor* steps,
              int64_t r, Err&& error) {
  Params p;
  p.starts = to_int64s(starts);
  p.ends = to_int64s(*ends);
  size_t n = p.starts.size();
  if (p.ends.size() != n) error(cat("starts has ", n, " entries but ends has ", p.ends.size()));
  if (axes) {
    p.axes = to_int64s(*axes);
    if (p.axes.size() != n) error(cat("starts has ", n, " entries but axes has ", p.axes.size()));
  } else {
    for (size_t i = 0; i < n; ++i) p.axes.push_back(static_cast<int64_t>(i));
  }
  if (steps) {
    p.steps = to_int64s(*steps);
    if (p.steps.size() != n)
      error(cat("starts has ", n, " entries but steps has ", p.steps.size()));
  } else {
    p.steps.assign(n, 1);
  }
  std::vector<bool> seen(r, false);
  for (size_t i = 0; i < n; ++i) {
    int64_t a = p.axes[i];
    if (a < -r || a >= r) error(cat("axis ", a, " is out of range for rank ", r));
    if (a < 0) a += r;
    if (seen[a]) error(cat("axis ", p.axes[i], " is repeated"));
    seen[a] = true;
    p.axes[i] = a;
    if (p.steps[i] == 0) error("steps must not be 0");
  }
  return p;
}

void infer(InferContext& ctx) {
  DataType dt = ctx.dtype(0);
  Shape in = known_shape(ctx, 0);
  for (size_t i = 1; i < 5; ++i)
    if (ctx.has_input(i))
      expect_int_input(ctx, i, i == 1 ? "starts" : i == 2 ? "ends" : i == 3 ? "axes" : "steps");
  if (!in.rank_known) return ctx.set_output(0, dt, Shape::unknown_rank());
  int64_t r = static_cast<int64_t>(in.rank());
  const Tensor* starts = ctx.value(1);
  const Tensor* ends = ctx.value(2);
  const Tensor* axes = ctx.value(3);
  const Tensor* steps = ctx.value(4);
  bool axes_unknown = ctx.has_input(3) && !axes;
  bool steps_unknown = ctx.has_input(4) && !steps;
  Shape out = in;
  if (!starts || !ends || steps_unknown || axes_unknown) {
    // Which axes are sliced is known only with their values; the rest keep their dims.
    if (axes || !ctx.has_input(3)) {
      if (axes) {
        for (int64_t a : to_int64s(*axes)) {
          if (a < -r || a >= r) ctx.error(cat("axis ", a, " is out of range for rank ", r));
          out.dims[a < 0 ? a + r : a] = Dim::unknown();
        }
      } else {
        const Shape& ss = ctx.shape(1);
        int64_t n = ss.rank_known && ss.rank() == 1 && ss.dims[0].known() ? ss.dims[0].value : r;
        for (int64_t i = 0; i < std::min(n, r); ++i) out.dims[i] = Dim::unknown();
      }
    } else {
      for (auto& d : out.dims) d = Dim::unknown();
    }
    return ctx.set_output(0, dt, out);
  }
  Params p = params(*starts, ends, axes, steps, r, [&](const std::string& m) { ctx.error(m); });
  for (size_t i = 0; i < p.axes.size(); ++i) {
    Dim& d = out.dims[p.axes[i]];
    int64_t b = p.starts[i], e = p.ends[i], s = p.steps[i];
    if (d.known()) {
      d = Dim(slice_range(d.value, b, e, s).count);
    } else if ((s == 1 && b == 0 && e >= kToEnd) || (s == -1 && b == -1 && e <= -kToEnd)) {
      // The whole axis, forwards or backwards: the symbolic dim carries through.
    } else {
      d = Dim::unknown();
    }
  }
  ctx.set_output(0, dt, out);
}

void compute(const ComputeArgs& a) {
  const Tensor& x = a.in(0);
  int64_t r = static_cast<int64_t>(x.rank());
  Params p = params(a.in(1), &a.in(2), a.has(3) ? &a.in(3) : nullptr, a.has(4) ? &a.in(4) : nullptr,
                    r, [&](const std::string& m) { fail(StatusCode::kInvalidArgument, m); });
  auto st = strides_of(x.dims());
  Dims od = x.dims();
  std::vector<int64_t> os = st;
  int64_t base = 0;
  for (size_t i = 0; i < p.axes.size(); ++i) {
    int64_t ax = p.axes[i];
    SliceRange sr = slice_range(x.dim(ax), p.starts[i], p.ends[i], p.steps[i]);
    od[ax] = sr.count;
    if (sr.count > 0) base += sr.start * st[ax];
    os[ax] = st[ax] * sr.step;
  }
  Tensor& y = output_tensor(a, 0, x.dtype(), od);
  if (y.numel() > 0) strided_copy(x, base, od, os, y);
}

}  // namespace

const OpDef& kiln_op_slice() {
  static const OpDef d{"Slice", make_attrs_of<SliceAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
