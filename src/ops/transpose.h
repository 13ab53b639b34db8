#pragma once
#include "ir/attrs.h"

namespace kiln {

// Output dim i is input dim perm[i]; an empty perm reverses the dims (ONNX default).
struct TransposeAttrs : AttrsOf<TransposeAttrs> {
  Ints perm;
  template <class V>
  void reflect(V& v) {
    v("perm", perm);
  }
};

}  // namespace kiln
