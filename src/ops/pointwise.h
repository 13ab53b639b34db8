#pragma once
#include "ir/attrs.h"

namespace kiln {

struct PointwiseAttrs : AttrsOf<PointwiseAttrs> {
  expr::Program program;
  template <class V> void reflect(V& v) { v("program", program); }
};

}  // namespace kiln
