// cuda.depthwise_conv: channels-last depthwise 2-D Conv (group == C_in == C_out, channel
// multiplier 1) on kiln's own kernel (depthwise_conv.cu), with the node's fused epilogue
// Y = act(conv(X, W) + B + Z). It comes before cuda.cudnn_conv because cuDNN's NHWC depthwise
// kernels run far below memory bandwidth (MobileNetV2 on H100: ~30x slower than a copy).
//
// Takes: float32 / float16 / bfloat16 (X, W, B, Z, Y of one type), any kernel size, stride,
// dilation and pads (asymmetric too: the kernel computes taps directly, no padded copy),
// auto_pad (resolved from the run's dims by conv_geometry), activation "" or "relu", a constant W
// (reordered once, at instantiate, to float [KH, KW, C]). B is converted to float at instantiate
// when constant, else read in its own type at run time. Everything else (NCHW, transposed,
// grouped with multiplier != 1, 1-D / 3-D, computed W) is left to cuda.cudnn_conv.
// The node's epilogue program (ReLU6 in MobileNetV2, ...) runs right after the convolution, in
// the same step, as an NVRTC-compiled kernel in place over Y (codegen/epilogue_program.h),
// compiled at prepare() and stored in the tactic's state: the convolution kernel stays one
// compiled kernel for every program.
#include <vector>

#include "backends/cuda/codegen/epilogue_program.h"
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/depthwise_conv.h"
#include "ops/conv.h"
#include "ops/epilogue.h"

namespace kiln {
namespace cuda {
namespace {

bool dtype_ok(DataType t) {
  return t == DataType::kFloat || t == DataType::kFloat16 || t == DataType::kBFloat16;
}

DepthwiseType depthwise_type(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return DepthwiseType::kHalf;
    case DataType::kBFloat16:
      return DepthwiseType::kBFloat16;
    default:
      return DepthwiseType::kFloat;
  }
}

Status supports(const Node& n) {
  if (n.op() != "Conv") return unsupported("not a Conv");
  const auto& a = n.a<ConvAttrs>();
  if (a.transposed) return unsupported("transposed");
  if (!a.channels_last) return unsupported("channels-first (takes channels-last only)");
  if (!is_conv_activation(a.activation))
    return unsupported(cat("activation '", a.activation, "'"));
  const Value* x = n.in(0);
  const Value* w = n.in(1);
  if (x && has_epilogue_program(a.epilogue)) {
    std::string why = epilogue_kernel_unsupported(a.epilogue, x->dtype);
    if (!why.empty()) return unsupported(cat("epilogue: ", why));
  }
  if (!x || !w || n.outputs.size() != 1 || !n.outputs[0])
    return unsupported("needs X, W and one output");
  if (n.inputs.size() > 4) return unsupported("more than 4 inputs");
  if (!dtype_ok(x->dtype))
    return unsupported(cat(dtype_name(x->dtype), " (takes float32, float16 and bfloat16)"));
  for (size_t i = 1; i < n.inputs.size(); ++i)
    if (n.in(i) && n.in(i)->dtype != x->dtype) return unsupported("inputs of mixed types");
  if (n.outputs[0]->dtype != x->dtype) return unsupported("Y's type differs from X's");
  if (!x->shape.rank_known || x->shape.rank() != 4)
    return unsupported("X must have a known rank of 4 (2-D convolution)");
  if (!w->is_constant()) return unsupported("W is computed (the [KH, KW, C] copy is made once)");
  const Dims& wd = w->data.dims();
  if (wd.size() != 4) return unsupported("W must have rank 4");
  if (wd[1] != 1 || wd[0] != a.group)
    return unsupported(cat("not depthwise: W ", dims_to_string(wd), " with group ", a.group));
  if (wd[0] < 1 || wd[2] < 1 || wd[3] < 1) return unsupported("empty W");
  const Dim c = x->shape[3];
  if (!c.known() || c.value != a.group)
    return unsupported("X's channel count is not known to equal group");
  const Value* b = n.in(2);
  if (b && b->is_constant() && b->data.numel() != wd[0])
    return unsupported("B does not have C elements");
  const Value* z = n.in(3);
  const Value* y = n.outputs[0];
  if (z && z->shape.fully_known() && y->shape.fully_known() && !(z->shape == y->shape))
    return unsupported(cat("residual ", z->shape.str(), " is not Y's shape ", y->shape.str()));
  return Status::ok();
}

class DepthwiseConvKernel : public Kernel {
 public:
  DepthwiseConvKernel(const Node& n, std::string_view state) : attrs_(n.a<ConvAttrs>()) {
    if (has_epilogue_program(attrs_.epilogue)) {
      KILN_EXPECT(!state.empty(), StatusCode::kCorruptPlan,
                  "cuda.depthwise_conv: the plan lacks the compiled epilogue of ", n.label());
      program_ = std::make_unique<EpilogueKernel>(attrs_.epilogue, state);
    } else {
      KILN_EXPECT(state.empty(), StatusCode::kCorruptPlan,
                  "cuda.depthwise_conv: unexpected state for ", n.label());
    }
    type_ = depthwise_type(n.in(0)->dtype);
    relu_ = attrs_.activation == "relu";
    const Value* wv = n.in(1);
    KILN_EXPECT(wv && wv->is_constant(), StatusCode::kInternal,
                "cuda.depthwise_conv needs a constant W");
    const Tensor& wt = wv->data;
    c_ = wt.dim(0);
    kh_ = wt.dim(2);
    kw_ = wt.dim(3);
    // ONNX W [C, 1, KH, KW] -> float [KH, KW, C], so that a thread's channels are adjacent.
    std::vector<float> host(static_cast<size_t>(kh_ * kw_ * c_));
    for (int64_t ch = 0; ch < c_; ++ch)
      for (int64_t k = 0; k < kh_ * kw_; ++k)
        host[k * c_ + ch] = static_cast<float>(wt.get_f64(ch * kh_ * kw_ + k));
    w_ = DeviceBuffer(host.data(), host.size() * sizeof(float));
    const Value* bv = n.in(2);
    if (bv && bv->is_constant()) {
      const Tensor& bt = bv->data;
      KILN_EXPECT(bt.numel() == c_, StatusCode::kInvalidModel, "Conv: B has ", bt.numel(),
                  " elements but there are ", c_, " output channels");
      std::vector<float> bias(static_cast<size_t>(c_));
      for (int64_t ch = 0; ch < c_; ++ch) bias[ch] = static_cast<float>(bt.get_f64(ch));
      bias_ = DeviceBuffer(bias.data(), bias.size() * sizeof(float));
      const_bias_ = true;
    }
  }

  void enqueue(const LaunchArgs& a) override {
    DeviceTensor& y = a.out(0);
    if (y.numel() == 0) return;
    const DeviceTensor& x = a.in(0);
    KILN_EXPECT(x.rank() == 4 && x.dims[3] == c_, StatusCode::kInvalidArgument,
                "cuda.depthwise_conv: X ", dims_to_string(x.dims), " is not [N, H, W, ", c_, "]");
    ConvGeometry g = conv_geometry(attrs_, Ints{x.dims[1], x.dims[2]}, Ints{kh_, kw_});
    const Dims want{x.dims[0], g.out[0], g.out[1], c_};
    KILN_EXPECT(y.dims == want, StatusCode::kInvalidArgument, "cuda.depthwise_conv: Y ",
                dims_to_string(y.dims), " but the convolution gives ", dims_to_string(want));
    DepthwiseConvArgs p;
    p.type = type_;
    p.x = x.data;
    p.w = static_cast<const float*>(w_.get());
    if (const_bias_) {
      p.bias = static_cast<const float*>(bias_.get());
    } else if (a.has(2)) {
      KILN_EXPECT(a.in(2).numel() == c_, StatusCode::kInvalidArgument, "Conv: B has ",
                  a.in(2).numel(), " elements but there are ", c_, " output channels");
      p.bias_typed = a.in(2).data;
    }
    if (a.has(3)) {
      KILN_EXPECT(a.in(3).dims == y.dims, StatusCode::kInvalidArgument, "Conv: the residual Z ",
                  dims_to_string(a.in(3).dims), " does not have the output's shape ",
                  dims_to_string(y.dims));
      p.z = a.in(3).data;
    }
    p.y = y.data;
    p.relu = relu_;
    p.n = x.dims[0];
    p.h = x.dims[1];
    p.w_in = x.dims[2];
    p.c = c_;
    p.oh = g.out[0];
    p.ow = g.out[1];
    p.kh = kh_;
    p.kw = kw_;
    p.stride_h = g.strides[0];
    p.stride_w = g.strides[1];
    p.dilation_h = g.dilations[0];
    p.dilation_w = g.dilations[1];
    p.pad_h = g.pad_begin[0];
    p.pad_w = g.pad_begin[1];
    launch_depthwise_conv(p, a.stream);
    if (program_) program_->run(y.data, y.numel(), stream_of(a));
    check_launch("cuda.depthwise_conv");
  }

 private:
  ConvAttrs attrs_;
  DepthwiseType type_ = DepthwiseType::kFloat;
  bool relu_ = false, const_bias_ = false;
  int64_t c_ = 0, kh_ = 0, kw_ = 0;
  DeviceBuffer w_, bias_;  // float [KH, KW, C]; float [C] when B is constant
  std::unique_ptr<EpilogueKernel> program_;  // the epilogue program, in place over Y
};

class DepthwiseConvTactic : public Tactic {
 public:
  std::string_view id() const override { return "cuda.depthwise_conv"; }
  std::string_view op() const override { return "Conv"; }
  Status supports(const Node& n) const override { return cuda::supports(n); }
  // The NVRTC-compiled epilogue program, when the node has one (empty otherwise).
  std::string prepare(const Node& n) const override {
    const expr::Program& p = n.a<ConvAttrs>().epilogue;
    return has_epilogue_program(p) ? compile_epilogue_kernel(p, n.label()) : std::string();
  }
  std::unique_ptr<Kernel> instantiate(const Node& n, std::string_view state) const override {
    return std::make_unique<DepthwiseConvKernel>(n, state);
  }
};

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_depthwise_conv() {
  static const cuda::DepthwiseConvTactic t;
  return t;
}

}  // namespace kiln
