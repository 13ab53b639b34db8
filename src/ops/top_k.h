#pragma once
#include "ir/attrs.h"

namespace kiln {

// TopK: inputs (X, K: an int64 tensor holding one value, possibly known only at run time).
// Outputs the k largest (or smallest) values along `axis` and their int64 indices. Results are
// always sorted (an allowed answer for sorted=0 too); equal values keep index order, smaller index
// first; NaN counts as larger than every number.
struct TopKAttrs : AttrsOf<TopKAttrs> {
  Int axis = -1;
  bool largest = true;
  bool sorted = true;
  template <class V>
  void reflect(V& v) {
    v("axis", axis);
    v("largest", largest);
    v("sorted", sorted);
  }
};

}  // namespace kiln
