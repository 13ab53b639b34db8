// Launcher of kiln's fused attention kernels (attention.cu): Y = softmax(scale * Q Kᵀ + mask) V per
// (batch, head), never writing the S_q x S_kv score matrix to memory (ops/attention.h has the
// semantics, fully masked rows included: zeros).
//   float16 / bfloat16, head sizes up to 128: flash attention on tensor cores. A block of 4 warps
//     takes 64 query rows (16 per warp, kept as mma.sync A fragments); it walks the keys in tiles
//     of 64 staged in shared memory, computes the 16 x 64 scores of each warp with
//     mma.m16n8k16 (float32 accumulation), applies scale, mask and causality in registers,
//     updates the running maximum and sum of each row (online softmax, base 2) and adds P V with
//     mma again (P rounded to the input type, V read with ldmatrix.trans). Head sizes are padded
//     with zeros to 32, 64 or 128. Causal blocks stop at their last visible key.
//   float32 / float64, and head sizes above 128: a block per query row; scores of 128 keys at a
//     time in the accumulation type (float32, double for float64), online softmax across chunks.
// Q, K and V are read through strides (elements) of batch, head and sequence, the head-size
// dim contiguous; the mask (any float type or bool) through 4 strides over [B, H, S_q, S_kv], 0
// along broadcast dims. Y is dense [B, H, S_q, D_v].
#pragma once
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

struct AttentionProblem {
  DType dtype = DType::kF16;       // Q, K, V and Y
  int64_t batch = 0, heads = 0, kv_heads = 0, s_q = 0, s_kv = 0, d = 0, d_v = 0;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* y = nullptr;
  int64_t q_stride[3] = {0, 0, 0};  // batch, head, sequence (the head-size dim has stride 1)
  int64_t k_stride[3] = {0, 0, 0};
  int64_t v_stride[3] = {0, 0, 0};
  const void* mask = nullptr;       // null: none
  DType mask_dtype = DType::kBool;
  int64_t mask_stride[4] = {0, 0, 0, 0};  // over [B, H, S_q, S_kv]
  double scale = 1.0;
  bool causal = false;
};

bool attention_supported(DType dtype, DType mask_dtype);
// Which kernel launch_attention runs for p: "mma<32|64|128>" or "rowwise".
const char* attention_kernel_name(const AttentionProblem& p);
void launch_attention(const AttentionProblem& p, void* stream);

}  // namespace kiln::cuda::rk
