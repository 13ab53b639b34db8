// The IR: Values (tensors, weights are constant Values), Nodes (canonical ops), and the Graph.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/attrs.h"
#include "ir/shape.h"
#include "kiln/types.h"

namespace kiln {

struct OpDef;
class Node;
class Graph;

class Value {
 public:
  std::string name;
  DataType dtype = DataType::kUndefined;
  Shape shape = Shape::unknown_rank();
  Tensor data;                 // defined() for constants (weights, folded values)
  Node* producer = nullptr;
  std::vector<Node*> consumers;

  bool is_constant() const { return data.defined(); }
  std::string str() const;     // "name:float32[1,3,224,224]"
};

class Node {
 public:
  std::string name;
  const OpDef* def = nullptr;
  std::unique_ptr<Attrs> attrs;
  std::vector<Value*> inputs;   // nullptr for an omitted optional input
  std::vector<Value*> outputs;
  // The names of the imported (ONNX) nodes this node computes: empty means just `name`. Passes
  // that fuse or merge nodes add the absorbed nodes' origins (absorb_origins), so that
  // `kiln inspect` can say which original nodes each step covers.
  std::vector<std::string> origins;
  // Control flow (If: then, else; Loop and Scan: the body). A sub-graph reads nothing of the
  // graph around it implicitly: every outer value it uses is one of the node's inputs and one of
  // the sub-graph's inputs (ops/control_flow.h says which). Empty for every other op.
  std::vector<std::unique_ptr<Graph>> subgraphs;

  Node();
  ~Node();
  std::string_view op() const;
  template <class T> const T& a() const { return static_cast<const T&>(*attrs); }
  template <class T> T& a() { return static_cast<T&>(*attrs); }
  Value* in(size_t i) const { return i < inputs.size() ? inputs[i] : nullptr; }
  std::string label() const;    // "name (Op)"
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  std::unique_ptr<Graph> clone() const;

  // Values. Names are unique; add_value makes a fresh name from `hint` when taken.
  Value* add_value(const std::string& hint, DataType dtype = DataType::kUndefined,
                   Shape shape = Shape::unknown_rank());
  Value* add_constant(const std::string& hint, Tensor data);
  Value* find_value(const std::string& name) const;
  std::string unique_name(const std::string& hint);
  // Renames v; a value already holding `name` is renamed out of the way first.
  void rename(Value* v, std::string name);  // by value: callers pass other values' names

  // Nodes are kept in a valid topological order by the passes (see toposort()).
  Node* add_node(const std::string& op, std::vector<Value*> inputs, std::vector<Value*> outputs,
                 std::unique_ptr<Attrs> attrs = nullptr, const std::string& name = "");
  void remove_node(Node* n);
  void replace_all_uses(Value* from, Value* to);   // includes graph outputs
  void set_input(Node* n, size_t i, Value* v);
  void toposort();                                 // throws kInvalidModel naming a cycle

  std::vector<Value*> inputs;
  std::vector<Value*> outputs;
  std::string name;

  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }
  void remove_unused_values();   // values with no producer, no consumers, not graph I/O

  bool is_graph_output(const Value* v) const;
  bool is_graph_input(const Value* v) const;

 private:
  std::vector<std::unique_ptr<Value>> values_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::unordered_map<std::string, Value*> by_name_;
  uint64_t name_counter_ = 0;
};

// n's origins (its own name when it has none recorded).
std::vector<std::string> node_origins(const Node& n);
// Adds `from`'s origins to `into`'s (keeping `into`'s own first, no repeats).
void absorb_origins(Node& into, const Node& from);

std::string print_graph(const Graph& g);
// Checks types, shapes, single producer, acyclic order, no dangling values. Throws kInternal
// (or kInvalidModel when `user_input`) describing the first problem.
void verify_graph(const Graph& g, bool user_input = false);

}  // namespace kiln
