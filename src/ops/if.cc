// If: runs one of two sub-graphs (ops/control_flow.h). Output shapes are the merge of the
// branches' (a dim on which they differ is unknown until run time), or the taken branch's when
// the condition is a constant.
#include "common/error.h"
#include "ops/control_flow.h"
#include "ops/infer.h"
#include "ops/op.h"

namespace kiln {

namespace {

void infer(InferContext& c) {
  Node& n = c.node();
  if (n.subgraphs.size() != 2) c.error("If needs a then and an else branch");
  for (auto& b : n.subgraphs) {
    bind_subgraph_inputs(*b, 0, n, 1, n.inputs.size() - 1);
    infer_graph(*b);
    if (b->outputs.size() != n.outputs.size())
      c.error(cat("a branch has ", b->outputs.size(), " outputs for the node's ", n.outputs.size()));
  }
  const Graph& t = *n.subgraphs[0];
  const Graph& e = *n.subgraphs[1];
  const Tensor* cond = c.value(0);
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    const Value* a = t.outputs[k];
    const Value* b = e.outputs[k];
    if (a->dtype != b->dtype)
      c.error(cat("output ", k, " is ", dtype_name(a->dtype), " in the then branch and ",
                  dtype_name(b->dtype), " in the else branch"));
    Shape s = merge_shapes(a->shape, b->shape);
    if (cond && cond->numel() == 1) s = cond->get_f64(0) != 0 ? a->shape : b->shape;
    c.set_output(k, a->dtype, s);
  }
}

void compute(const ComputeArgs& a) {
  run_control_flow(a, [&](size_t body, std::vector<Tensor> ins) {
    return run_graph_reference(*a.node.subgraphs.at(body), ins);
  });
}

}  // namespace

const OpDef& kiln_op_if() {
  static const OpDef d{"If", make_attrs_of<IfAttrs>, infer, compute, /*data_dependent_shape=*/true};
  return d;
}

}  // namespace kiln
