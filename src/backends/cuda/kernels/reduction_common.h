// Plain-C++ vocabulary shared by the launchers of kiln's reduction-family kernels (reduce,
// softmax, normalization, pool, cum_sum, top_k): element types and shape limits. Included by
// both the .cu files and the tactic .cc files, so it names no kiln or CUDA header.
#pragma once
#include <cstdint>

namespace kiln::cuda::rk {

// Element types, numbered as kiln's DataType (the ONNX numbering), so that a tactic converts
// with a cast: `static_cast<DType>(static_cast<int>(dtype))`.
enum class DType : int {
  kF32 = 1,
  kU8 = 2,
  kI8 = 3,
  kU16 = 4,
  kI16 = 5,
  kI32 = 6,
  kI64 = 7,
  kBool = 9,
  kF16 = 10,
  kF64 = 11,
  kU32 = 12,
  kU64 = 13,
  kBF16 = 16,
};

// Most dims a kernel's index arithmetic handles (after merging adjacent axes).
constexpr int kMaxDims = 8;

}  // namespace kiln::cuda::rk
