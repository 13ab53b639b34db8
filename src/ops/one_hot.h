#pragma once
#include "ir/attrs.h"

namespace kiln {

// OneHot(indices, depth, values): output has indices' dims with a new axis of size depth inserted
// at `axis` (negative counts from the end of the output); element = values[1] where the position
// on that axis equals the index (negative indices count from depth), else values[0].
struct OneHotAttrs : AttrsOf<OneHotAttrs> {
  Int axis = -1;
  template <class V>
  void reflect(V& v) {
    v("axis", axis);
  }
};

}  // namespace kiln
