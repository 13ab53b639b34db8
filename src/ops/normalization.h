#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

// Normalization. Inputs: X, scale, bias (both optional), then mean and var for kind "batch".
//   batch:    inference batch norm, (X - mean) / sqrt(var + epsilon) * scale + bias. The
//             parameters align with X from axis 1 ([C], or [C, D1...] for ONNX spatial=0).
//   instance: per (n, c) statistics over the spatial axes; scale/bias [C].
//   group:    per (n, group) statistics over C/num_groups channels and the spatial axes;
//             scale/bias [C] (per channel) or [num_groups] (per group, GroupNormalization-18).
//   layer:    statistics over axes [axis, rank); scale/bias broadcast against X numpy-style.
//             Optional outputs 1 and 2: Mean and InvStdDev, of dtype stash_type, shaped like X
//             with the normalized axes set to 1.
//   rms:      like layer, without mean subtraction: X / sqrt(mean(X^2) + epsilon) * scale + bias.
//   lrn:      local response normalization across channels (axis 1):
//             X / (lrn_bias + alpha / size * sum of X^2 over `size` neighbouring channels)^beta.
// Statistics use the biased variance, accumulated in double.
struct NormalizationAttrs : AttrsOf<NormalizationAttrs> {
  std::string kind = "layer";
  Int axis = -1;
  Float epsilon = 1e-5;
  Int num_groups = 1;
  DataType stash_type = DataType::kFloat;
  Int size = 1;
  Float alpha = 1e-4;
  Float beta = 0.75;
  Float lrn_bias = 1.0;
  template <class V>
  void reflect(V& v) {
    v("kind", kind);
    v("axis", axis);
    v("epsilon", epsilon);
    v("num_groups", num_groups);
    v("stash_type", stash_type);
    v("size", size);
    v("alpha", alpha);
    v("beta", beta);
    v("lrn_bias", lrn_bias);
  }
};

}  // namespace kiln
