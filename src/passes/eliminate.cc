#include <unordered_set>

#include "ops/pointwise.h"
#include "passes/pass.h"

namespace kiln {

namespace {

bool is_copy(const Node& n) {
  if (n.op() != "Pointwise" || n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  const auto& p = n.a<PointwiseAttrs>().program;
  if (p.outputs.size() != 1) return false;
  const auto& in = p.code[p.outputs[0]];
  return in.op == expr::Op::kInput && n.inputs[0] && n.inputs[0]->dtype == n.outputs[0]->dtype &&
         n.inputs[0]->shape == n.outputs[0]->shape;
}

}  // namespace

void EliminateIdentity::run(Graph& g, PassContext& ctx) const {
  int64_t removed = 0;
  std::vector<Node*> dead;
  for (auto& np : g.nodes()) {
    Node& n = *np;
    if (!is_copy(n)) continue;
    Value* in = n.inputs[0];
    Value* out = n.outputs[0];
    if (g.is_graph_output(out)) {
      // Keep the copy when bypassing would make the output alias an input, a constant or
      // another output.
      if (g.is_graph_input(in) || in->is_constant() || g.is_graph_output(in)) continue;
      // Otherwise the producer can write the output directly: rename.
      g.replace_all_uses(out, in);
      g.rename(in, out->name);
    } else {
      g.replace_all_uses(out, in);
    }
    dead.push_back(&n);
    ++removed;
  }
  for (Node* n : dead) g.remove_node(n);
  ctx.stats["eliminate_identity.removed"] += removed;
}

void EliminateDead::run(Graph& g, PassContext& ctx) const {
  int64_t removed = 0;
  bool changed = true;
  while (changed) {
    changed = false;
    std::vector<Node*> dead;
    for (auto it = g.nodes().rbegin(); it != g.nodes().rend(); ++it) {
      Node& n = **it;
      bool used = false;
      for (Value* v : n.outputs)
        if (!v->consumers.empty() || g.is_graph_output(v)) used = true;
      if (!used) dead.push_back(&n);
    }
    for (Node* n : dead) {
      g.remove_node(n);
      ++removed;
      changed = true;
    }
  }
  g.remove_unused_values();
  ctx.stats["eliminate_dead.removed"] += removed;
}

}  // namespace kiln
