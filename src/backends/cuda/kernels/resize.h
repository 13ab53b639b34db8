// Launcher of kiln's Resize kernel (nearest, N-D linear and N-D cubic with every ONNX coordinate
// transformation mode, rank <= kMaxDims). Plain C++; see movement.h for the conventions.
#pragma once
#include <cstdint>

#include "backends/cuda/kernels/movement.h"

namespace kiln::cuda::mv {

enum class ResizeMode { kNearest, kLinear, kCubic };
enum class ResizeCoord {
  kHalfPixel,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNN,
  kTfCropAndResize
};
enum class NearestMode { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

// Per dim: the scale and the "resized length" exactly as ops/resize.cc derives them (from the
// scales input: scale and scale * in; from sizes: out / in and out), the roi (tf_crop_and_resize)
// and whether the dim maps every output coordinate onto the same input one (skipped).
struct ResizeArgs {
  int rank = 0;
  int64_t in_dims[kMaxDims] = {};
  int64_t out_dims[kMaxDims] = {};
  double scale[kMaxDims] = {};
  double len_resized[kMaxDims] = {};
  double roi_start[kMaxDims] = {};
  double roi_end[kMaxDims] = {};
  bool identity[kMaxDims] = {};
  ResizeMode mode = ResizeMode::kNearest;
  ResizeCoord coord = ResizeCoord::kHalfPixel;
  NearestMode nearest = NearestMode::kRoundPreferFloor;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0.0;
};

// x and y have element type t (bool only in nearest mode). Float types interpolate in float
// (16-bit types) or double (float32, float64); integer types in double, rounded half to even and
// saturated as the reference stores them.
void resize(const void* x, void* y, ElemType t, const ResizeArgs& a, void* stream);

}  // namespace kiln::cuda::mv
