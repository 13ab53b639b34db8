// Launcher of the NllLoss kernels (loss.cu). Plain C++, shared by loss.cu and loss_tactics.cc.
//
// reduction none: one thread per loss element. sum / mean: a deterministic two-pass reduction:
// a fixed number of blocks (a function of the element count only) each sums a fixed strided
// share of the elements and writes (sum of losses, sum of applied weights) to the workspace;
// one block then combines those partials in a fixed order. Every loss and both sums are in
// double, as the reference (ops/nll_loss.cc) computes them, whatever the element type, so the
// result does not depend on the GPU or on the launch and rounds as the reference does.
//
// The kernels cannot report a target outside [0, C) (the reference throws): such an element's
// loss is NaN, so a sum or mean over it is NaN too.
#pragma once
#include <cstddef>
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

enum class NllReduction { kNone, kSum, kMean };

struct NllLossProblem {
  DType dtype = DType::kF32;         // of the input, the weight and the output
  DType target_dtype = DType::kI64;  // kI32 or kI64
  const void* x = nullptr;           // [n, c, inner]
  const void* target = nullptr;      // [n, inner]
  const void* weight = nullptr;      // [c] or null
  void* y = nullptr;                 // [n, inner] (none) or a scalar
  int64_t n = 0, c = 0, inner = 1;
  bool has_ignore_index = false;
  int64_t ignore_index = 0;
  NllReduction reduction = NllReduction::kMean;
};

// Input types f32, f16, bf16, f64; target types int32, int64.
bool nll_loss_supported(DType dtype, DType target_dtype);
size_t nll_loss_workspace_size(const NllLossProblem& p);
// 0 when enqueued (or nothing to do); cudaErrorInvalidValue's value when the workspace is short.
int launch_nll_loss(const NllLossProblem& p, void* workspace, size_t workspace_bytes, void* stream);

}  // namespace kiln::cuda::rk
