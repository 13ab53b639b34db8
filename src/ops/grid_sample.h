#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

// GridSample (ONNX opset 16, 2-D): Y[n,c,h,w] = X[n,c] sampled at grid[n,h,w] = (x, y) in
// normalised [-1, 1] coordinates. Inputs: X [N,C,H,W], grid [N,Ho,Wo,2]. Follows PyTorch's
// grid_sample, which the ONNX op mirrors.
struct GridSampleAttrs : AttrsOf<GridSampleAttrs> {
  std::string mode = "bilinear";       // bilinear | nearest | bicubic
  std::string padding_mode = "zeros";  // zeros | border | reflection
  bool align_corners = false;
  template <class V>
  void reflect(V& v) {
    v("mode", mode);
    v("padding_mode", padding_mode);
    v("align_corners", align_corners);
  }
};

}  // namespace kiln
