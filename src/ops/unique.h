#pragma once
#include "ir/attrs.h"

namespace kiln {

// Unique(X) -> Y, indices, inverse_indices, counts (numpy.unique; the node has 1 to 4 of them).
// Without an axis X is flattened and Y holds its distinct elements; with one, Y holds the distinct
// slices along `axis` (negative counts from the end). With `sorted`, Y is in ascending order
// (slices compared lexicographically, NaN above every number, all NaNs equal); without it, in
// order of first occurrence. indices (int64) is each entry's first occurrence in X,
// inverse_indices (int64) maps every element/slice of X to its entry of Y, counts (int64) counts
// the occurrences. Every output length depends on X's values.
struct UniqueAttrs : AttrsOf<UniqueAttrs> {
  bool sorted = true;
  bool has_axis = false;
  Int axis = 0;
  template <class V>
  void reflect(V& v) {
    v("sorted", sorted);
    v("has_axis", has_axis);
    v("axis", axis);
  }
};

}  // namespace kiln
