#pragma once
#include "ir/attrs.h"

namespace kiln {

// CumSum: inputs (X, axis: an int32/int64 scalar or 1-element tensor, possibly known only at run
// time). exclusive: element i sums the elements before i; reverse: sums run from the end.
struct CumSumAttrs : AttrsOf<CumSumAttrs> {
  bool exclusive = false;
  bool reverse = false;
  template <class V>
  void reflect(V& v) {
    v("exclusive", exclusive);
    v("reverse", reverse);
  }
};

}  // namespace kiln
