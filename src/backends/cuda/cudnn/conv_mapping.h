// How one kiln Conv (for concrete shapes) maps onto a legacy cuDNN convolution. Plain C++ (no
// CUDA headers) so that the index arithmetic can be checked on any machine.
//
// cuDNN wants symmetric pads and 2-D or 3-D spatial axes; kiln allows asymmetric pads, 1-D to
// 3-D, and ConvTranspose's output_padding / output_shape. The mapping handles all of them with one
// idea: cuDNN computes a "native" output with symmetric pads P (per axis) into a buffer of its own
// size, and the kiln output is a window of it:
//
//   y[.., o, ..] = native[.., o + offset, ..]   where o + offset < native length, else 0.
//
// Forward: P = pad_begin + t * stride with t = ceil(max(0, pad_end - pad_begin) / stride); the
// native output at i reads input (i * s - P), which equals kiln's output o = i - t (which reads
// o * s - pad_begin). The extra padding only adds windows kiln does not want.
// Transposed (cuDNN's backward-data): the native output at position j is the full transposed
// output at j + P; kiln's output o is the full output at o + pad_begin. P <= pad_begin is chosen
// so that the native buffer (whose length cuDNN fixes to within stride - 1) reaches every kiln
// position that lies inside the full output; positions beyond it are zeros.
// When the window is the whole native buffer (the usual symmetric case) cuDNN writes y directly.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/types.h"
#include "ops/conv.h"

namespace kiln::cuda {

struct CudnnConvMapping {
  bool ok = false;
  std::string why;  // when !ok
  bool transposed = false;
  bool channels_last = false;
  int nsp = 0;  // cuDNN spatial axes: 2 or 3 (1-D convs get a leading H = 1)
  int groups = 1;
  // cuDNN's view in NCHW order (channels_last only changes the strides). For a forward conv
  // x is X and y the native output; for a transposed conv x is "dy" (kiln's X) and y "dx" (the
  // native output). w is [K, C/groups, spatial...] in both cases (K = dy's channels).
  std::vector<int> x_dims, w_dims, y_dims;
  std::vector<int> pad, stride, dilation;
  // kiln's output in the same NCHW-order form, and the window offsets per spatial axis.
  std::vector<int64_t> out_dims;
  std::vector<int64_t> offset;
  bool direct = false;  // the native output is exactly kiln's Y: no window copy
  // True when there is nothing to convolve (an empty input or weight); Y is the bias alone.
  bool no_conv = false;

  int64_t native_numel() const;
};

// x, w, y: the node's concrete dims (y as the runtime allocated it). Never throws: a shape or
// attribute combination that cannot be mapped gives ok = false with a reason.
CudnnConvMapping map_conv_to_cudnn(const ConvAttrs& a, const Dims& x, const Dims& w, const Dims& y);

// W [A, B, k...] -> [A, k..., B] (the element bytes moved as they are): the KRSC filter layout that
// cuDNN wants for channels-last convolutions.
void reorder_filter_channels_last(const void* src, void* dst, const Dims& w, size_t elem_size);

}  // namespace kiln::cuda
