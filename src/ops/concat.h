#pragma once
#include "ir/attrs.h"

namespace kiln {

// Joins its inputs (one or more, same rank and dtype) along `axis` (negative counts from the end).
struct ConcatAttrs : AttrsOf<ConcatAttrs> {
  Int axis = 0;
  template <class V>
  void reflect(V& v) {
    v("axis", axis);
  }
};

}  // namespace kiln
