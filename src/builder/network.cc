// Network: layer-by-layer definition through the public API. Each add_* appends canonical nodes
// to an internal Graph and infers their shapes at once, so mistakes are reported where made.
#include "kiln/network.h"

#include "common/error.h"
#include "ir/graph.h"
#include "ops/infer.h"
#include "ops/op.h"
#include "ops/concat.h"
#include "ops/conv.h"
#include "ops/mat_mul.h"
#include "ops/normalization.h"
#include "ops/plugin.h"
#include "ops/pointwise.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/reshape.h"
#include "ops/softmax.h"
#include "ops/transpose.h"

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

namespace {
Value* weight(Graph& g, const Tensor& t, const char* what, bool optional = false) {
  if (!t.defined()) {
    KILN_EXPECT(optional, StatusCode::kInvalidArgument, what, " is required");
    return nullptr;
  }
  return g.add_constant(what, t.clone());
}
}  // namespace

#define KILN_NET_INPUT(var, ref, what)                                   \
  Value* var = value_of(*graph_, ref, error_, what);                    \
  KILN_EXPECT(var != nullptr, StatusCode::kInvalidArgument, "invalid input tensor handle")

Network::Ref Network::add_conv(Ref x, const Tensor& weights, const Tensor& bias,
                               const ConvParams& p) {
  return guarded(*graph_, error_, "add_conv", [&]() -> Value* {
    KILN_NET_INPUT(in, x, "add_conv");
    auto a = std::make_unique<ConvAttrs>();
    a->strides = p.strides;
    a->pads = p.pads;
    a->dilations = p.dilations;
    a->group = p.groups;
    std::vector<Value*> ins{in, weight(*graph_, weights, "conv.weight")};
    if (Value* b = weight(*graph_, bias, "conv.bias", true)) ins.push_back(b);
    return add_op(*graph_, "Conv", ins, std::move(a), "conv");
  });
}

Network::Ref Network::add_matmul(Ref a, Ref b, bool transpose_a, bool transpose_b) {
  return guarded(*graph_, error_, "add_matmul", [&]() -> Value* {
    KILN_NET_INPUT(va, a, "add_matmul");
    KILN_NET_INPUT(vb, b, "add_matmul");
    auto at = std::make_unique<MatMulAttrs>();
    at->trans_a = transpose_a;
    at->trans_b = transpose_b;
    return add_op(*graph_, "MatMul", {va, vb}, std::move(at), "matmul");
  });
}

Network::Ref Network::add_fully_connected(Ref x, const Tensor& weights, const Tensor& bias) {
  return guarded(*graph_, error_, "add_fully_connected", [&]() -> Value* {
    KILN_NET_INPUT(in, x, "add_fully_connected");
    auto at = std::make_unique<MatMulAttrs>();
    at->trans_b = true;
    Value* y = add_op(*graph_, "MatMul", {in, weight(*graph_, weights, "fc.weight")},
                      std::move(at), "fc");
    if (!bias.defined()) return y;
    Value* b = weight(*graph_, bias, "fc.bias");
    expr::Program p;
    p.input_types = {y->dtype, b->dtype};
    p.outputs = {p.binary(expr::Op::kAdd, p.input(0), p.input(1))};
    auto pa = std::make_unique<PointwiseAttrs>();
    pa->program = p;
    return add_op(*graph_, "Pointwise", {y, b}, std::move(pa), "fc.bias_add");
  });
}

Network::Ref Network::add_pool(Ref x, const PoolParams& p) {
  return guarded(*graph_, error_, "add_pool", [&]() -> Value* {
    KILN_NET_INPUT(in, x, "add_pool");
    auto a = std::make_unique<PoolAttrs>();
    a->kind = p.kind == PoolKind::kMax ? "max" : "avg";
    a->global = p.kernel.empty();
    a->kernel = p.kernel;
    a->strides = p.strides;
    a->pads = p.pads;
    a->count_include_pad = p.count_include_pad;
    return add_op(*graph_, "Pool", {in}, std::move(a), "pool");
  });
}

Network::Ref Network::add_batch_norm(Ref x, const Tensor& scale, const Tensor& bias,
                                     const Tensor& mean, const Tensor& var, double epsilon) {
  return guarded(*graph_, error_, "add_batch_norm", [&]() -> Value* {
    KILN_NET_INPUT(in, x, "add_batch_norm");
    auto a = std::make_unique<NormalizationAttrs>();
    a->kind = "batch";
    a->epsilon = epsilon;
    return add_op(*graph_, "Normalization",
                  {in, weight(*graph_, scale, "bn.scale"), weight(*graph_, bias, "bn.bias"),
                   weight(*graph_, mean, "bn.mean"), weight(*graph_, var, "bn.var")},
                  std::move(a), "bn");
  });
}

Network::Ref Network::add_softmax(Ref x, int64_t axis) {
  return guarded(*graph_, error_, "add_softmax", [&]() -> Value* {
    KILN_NET_INPUT(in, x, "add_softmax");
    auto a = std::make_unique<SoftmaxAttrs>();
    a->axis = axis;
    return add_op(*graph_, "Softmax", {in}, std::move(a), "softmax");
  });
}

Network::Ref Network::add_reduce(Ref x, ReduceKind kind, const std::vector<int64_t>& axes,
                                 bool keepdims) {
  return guarded(*graph_, error_, "add_reduce", [&]() -> Value* {
    KILN_NET_INPUT(in, x, "add_reduce");
    static const char* kinds[] = {"sum", "mean", "max", "min"};
    auto a = std::make_unique<ReduceAttrs>();
    a->kind = kinds[static_cast<int>(kind)];
    a->axes = axes;
    a->keepdims = keepdims;
    return add_op(*graph_, "Reduce", {in}, std::move(a), "reduce");
  });
}

Network::Ref Network::add_reshape(Ref x, const std::vector<int64_t>& shape) {
  return guarded(*graph_, error_, "add_reshape", [&]() -> Value* {
    KILN_NET_INPUT(in, x, "add_reshape");
    Value* s = graph_->add_constant(
        "reshape.shape",
        Tensor::from_vector(DataType::kInt64, {static_cast<int64_t>(shape.size())}, shape));
    return add_op(*graph_, "Reshape", {in, s}, std::make_unique<ReshapeAttrs>(), "reshape");
  });
}

Network::Ref Network::add_transpose(Ref x, const std::vector<int64_t>& perm) {
  return guarded(*graph_, error_, "add_transpose", [&]() -> Value* {
    KILN_NET_INPUT(in, x, "add_transpose");
    auto a = std::make_unique<TransposeAttrs>();
    a->perm = perm;
    return add_op(*graph_, "Transpose", {in}, std::move(a), "transpose");
  });
}

Network::Ref Network::add_concat(const std::vector<Ref>& xs, int64_t axis) {
  return guarded(*graph_, error_, "add_concat", [&]() -> Value* {
    KILN_EXPECT(!xs.empty(), StatusCode::kInvalidArgument, "needs at least one input");
    std::vector<Value*> ins;
    for (Ref r : xs) {
      KILN_NET_INPUT(v, r, "add_concat");
      ins.push_back(v);
    }
    auto a = std::make_unique<ConcatAttrs>();
    a->axis = axis;
    return add_op(*graph_, "Concat", ins, std::move(a), "concat");
  });
}

#undef KILN_NET_INPUT

std::vector<Network::Ref> Network::add_plugin(const std::vector<Ref>& inputs, const Plugin& plugin) {
  std::vector<Ref> refs;
  if (!error_.empty()) return refs;
  std::unique_ptr<Plugin> p = plugin.clone();
  if (!p) {
    error_ = "add_plugin: the plugin returned no clone";
    return refs;
  }
  std::shared_ptr<const Plugin> shared(std::move(p));
  const int32_t nout = shared->build().num_outputs();
  guarded(*graph_, error_, "add_plugin", [&]() -> Value* {
    KILN_EXPECT(nout > 0, StatusCode::kInvalidArgument, "the plugin has no outputs");
    std::vector<Value*> ins;
    for (Ref r : inputs) {
      if (r.id == -1) { ins.push_back(nullptr); continue; }
      Value* v = value_of(*graph_, r, error_, "add_plugin");
      KILN_EXPECT(v != nullptr, StatusCode::kInvalidArgument, "invalid input tensor");
      ins.push_back(v);
    }
    std::string hint = shared->core().name();
    std::vector<Value*> outs;
    for (int32_t k = 0; k < nout; ++k) outs.push_back(graph_->add_value(hint));
    Node* n = graph_->add_node("Plugin", std::move(ins), outs, plugin_attrs(shared),
                               graph_->unique_name(hint));
    infer_node(*n);
    for (Value* o : outs) refs.push_back(ref_of(*graph_, o));
    return outs[0];
  });
  if (!error_.empty()) refs.clear();
  return refs;
}

std::vector<Network::Ref> Network::add_plugin(const std::vector<Ref>& inputs,
                                              const std::string& name, const std::string& version,
                                              const std::string& plugin_namespace,
                                              const PluginFields& fields) {
  if (!error_.empty()) return {};
  auto creator = plugin_registry().find(name, version, plugin_namespace);
  if (!creator) {
    error_ = cat("add_plugin: plugin ", plugin_label(name, version, plugin_namespace),
                 " is not registered");
    return {};
  }
  std::unique_ptr<Plugin> p;
  Status st = creator->create(fields, p);
  if (!st.is_ok() || !p) {
    error_ = cat("add_plugin: plugin ", plugin_label(name, version, plugin_namespace),
                 " refused its fields: ", st.is_ok() ? "no object returned" : st.message());
    return {};
  }
  return add_plugin(inputs, *p);
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
