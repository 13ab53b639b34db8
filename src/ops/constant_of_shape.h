#pragma once
#include "ir/attrs.h"

namespace kiln {

// ConstantOfShape(shape): a tensor of the given int64 shape filled with `value`'s single element
// (its dtype is the output's). An undefined value means float32 0, as in ONNX.
struct ConstantOfShapeAttrs : AttrsOf<ConstantOfShapeAttrs> {
  Tensor value;
  template <class V>
  void reflect(V& v) {
    v("value", value);
  }
};

}  // namespace kiln
