// Test helper: imports a hand-built ONNX model and runs the graph node by node the way the runtime
// does (infer() with every input value known, allocate, compute()), so that importer lowerings can
// be checked end to end without the engine.
#pragma once
#include <gtest/gtest.h>

#include <unordered_map>
#include <vector>

#include "onnx/importer.h"
#include "ops/op.h"
#include "unit/proto_builder.h"

namespace kiln::testing {

inline std::unique_ptr<Graph> import_graph(const test::ProtoWriter& g, int64_t opset) {
  onnx::ModelProto m = test::proto::parse_bytes(test::proto::model(g, opset).str());
  return onnx::import_model_or_throw(m);
}

inline std::vector<Tensor> run_graph(Graph& g, const std::vector<Tensor>& inputs) {
  std::unordered_map<const Value*, Tensor> vals;
  EXPECT_EQ(g.inputs.size(), inputs.size());
  for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i) {
    vals[g.inputs[i]] = inputs[i];
    g.inputs[i]->shape = Shape::from(inputs[i].dims());
  }
  for (const auto& v : g.values())
    if (v->is_constant()) vals[v.get()] = v->data;
  for (const auto& n : g.nodes()) {
    std::vector<Tensor> ins(n->inputs.size());
    std::vector<const Tensor*> known(n->inputs.size(), nullptr);
    for (size_t k = 0; k < n->inputs.size(); ++k) {
      if (!n->inputs[k]) continue;
      ins[k] = vals.at(n->inputs[k]);
      known[k] = &ins[k];
    }
    InferContext ctx(*n, known);
    n->def->infer(ctx);
    std::vector<Tensor> outs(n->outputs.size());
    for (size_t k = 0; k < outs.size(); ++k)
      if (!n->def->data_dependent_shape)
        outs[k] = Tensor(n->outputs[k]->dtype, n->outputs[k]->shape.concrete());
    n->def->compute(ComputeArgs{*n, ins, outs});
    for (size_t k = 0; k < outs.size(); ++k) vals[n->outputs[k]] = outs[k];
  }
  std::vector<Tensor> res;
  for (const Value* v : g.outputs) res.push_back(vals.at(v));
  return res;
}

}  // namespace kiln::testing
