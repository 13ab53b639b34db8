#include "runtime/backend.h"

#include "common/error.h"

namespace kiln {

const Tactic* Backend::find_tactic(std::string_view id) const {
  for (const Tactic* t : tactics())
    if (t->id() == id) return t;
  return nullptr;
}

const Tactic& Backend::choose(const Node& node) const {
  std::string reasons;
  for (const Tactic* t : tactics()) {
    Status s = t->supports(node);
    if (s.is_ok()) return *t;
    reasons += cat("\n  ", t->id(), ": ", s.message());
  }
  throw Error(StatusCode::kUnsupported,
              cat("no ", name(), " tactic supports this node:", reasons), node.label());
}

const Backend* find_backend(std::string_view name) {
  if (name == "cpu") return &cpu_backend();
  return nullptr;
}

}  // namespace kiln
