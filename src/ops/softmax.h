#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

// Softmax over one axis. mode: softmax, log_softmax or hardmax (one-hot of the first maximum).
// legacy_2d: the opset<13 semantics, where the input is coerced to 2-D at `axis` and the op
// normalises over all of dims [axis, rank) together.
struct SoftmaxAttrs : AttrsOf<SoftmaxAttrs> {
  Int axis = -1;
  std::string mode = "softmax";
  bool legacy_2d = false;
  template <class V>
  void reflect(V& v) {
    v("axis", axis);
    v("mode", mode);
    v("legacy_2d", legacy_2d);
  }
};

}  // namespace kiln
