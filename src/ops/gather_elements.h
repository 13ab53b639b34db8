#pragma once
#include "ir/attrs.h"

namespace kiln {

// out[i][j][k] = data[index][j][k] (axis 0; likewise for other axes) with index = indices[i][j][k].
// Output shape = indices shape; indices has data's rank.
struct GatherElementsAttrs : AttrsOf<GatherElementsAttrs> {
  Int axis = 0;
  template <class V>
  void reflect(V& v) {
    v("axis", axis);
  }
};

}  // namespace kiln
