#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

// Pad takes data, pads (int64: all begins then all ends; negative values crop), an optional
// constant_value scalar and optional axes (the axes pads refers to; default all). mode is
// "constant", "reflect" (mirror without repeating the edge) or "edge".
struct PadAttrs : AttrsOf<PadAttrs> {
  std::string mode = "constant";
  template <class V>
  void reflect(V& v) {
    v("mode", mode);
  }
};

}  // namespace kiln
