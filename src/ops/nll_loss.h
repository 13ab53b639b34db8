#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

// NllLoss (negative log-likelihood): inputs (input [N, C, d1...], target [N, d1...] int32/int64,
// optional weight [C]). loss[n, d] = -input[n, target[n, d], d] * weight[target[n, d]], and 0 where
// target equals ignore_index (when has_ignore_index). reduction: none (output [N, d1...]), sum, or
// mean (the weighted mean: the sum divided by the sum of the weights used).
struct NllLossAttrs : AttrsOf<NllLossAttrs> {
  std::string reduction = "mean";
  Int ignore_index = 0;
  bool has_ignore_index = false;
  template <class V>
  void reflect(V& v) {
    v("reduction", reduction);
    v("ignore_index", ignore_index);
    v("has_ignore_index", has_ignore_index);
  }
};

}  // namespace kiln
