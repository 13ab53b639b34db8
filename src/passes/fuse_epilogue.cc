// FuseEpilogue: Conv or MatMul -> [Add constant bias] -> [Add residual] -> [Relu] becomes one node
// whose epilogue (bias input 2, residual input 3, activation) does the work, so the activation
// makes one trip to memory instead of three. See pass.h for the contract.
#include <cmath>

#include "common/error.h"
#include "ops/conv.h"
#include "ops/epilogue.h"
#include "ops/infer.h"
#include "ops/mat_mul.h"
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

}  // namespace

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

namespace {

// A constant that adds one value per index of `axis` of an output of shape y (or one value to
// all): numpy-broadcast, it varies at most along that axis, which has m entries.
bool is_per_axis(const Value& c, const Shape& y, size_t axis, int64_t m) {
  if (!c.is_constant() || !y.rank_known || c.data.rank() > y.rank()) return false;
  const Dims& d = c.data.dims();
  size_t lead = y.rank() - d.size();  // dims numpy prepends
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i] == 1) continue;
    if (lead + i != axis || d[i] != m) return false;
  }
  return true;
}

// Moves the output of `next` (which consumes only the fused node's output) to the fused node and
// removes it.
void absorb(Graph& g, Node* node, Node* next) {
  Value* old = node->outputs[0];
  Value* out = next->outputs[0];
  absorb_origins(*node, *next);
  g.remove_node(next);
  old->producer = nullptr;  // now unused; dead-value elimination drops it
  node->outputs[0] = out;
  out->producer = node;
}

void ensure_inputs(Node* n, size_t count) {
  while (n->inputs.size() < count) n->inputs.push_back(nullptr);
}

struct Counts {
  int64_t biases = 0, residuals = 0, relus = 0, matmuls = 0;
};

// What differs between the two ops: where the bias lies and whether the node may fuse at all.
struct Target {
  Node* node = nullptr;
  std::string* activation = nullptr;
  size_t bias_axis = 0;  // of the output
};

// Absorbs the chain after t.node (see pass.h). Returns whether anything was fused.
bool fuse_chain(Graph& g, const Target& t, bool allow_inputs, Counts& c) {
  Node* node = t.node;
  DataType dt = node->outputs[0]->dtype;
  bool fused = false;
  for (;;) {
    Value* y = node->outputs[0];
    if (!t.activation->empty() || y->consumers.size() != 1 || g.is_graph_output(y)) break;
    Node* next = y->consumers[0];
    const bool has_z = node->in(3) != nullptr;
    int other = has_z || !allow_inputs ? -1 : add_other_operand(*next, y);
    if (other >= 0 && next->outputs[0]->dtype == dt &&
        same_shape(next->outputs[0]->shape, y->shape)) {
      Value* v = next->inputs[other];
      const Shape& ys = y->shape;
      const size_t axis = t.bias_axis;
      int64_t m = ys.rank_known && ys.rank() > axis && ys[axis].known() ? ys[axis].value : -1;
      Value* b = node->in(2);
      if (v->dtype == dt && m >= 0 && is_per_axis(*v, ys, axis, m) && (!b || b->is_constant())) {
        // Bias: B' = B + c, rounded once to the type (the unfused graph rounds op + B first).
        Tensor nb(dt, {m});
        const Tensor& k = v->data;
        for (int64_t j = 0; j < m; ++j)
          nb.set_f64(j, (b ? b->data.get_f64(j) : 0.0) + k.get_f64(k.numel() == 1 ? 0 : j));
        absorb(g, node, next);
        ensure_inputs(node, 3);
        g.set_input(node, 2, g.add_constant(node->name + ".bias", nb));
        ++c.biases;
        fused = true;
        continue;
      }
      if (v->dtype == dt && same_shape(v->shape, ys)) {
        // v never depends on this node: the node's output had one consumer, the Add that reads
        // v, so a path from the node to v would be a cycle. Reading v here creates none; only
        // the node order may need repair (the caller sorts).
        absorb(g, node, next);
        ensure_inputs(node, 4);
        g.set_input(node, 3, v);
        ++c.residuals;
        fused = true;
        continue;
      }
    }
    if (is_relu(*next) && next->outputs[0]->dtype == dt) {
      absorb(g, node, next);
      *t.activation = "relu";
      ++c.relus;
      fused = true;
      continue;
    }
    break;
  }
  return fused;
}

}  // namespace

void FuseEpilogue::run(Graph& g, PassContext& ctx) const {
  Counts c;
  std::vector<Node*> nodes;
  for (auto& n : g.nodes())
    if (n->op() == "Conv" || n->op() == "MatMul") nodes.push_back(n.get());
  for (Node* n : nodes) {
    if (n->outputs.size() != 1 || !n->in(0) || !n->in(1)) continue;
    if (!dtype_is_float(n->outputs[0]->dtype)) continue;
    Target t;
    t.node = n;
    bool allow_inputs = true;
    if (n->op() == "Conv") {
      auto& a = n->a<ConvAttrs>();
      if (a.channels_last || has_epilogue_program(a.epilogue)) continue;
      t.activation = &a.activation;
      t.bias_axis = 1;
    } else {
      auto& a = n->a<MatMulAttrs>();
      // Linear layers only (a constant B, at least 2-D so that the output's last axis is its
      // columns): products of two activations (attention scores) are left to the passes that
      // look for their patterns.
      const Value* b = n->in(1);
      if (!b->is_constant() || b->data.rank() < 2 || has_epilogue_program(a.epilogue)) continue;
      const Shape& ys = n->outputs[0]->shape;
      if (!ys.rank_known || ys.rank() < 1) continue;
      t.activation = &a.activation;
      t.bias_axis = ys.rank() - 1;
      // AssignPrecision switches only a MatMul's A and B to float16; a float32 bias or residual
      // would then not match them. Until it switches inputs 2 and 3 too, fp16 builds fuse the
      // activation only.
      allow_inputs = !ctx.fp16;
    }
    if (fuse_chain(g, t, allow_inputs, c) && n->op() == "MatMul") ++c.matmuls;
  }
  // A residual may be produced after the node in node order; it never depends on the node (see
  // fuse_chain), so a topological order exists.
  if (c.residuals) g.toposort();
  for (Node* n : nodes) infer_node(*n);
  ctx.stats["fuse_epilogue.bias"] += c.biases;
  ctx.stats["fuse_epilogue.residual"] += c.residuals;
  ctx.stats["fuse_epilogue.relu"] += c.relus;
  ctx.stats["fuse_epilogue.matmul"] += c.matmuls;
  ctx.report(cat("fuse_epilogue: ", c.biases, " bias(es), ", c.residuals, " residual(s), ",
                 c.relus, " activation(s) fused (", c.matmuls, " into MatMul)"));
}

}  // namespace kiln
