// ONNX → canonical IR. Each file in src/onnx/importers/ covers one ONNX op family and exports
// `const ImporterList& kiln_import_<family>()`, listed in src/onnx/CMakeLists.txt.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "expr/program.h"
#include "ir/graph.h"
#include "onnx/model.h"

namespace kiln::onnx {

class GraphImporter;

// A sub-graph as imported (If branches, Loop and Scan bodies): its inputs are its own, then one
// per outer value it reads (`captured`, in that order). An outer constant it reads is copied in
// as a constant instead.
struct Subgraph {
  std::unique_ptr<Graph> graph;
  std::vector<Value*> captured;   // values of the graph around it
};

// Gives every sub-graph of one node the same captured inputs in the same order, and returns
// those outer values (the node's extra inputs): a sub-graph that does not read one of them gets
// an input it does not use.
std::vector<Value*> unify_captures(const std::vector<Subgraph*>& subs);

class ImportContext {
 public:
  ImportContext(Graph& g, const NodeProto& node, int64_t opset, std::vector<Value*> inputs,
                GraphImporter* importer = nullptr);

  Graph& graph() const { return graph_; }
  const NodeProto& proto() const { return node_; }
  int64_t opset() const { return opset_; }
  const std::string& name() const { return node_.name; }

  // Inputs. An empty ONNX input name (omitted optional) is absent.
  size_t num_inputs() const { return inputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  Value* input(size_t i) const;           // throws "input i is required"
  Value* input_or_null(size_t i) const { return has_input(i) ? inputs_[i] : nullptr; }
  // Lowerings that adapt an operand first (legacy broadcasting) put the adapted value in its
  // place.
  void replace_input(size_t i, Value* v) { inputs_.at(i) = v; }
  // The constant tensor of input i, or nullptr when it is not a constant.
  const Tensor* constant_input(size_t i) const;
  // Reports kUnsupported for the first present input whose type kiln does not support.
  void check_input_types() const;
  size_t num_outputs() const { return node_.output.size(); }
  bool wants_output(size_t i) const { return i < node_.output.size() && !node_.output[i].empty(); }

  // Attributes, with defaults. Throw kInvalidModel when present with the wrong type.
  bool has_attr(const std::string& n) const { return node_.attr(n) != nullptr; }
  int64_t attr_int(const std::string& n, int64_t def) const;
  double attr_float(const std::string& n, double def) const;
  std::string attr_string(const std::string& n, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& n, std::vector<int64_t> def = {}) const;
  std::vector<double> attr_floats(const std::string& n, std::vector<double> def = {}) const;
  const Tensor* attr_tensor(const std::string& n) const;
  // Imports graph attribute `n` (see Subgraph). Throws kUnsupported (or kInvalidModel) listing
  // every node of the sub-graph that cannot be imported. ONNX lets a body's inputs leave out
  // their types (the node's inputs give them): `input_types` holds, per input, the type to
  // assume then (kUndefined: none).
  Subgraph import_subgraph(const std::string& n,
                           const std::vector<std::pair<DataType, Shape>>& input_types = {}) const;

  // Adds a canonical node with shape inference. Returns its outputs (n_outputs of them).
  std::vector<Value*> add(const std::string& op, std::vector<Value*> inputs,
                          std::unique_ptr<Attrs> attrs = nullptr, size_t n_outputs = 1);
  Value* add1(const std::string& op, std::vector<Value*> inputs,
              std::unique_ptr<Attrs> attrs = nullptr) {
    return add(op, std::move(inputs), std::move(attrs), 1)[0];
  }
  Value* constant(Tensor t);
  Value* const_i64(std::vector<int64_t> v, bool scalar = false);
  Value* const_scalar(DataType dtype, double v);

  // Pointwise helpers: a one-instruction program over the given inputs.
  Value* pointwise(const expr::Program& p, std::vector<Value*> inputs);
  Value* unary(expr::Op op, Value* x, DataType out = DataType::kUndefined);
  Value* binary(expr::Op op, Value* a, Value* b, DataType out = DataType::kUndefined);
  Value* cast(Value* x, DataType to);

  // Binds ONNX output i to a value (the last value the lowering produced). Every output the
  // model names must be bound; the importer checks.
  void set_output(size_t i, Value* v);
  const std::vector<Value*>& outputs() const { return outputs_; }

  [[noreturn]] void unsupported(const std::string& reason) const;  // kUnsupported
  [[noreturn]] void invalid(const std::string& reason) const;      // kInvalidModel
  // For features kiln deliberately leaves out (training, randomness, strings, sequences): the
  // node is reported as skipped rather than failed.
  [[noreturn]] void deliberately_unsupported(const std::string& reason) const;

 private:
  Graph& graph_;
  const NodeProto& node_;
  int64_t opset_;
  std::vector<Value*> inputs_;
  std::vector<Value*> outputs_;
  GraphImporter* importer_ = nullptr;
};

inline constexpr const char* kDeliberately = "deliberately unsupported: ";
// The newest default-domain opset whose changes kiln's importers know (ONNX 1.17).
inline constexpr int64_t kNewestOpset = 22;

struct ImporterDef {
  std::string_view op_type;
  void (*import)(ImportContext&);
  // The importer handles models of opsets [min_opset, max_opset]. An op serves every opset from
  // its last change on, up to the newest opset kiln knows (kNewestOpset); an importer whose op
  // changed later in a way it does not implement says so with a lower max_opset.
  int64_t min_opset = 1;
  int64_t max_opset = kNewestOpset;
  std::string_view domain = "";   // "" = ai.onnx
};
struct ImporterList {
  std::vector<ImporterDef> defs;
};

// Every op an importer exists for, with the opsets it serves (`kiln ops`, docs/operators.md).
struct ImporterRange {
  std::string domain, op_type;
  int64_t min_opset = 1, max_opset = kNewestOpset;
};
std::vector<ImporterRange> importer_ranges();

// Skipped on purpose (training, strings, sequences/optional, random): reported as "skipped".
bool is_deliberately_unsupported(std::string_view op_type);

struct ImportProblem {
  std::string node_name;
  std::string op_type;
  int64_t opset = 0;
  std::string reason;
  bool skipped = false;   // deliberately unsupported op family
  StatusCode code = StatusCode::kUnsupported;   // kInvalidModel for a malformed node
};

struct ImportResult {
  std::unique_ptr<Graph> graph;   // null when problems is non-empty
  std::vector<ImportProblem> problems;
  int64_t opset = 0;
  std::string producer;
};

// Imports without throwing for unsupported/invalid nodes: every problem is collected.
// Structural errors (malformed file, dangling input, cycle) still throw kiln::Error.
ImportResult import_model(const ModelProto& model);
// Imports and throws one kUnsupported/kInvalidModel error listing every problem.
std::unique_ptr<Graph> import_model_or_throw(const ModelProto& model);
std::string format_problems(const std::vector<ImportProblem>& problems);

}  // namespace kiln::onnx
