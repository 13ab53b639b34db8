// Launcher of the TopK kernels (top_k.cu). Every element becomes an unsigned sort key whose
// ascending order is the output order (NaN above +inf, -0 equal to +0, bits flipped for
// `largest`); ties keep index order. Rows of up to 2048 elements are sorted in shared memory
// (bitonic, a block per row); longer rows go through CUB's (segmented) radix sort, which is
// stable, in the workspace. Output k of every row is then gathered from X.
#pragma once
#include <cstddef>
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

struct TopKProblem {
  DType dtype = DType::kF32;
  bool largest = true;
  const void* x = nullptr;
  void* values = nullptr;
  int64_t* indices = nullptr;
  int64_t outer = 1, n = 1, inner = 1, k = 0;
};

// f32, f16, bf16, f64, int8, uint8, int32, int64.
bool top_k_supported(DType dtype);
size_t top_k_workspace_size(const TopKProblem& p);
// 0 when enqueued; else a cudaError_t value, or -1 when the tensor is too large for the radix
// sort's 32-bit sizes.
int launch_top_k(const TopKProblem& p, void* workspace, size_t workspace_bytes, void* stream);

}  // namespace kiln::cuda::rk
