// STFT: DFTs of windowed, evenly spaced frames of a signal.
#include "ops/stft.h"

#include "ops/dft.h"
#include "ops/op_util.h"

namespace kiln {

namespace {

bool is_int_scalar_type(DataType t) { return t == DataType::kInt32 || t == DataType::kInt64; }

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<StftAttrs>();
  DataType t = ctx.dtype(0);
  if (!dtype_is_float(t)) ctx.error(cat("signal must be a float tensor, got ", dtype_name(t)));
  if (!is_int_scalar_type(ctx.dtype(1))) ctx.error("frame_step must be int32 or int64");
  if (ctx.has_input(2) && ctx.dtype(2) != t)
    ctx.error(cat("window is ", dtype_name(ctx.dtype(2)), " but signal is ", dtype_name(t)));
  if (ctx.has_input(3) && !is_int_scalar_type(ctx.dtype(3)))
    ctx.error("frame_length must be int32 or int64");
  if (!ctx.has_input(2) && !ctx.has_input(3)) ctx.error("needs a window or a frame_length");
  const Shape& s = ctx.shape(0);
  if (s.rank_known && s.rank() != 3)
    ctx.error(cat("signal must be [batch, length, 1 or 2], got rank ", s.rank()));
  if (s.rank_known && s[2].known() && s[2].value != 1 && s[2].value != 2)
    ctx.error(cat("signal's last dimension must be 1 or 2, got ", s[2].value));
  if (ctx.has_input(2)) {
    const Shape& w = ctx.shape(2);
    if (w.rank_known && w.rank() != 1) ctx.error("window must be 1-D");
  }
  // frame_length from its input, else from the window's length.
  Dim fl = Dim::unknown();
  if (ctx.has_input(3)) {
    if (const Tensor* v = ctx.value(3)) {
      if (v->numel() != 1 || v->get_i64(0) < 1) ctx.error("frame_length must be a positive scalar");
      fl = Dim(v->get_i64(0));
    }
  } else if (ctx.shape(2).rank_known) {
    fl = ctx.shape(2)[0];
  }
  if (ctx.has_input(2) && ctx.has_input(3) && ctx.shape(2).rank_known && fl.known() &&
      ctx.shape(2)[0].known() && ctx.shape(2)[0].value != fl.value)
    ctx.error(
        cat("window has ", ctx.shape(2)[0].value, " elements but frame_length is ", fl.value));
  Dim step = Dim::unknown();
  if (const Tensor* v = ctx.value(1)) {
    if (v->numel() != 1 || v->get_i64(0) < 1) ctx.error("frame_step must be a positive scalar");
    step = Dim(v->get_i64(0));
  }
  Dim batch = s.rank_known ? s[0] : Dim::unknown();
  Dim frames = Dim::unknown();
  if (s.rank_known && s[1].known() && fl.known() && step.known()) {
    if (s[1].value < fl.value)
      ctx.error(cat("signal length ", s[1].value, " is shorter than frame_length ", fl.value));
    frames = Dim(1 + (s[1].value - fl.value) / step.value);
  }
  Dim bins = fl.known() ? Dim(a.onesided ? fl.value / 2 + 1 : fl.value) : Dim::unknown();
  ctx.set_output(0, t, Shape({batch, frames, bins, Dim(2)}));
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<StftAttrs>();
  const Tensor& x = args.in(0);
  Tensor& y = args.out(0);
  if (x.rank() != 3 || (x.dim(2) != 1 && x.dim(2) != 2))
    fail(StatusCode::kInvalidArgument, "STFT: signal must be [batch, length, 1 or 2], got ",
         dims_to_string(x.dims()));
  int64_t step = args.in(1).get_i64(0);
  const Tensor* window = args.has(2) ? &args.in(2) : nullptr;
  int64_t fl = args.has(3) ? args.in(3).get_i64(0) : window->numel();
  if (window && window->numel() != fl)
    fail(StatusCode::kInvalidArgument, "STFT: window has ", window->numel(),
         " elements but frame_length is ", fl);
  const int64_t B = x.dim(0), L = x.dim(1), comps = x.dim(2);
  if (step < 1 || fl < 1 || fl > L)
    fail(StatusCode::kInvalidArgument, "STFT: frame_step ", step, " / frame_length ", fl,
         " do not fit a signal of length ", L);
  const int64_t frames = 1 + (L - fl) / step;
  const int64_t bins = a.onesided ? fl / 2 + 1 : fl;
  if (y.dim(1) != frames || y.dim(2) != bins) fail(StatusCode::kInternal, "STFT: output shape");
  std::vector<double> w(static_cast<size_t>(fl), 1.0);
  if (window) w = to_doubles(*window);
  DftPlan plan(fl, false);
  std::vector<std::complex<double>> frame(static_cast<size_t>(fl)), res(static_cast<size_t>(bins));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t f = 0; f < frames; ++f) {
      for (int64_t t = 0; t < fl; ++t) {
        int64_t base = (b * L + f * step + t) * comps;
        frame[t] =
            std::complex<double>(x.get_f64(base), comps == 2 ? x.get_f64(base + 1) : 0.0) * w[t];
      }
      plan.run(frame.data(), fl, bins, res.data());
      for (int64_t k = 0; k < bins; ++k) {
        int64_t base = ((b * frames + f) * bins + k) * 2;
        y.set_f64(base, res[k].real());
        y.set_f64(base + 1, res[k].imag());
      }
    }
}

}  // namespace

const OpDef& kiln_op_stft() {
  static const OpDef d{"STFT", make_attrs_of<StftAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
