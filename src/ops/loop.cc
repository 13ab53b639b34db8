// Loop: runs its body while the trip count and the condition allow (ops/control_flow.h).
#include "common/error.h"
#include "ops/control_flow.h"
#include "ops/infer.h"
#include "ops/op.h"

namespace kiln {

namespace {

void infer(InferContext& c) {
  Node& n = c.node();
  if (n.subgraphs.size() != 1) c.error("Loop needs one body");
  const size_t nc = static_cast<size_t>(n.a<LoopAttrs>().num_carried);
  if (n.inputs.size() < 2 + nc) c.error("Loop has fewer inputs than carried values");
  Graph& body = *n.subgraphs[0];
  if (body.inputs.size() != n.inputs.size() || body.outputs.size() < 1 + nc)
    c.error(cat("the body has ", body.inputs.size(), " inputs and ", body.outputs.size(),
                " outputs, which do not fit the node's ", n.inputs.size(), " inputs and ",
                nc, " carried values"));
  body.inputs[0]->dtype = DataType::kInt64;
  body.inputs[0]->shape = Shape(std::vector<Dim>{});
  body.inputs[1]->dtype = DataType::kBool;
  body.inputs[1]->shape = Shape(std::vector<Dim>{});
  bind_subgraph_inputs(body, 2, n, 2, n.inputs.size() - 2);
  infer_graph(body);
  // A carried value whose shape changes between iterations: infer once more with the merge.
  bool again = false;
  for (size_t k = 0; k < nc; ++k) {
    Value* in = body.inputs[2 + k];
    Shape m = merge_shapes(in->shape, body.outputs[1 + k]->shape);
    if (!(m == in->shape)) {
      in->shape = m;
      again = true;
    }
  }
  if (again) infer_graph(body);
  for (size_t k = 0; k < nc; ++k) {
    const Value* o = body.outputs[1 + k];
    c.set_output(k, o->dtype, merge_shapes(body.inputs[2 + k]->shape, o->shape));
  }
  for (size_t k = 1 + nc; k < body.outputs.size(); ++k) {
    const Value* o = body.outputs[k];
    Shape s = Shape::unknown_rank();
    if (o->shape.rank_known) {
      s = o->shape;
      s.dims.insert(s.dims.begin(), Dim::unknown());
    }
    if (k - 1 < n.outputs.size()) c.set_output(k - 1, o->dtype, s);
  }
}

void compute(const ComputeArgs& a) {
  run_control_flow(a, [&](size_t body, std::vector<Tensor> ins) {
    return run_graph_reference(*a.node.subgraphs.at(body), ins);
  });
}

}  // namespace

const OpDef& kiln_op_loop() {
  static const OpDef d{"Loop", make_attrs_of<LoopAttrs>, infer, compute,
                       /*data_dependent_shape=*/true};
  return d;
}

}  // namespace kiln
