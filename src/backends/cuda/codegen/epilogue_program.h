// The epilogue program of a fused Conv or MatMul (ops/epilogue.h) on the GPU: an NVRTC-compiled
// pointwise module (pointwise_codegen.h) run in place over the op's output, in the op's step,
// right after the library call that wrote it. Tactics compile it in prepare() and store the
// returned bytes in their state, so engines load the CUBIN and need no compiler, like
// cuda.pointwise_nvrtc. In place is safe: each element is read and then written by one thread.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "expr/program.h"
#include "kiln/types.h"

namespace kiln::cuda {

// Empty when `p` can run in place over an output of type t on the GPU; otherwise why not.
std::string epilogue_kernel_unsupported(const expr::Program& p, DataType t);

// Compiles p for the current GPU; the bytes belong in the tactic's state. `name` names the node
// in messages. Throws kUnsupported for what epilogue_kernel_unsupported rejects.
std::string compile_epilogue_kernel(const expr::Program& p, const std::string& name);

class EpilogueKernel {
 public:
  // Loads bytes that compile_epilogue_kernel made for p. kCorruptPlan when they belong to another
  // program, kIncompatible when they were compiled for another GPU.
  EpilogueKernel(const expr::Program& p, std::string_view state);
  ~EpilogueKernel();
  EpilogueKernel(const EpilogueKernel&) = delete;
  EpilogueKernel& operator=(const EpilogueKernel&) = delete;

  // y[i] = p(y[i]) for the numel elements at y (of the program's type), enqueued on `stream`.
  void run(void* y, int64_t numel, cudaStream_t stream) const;

 private:
  cudaLibrary_t library_ = nullptr;
  cudaKernel_t fn_[2] = {};  // kiln_pw_flat, kiln_pw_vec
  size_t elem_ = 0;
  int vec_ = 1;
  int64_t max_blocks_ = 1;
};

}  // namespace kiln::cuda
