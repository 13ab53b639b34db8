// Launcher of the Conv epilogue kernel: y = act(src + bias[m] + z), where src is cuDNN's
// convolution result, possibly a larger "native" buffer of which y is a window (see
// cudnn/conv_mapping.h), bias is per output channel and z a residual of y's shape. Used when
// cuDNN's fused conv-bias-activation does not apply (transposed convs, asymmetric pads, algorithms
// other than the one the fused identity path allows). Plain C++; `stream` is a cudaStream_t.
#pragma once
#include <cstdint>

namespace kiln::cuda {

enum class EpilogueType { kFloat, kHalf, kBFloat16 };

struct ConvEpilogueArgs {
  void* y = nullptr;
  const void* src = nullptr;   // null: the convolution contributes 0 (empty input or weight)
  const void* bias = nullptr;  // [M] or null
  const void* z = nullptr;     // residual, y's shape and layout, or null
  EpilogueType type = EpilogueType::kFloat;
  bool relu = false;
  bool channels_last = false;  // y, src, z are [N, spatial..., M] instead of [N, M, spatial...]
  int64_t n = 0, m = 0;
  // Spatial axes (1 to 3; unused trailing entries are 1 / 0). y has out[], src has native[]; y at o
  // reads src at o + offset, or 0 where that lies beyond native.
  int nsp = 0;
  int64_t out[3] = {1, 1, 1};
  int64_t native[3] = {1, 1, 1};
  int64_t offset[3] = {0, 0, 0};
  bool window = false;  // false: src has y's dims exactly (it may be y itself)
};

// Launches nothing when y is empty.
void launch_conv_epilogue(const ConvEpilogueArgs& a, void* stream);

}  // namespace kiln::cuda
