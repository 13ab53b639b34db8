#include "common/error.h"
#include "ops/fold.h"
#include "ops/infer.h"
#include "ops/op.h"
#include "passes/pass.h"

namespace kiln {

void FoldConstants::run(Graph& g, PassContext& ctx) const {
  int64_t folded = 0;
  std::vector<Node*> to_remove;
  // In order: inference sees the constants that folding earlier nodes produced.
  for (auto& np : g.nodes()) {
    infer_node(*np);
    if (fold_node(*np, kMaxFoldBytes)) {
      to_remove.push_back(np.get());
      ++folded;
    }
  }
  for (Node* n : to_remove) g.remove_node(n);
  ctx.stats["fold_constants.folded"] += folded;
  ctx.report(cat("fold_constants: ", folded, " node(s) folded"));
}

}  // namespace kiln
