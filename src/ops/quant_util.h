// Shared by QuantizeLinear and DequantizeLinear: the per-tensor / per-axis layout of scale and
// zero_point, checked once for infer() and compute().
#pragma once
#include <cmath>
#include <vector>

#include "ops/op_util.h"

namespace kiln {

struct QuantAxis {
  int64_t channels = 1;  // 1 = per tensor
  int64_t inner = 1;     // elements per step along the axis
  int64_t channel_of(int64_t i) const { return channels == 1 ? 0 : (i / inner) % channels; }
};

// Per tensor when the parameter has one element (a scalar, or the 1-element 1-D tensors some
// exporters write); otherwise 1-D with x.shape[axis] elements. Returns the per-axis length, or 1.
// `x` may have unknown dims; unknown rank skips the check.
inline int64_t check_quant_param(InferContext& ctx, size_t i, const char* what, int64_t axis) {
  const Shape& x = ctx.shape(0);
  const Shape& p = ctx.shape(i);
  if (!p.rank_known) return -1;
  auto vol = p.volume();
  if (p.rank() == 0 || (vol && *vol == 1)) return 1;
  if (p.rank() != 1) ctx.error(cat(what, " must be a scalar or 1-D, got rank ", p.rank()));
  if (!x.rank_known) return -1;
  int64_t a = normalize_axis(axis, static_cast<int64_t>(x.rank()));
  if (x[a].known() && p[0].known() && x[a].value != p[0].value)
    ctx.error(
        cat(what, " has ", p[0].value, " elements but x has ", x[a].value, " along axis ", a));
  return p[0].known() ? p[0].value : -1;
}

// Checks scale (input 1) and the optional zero_point (input 2) against x and each other. The zero
// point must have type `zp_type`, the type of `zp_type_of` ("x", "the output type").
inline void check_scale_and_zero_point(InferContext& ctx, int64_t axis, DataType zp_type,
                                       const char* zp_type_of) {
  int64_t n_scale = check_quant_param(ctx, 1, "scale", axis);
  if (!ctx.has_input(2)) return;
  if (ctx.dtype(2) != zp_type)
    ctx.error(cat("zero_point is ", dtype_name(ctx.dtype(2)), " but ", zp_type_of, " is ",
                  dtype_name(zp_type)));
  int64_t n_zp = check_quant_param(ctx, 2, "zero_point", axis);
  if (n_scale > 0 && n_zp > 0 && n_scale != n_zp)
    ctx.error(cat("scale has ", n_scale, " elements but zero_point has ", n_zp));
}

inline QuantAxis quant_axis(const Tensor& x, const Tensor& scale, const Tensor* zp, int64_t axis,
                            const char* op) {
  QuantAxis q;
  if (scale.numel() != 1) {
    if (scale.rank() != 1)
      fail(StatusCode::kInvalidArgument, op, ": scale must be a scalar or 1-D, got ",
           dims_to_string(scale.dims()));
    int64_t a = normalize_axis(axis, static_cast<int64_t>(x.rank()));
    if (x.dim(a) != scale.numel())
      fail(StatusCode::kInvalidArgument, op, ": scale has ", scale.numel(), " elements but x has ",
           x.dim(a), " along axis ", a);
    q.channels = scale.numel();
    for (size_t d = a + 1; d < x.rank(); ++d) q.inner *= x.dim(d);
  }
  if (zp && zp->numel() != scale.numel())
    fail(StatusCode::kInvalidArgument, op, ": zero_point has ", zp->numel(),
         " elements but scale has ", scale.numel());
  return q;
}

// Reads scale (input 1) and the optional zero point (input 2) of a (De)QuantizeLinear node and
// calls f(i, scale, zero_point) for every flat element i of x, the scale as F: float unless the
// scale is double. Frameworks quantize and dequantize float tensors with one float32 divide or
// multiply, and a rounding-mode function must see the same quotient to give the same integer.
template <class Fn>
void for_each_quant_element(const ComputeArgs& args, int64_t axis, const char* op, Fn&& f) {
  const Tensor& x = args.in(0);
  const Tensor& scale = args.in(1);
  const Tensor* zp = args.has(2) ? &args.in(2) : nullptr;
  QuantAxis q = quant_axis(x, scale, zp, axis, op);
  auto run = [&]<class F>() {
    std::vector<F> s(scale.numel());
    std::vector<int64_t> z(scale.numel(), 0);
    for (int64_t c = 0; c < scale.numel(); ++c) {
      s[c] = static_cast<F>(scale.get_f64(c));
      if (zp) z[c] = zp->get_i64(c);
    }
    for (int64_t i = 0; i < x.numel(); ++i) {
      int64_t c = q.channel_of(i);
      f(i, s[c], z[c]);
    }
  };
  if (scale.dtype() == DataType::kDouble)
    run.template operator()<double>();
  else
    run.template operator()<float>();
}

// The float8 type kiln quantizes to: E4M3FN, what Hopper's FP8 tensor cores read (common/half.h).
// Quantizing to it divides by the scale and rounds to the nearest float8 (saturating at +-448);
// its zero point is 0.
inline bool is_float8(DataType t) { return t == DataType::kFloat8E4M3FN; }

// Inclusive range of a quantized integer type.
inline bool quant_range(DataType t, int64_t& lo, int64_t& hi) {
  switch (t) {
    case DataType::kUInt8:
      lo = 0;
      hi = 255;
      return true;
    case DataType::kInt8:
      lo = -128;
      hi = 127;
      return true;
    case DataType::kUInt16:
      lo = 0;
      hi = 65535;
      return true;
    case DataType::kInt16:
      lo = -32768;
      hi = 32767;
      return true;
    case DataType::kInt32:
      lo = INT32_MIN;
      hi = INT32_MAX;
      return true;
    default:
      return false;
  }
}

}  // namespace kiln
