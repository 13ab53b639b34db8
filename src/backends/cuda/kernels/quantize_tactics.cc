// cuda.quantize_linear and cuda.dequantize_linear on kiln's own kernels (quantize.cu), per tensor
// or per axis. Quantize: x float32/float16/bfloat16/float64/int32 to uint8/int8/uint16/int16;
// dequantize: int8/uint8/int16/uint16/int32 to the scale's float type. Scale and zero point are
// read on the device, so they may be computed at run time.
#include "backends/cuda/kernels/movement_tactic_util.h"
#include "backends/cuda/kernels/quantize.h"
#include "ops/dequantize_linear.h"
#include "ops/quantize_linear.h"

namespace kiln {
namespace cuda {
namespace {

bool is_scale_type(DataType t) {
  return t == DataType::kFloat || t == DataType::kFloat16 || t == DataType::kBFloat16 ||
         t == DataType::kDouble;
}

// Channels and the stride between them; checks the parameter sizes against x (a kernel reading
// scale[c] for c past the end would read other memory).
mv::QuantArgs quant_args(const LaunchArgs& a, int64_t axis_attr, const char* op) {
  const DeviceTensor& x = a.in(0);
  const DeviceTensor& scale = a.in(1);
  mv::QuantArgs q;
  q.n = x.numel();
  q.scale = scale.data;
  q.scale_type = elem_type(scale.dtype);
  if (scale.numel() != 1) {
    KILN_EXPECT(scale.rank() == 1 && x.rank() > 0, StatusCode::kInvalidArgument, op,
                ": scale must be a scalar or 1-D, got ", dims_to_string(scale.dims));
    const int64_t r = static_cast<int64_t>(x.rank());
    const int64_t axis = normalize_axis(axis_attr, r, "axis");
    KILN_EXPECT(x.dims[axis] == scale.numel(), StatusCode::kInvalidArgument, op, ": scale has ",
                scale.numel(), " elements but x has ", x.dims[axis], " along axis ", axis);
    q.channels = scale.numel();
    q.inner = volume(x.dims, axis + 1, x.rank());
  }
  KILN_EXPECT(scale.numel() > 0 || q.n == 0, StatusCode::kInvalidArgument, op, ": scale is empty");
  if (a.has(2)) {
    KILN_EXPECT(a.in(2).numel() == scale.numel(), StatusCode::kInvalidArgument, op,
                ": zero_point has ", a.in(2).numel(), " elements but scale has ", scale.numel());
    q.zero_point = a.in(2).data;
  }
  return q;
}

Status supports_quantize(const Node& n) {
  if (n.op() != "QuantizeLinear") return unsupported("not a QuantizeLinear node");
  const Value* x = n.in(0);
  const Value* s = n.in(1);
  if (!x || !s) return unsupported("missing inputs");
  DataType xt = x->dtype, yt = n.a<QuantizeLinearAttrs>().output_dtype;
  if (!(is_scale_type(xt) || xt == DataType::kInt32))
    return unsupported(cat("x of type ", dtype_name(xt)));
  if (!is_scale_type(s->dtype)) return unsupported(cat("scale of type ", dtype_name(s->dtype)));
  if (yt != DataType::kUInt8 && yt != DataType::kInt8 && yt != DataType::kUInt16 &&
      yt != DataType::kInt16)
    return unsupported(cat("quantizing to ", dtype_name(yt)));
  if (n.in(2) && n.in(2)->dtype != yt)
    return unsupported("zero_point differs from the output type");
  return Status::ok();
}

void enqueue_quantize(const LaunchArgs& a) {
  mv::QuantArgs q = quant_args(a, a.node.a<QuantizeLinearAttrs>().axis, "QuantizeLinear");
  if (q.n == 0) return;
  DeviceTensor& y = a.out(0);
  mv::quantize_linear(a.in(0).data, elem_type(a.in(0).dtype), y.data, elem_type(y.dtype), q,
                      a.stream);
  check_launch("cuda.quantize_linear");
}

Status supports_dequantize(const Node& n) {
  if (n.op() != "DequantizeLinear") return unsupported("not a DequantizeLinear node");
  const Value* x = n.in(0);
  const Value* s = n.in(1);
  if (!x || !s) return unsupported("missing inputs");
  DataType xt = x->dtype;
  if (xt != DataType::kUInt8 && xt != DataType::kInt8 && xt != DataType::kUInt16 &&
      xt != DataType::kInt16 && xt != DataType::kInt32)
    return unsupported(cat("x of type ", dtype_name(xt)));
  if (!is_scale_type(s->dtype)) return unsupported(cat("scale of type ", dtype_name(s->dtype)));
  if (n.in(2) && n.in(2)->dtype != xt) return unsupported("zero_point differs from x's type");
  return Status::ok();
}

void enqueue_dequantize(const LaunchArgs& a) {
  mv::QuantArgs q = quant_args(a, a.node.a<DequantizeLinearAttrs>().axis, "DequantizeLinear");
  if (q.n == 0) return;
  KILN_EXPECT(a.out(0).dtype == a.in(1).dtype, StatusCode::kInvalidArgument,
              "DequantizeLinear output is not of the scale's type");
  mv::dequantize_linear(a.in(0).data, elem_type(a.in(0).dtype), a.out(0).data, q, a.stream);
  check_launch("cuda.dequantize_linear");
}

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_quantize_linear() {
  static const cuda::SimpleTactic t("cuda.quantize_linear", "QuantizeLinear", cuda::supports_quantize,
                                    cuda::make_fn_kernel<cuda::enqueue_quantize>);
  return t;
}
const Tactic& kiln_cuda_tactic_dequantize_linear() {
  static const cuda::SimpleTactic t("cuda.dequantize_linear", "DequantizeLinear", cuda::supports_dequantize,
                                    cuda::make_fn_kernel<cuda::enqueue_dequantize>);
  return t;
}

}  // namespace kiln
