// DequantizeLinear: y = (x - zero_point) * scale, per tensor or per axis, in scale's type; x may
// be float8e4m3fn.
#include "ops/dequantize_linear.h"

#include "ops/quant_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<DequantizeLinearAttrs>();
  DataType xt = ctx.dtype(0), st = ctx.dtype(1);
  int64_t lo, hi;
  if (!quant_range(xt, lo, hi) && !is_float8(xt))
    ctx.error(cat("x must be int8, uint8, int16, uint16, int32 or float8e4m3fn, got ",
                  dtype_name(xt)));
  if (!dtype_is_float(st)) ctx.error(cat("scale must be a float tensor, got ", dtype_name(st)));
  check_scale_and_zero_point(ctx, a.axis, xt, "x");
  ctx.set_output(0, st, ctx.shape(0));
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<DequantizeLinearAttrs>();
  const Tensor& x = args.in(0);
  Tensor& y = args.out(0);
  for_each_quant_element(args, a.axis, "DequantizeLinear",
                         [&]<class F>(int64_t i, F scale, int64_t zero) {
                           const F q = is_float8(x.dtype()) ? static_cast<F>(x.get_f64(i))
                                                            : static_cast<F>(x.get_i64(i));
                           y.set_f64(i, (q - static_cast<F>(zero)) * scale);
                         });
}

}  // namespace

const OpDef& kiln_op_dequantize_linear() {
  static const OpDef d{"DequantizeLinear", make_attrs_of<DequantizeLinearAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
