#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

// out = data, then for each index tuple t = indices[i0..iq-2, :] (k coordinates):
// out[t, ...] = reduce(out[t, ...], updates[i0..iq-2, ...]). updates.shape = indices.shape[:-1] +
// data.shape[k:]. Reductions: none, add, mul, max, min; tuples apply in row-major order.
struct ScatterNDAttrs : AttrsOf<ScatterNDAttrs> {
  std::string reduction = "none";
  template <class V>
  void reflect(V& v) {
    v("reduction", reduction);
  }
};

}  // namespace kiln
