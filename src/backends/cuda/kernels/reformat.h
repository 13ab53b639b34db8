// Launcher of the reformat kernel: a Transpose that also converts between float types and pads
// the end of dims with zeros (TransposeAttrs::to / pad_end). Plain C++; `stream` is a cudaStream_t.
#pragma once
#include <cstdint>

namespace kiln::cuda::rf {

enum class FloatType { kFloat, kFloat16, kBFloat16 };
constexpr int kMaxDims = 8;

// dst (dims out_dims, dense) element c = c inside `src_dims` ? src[sum c_k * src_strides[k]] : 0,
// converted from `from` to `to`. src_dims/src_strides are the permuted input dims and strides.
void reformat(const void* src, FloatType from, void* dst, FloatType to, int rank,
              const int64_t* src_dims, const int64_t* src_strides, const int64_t* out_dims,
              void* stream);

}  // namespace kiln::cuda::rf
