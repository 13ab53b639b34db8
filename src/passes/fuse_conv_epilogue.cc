// FuseConvEpilogue: Conv -> [Add per-channel constant] -> [Add residual] -> [Relu] becomes one Conv
// whose epilogue (bias, input 3, activation) does the work, so the activation makes one trip to
// memory instead of three. See pass.h for the contract.
#include <cmath>

#include "common/error.h"
#include "ops/conv.h"
#include "ops/infer.h"
#include "ops/pointwise.h"
#include "passes/pass.h"

namespace kiln {

namespace {

using expr::Op;

const expr::Program* program_of(const Node& n) {
  if (n.op() != "Pointwise" || n.outputs.size() != 1) return nullptr;
  const expr::Program& p = n.a<PointwiseAttrs>().program;
  if (p.outputs.size() != 1) return nullptr;
  return &p;
}

// Register r loads program input `index` unchanged.
bool loads_input(const expr::Program& p, int32_t r, int32_t* index) {
  if (r < 0 || static_cast<size_t>(r) >= p.code.size()) return false;
  const expr::Instr& in = p.code[r];
  if (in.op != Op::kInput) return false;
  *index = in.a;
  return true;
}

// The node computes relu(input 0) in the input's type.
bool is_relu(const Node& n) {
  const expr::Program* p = program_of(n);
  if (!p || n.inputs.size() != 1 || !n.inputs[0]) return false;
  const expr::Instr& out = p->code[p->outputs[0]];
  int32_t i = -1;
  return out.op == Op::kRelu && loads_input(*p, out.a, &i) && i == 0 &&
         out.dtype == p->input_types[0] && out.dtype == n.inputs[0]->dtype;
}

// The node computes input 0 + input 1 in their common type; returns the slot of the operand that
// is not `v` (-1 when the node is no such Add, or adds v to itself).
int add_other_operand(const Node& n, const Value* v) {
  const expr::Program* p = program_of(n);
  if (!p || n.inputs.size() != 2 || !n.inputs[0] || !n.inputs[1]) return -1;
  if (n.inputs[0] == n.inputs[1]) return -1;
  const expr::Instr& out = p->code[p->outputs[0]];
  int32_t i = -1, j = -1;
  if (out.op != Op::kAdd || !loads_input(*p, out.a, &i) || !loads_input(*p, out.b, &j) || i == j)
    return -1;
  if (p->input_types[0] != p->input_types[1] || out.dtype != p->input_types[0]) return -1;
  if (n.inputs[0] == v) return 1;
  if (n.inputs[1] == v) return 0;
  return -1;
}

// Every dim provably equal: equal known sizes or the same named symbol.
bool same_shape(const Shape& a, const Shape& b) {
  if (!a.rank_known || !b.rank_known || a.rank() != b.rank()) return false;
  for (size_t i = 0; i < a.rank(); ++i) {
    if (a[i].known() != b[i].known()) return false;
    if (a[i].known() ? a[i].value != b[i].value
                     : (a[i].symbol.empty() || a[i].symbol != b[i].symbol))
      return false;
  }
  return true;
}

// A constant that adds one value per output channel (or one value to all) of a channels-first
// output of shape y: numpy-broadcast, it varies at most along axis 1.
bool is_per_channel(const Value& c, const Shape& y, int64_t m) {
  if (!c.is_constant() || !y.rank_known || c.data.rank() > y.rank()) return false;
  const Dims& d = c.data.dims();
  size_t lead = y.rank() - d.size();  // dims numpy prepends
  for (size_t i = 0; i < d.size(); ++i) {
    size_t axis = lead + i;
    if (d[i] == 1) continue;
    if (axis != 1 || d[i] != m) return false;
  }
  return true;
}

// Moves the output of `next` (which consumes only the Conv's output) to the Conv and removes it.
void absorb(Graph& g, Node* conv, Node* next) {
  Value* old = conv->outputs[0];
  Value* out = next->outputs[0];
  absorb_origins(*conv, *next);
  g.remove_node(next);
  old->producer = nullptr;  // now unused; dead-value elimination drops it
  conv->outputs[0] = out;
  out->producer = conv;
}

void ensure_inputs(Node* n, size_t count) {
  while (n->inputs.size() < count) n->inputs.push_back(nullptr);
}

}  // namespace

void FuseConvEpilogue::run(Graph& g, PassContext& ctx) const {
  int64_t biases = 0, residuals = 0, relus = 0;
  std::vector<Node*> convs;
  for (auto& n : g.nodes())
    if (n->op() == "Conv") convs.push_back(n.get());
  for (Node* conv : convs) {
    auto& a = conv->a<ConvAttrs>();
    if (a.channels_last || conv->outputs.size() != 1 || !conv->inputs[0]) continue;
    DataType t = conv->outputs[0]->dtype;
    if (!dtype_is_float(t)) continue;
    for (;;) {
      Value* y = conv->outputs[0];
      if (!a.activation.empty() || y->consumers.size() != 1 || g.is_graph_output(y)) break;
      Node* next = y->consumers[0];
      const bool has_z = conv->in(3) != nullptr;
      int other = has_z ? -1 : add_other_operand(*next, y);
      if (other >= 0 && next->outputs[0]->dtype == t &&
          same_shape(next->outputs[0]->shape, y->shape)) {
        Value* v = next->inputs[other];
        const Shape& ys = y->shape;
        int64_t m = ys.rank_known && ys.rank() >= 2 && ys[1].known() ? ys[1].value : -1;
        Value* b = conv->in(2);
        if (v->dtype == t && m >= 0 && is_per_channel(*v, ys, m) && (!b || b->is_constant())) {
          // Bias: B' = B + c, rounded once to the type (the unfused graph rounds conv + B first).
          Tensor nb(t, {m});
          const Tensor& c = v->data;
          for (int64_t j = 0; j < m; ++j)
            nb.set_f64(j, (b ? b->data.get_f64(j) : 0.0) + c.get_f64(c.numel() == 1 ? 0 : j));
          absorb(g, conv, next);
          ensure_inputs(conv, 3);
          g.set_input(conv, 2, g.add_constant(conv->name + ".bias", nb));
          ++biases;
          continue;
        }
        if (v->dtype == t && same_shape(v->shape, ys)) {
          absorb(g, conv, next);
          ensure_inputs(conv, 4);
          g.set_input(conv, 3, v);
          ++residuals;
          continue;
        }
      }
      if (is_relu(*next) && next->outputs[0]->dtype == t) {
        absorb(g, conv, next);
        a.activation = "relu";
        ++relus;
        continue;
      }
      break;
    }
  }
  // A residual may be produced after the Conv in node order; it never depends on the Conv (the
  // Conv's output had one consumer, the Add), so a topological order exists.
  if (residuals) g.toposort();
  for (Node* conv : convs) infer_node(*conv);
  ctx.stats["fuse_conv_epilogue.bias"] += biases;
  ctx.stats["fuse_conv_epilogue.residual"] += residuals;
  ctx.stats["fuse_conv_epilogue.relu"] += relus;
  ctx.report(cat("fuse_conv_epilogue: ", biases, " bias(es), ", residuals, " residual(s), ", relus,
                 " activation(s) fused"));
}

}  // namespace kiln
