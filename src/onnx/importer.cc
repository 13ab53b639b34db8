#include "onnx/importer.h"
#include "onnx/plugin_import.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "common/error.h"
#include "common/log.h"
#include "ops/infer.h"
#include "ops/op.h"
#include "ops/pointwise.h"
#include "onnx/importers_gen.h"

namespace kiln::onnx {

ImportContext::ImportContext(Graph& g, const NodeProto& node, int64_t opset,
                             std::vector<Value*> inputs, GraphImporter* importer)
    : graph_(g), node_(node), opset_(opset), inputs_(std::move(inputs)), importer_(importer) {
  outputs_.resize(node.output.size(), nullptr);
}

Value* ImportContext::input(size_t i) const {
  if (!has_input(i)) invalid(cat("input ", i, " is required but missing"));
  return inputs_[i];
}

void ImportContext::check_input_types() const {
  for (size_t i = 0; i < num_inputs(); ++i)
    if (has_input(i) && !dtype_is_supported(inputs_[i]->dtype))
      unsupported(cat("input ", i, " has unsupported type ", dtype_name(inputs_[i]->dtype)));
}

const Tensor* ImportContext::constant_input(size_t i) const {
  if (!has_input(i) || !inputs_[i]->is_constant()) return nullptr;
  return &inputs_[i]->data;
}

namespace {
const AttributeProto* typed_attr(const ImportContext& c, const std::string& n,
                                 AttributeProto::Type want, const char* want_name) {
  const AttributeProto* a = c.proto().attr(n);
  if (!a) return nullptr;
  if (a->type != want) c.invalid(cat("attribute '", n, "' should be of type ", want_name));
  return a;
}
}  // namespace

int64_t ImportContext::attr_int(const std::string& n, int64_t def) const {
  auto* a = typed_attr(*this, n, AttributeProto::Type::kInt, "INT");
  return a ? a->i : def;
}
double ImportContext::attr_float(const std::string& n, double def) const {
  auto* a = typed_attr(*this, n, AttributeProto::Type::kFloat, "FLOAT");
  return a ? a->f : def;
}
std::string ImportContext::attr_string(const std::string& n, const std::string& def) const {
  auto* a = typed_attr(*this, n, AttributeProto::Type::kString, "STRING");
  return a ? a->s : def;
}
std::vector<int64_t> ImportContext::attr_ints(const std::string& n,
                                              std::vector<int64_t> def) const {
  auto* a = typed_attr(*this, n, AttributeProto::Type::kInts, "INTS");
  return a ? a->ints : def;
}
std::vector<double> ImportContext::attr_floats(const std::string& n,
                                               std::vector<double> def) const {
  auto* a = typed_attr(*this, n, AttributeProto::Type::kFloats, "FLOATS");
  if (!a) return def;
  return std::vector<double>(a->floats.begin(), a->floats.end());
}
const Tensor* ImportContext::attr_tensor(const std::string& n) const {
  auto* a = typed_attr(*this, n, AttributeProto::Type::kTensor, "TENSOR");
  if (!a) return nullptr;
  if (!a->t || !a->t->value.defined())
    unsupported(cat("attribute '", n, "' holds a tensor kiln cannot use (string or empty type)"));
  return &a->t->value;
}

std::vector<Value*> ImportContext::add(const std::string& op, std::vector<Value*> inputs,
                                       std::unique_ptr<Attrs> attrs, size_t n_outputs) {
  std::vector<Value*> outs;
  std::string base = node_.name.empty() ? (node_.output.empty() ? op : node_.output[0]) : node_.name;
  for (size_t i = 0; i < n_outputs; ++i) outs.push_back(graph_.add_value(base + "/" + op));
  Node* n = graph_.add_node(op, std::move(inputs), outs, std::move(attrs),
                            graph_.unique_name(base + "/" + op));
  infer_node(*n);
  return outs;
}

Value* ImportContext::constant(Tensor t) {
  return graph_.add_constant(node_.name.empty() ? "const" : node_.name + "/const", std::move(t));
}

Value* ImportContext::const_i64(std::vector<int64_t> v, bool scalar) {
  Dims d = scalar ? Dims{} : Dims{static_cast<int64_t>(v.size())};
  return constant(Tensor::from_vector(DataType::kInt64, d, v));
}

Value* ImportContext::const_scalar(DataType dtype, double v) {
  Tensor t(dtype, {});
  t.set_f64(0, v);
  return constant(std::move(t));
}

Value* ImportContext::pointwise(const expr::Program& p, std::vector<Value*> inputs) {
  auto attrs = std::make_unique<PointwiseAttrs>();
  attrs->program = p;
  return add("Pointwise", std::move(inputs), std::move(attrs), p.outputs.size())[0];
}

Value* ImportContext::unary(expr::Op op, Value* x, DataType out) {
  expr::Program p;
  p.input_types = {x->dtype};
  p.outputs = {p.unary(op, p.input(0), out)};
  return pointwise(p, {x});
}

Value* ImportContext::binary(expr::Op op, Value* a, Value* b, DataType out) {
  expr::Program p;
  p.input_types = {a->dtype, b->dtype};
  p.outputs = {p.binary(op, p.input(0), p.input(1), out)};
  return pointwise(p, {a, b});
}

Value* ImportContext::cast(Value* x, DataType to) {
  if (x->dtype == to) return x;
  return unary(expr::Op::kCast, x, to);
}

void ImportContext::set_output(size_t i, Value* v) {
  if (i >= outputs_.size()) return;  // the model did not ask for this optional output
  outputs_[i] = v;
}

void ImportContext::unsupported(const std::string& reason) const {
  throw Error(StatusCode::kUnsupported, reason);
}
void ImportContext::deliberately_unsupported(const std::string& reason) const {
  throw Error(StatusCode::kUnsupported, std::string(kDeliberately) + reason);
}
void ImportContext::invalid(const std::string& reason) const {
  throw Error(StatusCode::kInvalidModel, reason);
}

bool is_deliberately_unsupported(std::string_view op) {
  static const std::set<std::string_view> skip = {
      // training
      "Adagrad", "Adam", "Momentum", "Gradient",
      // strings
      "StringNormalizer", "TfIdfVectorizer", "RegexFullMatch", "StringConcat", "StringSplit",
      // sequences and optionals
      "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert",
      "SequenceLength", "SequenceMap", "SplitToSequence", "ConcatFromSequence", "Optional",
      "OptionalGetElement", "OptionalHasElement",
      // random
      "Bernoulli", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
      "Multinomial"};
  return skip.count(op) > 0;
}

namespace {

struct Table {
  std::unordered_map<std::string, std::vector<const ImporterDef*>> by_op;
};

}  // namespace

namespace {

// The opset in which a default-domain op first appeared (tools/gen/first_opsets.py); 1 for ops
// the table does not know and for other domains.
int64_t first_opset(std::string_view domain, std::string_view op) {
  if (!domain.empty()) return 1;
  static const std::map<std::string_view, int64_t> table = {
#include "onnx/first_opsets.inc"
  };
  auto it = table.find(op);
  return it == table.end() ? 1 : it->second;
}

// The opsets an importer serves: its own range, from the op's first opset on.
int64_t effective_min(const ImporterDef& d) {
  return std::max(d.min_opset, first_opset(d.domain, d.op_type));
}

}  // namespace

std::vector<ImporterRange> importer_ranges() {
  std::map<std::pair<std::string, std::string>, ImporterRange> merged;
  for (const ImporterList* l : generated_importers())
    for (const ImporterDef& d : l->defs) {
      auto key = std::make_pair(std::string(d.domain), std::string(d.op_type));
      auto it = merged.find(key);
      if (it == merged.end()) {
        merged[key] = {key.first, key.second, effective_min(d), d.max_opset};
      } else {
        it->second.min_opset = std::min(it->second.min_opset, effective_min(d));
        it->second.max_opset = std::max(it->second.max_opset, d.max_opset);
      }
    }
  std::vector<ImporterRange> out;
  for (auto& [k, r] : merged) out.push_back(r);
  return out;
}

namespace {

const Table& table() {
  static const Table t = [] {
    Table t;
    for (const ImporterList* l : generated_importers())
      for (const ImporterDef& d : l->defs) {
        std::string key = std::string(d.domain) + "::" + std::string(d.op_type);
        t.by_op[key].push_back(&d);
      }
    return t;
  }();
  return t;
}

Shape shape_from_type(const TypeProto& t) {
  if (!t.has_shape) return Shape::unknown_rank();
  Shape s;
  for (const auto& d : t.shape) {
    if (d.has_value) s.dims.emplace_back(d.value);
    else if (!d.param.empty()) s.dims.push_back(Dim::sym(d.param));
    else s.dims.push_back(Dim::unknown());
  }
  return s;
}

}  // namespace

// Imports one graph: the model's, or a sub-graph whose unknown names resolve in its parent.
class GraphImporter {
 public:
  GraphImporter(Graph& g, const std::map<std::string, int64_t>& versions, int64_t opset,
                GraphImporter* parent)
      : g_(g), versions_(versions), opset_(opset), parent_(parent) {}

  std::vector<ImportProblem> problems;
  std::vector<Value*> captured;   // sub-graphs: the outer values behind the extra inputs

  // The value `name` names here; in a sub-graph, an outer value becomes a captured input (an
  // outer constant a constant of the sub-graph). nullptr when no graph defines it.
  Value* lookup(const std::string& name) {
    auto it = scope_.find(name);
    if (it != scope_.end()) return it->second;
    if (!parent_) return nullptr;
    Value* outer = parent_->lookup(name);
    if (!outer) return nullptr;
    Value* v = nullptr;
    if (outer->is_constant()) {
      v = g_.add_constant(name, outer->data);
    } else {
      v = g_.add_value(name, outer->dtype, outer->shape);
      g_.inputs.push_back(v);
      captured.push_back(outer);
    }
    scope_[name] = v;
    return v;
  }

  void add_initializers(const GraphProto& gp) {
    for (const auto& init : gp.initializer) {
      KILN_EXPECT(!init->name.empty(), StatusCode::kInvalidModel, "an initializer has no name");
      if (!init->value.defined()) {
        problems.push_back({init->name, "initializer", opset_,
                            cat("initializer '", init->name, "' has unsupported type ",
                                dtype_name(init->data_type)), false});
        continue;
      }
      scope_[init->name] = g_.add_constant(init->name, init->value);
    }
  }

  void add_inputs(const GraphProto& gp) {
    for (const auto& in : gp.input) {
      if (scope_.count(in.name)) continue;  // initializer listed as input (old IR): a constant
      if (in.type.kind != TypeProto::Kind::kTensor) {
        problems.push_back({in.name, "graph input", opset_,
                            cat("graph input '", in.name, "' is not a tensor (", kDeliberately,
                                "sequence and optional types)"), true});
        scope_[in.name] = g_.add_value(in.name);
        continue;
      }
      if (!dtype_is_supported(in.type.elem_type)) {
        // Strings and complex numbers are deliberately unsupported.
        problems.push_back({in.name, "graph input", opset_,
                            cat("graph input '", in.name, "' has unsupported type ",
                                dtype_name(in.type.elem_type)),
                            true});
        scope_[in.name] = g_.add_value(in.name);
        continue;
      }
      Value* v = g_.add_value(in.name, in.type.elem_type, shape_from_type(in.type));
      g_.inputs.push_back(v);
      scope_[in.name] = v;
    }
  }

  void import_nodes(const GraphProto& gp) {
    for (size_t ni = 0; ni < gp.node.size(); ++ni) import_node(gp.node[ni], ni);
  }

  // The graph's outputs. An output that is an input, a constant, or listed twice gets its own
  // copy so that output names stay unique and outputs are distinct buffers.
  void bind_outputs(const GraphProto& gp, bool sub) {
    std::set<Value*> seen_outputs;
    for (const auto& out : gp.output) {
      if (sub && out.type.kind != TypeProto::Kind::kTensor &&
          out.type.kind != TypeProto::Kind::kUnknown)
        fail(StatusCode::kUnsupported, kDeliberately, "sub-graph output '", out.name,
             "' is not a tensor (sequence and optional types)");
      Value* v = lookup(out.name);
      KILN_EXPECT(v != nullptr, StatusCode::kInvalidModel, "graph output '", out.name,
                  "' is not produced by any node");
      if (g_.is_graph_input(v) || v->is_constant() || seen_outputs.count(v)) {
        expr::Program p;
        p.input_types = {v->dtype};
        p.outputs = {p.input(0)};
        auto attrs = std::make_unique<PointwiseAttrs>();
        attrs->program = p;
        Value* copy = g_.add_value(out.name + "/copy", v->dtype, v->shape);
        g_.add_node("Pointwise", {v}, {copy}, std::move(attrs), out.name + "/copy");
        v = copy;
      }
      seen_outputs.insert(v);
      g_.outputs.push_back(v);
    }
  }

  // Imports a graph attribute of a node of this graph.
  Subgraph import_subgraph(const GraphProto& gp,
                           const std::vector<std::pair<DataType, Shape>>& input_types) {
    Subgraph s;
    s.graph = std::make_unique<Graph>();
    s.graph->name = gp.name;
    GraphImporter sub(*s.graph, versions_, opset_, this);
    sub.add_initializers(gp);
    GraphProto typed;   // the inputs, with the types the node gives where the body has none
    typed.input = gp.input;
    for (size_t i = 0; i < typed.input.size(); ++i) {
      TypeProto& t = typed.input[i].type;
      const bool untyped = t.kind == TypeProto::Kind::kUnknown ||
                           (t.kind == TypeProto::Kind::kTensor && t.elem_type == DataType::kUndefined);
      if (untyped && i < input_types.size() && input_types[i].first != DataType::kUndefined) {
        t.kind = TypeProto::Kind::kTensor;
        t.elem_type = input_types[i].first;
        const Shape& sh = input_types[i].second;
        t.has_shape = sh.rank_known;
        t.shape.clear();
        for (const Dim& d : sh.dims) {
          DimProto dp;
          dp.has_value = d.known();
          dp.value = d.value;
          dp.param = d.symbol;
          t.shape.push_back(dp);
        }
      }
      if (t.kind != TypeProto::Kind::kTensor)
        fail(StatusCode::kUnsupported, kDeliberately, "sub-graph input '", typed.input[i].name,
             "' is not a tensor (sequence and optional types)");
    }
    sub.add_inputs(typed);
    sub.import_nodes(gp);
    if (sub.problems.empty()) sub.bind_outputs(gp, true);
    if (!sub.problems.empty()) {
      bool all_skipped = true;
      StatusCode code = StatusCode::kUnsupported;
      for (const auto& p : sub.problems) {
        all_skipped &= p.skipped;
        if (p.code == StatusCode::kInvalidModel) code = StatusCode::kInvalidModel;
      }
      fail(code, all_skipped ? kDeliberately : "", "sub-graph '", gp.name, "': ",
           format_problems(sub.problems));
    }
    s.captured = std::move(sub.captured);
    return s;
  }

 private:
  void import_node(const NodeProto& np, size_t ni) {
    std::string label = np.name.empty() ? cat("#", ni) : np.name;
    std::vector<Value*> ins;
    for (const auto& name : np.input) {
      if (name.empty()) { ins.push_back(nullptr); continue; }
      Value* v = lookup(name);
      KILN_EXPECT(v != nullptr, StatusCode::kInvalidModel, "node '", label, "' (", np.op_type,
                  ") reads '", name,
                  "', which is not a graph input, an initializer, or an output of an earlier node"
                  " (dangling input, or the nodes are not in topological order / form a cycle)");
      ins.push_back(v);
    }
    auto bind_unknown_outputs = [&] {
      for (const auto& o : np.output)
        if (!o.empty() && !scope_.count(o)) scope_[o] = g_.add_value(o);
    };
    std::string domain = np.domain == "ai.onnx" ? "" : np.domain;
    auto vit = versions_.find(domain);
    int64_t dver = vit != versions_.end() ? vit->second : 0;
    if (is_deliberately_unsupported(np.op_type)) {
      problems.push_back({label, np.op_type, dver, "deliberately unsupported op family", true});
      bind_unknown_outputs();
      return;
    }
    bool broken_input = false;
    for (Value* v : ins)
      if (v && v->dtype == DataType::kUndefined && !v->producer && !v->is_constant() &&
          !g_.is_graph_input(v))
        broken_input = true;
    if (broken_input) {  // downstream of a node that already failed: its problem was reported
      bind_unknown_outputs();
      return;
    }
    auto it = table().by_op.find(domain + "::" + np.op_type);
    const ImporterDef* def = nullptr;
    if (it != table().by_op.end())
      for (const ImporterDef* d : it->second)
        if (dver >= effective_min(*d) && dver <= d->max_opset) def = d;
    std::shared_ptr<const PluginCreator> plugin = plugin_for(domain, np);
    if (domain.empty() && dver <= 0 && !plugin) {
      problems.push_back(
          {label, np.op_type, 0, "the model imports no version of the default ONNX opset", false});
      bind_unknown_outputs();
      return;
    }
    if (!def && !plugin) {
      const int64_t first = first_opset(domain, np.op_type);
      std::string why = it == table().by_op.end()
                            ? (domain.empty() ? std::string("no importer for this op")
                                              : cat("no importer for this op, and no plugin '", np.op_type,
                                                    "' of namespace '", domain,
                                                    "' is registered (load its library with --plugin LIB.so)"))
                        : dver < first
                            ? cat("the op does not exist before opset ", first,
                                  " (the model imports opset ", dver, ")")
                            : cat("opset ", dver, " of this op is not supported");
      problems.push_back({label, np.op_type, dver, why, false});
      bind_unknown_outputs();
      return;
    }
    ImportContext ctx(g_, np, dver, ins, this);
    try {
      if (plugin)
        import_plugin(ctx, *plugin);
      else
        def->import(ctx);
      for (size_t i = 0; i < np.output.size(); ++i) {
        if (np.output[i].empty()) continue;
        // A model naming more outputs than the op has.
        if (ctx.outputs()[i] == nullptr)
          ctx.invalid(cat("output ", i, " ('", np.output[i], "') is not an output of ", np.op_type,
                          " (opset ", dver, ")"));
      }
    } catch (const Error& e) {
      if (e.code() == StatusCode::kInternal) throw;
      std::string msg = e.node().empty() ? e.message() : e.node() + ": " + e.message();
      bool skipped = e.message().rfind(kDeliberately, 0) == 0;
      problems.push_back({label, np.op_type, dver, msg, skipped, e.code()});
      bind_unknown_outputs();
      return;
    }
    for (size_t i = 0; i < np.output.size(); ++i) {
      const std::string& oname = np.output[i];
      if (oname.empty()) continue;
      KILN_EXPECT(!scope_.count(oname) || scope_[oname] == ctx.outputs()[i],
                  StatusCode::kInvalidModel, "value '", oname, "' is produced twice (node '",
                  label, "')");
      scope_[oname] = ctx.outputs()[i];
    }
  }

  Graph& g_;
  const std::map<std::string, int64_t>& versions_;
  int64_t opset_;
  GraphImporter* parent_;
  std::unordered_map<std::string, Value*> scope_;
};

Subgraph ImportContext::import_subgraph(
    const std::string& n, const std::vector<std::pair<DataType, Shape>>& input_types) const {
  auto* a = typed_attr(*this, n, AttributeProto::Type::kGraph, "GRAPH");
  if (!a || !a->g) invalid(cat("graph attribute '", n, "' is required"));
  KILN_CHECK(importer_ != nullptr, "import_subgraph outside an import");
  return importer_->import_subgraph(*a->g, input_types);
}

std::vector<Value*> unify_captures(const std::vector<Subgraph*>& subs) {
  std::vector<Value*> all;
  for (const Subgraph* s : subs)
    for (Value* v : s->captured)
      if (std::find(all.begin(), all.end(), v) == all.end()) all.push_back(v);
  for (Subgraph* s : subs) {
    Graph& g = *s->graph;
    const size_t formal = g.inputs.size() - s->captured.size();
    std::vector<Value*> inputs(g.inputs.begin(), g.inputs.begin() + formal);
    for (Value* outer : all) {
      auto it = std::find(s->captured.begin(), s->captured.end(), outer);
      if (it != s->captured.end())
        inputs.push_back(g.inputs[formal + (it - s->captured.begin())]);
      else
        inputs.push_back(g.add_value(outer->name, outer->dtype, outer->shape));
    }
    g.inputs = std::move(inputs);
    s->captured = all;
  }
  return all;
}

ImportResult import_model(const ModelProto& model) {
  ImportResult res;
  KILN_EXPECT(model.graph != nullptr, StatusCode::kInvalidModel, "the model has no graph");
  // A model without the default opset can still consist of other domains' ops (e.g. training);
  // a default-domain node in it is reported below.
  int64_t opset = model.default_opset();
  res.opset = opset;
  res.producer = model.producer_name;
  std::map<std::string, int64_t> domain_versions;
  for (const auto& o : model.opset_import) domain_versions[o.domain == "ai.onnx" ? "" : o.domain] = o.version;

  const GraphProto& gp = *model.graph;
  auto g = std::make_unique<Graph>();
  g->name = gp.name;
  GraphImporter imp(*g, domain_versions, opset, nullptr);
  imp.add_initializers(gp);
  imp.add_inputs(gp);
  imp.import_nodes(gp);
  imp.bind_outputs(gp, false);
  res.problems = std::move(imp.problems);
  // Keep ONNX output names on the values the user sees. An output that is also a graph input
  // (ONNX allows one tensor to be both) cannot share the input's name in kiln's one namespace:
  // the input keeps it, since inputs are what --shapes, --input and set_input_shape name, and
  // the output becomes NAME/output.
  if (res.problems.empty()) {
    for (size_t i = 0; i < gp.output.size(); ++i) {
      Value* v = g->outputs[i];
      std::string want = gp.output[i].name;
      if (Value* other = g->find_value(want); other && other != v && g->is_graph_input(other)) {
        want = g->unique_name(want + "/output");
        log(LogLevel::kWarning, "graph output '", gp.output[i].name,
            "' is also a graph input; its output copy is named '", want, "'");
      }
      g->rename(v, want);
    }
    res.graph = std::move(g);
  }
  return res;
}

std::string format_problems(const std::vector<ImportProblem>& problems) {
  std::string s = cat(problems.size(), " node(s) cannot be imported:");
  for (const auto& p : problems)
    s += cat("\n  node '", p.node_name, "' op ", p.op_type, " (opset ", p.opset, "): ", p.reason);
  return s;
}

std::unique_ptr<Graph> import_model_or_throw(const ModelProto& model) {
  ImportResult r = import_model(model);
  if (!r.problems.empty()) {
    // An invalid node makes the model invalid; otherwise kiln merely lacks support.
    StatusCode code = StatusCode::kUnsupported;
    for (auto& p : r.problems)
      if (p.code == StatusCode::kInvalidModel) code = StatusCode::kInvalidModel;
    fail(code, format_problems(r.problems));
  }
  return std::move(r.graph);
}

}  // namespace kiln::onnx
