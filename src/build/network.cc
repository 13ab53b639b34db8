// Network: layer-by-layer definition through the public API. Each add_* appends canonical nodes
// to an internal Graph and infers their shapes at once, so mistakes are reported where made.
#include "kiln/network.h"

#include "common/error.h"
#include "ir/graph.h"
#include "ops/infer.h"
#include "ops/op.h"
#include "ops/pointwise.h"

namespace kiln {

Network::Network() : graph_(std::make_unique<Graph>()) { graph_->name = "network"; }
Network::~Network() = default;
const Graph& Network::graph() const { return *graph_; }

namespace {

Value* value_of(Graph& g, Network::Ref r, std::string& err, const char* what) {
  if (r.id < 0 || static_cast<size_t>(r.id) >= g.values().size()) {
    if (err.empty()) err = cat(what, ": invalid tensor handle ", r.id);
    return nullptr;
  }
  return g.values()[r.id].get();
}

Network::Ref ref_of(const Graph& g, const Value* v) {
  for (size_t i = 0; i < g.values().size(); ++i)
    if (g.values()[i].get() == v) return Network::Ref{static_cast<int>(i)};
  return Network::Ref{};
}

}  // namespace

// Runs f (which adds nodes and returns the result value); records the first error instead of
// throwing, since the public API does not throw.
template <class F>
static Network::Ref guarded(Graph& g, std::string& err, const char* what, F&& f) {
  if (!err.empty()) return Network::Ref{};
  try {
    Value* v = f();
    return v ? ref_of(g, v) : Network::Ref{};
  } catch (const Error& e) {
    err = cat(what, ": ", e.node().empty() ? "" : e.node() + ": ", e.message());
    return Network::Ref{};
  }
}

static Value* add_op(Graph& g, const std::string& op, std::vector<Value*> ins,
                     std::unique_ptr<Attrs> attrs, const std::string& hint) {
  for (Value* v : ins)
    KILN_EXPECT(v != nullptr || op == "Conv", StatusCode::kInvalidArgument, "invalid input tensor");
  Value* out = g.add_value(hint);
  Node* n = g.add_node(op, std::move(ins), {out}, std::move(attrs), g.unique_name(hint));
  infer_node(*n);
  return out;
}

Network::Ref Network::add_input(const std::string& name, DataType dtype,
                                const std::vector<int64_t>& dims) {
  return guarded(*graph_, error_, "add_input", [&]() -> Value* {
    KILN_EXPECT(dtype_is_supported(dtype), StatusCode::kInvalidArgument, "input '", name,
                "': unsupported type ", dtype_name(dtype));
    KILN_EXPECT(!graph_->find_value(name), StatusCode::kInvalidArgument, "name '", name,
                "' is already used");
    Shape s;
    for (size_t i = 0; i < dims.size(); ++i) {
      KILN_EXPECT(dims[i] >= -1, StatusCode::kInvalidArgument, "input '", name, "': bad dim ",
                  dims[i]);
      s.dims.push_back(dims[i] >= 0 ? Dim(dims[i]) : Dim::sym(cat(name, "_dim", i)));
    }
    Value* v = graph_->add_value(name, dtype, s);
    graph_->inputs.push_back(v);
    return v;
  });
}

Network::Ref Network::add_constant(const Tensor& value) {
  return guarded(*graph_, error_, "add_constant", [&]() -> Value* {
    KILN_EXPECT(value.defined(), StatusCode::kInvalidArgument, "constant tensor is undefined");
    return graph_->add_constant("const", value.clone());
  });
}

Network::Ref Network::add_activation(Ref x, Activation kind, double alpha, double beta) {
  return guarded(*graph_, error_, "add_activation", [&]() -> Value* {
    Value* in = value_of(*graph_, x, error_, "add_activation");
    KILN_EXPECT(in, StatusCode::kInvalidArgument, "invalid input");
    using expr::Op;
    expr::Program p;
    p.input_types = {in->dtype};
    int32_t r = p.input(0);
    DataType t = in->dtype;
    int32_t o = r;
    switch (kind) {
      case Activation::kRelu: o = p.unary(Op::kRelu, r); break;
      case Activation::kSigmoid: o = p.unary(Op::kSigmoid, r); break;
      case Activation::kTanh: o = p.unary(Op::kTanh, r); break;
      case Activation::kLeakyRelu:
        o = p.select(p.binary(Op::kLt, r, p.constant(t, 0)),
                     p.binary(Op::kMul, r, p.constant(t, alpha)), r);
        break;
      case Activation::kClip:
        o = p.binary(Op::kMin, p.binary(Op::kMax, r, p.constant(t, alpha)), p.constant(t, beta));
        break;
      case Activation::kGelu: {
        int32_t e = p.unary(Op::kErf, p.binary(Op::kMul, r, p.constant(t, 0.7071067811865476)));
        o = p.binary(Op::kMul, p.binary(Op::kMul, r, p.constant(t, 0.5)),
                     p.binary(Op::kAdd, p.constant(t, 1), e));
        break;
      }
      case Activation::kIdentity: o = r; break;
    }
    p.outputs = {o};
    auto a = std::make_unique<PointwiseAttrs>();
    a->program = p;
    return add_op(*graph_, "Pointwise", {in}, std::move(a), "act");
  });
}

Network::Ref Network::add_elementwise(Ref a, Ref b, ElementwiseOp op) {
  return guarded(*graph_, error_, "add_elementwise", [&]() -> Value* {
    Value* va = value_of(*graph_, a, error_, "add_elementwise");
    Value* vb = value_of(*graph_, b, error_, "add_elementwise");
    KILN_EXPECT(va && vb, StatusCode::kInvalidArgument, "invalid input");
    KILN_EXPECT(va->dtype == vb->dtype, StatusCode::kInvalidArgument, "operand types differ: ",
                dtype_name(va->dtype), " and ", dtype_name(vb->dtype));
    using expr::Op;
    static const Op ops[] = {Op::kAdd, Op::kSub, Op::kMul, Op::kDiv, Op::kMax, Op::kMin, Op::kPow};
    expr::Program p;
    p.input_types = {va->dtype, vb->dtype};
    p.outputs = {p.binary(ops[static_cast<int>(op)], p.input(0), p.input(1))};
    auto at = std::make_unique<PointwiseAttrs>();
    at->program = p;
    return add_op(*graph_, "Pointwise", {va, vb}, std::move(at), "eltwise");
  });
}

void Network::mark_output(Ref x, const std::string& name) {
  if (!error_.empty()) return;
  Value* v = value_of(*graph_, x, error_, "mark_output");
  if (!v) return;
  if (graph_->is_graph_output(v) || graph_->is_graph_input(v) || v->is_constant()) {
    error_ = cat("mark_output: '", name, "' must be computed by a layer (not an input, constant ",
                 "or another output)");
    return;
  }
  graph_->rename(v, name);
  graph_->outputs.push_back(v);
}

}  // namespace kiln
