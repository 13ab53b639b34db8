#pragma once
#include "ir/attrs.h"

namespace kiln {

// Size(x) = x's element count as an int64 scalar.
struct SizeAttrs : AttrsOf<SizeAttrs> {
  template <class V>
  void reflect(V&) {}
};

}  // namespace kiln
