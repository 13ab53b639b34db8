// GPU test helpers: run one canonical node (built as single_node.h builds it) in a CUDA plan and
// compare its outputs with the reference compute on the CPU. Tests skip, saying why, on machines
// without a GPU or without the CUDA backend.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../ops/single_node.h"
#include "kiln/builder.h"
#include "runtime/backend.h"

namespace kiln::testing {

inline bool gpu_available() { return find_backend("cuda") != nullptr; }

#define KILN_REQUIRE_GPU()                                                            \
  do {                                                                                \
    if (!::kiln::testing::gpu_available())                                            \
      GTEST_SKIP() << "no GPU: " << ::kiln::cuda_unavailable_reason();                \
  } while (0)

// Uniform values in [lo, hi) of any float type (rounded to it), or integers in [lo, hi], from a
// fixed seed (std::mt19937_64): the GPU tests' random inputs.
Tensor random_values(DataType t, Dims d, uint32_t seed, double lo = -1, double hi = 1);

struct DeviceRun {
  std::vector<Tensor> reference;   // the CPU reference compute
  std::vector<Tensor> device;      // the same node in a plan for `device`
  std::string tactic;              // the tactic the plan chose for the node
};

// Runs the node on the reference and in a plan built for options.device (default "cuda", with
// opt_level 0 so that the node is not folded away).
DeviceRun run_on_device(const std::string& op, std::unique_ptr<Attrs> attrs,
                        std::vector<NodeInput> inputs, size_t n_outputs = 1,
                        BuildOptions options = {});

// Every element within atol + rtol * |want| (NaN matches NaN, infinities match exactly);
// shapes and dtypes equal. Reports at most a few mismatches.
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                  const std::string& what);

// run_on_device, then: the chosen tactic starts with `tactic_prefix` (so a test cannot pass on
// the host fallback by accident) and every output is close to the reference.
void expect_gpu_matches_reference(const std::string& op, std::unique_ptr<Attrs> attrs,
                                  std::vector<NodeInput> inputs, size_t n_outputs,
                                  const std::string& tactic_prefix, double rtol = 1e-5,
                                  double atol = 1e-6, BuildOptions options = {});

}  // namespace kiln::testing
