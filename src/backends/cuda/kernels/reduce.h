// Launchers of the Reduce kernels (reduce.cu). The tactic (reduce_tactics.cc) and the global
// pooling path of pool_tactics.cc describe a problem as a row-major shape whose axes are marked
// reduced or kept; the launcher merges axes and picks a kernel:
//   rows     reduced axes innermost ([outer, R]): groups of 32..1024 threads per row, warp
//            shuffles, 16-byte loads;
//   columns  reduced axes in the middle ([outer, R, inner]): threads along inner (coalesced),
//            the R loop split over threads of a block;
//   general  any other pattern: a warp per output walking the reduced axes.
// When there are few outputs and long reductions, R is split over several blocks whose partial
// states go to the workspace and a second kernel combines them.
#pragma once
#include <cstddef>
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

enum class ReduceOp : int {
  kSum,
  kMean,
  kMax,
  kMin,
  kProd,
  kL1,
  kL2,
  kLogSum,
  kLogSumExp,
  kSumSquare,
  kArgMax,
  kArgMin,
};

struct ReduceProblem {
  DType dtype = DType::kF32;  // of x (and of y, except the arg ops' int64 y)
  ReduceOp op = ReduceOp::kSum;
  bool select_last = false;  // arg ops: the last of equal extremes
  const void* x = nullptr;
  void* y = nullptr;
  int rank = 0;  // <= kMaxDims
  int64_t dims[kMaxDims] = {};
  bool reduced[kMaxDims] = {};
};

// True when the kernels implement op on dtype (the tactic asks before promising anything).
bool reduce_supported(DType dtype, ReduceOp op);
// Workspace bytes the launch needs for these shapes (pointers are not read).
size_t reduce_workspace_size(const ReduceProblem& p);
// Enqueues the reduction on `stream` (a cudaStream_t). Nothing is launched when y is empty.
void launch_reduce(const ReduceProblem& p, void* workspace, size_t workspace_bytes, void* stream);

}  // namespace kiln::cuda::rk
