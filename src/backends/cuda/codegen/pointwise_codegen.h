// Pointwise programs (expr/program.h) as CUDA C++: one module per program, compiled with NVRTC
// (nvrtc.h) at build time. The generated code reproduces expr/eval.cc instruction by instruction:
// the same register categories (float, int64 for every integer but uint64, uint64), the same
// rounding of each result to its dtype, the same defined results where C++ would be undefined
// (division by zero, float-to-int conversion of NaN or out-of-range values, shifts of 64 or
// more). Programs whose meaning eval.cc leaves to the bits of its register union (a comparison of
// a float with an integer, a float op with an integer result, ...) are rejected instead.
//
// Float32/16/bf16 registers are `float`, so float32 +,-,*,/,sqrt round exactly as the reference
// (which computes in double and rounds); transcendental functions differ by an ulp or two.
// Float constants are rounded to float32 once (the reference keeps them as double).
//
// The module holds four kernels over one parameter block (PointwiseParamLayout below):
//   kiln_pw_flat       every input has the output's element count or is a scalar: flat index
//   kiln_pw_vec        the same with `vec` elements per thread and 16-byte-or-less vector loads
//                      and stores; the launcher uses it when every full operand is aligned
//   kiln_pw_strided32  general broadcasting by per-input strides, 32-bit index math
//   kiln_pw_strided64  the same with 64-bit index math (numel >= 2^31)
// All are grid-stride loops with 256-thread blocks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "expr/program.h"

namespace kiln::cuda {

inline constexpr int kPointwiseMaxRank = 8;
inline constexpr int kPointwiseBlock = 256;
// The classic kernel-parameter limit, valid on every architecture and driver.
inline constexpr size_t kPointwiseMaxParamBytes = 4096;

inline constexpr const char* kPointwiseKernelNames[4] = {"kiln_pw_flat", "kiln_pw_vec",
                                                         "kiln_pw_strided32", "kiln_pw_strided64"};
enum PointwiseKernelIndex { kPwFlat = 0, kPwVec = 1, kPwStrided32 = 2, kPwStrided64 = 3 };

// The kernels' single parameter: a block of 8-byte slots. The generated struct has exactly this
// layout (every member is 8 bytes, so there is no padding).
//   numel, rank (effective, <= max_rank), dims[max_rank] (right-aligned: unused leading dims are
//   1), strides[inputs][max_rank] (elements; 0 on broadcast dims), step[inputs] (flat kernels: 1
//   for an input of the output's size, 0 for a scalar), in[inputs], out[outputs].
// A program without inputs still has one (unused) input slot: C++ has no zero-length arrays.
struct PointwiseParamLayout {
  size_t max_rank = 1, inputs = 0, outputs = 0;
  size_t input_slots() const { return inputs ? inputs : 1; }
  size_t numel() const { return 0; }
  size_t rank() const { return 1; }
  size_t dim(size_t d) const { return 2 + d; }
  size_t stride(size_t k, size_t d) const { return 2 + max_rank + k * max_rank + d; }
  size_t step(size_t k) const { return 2 + max_rank + input_slots() * max_rank + k; }
  size_t in(size_t k) const { return step(0) + input_slots() + k; }
  size_t out(size_t k) const { return in(0) + input_slots() + k; }
  size_t slots() const { return out(0) + outputs; }
  size_t bytes() const { return slots() * 8; }
};

struct PointwiseSource {
  std::string source;
  int max_rank = 1;  // rank of the strided kernels' index space (the node's output rank, >= 1)
  int vec = 1;       // elements per thread in kiln_pw_vec
  PointwiseParamLayout layout;
};

// Empty when the program can be generated for outputs of rank `rank`; otherwise why not.
std::string pointwise_codegen_unsupported(const expr::Program& p, int rank);

// The module's source. Throws kiln::Error (kUnsupported) for what pointwise_codegen_unsupported
// rejects.
PointwiseSource generate_pointwise_source(const expr::Program& p, int rank);

// Elements per thread of kiln_pw_vec for this program: 16 bytes of its widest operand, at most 8.
int pointwise_vector_width(const expr::Program& p);

// One launch of a generated module, planned on the host from the concrete shapes and pointers.
struct PointwiseLaunch {
  PointwiseKernelIndex kernel = kPwFlat;
  int64_t items = 0;            // work items: elements, or vectors for kiln_pw_vec; 0: no launch
  std::vector<int64_t> params;  // the parameter block (PointwiseParamLayout slots)
  size_t rank = 0;              // the strided kernels' rank after coalescing
};

// Chooses the kernel and fills its parameters. Inputs of the output's element count or of one
// element take the flat kernels (the vectorized one when every full operand is aligned to `vec`
// of its elements and there are at least `vec` elements); any other broadcast takes the strided
// kernels, over dims coalesced where every input walks them contiguously (size-1 dims dropped),
// with 32-bit index math below 2^31 elements. Throws kInternal when the shapes do not broadcast
// or the coalesced rank exceeds the layout's.
PointwiseLaunch plan_pointwise_launch(const PointwiseParamLayout& layout, int vec,
                                      const std::vector<size_t>& in_sizes,
                                      const std::vector<size_t>& out_sizes,
                                      const std::vector<Dims>& in_dims, const Dims& out_dims,
                                      const std::vector<const void*>& in_ptrs,
                                      const std::vector<void*>& out_ptrs);

}  // namespace kiln::cuda
