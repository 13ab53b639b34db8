// Launcher of the direct matrix-product kernel (direct_matmul.cu), for the products cuBLASLt does
// not take: integer types and bool, and float64 with a fused bias or activation. One thread per
// output element y[b, i, j] sums op(A)[b, i, p] * op(B)[b, p, j] over p in order, as the
// reference (src/ops/mat_mul.cc) does: in double for float64 (each operation rounded alone, so
// the result is the reference's bits up to the GELU's erf/tanh), in wrapping uint64 for integers.
// Then alpha (floats), + bias[j], + residual, the activation, and one rounding to Y's type.
// Plain C++: the tactic (direct_matmul_tactics.cc) resolves 1-D operands, transposes and the
// broadcast batch into the fields below.
#pragma once
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

constexpr int kDirectMatMulMaxBatch = 8;  // broadcast batch dims

enum class DirectActivation : int { kNone, kRelu, kGeluErf, kGeluTanh };

struct DirectMatMulProblem {
  DType dtype = DType::kI64;  // of a, b, bias, z and y
  // op(A) is m x k, op(B) k x n. A is stored as m x k, or k x m when trans_a (likewise B: k x n,
  // or n x k when trans_b).
  int64_t m = 0, k = 0, n = 0;
  bool trans_a = false, trans_b = false;
  // Floating types only.
  double alpha = 1.0;
  DirectActivation act = DirectActivation::kNone;
  // Y's batch dims (row-major) and, per dim, the element offset between consecutive matrices of
  // A and of B (0 where the operand broadcasts).
  int batch_rank = 0;
  int64_t batch[kDirectMatMulMaxBatch] = {};
  int64_t a_stride[kDirectMatMulMaxBatch] = {};
  int64_t b_stride[kDirectMatMulMaxBatch] = {};
  const void* a = nullptr;
  const void* b = nullptr;
  const void* bias = nullptr;  // [n] or null
  const void* z = nullptr;     // Y's shape, or null
  void* y = nullptr;
};

// float64, every integer type and bool (float32/16/bf16 belong to cuBLASLt).
bool direct_matmul_supported(DType dtype);
// Enqueues y on `stream` (a cudaStream_t); nothing when y is empty.
void launch_direct_matmul(const DirectMatMulProblem& p, void* stream);

}  // namespace kiln::cuda::rk
