#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

// RoiAlign (ONNX opsets 10 and 16). Inputs: X [N,C,H,W], rois [R,4] as (x1,y1,x2,y2) in input
// image coordinates, batch_indices [R] (int64). Output [R,C,output_height,output_width].
struct RoiAlignAttrs : AttrsOf<RoiAlignAttrs> {
  std::string mode = "avg";  // avg | max
  Int output_height = 1;
  Int output_width = 1;
  Int sampling_ratio = 0;  // samples per bin side; 0 = ceil(roi size / output size)
  double spatial_scale = 1.0;
  // half_pixel shifts roi corners by -0.5 (opset 16 default); output_half_pixel does not and
  // makes every roi at least 1x1 (the opset 10 behaviour).
  std::string coordinate_transformation_mode = "half_pixel";
  template <class V>
  void reflect(V& v) {
    v("mode", mode);
    v("output_height", output_height);
    v("output_width", output_width);
    v("sampling_ratio", sampling_ratio);
    v("spatial_scale", spatial_scale);
    v("coordinate_transformation_mode", coordinate_transformation_mode);
  }
};

}  // namespace kiln
