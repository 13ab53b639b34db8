// Launcher of the direct convolution kernel (direct_conv.cu), for the element types cuDNN does not
// take (float64, integers, bool). One thread per output element gathers its terms: forward,
// input position o * stride + k * dilation - pad_begin; transposed, the input positions i with
// i * stride + k * dilation - pad_begin = o. Terms are summed channel by channel of the group,
// then tap by tap (row-major over the kernel), the reference's order (src/ops/conv.cc), in double
// for floats (each operation rounded alone, so float64 results are the reference's bits) and in
// wrapping uint64 for integers; then + bias, + residual, ReLU, and one rounding to Y's type.
// Plain C++: the tactic (direct_conv_tactics.cc) resolves the geometry (auto_pad, output_shape)
// with ops/conv.h's conv_geometry().
#pragma once
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

constexpr int kDirectConvMaxSpatial = 6;

struct DirectConvProblem {
  DType dtype = DType::kF64;  // of x, w, bias, z and y
  int nsp = 0;                // spatial axes, 1..kDirectConvMaxSpatial
  bool transposed = false;
  bool channels_last = false;  // x [N, D.., C], y and z [N, O.., M]; w keeps the ONNX layout
  bool relu = false;           // floating types only
  int64_t batch = 0;
  int64_t c = 0;       // input channels
  int64_t m = 0;       // output channels
  int64_t groups = 1;  // divides c and m
  int64_t in[kDirectConvMaxSpatial] = {};
  int64_t out[kDirectConvMaxSpatial] = {};
  int64_t kernel[kDirectConvMaxSpatial] = {};
  int64_t stride[kDirectConvMaxSpatial] = {};
  int64_t dilation[kDirectConvMaxSpatial] = {};
  int64_t pad_begin[kDirectConvMaxSpatial] = {};
  const void* x = nullptr;
  const void* w = nullptr;     // [M, C/group, K..], or [C, M/group, K..] when transposed
  const void* bias = nullptr;  // [M] or null
  const void* z = nullptr;     // Y's shape and layout, or null
  void* y = nullptr;
};

// float64, every integer type and bool (float32/16/bf16 belong to cuDNN).
bool direct_conv_supported(DType dtype);
// Enqueues y on `stream` (a cudaStream_t); nothing when y is empty.
void launch_direct_conv(const DirectConvProblem& p, void* stream);

}  // namespace kiln::cuda::rk
