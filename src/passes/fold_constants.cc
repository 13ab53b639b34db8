#include "common/error.h"
#include "ops/infer.h"
#include "ops/op.h"
#include "passes/pass.h"

namespace kiln {

namespace {

bool all_inputs_constant(const Node& n) {
  for (const Value* v : n.inputs)
    if (v && !v->is_constant()) return false;
  return true;
}

bool is_shape_only_op(const Node& n) { return n.op() == "Shape" || n.op() == "Size"; }

}  // namespace

void FoldConstants::run(Graph& g, PassContext& ctx) const {
  int64_t folded = 0;
  std::vector<Node*> to_remove;
  for (auto& np : g.nodes()) {
    Node& n = *np;
    infer_node(n);
    bool foldable = all_inputs_constant(n);
    std::vector<Tensor> ins(n.inputs.size());
    if (!foldable && is_shape_only_op(n) && n.inputs[0]->shape.fully_known()) {
      // Shape and Size read only the dims: give them a tensor without data.
      foldable = true;
      ins[0] = Tensor::borrow(n.inputs[0]->dtype, n.inputs[0]->shape.concrete(), nullptr, nullptr);
    }
    if (!foldable) continue;
    std::vector<Tensor> outs(n.outputs.size());
    bool too_big = false;
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      Value* o = n.outputs[k];
      if (o->shape.fully_known() && !n.def->data_dependent_shape) {
        auto vol = o->shape.volume();
        if (static_cast<size_t>(*vol) * std::max<size_t>(dtype_size(o->dtype), 1) > kMaxFoldBytes)
          too_big = true;
      }
    }
    if (too_big) continue;
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (n.inputs[i] && !ins[i].defined()) ins[i] = n.inputs[i]->data;
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      Value* o = n.outputs[k];
      if (o->shape.fully_known() && !n.def->data_dependent_shape)
        outs[k] = Tensor(o->dtype, o->shape.concrete());
    }
    try {
      n.def->compute(ComputeArgs{n, ins, outs});
    } catch (const Error& e) {
      // A node that fails on constant inputs fails at run time too; report it now.
      throw Error(e.code(), e.message(), n.name + " (" + std::string(n.op()) + ")");
    }
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      Value* o = n.outputs[k];
      KILN_CHECK(outs[k].defined(), "folding ", n.label(), " produced no output ", k);
      o->data = std::move(outs[k]);
      o->dtype = o->data.dtype();
      o->shape = Shape::from(o->data.dims());
    }
    to_remove.push_back(&n);
    ++folded;
  }
  for (Node* n : to_remove) g.remove_node(n);
  ctx.stats["fold_constants.folded"] += folded;
  ctx.report(cat("fold_constants: ", folded, " node(s) folded"));
}

}  // namespace kiln
