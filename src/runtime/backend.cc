#include "runtime/backend.h"

#include <algorithm>

#include "common/error.h"
#include "runtime/backend_traits.h"

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

bool Backend::considers(const Tactic& t, const Node& node,
                        const std::vector<std::string>& excluded) {
  return (t.op().empty() || t.op() == node.op()) &&
         std::find(excluded.begin(), excluded.end(), t.id()) == excluded.end();
}

const Tactic& Backend::choose(const Node& node, const std::vector<std::string>& excluded) const {
  std::string reasons;
  for (const Tactic* t : tactics()) {
    if (!t->op().empty() && t->op() != node.op()) continue;
    if (!considers(*t, node, excluded)) {
      reasons += cat("\n  ", t->id(), ": excluded by the build options");
      continue;
    }
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
std::vector<const Tactic*> generated_cuda_tactics();   // generated registry
#endif

const BackendTraits& cpu_backend_traits();    // backends/cpu/cpu_backend.cc
const BackendTraits& cuda_backend_traits();   // backends/cuda/cuda_traits.cc (every build)

const BackendTraits& backend_traits(std::string_view device) {
  if (device == "cpu") return cpu_backend_traits();
  if (device == "cuda") return cuda_backend_traits();
  fail(StatusCode::kInvalidArgument, "unknown device '", device, "' (use cpu or cuda)");
}

const Tactic* compiled_tactic(std::string_view device, std::string_view id) {
  if (device == "cpu") return cpu_backend().find_tactic(id);
#ifdef KILN_HAVE_CUDA
  if (device == "cuda") {
    static const std::vector<const Tactic*> all = generated_cuda_tactics();
    for (const Tactic* t : all)
      if (t->id() == id) return t;
  }
#endif
  return nullptr;
}

std::vector<const Tactic*> compiled_tactics(std::string_view device) {
  if (device == "cpu") return cpu_backend().tactics();
#ifdef KILN_HAVE_CUDA
  if (device == "cuda") return generated_cuda_tactics();
#endif
  return {};
}

bool step_computes_on_host(std::string_view device, std::string_view tactic) {
  const Tactic* t = compiled_tactic(device, tactic);
  return t && t->computes_on_host();
}

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
