#pragma once
#include <limits>

#include "ir/attrs.h"

namespace kiln {

// Shape(x) = x's dims as int64 [n], restricted to dims [start, end) (ONNX opset 15: negative
// values count from the end, both are clamped to [0, rank]).
struct ShapeAttrs : AttrsOf<ShapeAttrs> {
  Int start = 0;
  Int end = std::numeric_limits<int64_t>::max();
  template <class V>
  void reflect(V& v) {
    v("start", start);
    v("end", end);
  }
};

}  // namespace kiln
