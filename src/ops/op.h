// The canonical op interface. Each op lives in src/ops/<op>.cc and exports one function
// `const OpDef& kiln_op_<name>()`, listed in src/ops/CMakeLists.txt, from which the registry is
// generated.
#pragma once
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "ir/graph.h"

namespace kiln {

class InferContext {
 public:
  explicit InferContext(Node& node, std::vector<const Tensor*> known = {})
      : node_(node), known_(std::move(known)) { known_.resize(node.inputs.size(), nullptr); }
  Node& node() const { return node_; }
  size_t num_inputs() const { return node_.inputs.size(); }
  bool has_input(size_t i) const { return i < node_.inputs.size() && node_.inputs[i]; }
  const Value& input(size_t i) const;          // throws when absent
  DataType dtype(size_t i) const { return input(i).dtype; }
  const Shape& shape(size_t i) const { return input(i).shape; }
  // The input's value when known at this point (a constant, or a run-time tensor).
  const Tensor* value(size_t i) const;
  void set_output(size_t i, DataType dtype, Shape shape);
  [[noreturn]] void error(const std::string& msg) const;   // kInvalidModel naming the node

 private:
  Node& node_;
  std::vector<const Tensor*> known_;
};

// Run-time view of one node's compute: inputs are concrete tensors (an omitted optional input is
// an undefined Tensor); outputs arrive allocated with the inferred shape when that shape was
// static, or undefined when the op must allocate them itself (data-dependent shapes).
struct ComputeArgs {
  const Node& node;
  std::span<const Tensor> inputs;
  std::span<Tensor> outputs;
  const Tensor& in(size_t i) const { return inputs[i]; }
  bool has(size_t i) const { return i < inputs.size() && inputs[i].defined(); }
  Tensor& out(size_t i) const { return outputs[i]; }
};

struct OpDef {
  std::string_view name;
  std::unique_ptr<Attrs> (*make_attrs)() = nullptr;
  void (*infer)(InferContext&) = nullptr;
  // Reference compute: the oracle every backend is tested against. Float math in double.
  void (*compute)(const ComputeArgs&) = nullptr;
  // Output shapes depend on input values that may only be known at run time.
  bool data_dependent_shape = false;
  // compute() reads only the dims of its inputs, never their data (Shape, Size): such a node
  // folds at build time as soon as its input's shape is known.
  bool reads_only_dims = false;
};

const OpDef* find_op(std::string_view name);   // nullptr when unknown
const OpDef& op_def(std::string_view name);    // throws kInternal when unknown

template <class T>
std::unique_ptr<Attrs> make_attrs_of() { return std::make_unique<T>(); }

}  // namespace kiln
