// cuda.cublaslt_matmul (being written)
#include "backends/cuda/cuda_common.h"

namespace kiln {
namespace cuda {
namespace {
class PendingTactic : public Tactic {
 public:
  std::string_view id() const override { return "cuda.cublaslt_matmul"; }
  Status supports(const Node&) const override { return unsupported("not written yet"); }
  std::unique_ptr<Kernel> instantiate(const Node&, std::string_view) const override {
    return nullptr;
  }
};
}  // namespace
}  // namespace cuda
const Tactic& kiln_cuda_tactic_cublaslt_matmul() {
  static const cuda::PendingTactic t;
  return t;
}
}  // namespace kiln
