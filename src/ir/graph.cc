#include "ir/graph.h"

#include <algorithm>
#include <sstream>
#include <unordered_set>

#include "common/error.h"
#include "ops/op.h"

namespace kiln {

std::string Value::str() const {
  return name + ":" + dtype_name(dtype) + shape.str() + (is_constant() ? "=const" : "");
}

Node::Node() = default;
Node::~Node() = default;

std::string_view Node::op() const { return def ? def->name : std::string_view("?"); }
std::string Node::label() const { return "'" + name + "' (" + std::string(op()) + ")"; }

std::string Graph::unique_name(const std::string& hint) {
  std::string base = hint.empty() ? "v" : hint;
  if (!by_name_.count(base)) return base;
  for (;;) {
    std::string n = base + "__" + std::to_string(++name_counter_);
    if (!by_name_.count(n)) return n;
  }
}

void Graph::rename(Value* v, std::string name) {
  if (v->name == name) return;
  Value* other = find_value(name);
  if (other && other != v) {
    std::string moved = unique_name(name + "/renamed");
    by_name_.erase(other->name);
    other->name = moved;
    by_name_[moved] = other;
  }
  if (by_name_.count(v->name) && by_name_[v->name] == v) by_name_.erase(v->name);
  v->name = name;
  by_name_[name] = v;
}

Value* Graph::add_value(const std::string& hint, DataType dtype, Shape shape) {
  auto v = std::make_unique<Value>();
  v->name = unique_name(hint);
  v->dtype = dtype;
  v->shape = std::move(shape);
  Value* p = v.get();
  by_name_[p->name] = p;
  values_.push_back(std::move(v));
  return p;
}

Value* Graph::add_constant(const std::string& hint, Tensor data) {
  Value* v = add_value(hint, data.dtype(), Shape::from(data.dims()));
  v->data = std::move(data);
  return v;
}

Value* Graph::find_value(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Node* Graph::add_node(const std::string& op, std::vector<Value*> inputs,
                      std::vector<Value*> outputs, std::unique_ptr<Attrs> attrs,
                      const std::string& name) {
  auto n = std::make_unique<Node>();
  n->def = &op_def(op);
  n->attrs = attrs ? std::move(attrs) : n->def->make_attrs();
  n->name = name.empty() ? op + "_" + std::to_string(nodes_.size()) : name;
  n->inputs = std::move(inputs);
  n->outputs = std::move(outputs);
  for (Value* v : n->inputs)
    if (v) v->consumers.push_back(n.get());
  for (Value* v : n->outputs) {
    KILN_CHECK(v->producer == nullptr, "value ", v->name, " already has a producer");
    v->producer = n.get();
  }
  nodes_.push_back(std::move(n));
  return nodes_.back().get();
}

void Graph::remove_node(Node* n) {
  for (Value* v : n->inputs) {
    if (!v) continue;
    auto& c = v->consumers;
    auto it = std::find(c.begin(), c.end(), n);
    if (it != c.end()) c.erase(it);
  }
  for (Value* v : n->outputs)
    if (v->producer == n) v->producer = nullptr;
  auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](auto& p) { return p.get() == n; });
  KILN_CHECK(it != nodes_.end());
  nodes_.erase(it);
}

void Graph::set_input(Node* n, size_t i, Value* v) {
  Value* old = n->inputs[i];
  if (old) {
    auto& c = old->consumers;
    auto it = std::find(c.begin(), c.end(), n);
    if (it != c.end()) c.erase(it);
  }
  n->inputs[i] = v;
  if (v) v->consumers.push_back(n);
}

void Graph::replace_all_uses(Value* from, Value* to) {
  auto consumers = from->consumers;
  for (Node* n : consumers)
    for (size_t i = 0; i < n->inputs.size(); ++i)
      if (n->inputs[i] == from) set_input(n, i, to);
  for (auto& o : outputs)
    if (o == from) o = to;
}

void Graph::toposort() {
  std::unordered_map<const Node*, int> pending;
  std::vector<Node*> ready;
  for (auto& n : nodes_) {
    int deps = 0;
    for (Value* v : n->inputs)
      if (v && v->producer) ++deps;
    pending[n.get()] = deps;
    if (deps == 0) ready.push_back(n.get());
  }
  std::vector<Node*> order;
  // Process in original order where possible for stable output.
  std::unordered_map<const Node*, size_t> pos;
  for (size_t i = 0; i < nodes_.size(); ++i) pos[nodes_[i].get()] = i;
  auto cmp = [&](Node* a, Node* b) { return pos[a] > pos[b]; };
  std::make_heap(ready.begin(), ready.end(), cmp);
  while (!ready.empty()) {
    std::pop_heap(ready.begin(), ready.end(), cmp);
    Node* n = ready.back();
    ready.pop_back();
    order.push_back(n);
    for (Value* v : n->outputs)
      for (Node* c : v->consumers)
        for (Value* ci : c->inputs)
          if (ci == v && --pending[c] == 0) {
            ready.push_back(c);
            std::push_heap(ready.begin(), ready.end(), cmp);
          }
  }
  if (order.size() != nodes_.size()) {
    std::string names;
    for (auto& n : nodes_)
      if (pending[n.get()] > 0) {
        if (!names.empty()) names += ", ";
        names += n->label();
        if (names.size() > 300) { names += ", ..."; break; }
      }
    fail(StatusCode::kInvalidModel, "the graph has a cycle through node(s) ", names);
  }
  std::vector<std::unique_ptr<Node>> sorted;
  for (Node* n : order) {
    auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](auto& p) { return p.get() == n; });
    sorted.push_back(std::move(*it));
  }
  nodes_ = std::move(sorted);
}

bool Graph::is_graph_output(const Value* v) const {
  return std::find(outputs.begin(), outputs.end(), v) != outputs.end();
}
bool Graph::is_graph_input(const Value* v) const {
  return std::find(inputs.begin(), inputs.end(), v) != inputs.end();
}

void Graph::remove_unused_values() {
  std::vector<std::unique_ptr<Value>> keep;
  for (auto& v : values_) {
    if (v->producer || !v->consumers.empty() || is_graph_input(v.get()) ||
        is_graph_output(v.get()))
      keep.push_back(std::move(v));
    else if (by_name_.count(v->name) && by_name_[v->name] == v.get())
      by_name_.erase(v->name);
  }
  values_ = std::move(keep);
}

std::unique_ptr<Graph> Graph::clone() const {
  auto g = std::make_unique<Graph>();
  g->name = name;
  g->name_counter_ = name_counter_;
  std::unordered_map<const Value*, Value*> vm;
  for (auto& v : values_) {
    auto nv = std::make_unique<Value>();
    nv->name = v->name;
    nv->dtype = v->dtype;
    nv->shape = v->shape;
    nv->data = v->data;  // shares weight storage: constants are immutable
    vm[v.get()] = nv.get();
    g->by_name_[nv->name] = nv.get();
    g->values_.push_back(std::move(nv));
  }
  for (auto& n : nodes_) {
    auto nn = std::make_unique<Node>();
    nn->name = n->name;
    nn->def = n->def;
    nn->attrs = n->attrs->clone();
    nn->origins = n->origins;
    for (const auto& sg : n->subgraphs) nn->subgraphs.push_back(sg->clone());
    for (Value* v : n->inputs) {
      Value* m = v ? vm.at(v) : nullptr;
      nn->inputs.push_back(m);
      if (m) m->consumers.push_back(nn.get());
    }
    for (Value* v : n->outputs) {
      Value* m = vm.at(v);
      nn->outputs.push_back(m);
      m->producer = nn.get();
    }
    g->nodes_.push_back(std::move(nn));
  }
  for (Value* v : inputs) g->inputs.push_back(vm.at(v));
  for (Value* v : outputs) g->outputs.push_back(vm.at(v));
  return g;
}

std::vector<std::string> node_origins(const Node& n) {
  if (n.origins.empty()) return {n.name};
  return n.origins;
}

void absorb_origins(Node& into, const Node& from) {
  std::vector<std::string> merged = node_origins(into);
  for (auto& o : node_origins(from))
    if (std::find(merged.begin(), merged.end(), o) == merged.end()) merged.push_back(o);
  into.origins = std::move(merged);
}

namespace {
std::string indent(const std::string& text, const std::string& pad) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size() - 1;
    out += pad + text.substr(start, end - start + 1);
    start = end + 1;
  }
  return out;
}
}  // namespace

std::string print_graph(const Graph& g) {
  std::ostringstream os;
  os << "graph " << g.name << "\n  inputs:";
  for (Value* v : g.inputs) os << " " << v->str();
  os << "\n";
  for (auto& n : g.nodes()) {
    os << "  ";
    for (size_t i = 0; i < n->outputs.size(); ++i) os << (i ? ", " : "") << n->outputs[i]->str();
    os << " = " << n->op() << "(";
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      os << (i ? ", " : "");
      os << (n->inputs[i] ? n->inputs[i]->name : std::string("<none>"));
    }
    os << ")";
    std::string a = n->attrs->str();
    if (!a.empty()) os << " {" << a << "}";
    os << "  # " << n->name << "\n";
    for (size_t k = 0; k < n->subgraphs.size(); ++k)
      os << indent(print_graph(*n->subgraphs[k]), "    ");
  }
  os << "  outputs:";
  for (Value* v : g.outputs) os << " " << v->str();
  os << "\n";
  return os.str();
}

void verify_graph(const Graph& g, bool user_input) {
  StatusCode code = user_input ? StatusCode::kInvalidModel : StatusCode::kInternal;
  std::unordered_set<const Value*> available;
  std::unordered_set<const Value*> owned;
  for (auto& v : g.values()) owned.insert(v.get());
  for (Value* v : g.inputs) {
    KILN_EXPECT(owned.count(v), code, "graph input is not a value of the graph");
    available.insert(v);
  }
  for (auto& v : g.values())
    if (v->is_constant()) available.insert(v.get());
  for (auto& n : g.nodes()) {
    KILN_EXPECT(n->def && n->attrs, code, "node ", n->label(), " has no op definition");
    for (const auto& sg : n->subgraphs) {
      KILN_EXPECT(sg != nullptr, code, "node ", n->label(), " has an empty sub-graph");
      try {
        verify_graph(*sg, user_input);
      } catch (const Error& e) {
        throw Error(e.code(), cat("in a sub-graph of ", n->label(), ": ", e.message()));
      }
    }
    for (Value* v : n->inputs) {
      if (!v) continue;
      KILN_EXPECT(owned.count(v), code, "node ", n->label(), " reads a value not in the graph");
      KILN_EXPECT(available.count(v), code, "node ", n->label(), " reads '", v->name,
                  "', which no node produces before it (dangling input or cycle)");
      KILN_EXPECT(std::find(v->consumers.begin(), v->consumers.end(), n.get()) !=
                      v->consumers.end(),
                  code, "value '", v->name, "' does not list consumer ", n->label());
    }
    for (Value* v : n->outputs) {
      KILN_EXPECT(v->producer == n.get(), code, "value '", v->name, "' has another producer than ",
                  n->label());
      KILN_EXPECT(!available.count(v), code, "value '", v->name, "' is produced twice");
      available.insert(v);
    }
  }
  for (Value* v : g.outputs)
    KILN_EXPECT(available.count(v), code, "graph output '", v->name, "' is never produced");
}

}  // namespace kiln
