#include "common/error.h"
#include "ops/fold.h"
#include "ops/infer.h"
#include "ops/op.h"
#include "passes/pass.h"

namespace kiln {

namespace {

// A DequantizeLinear of constant int8 weights read as the W of a Conv or MatMul stays for
// FoldQuantization, which keeps the weights' integers and scales (a QAT model's): folded to
// float here, they would have to be quantized again, and not necessarily onto the same grid.
bool keeps_quantized_weights(const Node& n) {
  if (n.op() != "DequantizeLinear" || !n.in(0) || !n.in(0)->is_constant() ||
      n.in(0)->dtype != DataType::kInt8 || n.outputs.size() != 1)
    return false;
  // Only where the product's data input is dequantized too (weight-only quantization folds to
  // float weights as any constant does).
  for (const Node* c : n.outputs[0]->consumers)
    if ((c->op() == "Conv" || c->op() == "MatMul") && c->in(1) == n.outputs[0] && c->in(0) &&
        c->in(0)->producer && c->in(0)->producer->op() == "DequantizeLinear")
      return true;
  return false;
}

}  // namespace

void FoldConstants::run(Graph& g, PassContext& ctx) const {
  int64_t folded = 0;
  std::vector<Node*> to_remove;
  // In order: inference sees the constants that folding earlier nodes produced.
  for (auto& np : g.nodes()) {
    infer_node(*np);
    if (keeps_quantized_weights(*np)) continue;
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
