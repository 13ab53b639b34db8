#include "runtime/backend.h"

#include "common/error.h"

namespace kiln {

void Kernel::run(const ComputeArgs& args) {
  fail(StatusCode::kInternal, "this kernel runs on a device, not on host tensors");
}

void Kernel::enqueue(const LaunchArgs& args) {
  fail(StatusCode::kInternal, "this kernel runs on host tensors, not on a device");
}

const Tactic* Backend::find_tactic(std::string_view id) const {
  for (const Tactic* t : tactics())
    if (t->id() == id) return t;
  return nullptr;
}

const Tactic& Backend::choose(const Node& node) const {
  std::string reasons;
  for (const Tactic* t : tactics()) {
    if (!t->op().empty() && t->op() != node.op()) continue;
    Status s = t->supports(node);
    if (s.is_ok()) return *t;
    reasons += cat("\n  ", t->id(), ": ", s.message());
  }
  throw Error(StatusCode::kUnsupported,
              cat("no ", name(), " tactic supports this node:", reasons), node.label());
}

#ifdef KILN_HAVE_CUDA
const Backend* cuda_backend_if_available();   // backends/cuda/cuda_backend.cc
std::string cuda_backend_unavailable_reason();
#endif

const Backend* find_backend(std::string_view name) {
  if (name == "cpu") return &cpu_backend();
#ifdef KILN_HAVE_CUDA
  if (name == "cuda") return cuda_backend_if_available();
#endif
  return nullptr;
}

std::string cuda_unavailable_reason() {
#ifdef KILN_HAVE_CUDA
  return cuda_backend_unavailable_reason();
#else
  return "this build of kiln has no CUDA backend (no CUDA toolkit was found when it was built)";
#endif
}

}  // namespace kiln
