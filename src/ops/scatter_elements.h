#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

// out = data, then for every element of updates: out[... index ...] (index = indices at that
// position, replacing the coordinate on `axis`) = reduce(out[...], update). Reductions: none, add,
// mul, max, min; repeated indices apply in row-major order.
struct ScatterElementsAttrs : AttrsOf<ScatterElementsAttrs> {
  Int axis = 0;
  std::string reduction = "none";
  template <class V>
  void reflect(V& v) {
    v("axis", axis);
    v("reduction", reduction);
  }
};

}  // namespace kiln
