// Launcher of the Softmax kernels (softmax.cu): softmax, log_softmax and hardmax over rows of n
// elements `inner` apart ([outer, n, inner]; legacy 2-D mode is inner = 1 with n the product of
// the trailing dims).
//   inner == 1, n <= 1024: one warp per row, the row held in registers (two passes over them);
//   inner == 1, n > 1024:  one block per row (an online max/sum pass, then a write pass);
//   inner > 1:             one thread per (outer, inner) column, coalesced along inner.
#pragma once
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

enum class SoftmaxMode : int { kSoftmax, kLogSoftmax, kHardmax };

struct SoftmaxProblem {
  DType dtype = DType::kF32;  // of x and y: f32, f16, bf16, f64
  SoftmaxMode mode = SoftmaxMode::kSoftmax;
  const void* x = nullptr;
  void* y = nullptr;
  int64_t outer = 1, n = 1, inner = 1;
};

bool softmax_supported(DType dtype);
void launch_softmax(const SoftmaxProblem& p, void* stream);

}  // namespace kiln::cuda::rk
