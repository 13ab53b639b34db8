// QuantizeLinear: y = saturate(round_half_even(x / scale) + zero_point), per tensor or per axis.
#include "ops/quantize_linear.h"

#include <cmath>

#include "ops/quant_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<QuantizeLinearAttrs>();
  DataType xt = ctx.dtype(0), st = ctx.dtype(1);
  if (!dtype_is_float(xt) && xt != DataType::kInt32)
    ctx.error(cat("x must be a float or int32 tensor, got ", dtype_name(xt)));
  if (!dtype_is_float(st)) ctx.error(cat("scale must be a float tensor, got ", dtype_name(st)));
  DataType out = a.output_dtype;
  int64_t lo, hi;
  if (!quant_range(out, lo, hi) || out == DataType::kInt32)
    ctx.error(
        cat("cannot quantize to ", dtype_name(out), " (expected uint8, int8, uint16 or int16)"));
  int64_t n_scale = check_quant_param(ctx, 1, "scale", a.axis);
  if (ctx.has_input(2)) {
    if (ctx.dtype(2) != out)
      ctx.error(cat("zero_point is ", dtype_name(ctx.dtype(2)), " but the output type is ",
                    dtype_name(out)));
    int64_t n_zp = check_quant_param(ctx, 2, "zero_point", a.axis);
    if (n_scale > 0 && n_zp > 0 && n_scale != n_zp)
      ctx.error(cat("scale has ", n_scale, " elements but zero_point has ", n_zp));
  }
  ctx.set_output(0, out, ctx.shape(0));
}

template <class F>
void quantize(const Tensor& x, const Tensor& scale, const Tensor* zp, const QuantAxis& q,
              Tensor& y) {
  int64_t lo = 0, hi = 0;
  quant_range(y.dtype(), lo, hi);
  std::vector<F> s(scale.numel());
  std::vector<int64_t> z(scale.numel(), 0);
  for (int64_t c = 0; c < scale.numel(); ++c) {
    s[c] = static_cast<F>(scale.get_f64(c));
    if (zp) z[c] = zp->get_i64(c);
  }
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t c = q.channel_of(i);
    F v = std::nearbyint(static_cast<F>(x.get_f64(i)) / s[c]);  // ties to even
    int64_t r;
    if (std::isnan(v))
      r = z[c];  // NaN has no integer image; it maps to the zero point
    else if (v <= static_cast<F>(lo - z[c]))
      r = lo;
    else if (v >= static_cast<F>(hi - z[c]))
      r = hi;
    else
      r = static_cast<int64_t>(v) + z[c];
    y.set_i64(i, r);
  }
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<QuantizeLinearAttrs>();
  const Tensor& x = args.in(0);
  const Tensor& scale = args.in(1);
  const Tensor* zp = args.has(2) ? &args.in(2) : nullptr;
  QuantAxis q = quant_axis(x, scale, zp, a.axis, "QuantizeLinear");
  // Divide in float32 unless the scale is double: frameworks quantize float tensors in float, and
  // a rounding-mode function must see the same quotient to give the same integer.
  if (scale.dtype() == DataType::kDouble)
    quantize<double>(x, scale, zp, q, args.out(0));
  else
    quantize<float>(x, scale, zp, q, args.out(0));
}

}  // namespace

const OpDef& kiln_op_quantize_linear() {
  static const OpDef d{"QuantizeLinear", make_attrs_of<QuantizeLinearAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
