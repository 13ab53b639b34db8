// A row-major GEMM on cuBLASLt for kiln's own kernels that need a matrix product inside a larger
// step (cuda.recurrent): C[m, n] = alpha * A[m, k] · op(B) + beta * C, optionally as a strided
// batch, with leading dimensions given explicitly so that operands may be column blocks of wider
// matrices.
//
// - Precision: float32 operands accumulate strictly in float32 (CUBLAS_COMPUTE_32F, never TF32),
//   float64 in float64, int8 in int32 (into an int32 C; alpha and beta are then integers).
// - Algorithm: cuBLASLt's heuristics' first answer within the caller's workspace limit, no timing
//   (it must be callable from enqueue(), possibly while a CUDA graph is being captured).
// - Descriptors and the algorithm are made once per shape, leading dimensions, batch strides,
//   operand alignment and workspace limit, and cached behind a mutex: a Kernel is shared by every
//   execution context of an engine.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "kiln/types.h"

namespace kiln::cuda {

struct GemmSpec {
  // Of A, B, C and the accumulation: kFloat or kDouble; or kInt8: A and B int8, C int32, exact
  // int32 accumulation (cuBLASLt's IMMA kernels want B stored [n, k]: trans_b must be set).
  DataType dtype = DataType::kFloat;
  int64_t m = 0, n = 0, k = 0;
  bool trans_b = false;  // B is stored [n, k] (op(B) = Bᵀ); else [k, n]
  int64_t lda = 0, ldb = 0, ldc = 0;  // row strides of the stored matrices, in elements
  int64_t batch = 1;                  // strided batch: matrix i at base + i * stride
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
};

class LtGemm {
 public:
  LtGemm();
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // Enqueues C = alpha * A · op(B) + beta * C on `stream`, using at most `workspace_bytes` of
  // `workspace` (the plan is chosen for that limit, so pass the same limit every time). An empty
  // product (m, n or batch 0) does nothing; k == 0 is the caller's to handle. Throws kUnsupported
  // when cuBLASLt has no algorithm, kDeviceError when the call fails.
  void run(cublasLtHandle_t handle, const GemmSpec& s, const void* a, const void* b, void* c,
           double alpha, double beta, void* workspace, size_t workspace_bytes,
           cudaStream_t stream);

 private:
  struct Plan;
  std::mutex mu_;
  std::map<std::vector<int64_t>, std::unique_ptr<Plan>> plans_;
};

}  // namespace kiln::cuda
