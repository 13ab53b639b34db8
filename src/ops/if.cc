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
  // A known condition (at run time) infers only the branch taken: the other one may not even
  // fit these shapes.
  const Tensor* cond = c.value(0);
  const int taken = cond && cond->numel() == 1 ? (cond->get_f64(0) != 0 ? 0 : 1) : -1;
  for (int k = 0; k < 2; ++k) {
    Graph& b = *n.subgraphs[k];
    if (b.outputs.size() != n.outputs.size())
      c.error(cat("a branch has ", b.outputs.size(), " outputs for the node's ", n.outputs.size()));
    if (taken >= 0 && taken != k) continue;
    bind_subgraph_inputs(b, 0, n, 1, n.inputs.size() - 1);
    infer_graph(b);
  }
  const Graph& t = *n.subgraphs[0];
  const Graph& e = *n.subgraphs[1];
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    const Value* a = t.outputs[k];
    const Value* b = e.outputs[k];
    if (taken >= 0) {
      const Value* o = taken == 0 ? a : b;
      c.set_output(k, o->dtype, o->shape);
      continue;
    }
    if (a->dtype != b->dtype)
      c.error(cat("output ", k, " is ", dtype_name(a->dtype), " in the then branch and ",
                  dtype_name(b->dtype), " in the else branch"));
    c.set_output(k, a->dtype, merge_shapes(a->shape, b->shape));
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
