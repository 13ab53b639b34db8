#pragma once
#include "ir/attrs.h"

namespace kiln {

// Expand(input, shape): broadcasts input and the int64 shape against each other (numpy rules in
// both directions: a 1 in shape keeps the input's dim).
struct ExpandAttrs : AttrsOf<ExpandAttrs> {
  template <class V>
  void reflect(V&) {}
};

}  // namespace kiln
