#pragma once
#include "ir/attrs.h"

namespace kiln {

// STFT (ONNX opset 17). Inputs: signal [B, L, 1 or 2], frame_step (scalar), window (optional
// [frame_length]), frame_length (optional scalar; one of window and frame_length is required).
// Output [B, frames, bins, 2] with frames = 1 + (L - frame_length) / frame_step and bins =
// frame_length / 2 + 1 when onesided, else frame_length.
struct StftAttrs : AttrsOf<StftAttrs> {
  bool onesided = true;
  template <class V>
  void reflect(V& v) {
    v("onesided", onesided);
  }
};

}  // namespace kiln
