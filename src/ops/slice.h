#pragma once
#include "ir/attrs.h"

namespace kiln {

// Slice takes everything as inputs (ONNX opset 10+): data, starts, ends, [axes], [steps].
// Per axis, negative starts/ends count from the end and are then clamped (ONNX rules); steps may
// be negative. Importers turn the attributes of opset < 10 into constant inputs.
struct SliceAttrs : AttrsOf<SliceAttrs> {
  template <class V>
  void reflect(V&) {}
};

}  // namespace kiln
