// Launcher of kiln's channels-last depthwise 2-D convolution (depthwise_conv.cu):
//   Y[n, oh, ow, c] = act(sum_{kh,kw} X[n, ih, iw, c] * W[kh, kw, c] + B[c] + Z[n, oh, ow, c])
// with ih = oh * stride_h - pad_h + kh * dilation_h (likewise iw); taps in the padding add 0.
// One thread computes `vec` adjacent channels of one output pixel (vector loads along C, so a warp
// reads contiguous memory), accumulating in float and rounding once to the output type.
// Plain C++ (no CUDA headers): `stream` is a cudaStream_t.
#pragma once
#include <cstdint>

namespace kiln::cuda {

enum class DepthwiseType { kFloat, kHalf, kBFloat16 };

struct DepthwiseConvArgs {
  DepthwiseType type = DepthwiseType::kFloat;
  const void* x = nullptr;         // [N, H, W, C] of `type`
  const float* w = nullptr;        // [KH, KW, C] float (reordered at instantiate)
  const float* bias = nullptr;     // [C] float, or null
  const void* bias_typed = nullptr;  // [C] of `type` (a bias computed at run time), or null
  const void* z = nullptr;         // residual [N, OH, OW, C] of `type`, or null; may be y
  void* y = nullptr;               // [N, OH, OW, C] of `type`
  bool relu = false;
  int64_t n = 0, h = 0, w_in = 0, c = 0, oh = 0, ow = 0;
  int64_t kh = 0, kw = 0;
  int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int64_t pad_h = 0, pad_w = 0;  // begin pads (the end pads only shape OH / OW)
};

// Launches nothing when Y is empty.
void launch_depthwise_conv(const DepthwiseConvArgs& a, void* stream);

}  // namespace kiln::cuda
