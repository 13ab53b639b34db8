// Launcher of the Det kernel (linalg.cu). Plain C++, shared by linalg.cu and linalg_tactics.cc.
//
// A warp per matrix runs the reference's algorithm (ops/det.cc): LU decomposition with partial
// pivoting in double, the pivot the first row of largest magnitude (NaN entries never chosen), a
// zero pivot giving a determinant of +0, and each update a separately rounded multiply and
// subtract. The operations and their order are the reference's, so the result is the reference's
// to the bit (before the final rounding to the element type). Matrices up to 32 x 32 are
// decomposed in shared memory; larger ones in a workspace of a bounded number of double
// matrices, each warp taking matrices in turn.
#pragma once
#include <cstddef>
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

struct DetProblem {
  DType dtype = DType::kF32;  // of X and Y
  const void* x = nullptr;    // [batch, m, m]
  void* y = nullptr;          // [batch]
  int64_t batch = 0, m = 0;
};

// f32, f16, bf16, f64.
bool det_supported(DType dtype);
size_t det_workspace_size(const DetProblem& p);
// 0 when enqueued (or nothing to do); cudaErrorInvalidValue's value when the workspace is short.
int launch_det(const DetProblem& p, void* workspace, size_t workspace_bytes, void* stream);

}  // namespace kiln::cuda::rk
