// Shared by QuantizeLinear and DequantizeLinear: the per-tensor / per-axis layout of scale and
// zero_point, checked once for infer() and compute().
#pragma once
#include <cmath>

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
