// Launcher of the windowed Pool kernels (pool.cu): max / avg / lp over 1, 2 or 3 spatial axes,
// channels-first (X [N, C, D1..Dk]) or channels-last (X [N, D1..Dk, C]; threads run along C so
// that neighbouring threads read neighbouring channels). One thread per output, taps in
// row-major window order (so max keeps the first maximum, and the first NaN). Global average and
// max pooling go through the Reduce kernels instead (pool_tactics.cc).
#pragma once
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

enum class PoolKind : int { kMax, kAvg, kLp };

constexpr int kPoolMaxSpatial = 3;

struct PoolProblem {
  DType dtype = DType::kF32;
  PoolKind kind = PoolKind::kMax;
  bool channels_last = false;
  bool count_include_pad = false;
  double p = 2;           // lp
  int storage_order = 0;  // Indices: 0 row-major, 1 column-major spatial positions
  const void* x = nullptr;
  void* y = nullptr;
  int64_t* indices = nullptr;  // max only; null when not wanted
  int64_t n = 0, c = 0;
  int nsp = 0;  // <= kPoolMaxSpatial
  int64_t in[kPoolMaxSpatial] = {}, out[kPoolMaxSpatial] = {}, kernel[kPoolMaxSpatial] = {};
  int64_t stride[kPoolMaxSpatial] = {}, dilation[kPoolMaxSpatial] = {};
  int64_t pad_begin[kPoolMaxSpatial] = {}, pad_end[kPoolMaxSpatial] = {};
};

// dtype: f32, f16, bf16, f64 for every kind; int8, uint8, int32, int64 for max.
bool pool_supported(DType dtype, PoolKind kind);
void launch_pool(const PoolProblem& p, void* stream);

}  // namespace kiln::cuda::rk
