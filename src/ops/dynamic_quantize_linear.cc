// DynamicQuantizeLinear: uint8 quantization with a scale and zero point computed from the data's
// range (extended to include 0). Outputs y, y_scale (float scalar), y_zero_point (uint8 scalar).
// Its own op rather than a Reduce + Pointwise lowering so that the min/max pass and the
// quantization share one read of x; it is small enough for every backend to implement.
#include <algorithm>
#include <cmath>

#include "ops/op_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  if (!dtype_is_float(ctx.dtype(0)))
    ctx.error(cat("x must be a float tensor, got ", dtype_name(ctx.dtype(0))));
  ctx.set_output(0, DataType::kUInt8, ctx.shape(0));
  ctx.set_output(1, DataType::kFloat, Shape());
  ctx.set_output(2, DataType::kUInt8, Shape());
}

// All arithmetic in float32, as the ONNX definition and the frameworks do, so that the
// rounding steps see the same values.
void compute(const ComputeArgs& args) {
  const Tensor& x = args.in(0);
  float mn = 0, mx = 0;  // the range always includes 0
  for (int64_t i = 0; i < x.numel(); ++i) {
    float v = static_cast<float>(x.get_f64(i));
    if (std::isnan(v)) continue;
    mn = std::min(mn, v);
    mx = std::max(mx, v);
  }
  float scale = (mx - mn) / 255.0f;
  float zp = 0;
  if (scale > 0 && std::isfinite(scale))
    zp = std::min(std::max(std::nearbyint((0.0f - mn) / scale), 0.0f), 255.0f);
  Tensor& y = args.out(0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    float q = zp;
    if (scale > 0) {
      float v = std::nearbyint(static_cast<float>(x.get_f64(i)) / scale);
      if (!std::isnan(v)) q = std::min(std::max(v + zp, 0.0f), 255.0f);
    }
    y.data<uint8_t>()[i] = static_cast<uint8_t>(q);
  }
  if (args.outputs.size() > 1 && args.out(1).defined()) args.out(1).set_f64(0, scale);
  if (args.outputs.size() > 2 && args.out(2).defined()) args.out(2).set_i64(0, static_cast<int64_t>(zp));
}

}  // namespace

const OpDef& kiln_op_dynamic_quantize_linear() {
  static const OpDef d{"DynamicQuantizeLinear", make_attrs_of<NoAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
