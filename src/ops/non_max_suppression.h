#pragma once
#include "ir/attrs.h"

namespace kiln {

// NonMaxSuppression (ONNX 10/11). Inputs: boxes [B,N,4], scores [B,C,N], and optional scalars
// max_output_boxes_per_class (int64, default 0 = nothing selected), iou_threshold (default 0),
// score_threshold (default: none). Output: selected_indices [K,3] int64 rows of
// (batch, class, box), K known only after running (data-dependent shape).
struct NonMaxSuppressionAttrs : AttrsOf<NonMaxSuppressionAttrs> {
  // 0: boxes are (y1,x1,y2,x2), any corner order; 1: (x_center,y_center,width,height).
  bool center_point_box = false;
  template <class V>
  void reflect(V& v) {
    v("center_point_box", center_point_box);
  }
};

}  // namespace kiln
