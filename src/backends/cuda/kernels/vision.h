// Launchers of the GridSample and RoiAlign kernels (vision.cu). Plain C++, shared by vision.cu
// and vision_tactics.cc. Both kernels run one thread per output element and compute as their
// references do (ops/grid_sample.cc, ops/roi_align.cc): source coordinates in double with the
// reference's operation order and no fused multiply-adds, so that the taps (floor, rounding,
// bounds tests) are the reference's; interpolation in double for float32 / float64 data and in
// float for float16 / bfloat16 data.
#pragma once
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

// ---- GridSample (2-D) ----

enum class GridSampleMode { kBilinear, kNearest, kBicubic };
enum class GridSamplePad { kZeros, kBorder, kReflection };

struct GridSampleProblem {
  DType dtype = DType::kF32;       // of X and Y
  DType grid_dtype = DType::kF32;  // any float type
  const void* x = nullptr;         // [n, c, h, w]
  const void* grid = nullptr;      // [n, ho, wo, 2]
  void* y = nullptr;               // [n, c, ho, wo]
  int64_t n = 0, c = 0, h = 0, w = 0, ho = 0, wo = 0;
  GridSampleMode mode = GridSampleMode::kBilinear;
  GridSamplePad pad = GridSamplePad::kZeros;
  bool align_corners = false;
};

// X and grid of the types f32, f16, bf16, f64 (independently).
bool grid_sample_supported(DType x, DType grid);
void launch_grid_sample(const GridSampleProblem& p, void* stream);

// ---- RoiAlign ----

struct RoiAlignProblem {
  DType dtype = DType::kF32;            // of X, rois and Y
  DType batch_dtype = DType::kI64;      // kI64 or kI32
  const void* x = nullptr;              // [n, c, h, w], h > 0 and w > 0
  const void* rois = nullptr;           // [r, 4] as (x1, y1, x2, y2)
  const void* batch_indices = nullptr;  // [r]
  void* y = nullptr;                    // [r, c, ph, pw]
  int64_t n = 0, c = 0, h = 0, w = 0, r = 0, ph = 1, pw = 1;
  int64_t sampling_ratio = 0;  // 0: adaptive
  double spatial_scale = 1.0;
  bool half_pixel = true;  // else output_half_pixel
  bool avg = true;         // else max
};

// X / rois of the types f32, f16, bf16, f64; batch indices int32 or int64.
//
// What the reference rejects at run time and a kernel cannot report: a batch index outside
// [0, N) gives zeros (as kiln's gathers do), and an adaptive sample count that is NaN or above
// 65536 per bin side gives NaN for that roi.
bool roi_align_supported(DType dtype, DType batch_dtype);
void launch_roi_align(const RoiAlignProblem& p, void* stream);

}  // namespace kiln::cuda::rk
