#pragma once
#include "ir/attrs.h"

namespace kiln {

// Gathers slices of data addressed by the last dim of indices (m coordinates each), after
// `batch_dims` leading dims shared by data and indices. Output shape: indices.shape[:-1] +
// data.shape[batch_dims + m:].
struct GatherNDAttrs : AttrsOf<GatherNDAttrs> {
  Int batch_dims = 0;
  template <class V>
  void reflect(V& v) {
    v("batch_dims", batch_dims);
  }
};

}  // namespace kiln
