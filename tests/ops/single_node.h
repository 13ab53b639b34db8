// Test helper: one canonical node in a graph of its own, inferred and computed the way the runtime
// does (infer() again with every input value known, allocate outputs, compute()). With it come the
// shared helpers of test_util.h.
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "ops/infer.h"
#include "ops/op.h"
#include "test_util.h"

namespace kiln::testing {

// An input of a node under test: its type and shape, and its value when the test gives one
// (`constant` makes the value visible at build time).
struct NodeInput {
  DataType dtype = DataType::kUndefined;
  Shape shape;
  Tensor value;
  bool constant = false;
  bool absent = false;

  static NodeInput of(Tensor t) { return {t.dtype(), Shape::from(t.dims()), t, false, false}; }
  static NodeInput constant_of(Tensor t) {
    return {t.dtype(), Shape::from(t.dims()), t, true, false};
  }
  static NodeInput shaped(DataType t, Shape s) { return {t, std::move(s), Tensor(), false, false}; }
  static NodeInput none() { return {DataType::kUndefined, Shape(), Tensor(), false, true}; }
};

// When set (tests/gpu/op_mirror.cc sets it for KILN_TEST_DEVICE=cuda), every SingleNode::run()
// also runs the node in a plan for that device and compares with the reference outputs.
using DeviceMirror = void (*)(std::unique_ptr<Graph> graph, const std::vector<NodeInput>& inputs,
                              const std::vector<Tensor>& reference);
inline DeviceMirror& device_mirror() {
  static DeviceMirror m = nullptr;
  return m;
}

class SingleNode {
 public:
  SingleNode(const std::string& op, std::unique_ptr<Attrs> attrs, std::vector<NodeInput> inputs,
             size_t n_outputs = 1)
      : inputs_(std::move(inputs)) {
    std::vector<Value*> ins;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      const NodeInput& in = inputs_[i];
      if (in.absent) {
        ins.push_back(nullptr);
        continue;
      }
      Value* v = in.constant ? g_.add_constant("in" + std::to_string(i), in.value)
                             : g_.add_value("in" + std::to_string(i), in.dtype, in.shape);
      if (!in.constant) g_.inputs.push_back(v);
      ins.push_back(v);
    }
    std::vector<Value*> outs;
    for (size_t i = 0; i < n_outputs; ++i) outs.push_back(g_.add_value("out" + std::to_string(i)));
    node_ = g_.add_node(op, ins, outs, std::move(attrs), "node");
  }

  // Build-time inference: only constant inputs' values are known.
  void infer() { infer_node(*node_); }
  const Value& out(size_t i) const { return *node_->outputs[i]; }

  // A copy of the graph with the node's outputs as graph outputs, as a plan build wants it.
  std::unique_ptr<Graph> graph_for_build() const {
    std::unique_ptr<Graph> g = g_.clone();
    for (const Value* o : node_->outputs) g->outputs.push_back(g->find_value(o->name));
    return g;
  }

  // Run-time: every input value known, outputs allocated from the inferred shapes.
  std::vector<Tensor> run() {
    std::unique_ptr<Graph> mirrored = device_mirror() ? graph_for_build() : nullptr;
    std::vector<Tensor> outs = run_reference();
    if (mirrored) device_mirror()(std::move(mirrored), inputs_, outs);
    return outs;
  }

  std::vector<Tensor> run_reference() {
    std::vector<Tensor> ins(inputs_.size());
    std::vector<const Tensor*> known(inputs_.size(), nullptr);
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (inputs_[i].absent) continue;
      ins[i] = inputs_[i].value;
      node_->inputs[i]->shape = Shape::from(ins[i].dims());
      known[i] = &ins[i];
    }
    InferContext ctx(*node_, known);
    node_->def->infer(ctx);
    std::vector<Tensor> outs(node_->outputs.size());
    for (size_t k = 0; k < outs.size(); ++k) {
      const Value* o = node_->outputs[k];
      if (!node_->def->data_dependent_shape) outs[k] = Tensor(o->dtype, o->shape.concrete());
    }
    ComputeArgs args{*node_, ins, outs};
    node_->def->compute(args);
    return outs;
  }

 private:
  Graph g_;
  Node* node_ = nullptr;
  std::vector<NodeInput> inputs_;
};

// Infers (as at build time) then runs (as at run time) one node; returns its outputs.
inline std::vector<Tensor> run_node(const std::string& op, std::unique_ptr<Attrs> attrs,
                                    std::vector<NodeInput> inputs, size_t n_outputs = 1) {
  SingleNode n(op, std::move(attrs), std::move(inputs), n_outputs);
  n.infer();
  return n.run();
}
// The same, for the first (or only) output.
inline Tensor run_node1(const std::string& op, std::unique_ptr<Attrs> attrs,
                        std::vector<NodeInput> inputs) {
  return run_node(op, std::move(attrs), std::move(inputs))[0];
}

// A constant 1-D int64 input (axes, starts, shapes...).
inline NodeInput c64(std::vector<int64_t> v) {
  return NodeInput::constant_of(i64({static_cast<int64_t>(v.size())}, v));
}

}  // namespace kiln::testing

namespace kiln {
// Some tests name the helpers kiln::optest (it does not read like gtest's ::testing); both work.
namespace optest = testing;
}  // namespace kiln
