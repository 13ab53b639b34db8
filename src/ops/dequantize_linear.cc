// DequantizeLinear: y = (x - zero_point) * scale, per tensor or per axis, in scale's type.
#include "ops/dequantize_linear.h"

#include "ops/quant_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<DequantizeLinearAttrs>();
  DataType xt = ctx.dtype(0), st = ctx.dtype(1);
  int64_t lo, hi;
  if (!quant_range(xt, lo, hi))
    ctx.error(cat("x must be int8, uint8, int16, uint16 or int32, got ", dtype_name(xt)));
  if (!dtype_is_float(st)) ctx.error(cat("scale must be a float tensor, got ", dtype_name(st)));
  int64_t n_scale = check_quant_param(ctx, 1, "scale", a.axis);
  if (ctx.has_input(2)) {
    if (ctx.dtype(2) != xt)
      ctx.error(cat("zero_point is ", dtype_name(ctx.dtype(2)), " but x is ", dtype_name(xt)));
    int64_t n_zp = check_quant_param(ctx, 2, "zero_point", a.axis);
    if (n_scale > 0 && n_zp > 0 && n_scale != n_zp)
      ctx.error(cat("scale has ", n_scale, " elements but zero_point has ", n_zp));
  }
  ctx.set_output(0, st, ctx.shape(0));
}

template <class F>
void dequantize(const Tensor& x, const Tensor& scale, const Tensor* zp, const QuantAxis& q,
                Tensor& y) {
  std::vector<F> s(scale.numel());
  std::vector<int64_t> z(scale.numel(), 0);
  for (int64_t c = 0; c < scale.numel(); ++c) {
    s[c] = static_cast<F>(scale.get_f64(c));
    if (zp) z[c] = zp->get_i64(c);
  }
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t c = q.channel_of(i);
    y.set_f64(i, static_cast<F>(x.get_i64(i) - z[c]) * s[c]);
  }
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<DequantizeLinearAttrs>();
  const Tensor& x = args.in(0);
  const Tensor& scale = args.in(1);
  const Tensor* zp = args.has(2) ? &args.in(2) : nullptr;
  QuantAxis q = quant_axis(x, scale, zp, a.axis, "DequantizeLinear");
  // One float32 multiply, as frameworks do, unless the scale is double.
  if (scale.dtype() == DataType::kDouble)
    dequantize<double>(x, scale, zp, q, args.out(0));
  else
    dequantize<float>(x, scale, zp, q, args.out(0));
}

}  // namespace

const OpDef& kiln_op_dequantize_linear() {
  static const OpDef d{"DequantizeLinear", make_attrs_of<DequantizeLinearAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
