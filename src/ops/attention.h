// Attention: scaled dot-product attention, made by the FuseAttention pass (never by an importer
// yet). Inputs:
//   Q [B, H, S_q, D], K [B, H_kv, S_kv, D], V [B, H_kv, S_kv, D_v]: one float type; H % H_kv == 0,
//     query head h reads key/value head h / (H / H_kv) (multi-query: H_kv 1; grouped-query);
//   mask (optional, input 3): numpy-broadcastable to [B, H, S_q, S_kv]; either a float tensor
//     (any float type) added to the scaled scores, or bool, where false masks the key out.
// Y [B, H, S_q, D_v] = softmax(scale * Q Kᵀ + mask, over S_kv) V, in Q's type.
// scale 0 means 1 / sqrt(D). causal masks key j out of query row i when j > i (top-left aligned,
// as ONNX Attention-23 and torch's is_causal: with S_q != S_kv, row i still sees keys 0..i).
//
// A row whose every score is masked out (-inf, bool false or causal) has no distribution to
// average with: its output is zeros, not the NaN that a literal softmax of all -inf gives. Zeros
// are what flash-attention kernels and torch's fused kernels return for such rows (padding
// queries), and a NaN there would poison every later layer through the sequence reductions.
#pragma once
#include "ir/attrs.h"

namespace kiln {

struct AttentionAttrs : AttrsOf<AttentionAttrs> {
  Float scale = 0;  // 0: 1 / sqrt(D)
  bool causal = false;
  template <class V>
  void reflect(V& v) {
    v("scale", scale);
    v("causal", causal);
  }
};

// The scale an Attention node applies: its attribute, or 1 / sqrt(d) when that is 0.
double attention_scale(const AttentionAttrs& a, int64_t d);

}  // namespace kiln
