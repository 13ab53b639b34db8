// How one kiln MatMul (for concrete shapes) maps onto cuBLASLt calls. Plain C++ (no CUDA headers)
// so that the index arithmetic can be checked on any machine.
//
// kiln tensors are row-major, cuBLASLt matrices column-major. A row-major [r, c] buffer read as
// column-major is the [c, r] transpose, so Y = op(A) op(B) is computed as Y^T = op(B)^T op(A)^T:
// cuBLASLt's "A" is kiln's B and its "B" is kiln's A, with the transposes carried over, and its D
// (n x m, leading dim n) is Y.
//
// Batches: the output batch (numpy broadcast of A's and B's) is split into an outer part looped
// over with one call each and an inner part that one strided-batched call covers: the inner part
// is the longest run of trailing batch dims along which each operand is either dense (stride one
// matrix) or broadcast (stride 0). The common "activations [batch..., m, k] times weights [k, n]"
// folds the batch into m instead: a single plain GEMM.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/types.h"
#include "ops/mat_mul.h"

namespace kiln::cuda {

struct MatMulMapping {
  bool ok = false;
  std::string why;                        // when !ok
  int64_t m = 0, n = 0, k = 0;            // op(A) is m x k (m includes a folded batch), op(B) k x n
  bool trans_a = false, trans_b = false;  // effective (false for 1-D operands)
  int64_t batch = 1;                      // strided batch count of one call
  int64_t stride_a = 0, stride_b = 0, stride_y = 0;  // elements between batch entries
  // One entry per call: element offsets of its first A, B and Y matrices.
  std::vector<int64_t> a_offset, b_offset, y_offset;
  bool empty = false;  // Y has no elements: nothing to do
  bool zero = false;   // k == 0 (Y is all zeros)

  // Column-major shapes of the stored matrices cuBLASLt reads (its A = kiln's B, its B = kiln's
  // A) and writes: rows, cols, leading dim.
  int64_t lt_a_rows() const { return trans_b ? k : n; }
  int64_t lt_a_cols() const { return trans_b ? n : k; }
  int64_t lt_b_rows() const { return trans_a ? m : k; }
  int64_t lt_b_cols() const { return trans_a ? k : m; }
};

// a, b: the operands' dims; y: the output dims as allocated. Never throws.
MatMulMapping map_matmul(const MatMulAttrs& attrs, const Dims& a, const Dims& b, const Dims& y);

}  // namespace kiln::cuda
