// Launcher of the general Einsum kernel (einsum.cu), the device form of the reference's iteration
// space (src/ops/einsum.cc): every distinct label and every ellipsis dim is an axis; the output
// axes (in Y's order) are walked outside and the summed axes inside, and each operand has a
// stride per axis (0 where it lacks or broadcasts the axis, a sum of strides where a label
// repeats, which walks a diagonal). One thread per output element sums, in the reference's
// order, the products of the operands' elements over the summed index space: in double for the
// floating types (rounded to Y's type at the end, float16/bfloat16 through float), in uint64
// (wrapping like the integer types) for integers and bool (a non-zero sum is true).
// Plain C++: the tactic (einsum_tactics.cc) builds the problem from the equation and the dims.
#pragma once
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

constexpr int kEinsumMaxOperands = 8;
constexpr int kEinsumMaxAxes = 16;  // output axes and summed axes, each

struct EinsumProblem {
  DType dtype = DType::kF32;  // of every operand and of y
  int n_inputs = 0;           // 1..kEinsumMaxOperands
  const void* x[kEinsumMaxOperands] = {};
  void* y = nullptr;
  // Output axes, outermost first (y is row-major over them), and summed axes, in the order the
  // reference walks them (the last varies fastest).
  int n_out = 0, n_red = 0;
  int64_t out_sizes[kEinsumMaxAxes] = {};
  int64_t red_sizes[kEinsumMaxAxes] = {};
  // Element strides of operand i along each output / summed axis.
  int64_t out_strides[kEinsumMaxOperands][kEinsumMaxAxes] = {};
  int64_t red_strides[kEinsumMaxOperands][kEinsumMaxAxes] = {};
};

// Every numeric type and bool.
bool einsum_supported(DType dtype);
// Enqueues y on `stream` (a cudaStream_t); nothing when y is empty.
void launch_einsum(const EinsumProblem& p, void* stream);

}  // namespace kiln::cuda::rk
