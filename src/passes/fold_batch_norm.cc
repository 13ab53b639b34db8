// FoldBatchNorm: an inference BatchNorm (and constant per-channel Mul/Add) right after a Conv or a
// MatMul with constant weights is an affine map per output channel, so it can live in the weights
// and bias instead of costing a trip over the activation. See pass.h for the contract.
#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "ops/conv.h"
#include "ops/infer.h"
#include "ops/mat_mul.h"
#include "ops/normalization.h"
#include "ops/pointwise.h"
#include "passes/pass.h"

namespace kiln {

namespace {

using expr::Op;

// The types whose weights can be rescaled with one rounding (integer and fp8 weights carry
// quantisation that a rescale would break).
bool foldable_type(DataType t) {
  return t == DataType::kFloat || t == DataType::kFloat16 || t == DataType::kBFloat16 ||
         t == DataType::kDouble;
}

const expr::Program* program_of(const Node& n) {
  if (n.op() != "Pointwise" || n.outputs.size() != 1) return nullptr;
  const expr::Program& p = n.a<PointwiseAttrs>().program;
  if (p.outputs.size() != 1) return nullptr;
  return &p;
}

bool loads_input(const expr::Program& p, int32_t r, int32_t* index) {
  if (r < 0 || static_cast<size_t>(r) >= p.code.size()) return false;
  const expr::Instr& in = p.code[r];
  if (in.op != Op::kInput) return false;
  *index = in.a;
  return true;
}

// A constant that, numpy-broadcast against y, varies at most along axis 1 (m values or one).
bool is_per_channel(const Value& c, const Shape& y, int64_t m) {
  if (!c.is_constant() || !y.rank_known || c.data.rank() > y.rank()) return false;
  const Dims& d = c.data.dims();
  size_t lead = y.rank() - d.size();
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i] == 1) continue;
    if (lead + i != 1 || d[i] != m) return false;
  }
  return true;
}

// A batch-norm parameter that is one value per channel or one for all. The parameters align with
// X from axis 1, so [C, D1...] (ONNX spatial=0) varies along later axes too and does not fold.
bool is_channel_param(const Value& p, size_t y_rank, int64_t m) {
  if (!p.is_constant() || !dtype_is_float(p.dtype) || p.data.rank() + 1 > y_rank) return false;
  const Dims& d = p.data.dims();
  for (size_t i = 0; i < d.size(); ++i)
    if (d[i] != 1 && (i != 0 || d[i] != m)) return false;
  return true;
}

double channel_value(const Tensor& t, int64_t j) { return t.get_f64(t.numel() == 1 ? 0 : j); }

enum class Step { kNone, kBatchNorm, kMul, kAdd };

// Whether n, applied to v (of shape y with m channels on axis 1, type t), is y -> y * s[j] + b[j]
// per channel j; fills s and b (in double) when it is.
Step as_affine(const Node& n, const Value* v, const Shape& y, int64_t m, DataType t,
               std::vector<double>& s, std::vector<double>& b) {
  if (n.outputs.size() != 1 || n.outputs[0]->dtype != t) return Step::kNone;
  s.assign(static_cast<size_t>(m), 1.0);
  b.assign(static_cast<size_t>(m), 0.0);
  if (n.op() == "Normalization") {
    const auto& a = n.a<NormalizationAttrs>();
    if (a.kind != "batch" || n.inputs.size() != 5 || n.inputs[0] != v || !n.in(3) || !n.in(4))
      return Step::kNone;
    for (size_t i = 1; i < 5; ++i)
      if (n.in(i) && !is_channel_param(*n.in(i), y.rank(), m)) return Step::kNone;
    for (int64_t j = 0; j < m; ++j) {
      double scale = n.in(1) ? channel_value(n.in(1)->data, j) : 1.0;
      double beta = n.in(2) ? channel_value(n.in(2)->data, j) : 0.0;
      double inv = 1.0 / std::sqrt(channel_value(n.in(4)->data, j) + a.epsilon);
      s[j] = scale * inv;
      b[j] = beta - channel_value(n.in(3)->data, j) * s[j];
      // A negative variance or an infinite parameter makes the unfused graph produce NaN/inf
      // per element; folded weights would spread that differently, so leave it as it is.
      if (!std::isfinite(s[j]) || !std::isfinite(b[j])) return Step::kNone;
    }
    return Step::kBatchNorm;
  }
  const expr::Program* p = program_of(n);
  if (!p || n.inputs.size() != 2 || !n.inputs[0] || !n.inputs[1] || n.inputs[0] == n.inputs[1])
    return Step::kNone;
  const expr::Instr& out = p->code[p->outputs[0]];
  int32_t i = -1, k = -1;
  if ((out.op != Op::kMul && out.op != Op::kAdd) || !loads_input(*p, out.a, &i) ||
      !loads_input(*p, out.b, &k) || i == k)
    return Step::kNone;
  if (p->input_types.size() != 2 || p->input_types[0] != t || p->input_types[1] != t ||
      out.dtype != t)
    return Step::kNone;
  int other = n.inputs[0] == v ? 1 : n.inputs[1] == v ? 0 : -1;
  if (other < 0) return Step::kNone;
  const Value& c = *n.inputs[other];
  if (c.dtype != t || !is_per_channel(c, y, m) || !same_shape(n.outputs[0]->shape, y))
    return Step::kNone;
  for (int64_t j = 0; j < m; ++j) {
    double cj = channel_value(c.data, j);
    if (!std::isfinite(cj)) return Step::kNone;
    (out.op == Op::kMul ? s : b)[j] = cj;
  }
  return out.op == Op::kMul ? Step::kMul : Step::kAdd;
}

// The foldable chain after `y`: nodes each of whose input value (from y on) has that one consumer
// and is not a graph output, composed into one map y -> y * scale + shift per channel.
struct Chain {
  std::vector<Node*> nodes;
  std::vector<double> scale, shift;
  int64_t batch_norms = 0, muls = 0, adds = 0;
  bool scales() const { return batch_norms + muls > 0; }
};

Chain follow(const Graph& g, Value* y, int64_t m, DataType t) {
  Chain c;
  c.scale.assign(static_cast<size_t>(m), 1.0);
  c.shift.assign(static_cast<size_t>(m), 0.0);
  const Shape shape = y->shape;
  std::vector<double> s, b;
  for (Value* v = y; v->consumers.size() == 1 && !g.is_graph_output(v);) {
    Node* next = v->consumers[0];
    Step step = as_affine(*next, v, shape, m, t, s, b);
    if (step == Step::kNone) break;
    for (int64_t j = 0; j < m; ++j) {
      c.scale[j] *= s[j];
      c.shift[j] = c.shift[j] * s[j] + b[j];
    }
    c.batch_norms += step == Step::kBatchNorm;
    c.muls += step == Step::kMul;
    c.adds += step == Step::kAdd;
    c.nodes.push_back(next);
    v = next->outputs[0];
  }
  // Trailing constant Adds alone are the epilogue pass's business; a chain folds only for a scale.
  return c;
}

// Removes the chain's nodes and returns the value its last node produced (now producerless).
Value* detach(Graph& g, Node* producer, const Chain& c) {
  Value* out = c.nodes.back()->outputs[0];
  for (Node* n : c.nodes) {
    absorb_origins(*producer, *n);
    g.remove_node(n);
  }
  producer->outputs[0]->producer = nullptr;  // now unused; dead-value elimination drops it
  return out;
}

// Rounds v to t in a fresh tensor slot; false when the rounded value is not finite (the fold
// would overflow the type where the unfused graph might not).
bool store(Tensor& dst, int64_t i, double v) {
  dst.set_f64(i, v);
  return std::isfinite(dst.get_f64(i));
}

// Conv: W'[m] = W[m] * scale[m], B' = B * scale + shift. False (graph untouched) when a value
// would not be finite.
bool fold_into_conv(Graph& g, Node* conv, const Chain& c, int64_t m) {
  const auto& a = conv->a<ConvAttrs>();
  const Value* w = conv->in(1);
  const Value* bias = conv->in(2);
  const Tensor& wd = w->data;
  Tensor nw(wd.dtype(), wd.dims());
  // Elements per (dim 0, dim 1) pair of W: the kernel volume.
  const int64_t d0 = wd.dim(0), d1 = wd.dim(1);
  const int64_t k_vol = wd.numel() / std::max<int64_t>(1, d0 * d1);
  const int64_t groups = a.group;
  for (int64_t i0 = 0; i0 < d0; ++i0)
    for (int64_t i1 = 0; i1 < d1; ++i1) {
      // Forward W is [M, C/group, k...]; transposed W is [C, M/group, k...], where input channel
      // i0 belongs to group i0 / (C/group) and i1 is the output channel within that group.
      int64_t ch = a.transposed ? (i0 / (d0 / groups)) * d1 + i1 : i0;
      for (int64_t k = 0; k < k_vol; ++k) {
        int64_t e = (i0 * d1 + i1) * k_vol + k;
        double old = wd.get_f64(e);
        if (!store(nw, e, old * c.scale[ch]) && std::isfinite(old)) return false;
      }
    }
  Tensor nb(conv->outputs[0]->dtype, {m});
  for (int64_t j = 0; j < m; ++j) {
    double old = bias ? bias->data.get_f64(j) : 0.0;
    if (!store(nb, j, old * c.scale[j] + c.shift[j]) && std::isfinite(old)) return false;
  }
  Value* out = detach(g, conv, c);
  conv->outputs[0] = out;
  out->producer = conv;
  // New constants: the old ones may be shared with other nodes.
  g.set_input(conv, 1, g.add_constant(conv->name + ".weight", nw));
  while (conv->inputs.size() < 3) conv->inputs.push_back(nullptr);
  g.set_input(conv, 2, g.add_constant(conv->name + ".bias", nb));
  infer_node(*conv);
  return true;
}

// MatMul with a constant 2-D B and a rank-2 output: column n of op(B) scaled by scale[n]; a
// nonzero shift becomes a Pointwise Add of an [N] constant after it (which the epilogue fusion of
// matrix products absorbs). Returns the Add node when one was made; sets *done.
Node* fold_into_matmul(Graph& g, Node* mm, const Chain& c, int64_t n, bool* done) {
  *done = false;
  const bool trans_b = mm->a<MatMulAttrs>().trans_b;
  const Tensor& bd = mm->in(1)->data;
  Tensor nbm(bd.dtype(), bd.dims());
  const int64_t rows = bd.dim(0), cols = bd.dim(1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) {
      int64_t e = r * cols + k;
      double old = bd.get_f64(e);
      if (!store(nbm, e, old * c.scale[trans_b ? r : k]) && std::isfinite(old)) return nullptr;
    }
  const DataType t = mm->outputs[0]->dtype;
  bool shifts = false;
  Tensor shift(t, {n});
  for (int64_t j = 0; j < n; ++j) {
    if (!store(shift, j, c.shift[j])) return nullptr;
    shifts = shifts || c.shift[j] != 0;
  }
  const Shape y_shape = mm->outputs[0]->shape;
  std::vector<std::string> origins;
  for (Node* x : c.nodes)
    for (std::string& o : node_origins(*x))
      if (std::find(origins.begin(), origins.end(), o) == origins.end()) origins.push_back(o);
  Value* out = detach(g, mm, c);
  g.set_input(mm, 1, g.add_constant(mm->name + ".weight", nbm));
  *done = true;
  if (!shifts) {
    mm->outputs[0] = out;
    out->producer = mm;
    infer_node(*mm);
    return nullptr;
  }
  Value* scaled = g.add_value(mm->name + ".scaled", t, y_shape);
  mm->outputs[0] = scaled;
  scaled->producer = mm;
  infer_node(*mm);
  auto pa = std::make_unique<PointwiseAttrs>();
  pa->program.input_types = {t, t};
  pa->program.outputs = {pa->program.binary(Op::kAdd, pa->program.input(0), pa->program.input(1))};
  Node* add = g.add_node("Pointwise", {scaled, g.add_constant(mm->name + ".shift", shift)}, {out},
                         std::move(pa), g.unique_name(mm->name + ".shift"));
  add->origins = std::move(origins);
  infer_node(*add);
  return add;
}

}  // namespace

void FoldBatchNorm::run(Graph& g, PassContext& ctx) const {
  int64_t convs = 0, matmuls = 0, batch_norms = 0, muls = 0, adds = 0;
  bool added_nodes = false;
  std::vector<Node*> producers;
  for (auto& n : g.nodes())
    if ((n->op() == "Conv" || n->op() == "MatMul") && n->outputs.size() == 1)
      producers.push_back(n.get());
  for (Node* p : producers) {
    Value* y = p->outputs[0];
    const DataType t = y->dtype;
    if (!foldable_type(t) || !y->shape.rank_known || !p->in(0)) continue;
    const Value* w = p->in(1);
    if (!w || !w->is_constant() || w->dtype != t) continue;
    int64_t m = -1;
    if (p->op() == "Conv") {
      const auto& a = p->a<ConvAttrs>();
      const Value* b = p->in(2);
      if (a.channels_last || !a.activation.empty() || p->in(3) || (b && !b->is_constant()))
        continue;
      const Tensor& wd = w->data;
      if (wd.rank() < 3 || a.group < 1 || wd.dim(0) % a.group != 0) continue;
      m = a.transposed ? wd.dim(1) * a.group : wd.dim(0);
      if (y->shape.rank() < 3 || (y->shape[1].known() && y->shape[1].value != m)) continue;
      if (b && (b->dtype != t || b->data.numel() != m)) continue;
    } else {
      // The batch-norm channel axis (1) is the columns only for a rank-2 product.
      const Tensor& bd = w->data;
      if (bd.rank() != 2 || y->shape.rank() != 2) continue;
      m = p->a<MatMulAttrs>().trans_b ? bd.dim(0) : bd.dim(1);
      if (!y->shape[1].known() || y->shape[1].value != m) continue;
    }
    Chain c = follow(g, y, m, t);
    if (!c.scales()) continue;
    if (p->op() == "Conv") {
      if (!fold_into_conv(g, p, c, m)) continue;
      ++convs;
    } else {
      bool done = false;
      added_nodes = fold_into_matmul(g, p, c, m, &done) != nullptr || added_nodes;
      if (!done) continue;
      ++matmuls;
    }
    batch_norms += c.batch_norms;
    muls += c.muls;
    adds += c.adds;
  }
  // The shift Add of a MatMul is appended at the end of the node list; its consumers are earlier.
  if (added_nodes) g.toposort();
  ctx.stats["fold_batch_norm.conv"] += convs;
  ctx.stats["fold_batch_norm.matmul"] += matmuls;
  ctx.stats["fold_batch_norm.batch_norm"] += batch_norms;
  ctx.stats["fold_batch_norm.mul"] += muls;
  ctx.stats["fold_batch_norm.add"] += adds;
  ctx.report(cat("fold_batch_norm: ", batch_norms, " batch norm(s), ", muls, " mul(s) and ", adds,
                 " add(s) folded into ", convs, " conv(s) and ", matmuls, " matmul(s)"));
}

}  // namespace kiln
