// cuda.direct_conv: Conv for the element types cuDNN refuses (float64, which ConvInteger and
// QLinearConv lower to, every integer type and bool) on kiln's direct kernel (direct_conv.cu):
// 1-D to 6-D, groups, strides, dilations, explicit or automatic pads (auto_pad and output_shape
// are resolved at each launch from the actual dims, as the reference does), transposed with
// output_padding, channels-first or channels-last, and the fused bias (input 2), residual
// (input 3) and ReLU. It accumulates as the reference: double for float64 (bit for bit the
// reference's sum), wrapping uint64 for integers. It refuses float32/float16/bfloat16, which
// belong to cuda.cudnn_conv and cuda.depthwise_conv (so it never shadows them; it also comes after
// them in preference order), and an epilogue program, which it does not run.
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/direct_conv.h"
#include "ops/conv.h"
#include "ops/epilogue.h"

namespace kiln {
namespace cuda {
namespace {

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

Status supports(const Node& n) {
  const auto& a = n.a<ConvAttrs>();
  const Value* x = n.in(0);
  const Value* w = n.in(1);
  if (!x || !w || n.outputs.size() != 1 || !n.outputs[0])
    return unsupported("needs X, W and one output");
  if (n.inputs.size() > 4) return unsupported("more than 4 inputs");
  if (x->dtype == DataType::kFloat || x->dtype == DataType::kFloat16 ||
      x->dtype == DataType::kBFloat16)
    return unsupported(cat(dtype_name(x->dtype), " (left to cuDNN)"));
  if (!rk::direct_conv_supported(rk_dtype(x->dtype)))
    return unsupported(cat(dtype_name(x->dtype), " inputs"));
  for (size_t i = 1; i < n.inputs.size(); ++i)
    if (n.in(i) && n.in(i)->dtype != x->dtype) return unsupported("inputs of mixed types");
  if (n.outputs[0]->dtype != x->dtype) return unsupported("Y's type differs from X's");
  if (!a.activation.empty() && a.activation != "relu")
    return unsupported(cat("activation '", a.activation, "'"));
  if (!a.activation.empty() && !dtype_is_float(x->dtype))
    return unsupported("an activation on an integer type");
  if (has_epilogue_program(a.epilogue))
    return unsupported("an epilogue program (the direct kernel runs bias, residual and ReLU only)");
  if (a.group < 1) return unsupported("group < 1");
  const size_t max_rank = 2 + static_cast<size_t>(rk::kDirectConvMaxSpatial);
  if (!x->shape.rank_known || x->shape.rank() < 3 || x->shape.rank() > max_rank)
    return unsupported(cat("X must have a known rank of 3 to ", max_rank));
  if (w->shape.rank_known && w->shape.rank() != x->shape.rank())
    return unsupported("W's rank differs from X's");
  return Status::ok();
}

void enqueue_conv(const LaunchArgs& args) {
  const auto& a = args.node.a<ConvAttrs>();
  const DeviceTensor& x = args.in(0);
  const DeviceTensor& w = args.in(1);
  DeviceTensor& y = args.out(0);
  const size_t r = x.rank();
  KILN_EXPECT(r >= 3 && r <= 2 + static_cast<size_t>(rk::kDirectConvMaxSpatial) && w.rank() == r,
              StatusCode::kInvalidArgument, "Conv: X ", dims_to_string(x.dims), " and W ",
              dims_to_string(w.dims), " do not have matching ranks of 3 to ",
              2 + rk::kDirectConvMaxSpatial);
  const size_t nsp = r - 2;
  // The channels-first view of X: [N, C, D..].
  const int64_t batch = x.dims[0];
  const int64_t c = a.channels_last ? x.dims[r - 1] : x.dims[1];
  Ints in(nsp), kernel(nsp);
  for (size_t j = 0; j < nsp; ++j) {
    in[j] = a.channels_last ? x.dims[1 + j] : x.dims[2 + j];
    kernel[j] = w.dims[2 + j];
  }
  const ConvGeometry geo = conv_geometry(a, in, kernel);
  const int64_t groups = a.group;
  const int64_t m = a.transposed ? w.dims[1] * groups : w.dims[0];
  KILN_EXPECT(
      c == (a.transposed ? w.dims[0] : w.dims[1] * groups) && c % groups == 0 && m % groups == 0,
      StatusCode::kInvalidArgument, "Conv: X ", dims_to_string(x.dims), " does not match W ",
      dims_to_string(w.dims), " with group ", groups);
  Dims want{batch};
  if (!a.channels_last) want.push_back(m);
  want.insert(want.end(), geo.out.begin(), geo.out.end());
  if (a.channels_last) want.push_back(m);
  KILN_CHECK(y.dims == want, "cuda.direct_conv: Y ", dims_to_string(y.dims), " vs ",
             dims_to_string(want));
  const bool has_bias = args.has(2), has_z = args.has(3);
  if (has_bias)
    KILN_EXPECT(args.in(2).numel() == m, StatusCode::kInvalidArgument, "Conv: B has ",
                args.in(2).numel(), " elements but there are ", m, " output channels");
  if (has_z)
    KILN_EXPECT(args.in(3).dims == want, StatusCode::kInvalidArgument, "Conv: the residual Z ",
                dims_to_string(args.in(3).dims), " does not have the output's shape ",
                dims_to_string(want));
  if (y.numel() == 0) return;

  rk::DirectConvProblem p;
  p.dtype = rk_dtype(x.dtype);
  p.nsp = static_cast<int>(nsp);
  p.transposed = a.transposed;
  p.channels_last = a.channels_last;
  p.relu = a.activation == "relu";
  p.batch = batch;
  p.c = c;
  p.m = m;
  p.groups = groups;
  for (size_t j = 0; j < nsp; ++j) {
    p.in[j] = geo.in[j];
    p.out[j] = geo.out[j];
    p.kernel[j] = geo.kernel[j];
    p.stride[j] = geo.strides[j];
    p.dilation[j] = geo.dilations[j];
    p.pad_begin[j] = geo.pad_begin[j];
  }
  p.x = x.data;
  p.w = w.data;
  p.bias = has_bias ? args.in(2).data : nullptr;
  p.z = has_z ? args.in(3).data : nullptr;
  p.y = y.data;
  rk::launch_direct_conv(p, args.stream);
  check_launch("cuda.direct_conv");
}

class DirectConvKernel : public Kernel {
 public:
  void enqueue(const LaunchArgs& a) override { enqueue_conv(a); }
};

std::unique_ptr<Kernel> make(const Node&) { return std::make_unique<DirectConvKernel>(); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_direct_conv() {
  static const cuda::SimpleTactic t("cuda.direct_conv", "Conv", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
