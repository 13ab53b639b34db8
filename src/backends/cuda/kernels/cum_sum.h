// Launcher of the CumSum kernels (cum_sum.cu): running sums along one axis of [outer, n, inner].
//   inner == 1: a warp per row (many rows) or a block per row (few long rows), scanning tiles of
//               the row with shuffles and carrying the total from tile to tile;
//   inner > 1:  a thread per (outer, inner) column, coalesced along inner.
// float32 sums run in double (long running sums would otherwise drift from the reference, which
// sums in double, and the scan is memory-bound, so the wider adds cost nothing); float16 and
// bfloat16 in float; integers wrap like their type.
#pragma once
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

struct CumSumProblem {
  DType dtype = DType::kF32;
  bool exclusive = false;
  bool reverse = false;
  const void* x = nullptr;
  void* y = nullptr;
  int64_t outer = 1, n = 1, inner = 1;
};

// f32, f16, bf16, f64, int32, int64, uint32, uint64.
bool cum_sum_supported(DType dtype);
void launch_cum_sum(const CumSumProblem& p, void* stream);

}  // namespace kiln::cuda::rk
