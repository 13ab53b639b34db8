// DFT: discrete Fourier transform along one axis of a real or complex tensor.
#include "ops/dft.h"

#include <cmath>

#include "ops/op_util.h"

namespace kiln {

DftPlan::DftPlan(int64_t length, bool inverse) : length_(length), inverse_(inverse) {
  if (length < 1 || length > (int64_t{1} << 28))
    fail(StatusCode::kInvalidArgument, "DFT length ", length, " is outside [1, 2^28]");
  twiddle_.resize(static_cast<size_t>(length));
  double sign = inverse ? 1.0 : -1.0;
  for (int64_t j = 0; j < length; ++j) {
    double ang = 2 * M_PI * static_cast<double>(j) / static_cast<double>(length);
    twiddle_[j] = {std::cos(ang), sign * std::sin(ang)};
  }
}

void DftPlan::run(const std::complex<double>* x, int64_t n, int64_t n_out,
                  std::complex<double>* y) const {
  int64_t m = std::min(n, length_);
  for (int64_t k = 0; k < n_out; ++k) {
    std::complex<double> acc = 0;
    int64_t idx = 0;  // (k * t) mod length, advanced incrementally
    for (int64_t t = 0; t < m; ++t) {
      acc += x[t] * twiddle_[idx];
      idx += k;
      if (idx >= length_) idx %= length_;
    }
    y[k] = inverse_ ? acc / static_cast<double>(length_) : acc;
  }
}

namespace {

struct Geometry {
  int64_t axis;
  int64_t length;  // the transform length
  int64_t n_out;
};

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<DftAttrs>();
  DataType t = ctx.dtype(0);
  if (!dtype_is_float(t)) ctx.error(cat("input must be a float tensor, got ", dtype_name(t)));
  if (ctx.has_input(1) && ctx.dtype(1) != DataType::kInt64 && ctx.dtype(1) != DataType::kInt32)
    ctx.error("dft_length must be int32 or int64");
  const Shape& s = ctx.shape(0);
  if (!s.rank_known) return ctx.set_output(0, t, Shape::unknown_rank());
  auto r = static_cast<int64_t>(s.rank());
  if (r < 2) ctx.error(cat("input must have rank >= 2 (signal and re/im dims), got ", r));
  const Dim& last = s[r - 1];
  if (last.known() && last.value != 1 && last.value != 2)
    ctx.error(cat("the last dimension must be 1 (real) or 2 (complex), got ", last.value));
  int64_t axis = normalize_axis(a.axis, r);
  if (axis == r - 1) ctx.error("axis cannot be the last (re, im) dimension");
  Shape out = s;
  out[r - 1] = Dim(2);
  Dim len = s[axis];
  if (ctx.has_input(1)) {
    len = Dim::unknown();
    if (const Tensor* v = ctx.value(1)) {
      if (v->numel() != 1) ctx.error("dft_length must be a scalar");
      if (v->get_i64(0) < 1) ctx.error(cat("dft_length must be positive, got ", v->get_i64(0)));
      len = Dim(v->get_i64(0));
    }
  }
  if (a.onesided)
    out[axis] = len.known() ? Dim(len.value / 2 + 1) : Dim::unknown();
  else
    out[axis] = len;
  ctx.set_output(0, t, out);
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<DftAttrs>();
  const Tensor& x = args.in(0);
  Tensor& y = args.out(0);
  auto r = static_cast<int64_t>(x.rank());
  int64_t axis = normalize_axis(a.axis, r);
  int64_t comps = x.dim(r - 1);
  if (comps != 1 && comps != 2)
    fail(StatusCode::kInvalidArgument, "DFT: the last dimension must be 1 or 2, got ", comps);
  int64_t n = x.dim(axis);
  int64_t length = args.has(1) ? args.in(1).get_i64(0) : n;
  if (length < 1) fail(StatusCode::kInvalidArgument, "DFT: dft_length must be positive");
  int64_t n_out = a.onesided ? length / 2 + 1 : length;
  if (y.dim(axis) != n_out) fail(StatusCode::kInternal, "DFT: output axis size mismatch");
  // Signals are strided: outer x [axis] x inner x comps.
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int64_t d = axis + 1; d < r - 1; ++d) inner *= x.dim(d);
  DftPlan plan(length, a.inverse);
  std::vector<std::complex<double>> sig(static_cast<size_t>(n)), res(static_cast<size_t>(n_out));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      for (int64_t t = 0; t < n; ++t) {
        int64_t base = ((o * n + t) * inner + i) * comps;
        sig[t] = {x.get_f64(base), comps == 2 ? x.get_f64(base + 1) : 0.0};
      }
      plan.run(sig.data(), n, n_out, res.data());
      for (int64_t k = 0; k < n_out; ++k) {
        int64_t base = ((o * n_out + k) * inner + i) * 2;
        y.set_f64(base, res[k].real());
        y.set_f64(base + 1, res[k].imag());
      }
    }
}

}  // namespace

const OpDef& kiln_op_dft() {
  static const OpDef d{"DFT", make_attrs_of<DftAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
