#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

// Resize (ONNX Resize 10..17, Upsample 7..9). Inputs: X, roi (optional), scales (optional), sizes
// (optional). Exactly one of scales and sizes is given; an empty tensor counts as absent (opset 11
// models pass empty constants for the one they do not use).
struct ResizeAttrs : AttrsOf<ResizeAttrs> {
  std::string mode = "nearest";  // nearest | linear | cubic (linear/cubic are N-D, separable)
  // half_pixel | pytorch_half_pixel | align_corners | asymmetric | tf_half_pixel_for_nn |
  // tf_crop_and_resize
  std::string coordinate_transformation_mode = "half_pixel";
  std::string nearest_mode = "round_prefer_floor";  // | round_prefer_ceil | floor | ceil
  double cubic_coeff_a = -0.75;
  bool exclude_outside = false;
  double extrapolation_value = 0.0;  // tf_crop_and_resize: value outside the crop box

  template <class V>
  void reflect(V& v) {
    v("mode", mode);
    v("coordinate_transformation_mode", coordinate_transformation_mode);
    v("nearest_mode", nearest_mode);
    v("cubic_coeff_a", cubic_coeff_a);
    v("exclude_outside", exclude_outside);
    v("extrapolation_value", extrapolation_value);
  }
};

}  // namespace kiln
