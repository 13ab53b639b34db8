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
  if (!is_float8(out) && (!quant_range(out, lo, hi) || out == DataType::kInt32))
    ctx.error(cat("cannot quantize to ", dtype_name(out),
                  " (expected uint8, int8, uint16, int16 or float8e4m3fn)"));
  check_scale_and_zero_point(ctx, a.axis, out, "the output type");
  ctx.set_output(0, out, ctx.shape(0));
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<QuantizeLinearAttrs>();
  const Tensor& x = args.in(0);
  Tensor& y = args.out(0);
  if (is_float8(y.dtype())) {
    uint8_t* out = y.data<uint8_t>();
    for_each_quant_element(args, a.axis, "QuantizeLinear",
                           [&]<class F>(int64_t i, F scale, int64_t z) {
                             KILN_EXPECT(z == 0, StatusCode::kInvalidArgument,
                                         "QuantizeLinear: a float8 zero point must be 0");
                             const F v = static_cast<F>(x.get_f64(i)) / scale;
                             out[i] = float_to_e4m3fn_bits(v, a.saturate != 0);
                           });
    return;
  }
  int64_t lo = 0, hi = 0;
  quant_range(y.dtype(), lo, hi);
  for_each_quant_element(
      args, a.axis, "QuantizeLinear", [&]<class F>(int64_t i, F scale, int64_t z) {
        F v = std::nearbyint(static_cast<F>(x.get_f64(i)) / scale);  // ties to even
        int64_t r;
        if (std::isnan(v))
          r = z;  // NaN has no integer image; it maps to the zero point
        else if (v <= static_cast<F>(lo - z))
          r = lo;
        else if (v >= static_cast<F>(hi - z))
          r = hi;
        else
          r = static_cast<int64_t>(v) + z;
        y.set_i64(i, r);
      });
}

}  // namespace

const OpDef& kiln_op_quantize_linear() {
  static const OpDef d{"QuantizeLinear", make_attrs_of<QuantizeLinearAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
