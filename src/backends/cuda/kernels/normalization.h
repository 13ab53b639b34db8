// Launcher of the Normalization kernels (normalization.cu).
//   layer, rms, instance, group: statistics over rows of row_len contiguous elements (layer/rms:
//     the axes from `axis` on; instance: the spatial axes of one (n, c); group: the channels of one
//     group and their spatial axes). A warp per row with the row in registers when row_len <=
//     1024, else a block per row reading the row three times (mean, variance, write).
//   batch: per element, with the per-channel factors folded first when the parameters share one
//     layout.
//   lrn: per element, summing squares over neighbouring channels.
// Parameters (scale, bias, mean, var) are any float type; each is located in its tensor by a
// descriptor the tactic derives from the broadcast: offset = (e / div) % mod of the element's
// flat index e, or a general per-axis stride walk.
#pragma once
#include <cstddef>
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

enum class NormKind : int { kBatch, kInstance, kGroup, kLayer, kRms, kLrn };

enum class ParamMode : int { kDivMod, kStrided };

struct NormParam {
  const void* p = nullptr;  // null: absent (scale 1, bias 0)
  bool present = false;     // the input exists (p is null too when shapes are only queried)
  DType dtype = DType::kF32;
  ParamMode mode = ParamMode::kDivMod;
  int64_t div = 1, mod = 1;
  int64_t strides[kMaxDims] = {};  // kStrided: per axis of X, 0 where the parameter broadcasts
};

struct NormProblem {
  NormKind kind = NormKind::kLayer;
  DType dtype = DType::kF32;  // of x and y: f32, f16, bf16, f64
  const void* x = nullptr;
  void* y = nullptr;
  int rank = 0;
  int64_t dims[kMaxDims] = {};
  int64_t rows = 0, row_len = 0;  // the statistics rows (not batch / lrn)
  double epsilon = 1e-5;
  NormParam scale, bias, mean, var;  // mean / var: batch only
  // layer: optional per-row outputs (null when not wanted)
  void* mean_out = nullptr;
  DType mean_dtype = DType::kF32;
  void* inv_std_out = nullptr;
  DType inv_std_dtype = DType::kF32;
  // lrn
  int64_t size = 1;
  double alpha = 1e-4, beta = 0.75, lrn_bias = 1.0;
};

bool normalization_supported(DType dtype);
size_t normalization_workspace_size(const NormProblem& p);
void launch_normalization(const NormProblem& p, void* workspace, size_t workspace_bytes,
                          void* stream);

}  // namespace kiln::cuda::rk
