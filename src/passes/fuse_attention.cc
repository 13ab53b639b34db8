// FuseAttention: the core of scaled dot-product attention as exporters write it,
//   MatMul(Q, Kᵀ) -> [Mul/Div by a scalar]* -> [Add mask | Where(bool, ., very negative)]
//   -> [Mul/Div by a scalar]* -> Softmax(last axis) -> MatMul(., V),
// becomes one Attention node (ops/attention.h), so that the score matrix never reaches memory.
// See pass.h for the contract.
//
// What torch.onnx writes, as the importer lowers it (tests/data/make_attention_models.py):
//   - Hugging Face BERT/ViT: Transpose(K, [0,1,3,2]) -> MatMul -> Div(sqrt(d)) -> Add(mask)
//     -> Softmax -> MatMul;
//   - GPT-2: ... Div -> Where(causal bool buffer, scores, -10000 or finfo.min) -> Softmax;
//   - nn.MultiheadAttention (torch 1.x): q Div(sqrt(d)) before the product, 3-D [B*H, S, D]
//     operands (bmm), the mask added by baddbmm as Mul(mask, 1) + Mul(scores, 1);
//   - scaled_dot_product_attention (torch 2): Mul(q, sqrt(s)) and Mul(Kᵀ, sqrt(s));
//   - Llama-style grouped-query attention: K and V repeated to the query heads by
//     Reshape(Expand(Unsqueeze(x))) (repeat_kv), which this pass undoes: the Attention node reads
//     the H_kv heads and shares them itself.
// Each Pointwise step is recognised by its program (one output register computing a Mul, Div,
// Add or Select of loaded inputs and constants), never by the name of the ONNX op.
#include <cmath>
#include <memory>
#include <optional>

#include "common/error.h"
#include "ops/attention.h"
#include "ops/infer.h"
#include "ops/mat_mul.h"
#include "ops/pointwise.h"
#include "ops/reshape.h"
#include "ops/softmax.h"
#include "ops/transpose.h"
#include "passes/pass.h"

namespace kiln {

namespace {

using expr::Op;

// A fill value at or below this in Where(mask, scores, fill) masks a key out for good: its
// exp(fill - max) underflows to 0 in float32 as in float16, where -10000 is what the exporters'
// models use (GPT-2 uses -10000 or finfo.min).
constexpr double kMaskedFill = -1e4;

const expr::Program* program_of(const Node& n) {
  if (n.op() != "Pointwise" || n.outputs.size() != 1) return nullptr;
  const expr::Program& p = n.a<PointwiseAttrs>().program;
  if (p.outputs.size() != 1 || p.outputs[0] < 0 ||
      static_cast<size_t>(p.outputs[0]) >= p.code.size())
    return nullptr;
  return &p;
}

// What register r of n's program is: a load of a graph Value, or a scalar constant.
struct Operand {
  Value* value = nullptr;            // a loaded input
  std::optional<double> constant;    // an immediate, or a loaded constant of one element
};

std::optional<Operand> operand(const Node& n, const expr::Program& p, int32_t r) {
  if (r < 0 || static_cast<size_t>(r) >= p.code.size()) return std::nullopt;
  const expr::Instr& in = p.code[r];
  Operand o;
  if (in.op == Op::kConst) {
    if (!dtype_is_float(in.dtype)) return std::nullopt;
    o.constant = in.fconst;
    return o;
  }
  if (in.op != Op::kInput || in.a < 0 || static_cast<size_t>(in.a) >= n.inputs.size())
    return std::nullopt;
  o.value = n.inputs[in.a];
  if (!o.value || o.value->dtype != p.input_types[in.a]) return std::nullopt;
  if (o.value->is_constant() && o.value->data.numel() == 1 && dtype_is_float(o.value->dtype))
    o.constant = o.value->data.get_f64(0);
  return o;
}

// The value has exactly this one reader and is no graph output: it may disappear.
bool private_to(const Graph& g, const Value* v, const Node* reader) {
  return v->consumers.size() == 1 && v->consumers[0] == reader && !g.is_graph_output(v);
}

// n computes x * c or x / c (or c * x) for a scalar constant c > 0, in x's type; returns x and
// the factor.
std::optional<std::pair<Value*, double>> scalar_scale(const Node& n) {
  const expr::Program* p = program_of(n);
  if (!p) return std::nullopt;
  const expr::Instr& out = p->code[p->outputs[0]];
  if (out.op != Op::kMul && out.op != Op::kDiv) return std::nullopt;
  auto a = operand(n, *p, out.a), b = operand(n, *p, out.b);
  if (!a || !b) return std::nullopt;
  Value* x = nullptr;
  double c = 0;
  if (a->value && !a->constant && b->constant) {
    x = a->value;
    c = out.op == Op::kMul ? *b->constant : 1.0 / *b->constant;
  } else if (out.op == Op::kMul && b->value && !b->constant && a->constant) {
    x = b->value;
    c = *a->constant;
  } else {
    return std::nullopt;
  }
  if (!(c > 0) || !std::isfinite(c) || out.dtype != x->dtype) return std::nullopt;
  if (!same_shape(n.outputs[0]->shape, x->shape)) return std::nullopt;
  return std::make_pair(x, c);
}

// Follows a chain of scalar scales back from v while each scaled value is read only by the next
// step; multiplies the factors into *scale. `reader` reads v.
Value* peel_scales(const Graph& g, Value* v, const Node* reader, double* scale) {
  while (v->producer && private_to(g, v, reader)) {
    auto s = scalar_scale(*v->producer);
    if (!s) break;
    reader = v->producer;
    *scale *= s->second;
    v = s->first;
  }
  return v;
}

// n casts its one input to the type it already has (torch's softmax(dtype=float32) on float32).
bool is_same_type_cast(const Node& n) {
  const expr::Program* p = program_of(n);
  if (!p || n.inputs.size() != 1 || !n.in(0) || p->code.size() != 2) return false;
  const expr::Instr& out = p->code[p->outputs[0]];
  return out.op == Op::kCast && p->code[out.a].op == Op::kInput && p->code[out.a].a == 0 &&
         out.dtype == n.in(0)->dtype && n.outputs[0]->dtype == out.dtype;
}

bool is_plain_matmul(const Node& n) {
  if (n.op() != "MatMul" || n.inputs.size() != 2 || !n.in(0) || !n.in(1)) return false;
  const auto& a = n.a<MatMulAttrs>();
  return !a.trans_a && !a.quantized() && a.activation.empty() && a.epilogue.code.empty() &&
         std::isfinite(a.alpha) && a.alpha > 0 && dtype_is_float(n.outputs[0]->dtype);
}

bool is_last_axis_softmax(const Node& n) {
  if (n.op() != "Softmax" || n.outputs.size() != 1 || !n.in(0)) return false;
  const auto& a = n.a<SoftmaxAttrs>();
  const Shape& s = n.in(0)->shape;
  if (a.mode != "softmax" || !s.rank_known || s.rank() == 0) return false;
  int64_t r = static_cast<int64_t>(s.rank());
  return a.axis == -1 || a.axis == r - 1;
}

// v leads back to a score product: through scalar scales, each value read only by the next step,
// to a plain MatMul whose output is read only by that chain.
bool leads_to_product(const Graph& g, const Value* v, const Node* reader) {
  while (v->producer && private_to(g, v, reader)) {
    if (is_plain_matmul(*v->producer)) return true;
    auto s = scalar_scale(*v->producer);
    if (!s) return false;
    reader = v->producer;
    v = s->first;
  }
  return false;
}

// The mask step before the softmax: an Add of another tensor, or a Where that keeps the scores
// where a bool tensor is true and puts a very negative constant elsewhere. The scores operand is
// the one that leads back to the product.
struct MaskStep {
  Value* mask = nullptr;
  Value* scores = nullptr;
  double fill = 0;  // Where's
};

std::optional<MaskStep> mask_step(const Graph& g, const Node& n) {
  const expr::Program* p = program_of(n);
  if (!p) return std::nullopt;
  const expr::Instr& out = p->code[p->outputs[0]];
  const Value* y = n.outputs[0];
  auto scores_like = [&](const Value* v) {
    return v->dtype == y->dtype && out.dtype == y->dtype && same_shape(v->shape, y->shape) &&
           leads_to_product(g, v, &n);
  };
  if (out.op == Op::kAdd) {
    auto a = operand(n, *p, out.a), b = operand(n, *p, out.b);
    if (!a || !b || !a->value || !b->value || a->value == b->value) return std::nullopt;
    if (scores_like(a->value) && !scores_like(b->value)) return MaskStep{b->value, a->value, 0};
    if (scores_like(b->value) && !scores_like(a->value)) return MaskStep{a->value, b->value, 0};
    return std::nullopt;
  }
  if (out.op == Op::kSelect) {
    auto c = operand(n, *p, out.a), t = operand(n, *p, out.b), f = operand(n, *p, out.c);
    if (!c || !t || !f || !c->value || c->value->dtype != DataType::kBool || !t->value ||
        !scores_like(t->value) || !f->constant || !(*f->constant <= kMaskedFill))
      return std::nullopt;
    return MaskStep{c->value, t->value, *f->constant};
  }
  return std::nullopt;
}

// Undoes repeat_kv: v = Reshape(Expand(x5)) with x5 [.., Hkv, 1, S, D] (an unsqueezed x
// [B, Hkv, S, D]) expanded to [.., Hkv, rep, S, D] and merged to [B, Hkv * rep, S, D]. Returns x
// and rep, or null.
std::pair<Value*, int64_t> ungroup(const Value* v) {
  auto known = [](const Shape& s, size_t r) {
    if (!s.rank_known || s.rank() != r) return false;
    for (const Dim& d : s.dims)
      if (!d.known()) return false;
    return true;
  };
  const Node* r = v->producer;
  if (!r || r->op() != "Reshape" || !known(v->shape, 4)) return {nullptr, 0};
  const Value* e = r->in(0);
  const Node* en = e ? e->producer : nullptr;
  if (!en || en->op() != "Expand" || !known(e->shape, 5)) return {nullptr, 0};
  const Value* u = en->in(0);
  const Node* un = u ? u->producer : nullptr;
  if (!un || un->op() != "Reshape" || !known(u->shape, 5)) return {nullptr, 0};
  Value* x = un->in(0);
  if (!x || !known(x->shape, 4)) return {nullptr, 0};
  const auto &vs = v->shape.dims, &es = e->shape.dims, &us = u->shape.dims, &xs = x->shape.dims;
  const int64_t rep = es[2].value;
  bool ok = us[2].value == 1 && rep > 1 && us[0].value == xs[0].value &&
            us[1].value == xs[1].value && us[3].value == xs[2].value &&
            us[4].value == xs[3].value && es[0].value == us[0].value &&
            es[1].value == us[1].value && es[3].value == us[3].value &&
            es[4].value == us[4].value && vs[0].value == xs[0].value &&
            vs[1].value == xs[1].value * rep && vs[2].value == xs[2].value &&
            vs[3].value == xs[3].value;
  return ok ? std::make_pair(x, rep) : std::make_pair(nullptr, int64_t{0});
}

class Fuser {
 public:
  Fuser(Graph& g) : g_(g) {}

  // Tries to fuse the attention core that ends in `pv` (the MatMul with V).
  bool fuse(Node* pv) {
    if (!is_plain_matmul(*pv) || pv->a<MatMulAttrs>().alpha != 1.0) return false;
    Value* probs = pv->in(0);
    const Node* probs_reader = pv;
    if (probs->producer && is_same_type_cast(*probs->producer) && private_to(g_, probs, pv)) {
      probs_reader = probs->producer;
      probs = probs->producer->in(0);
    }
    Node* sm = probs->producer;
    if (!sm || !is_last_axis_softmax(*sm) || !private_to(g_, probs, probs_reader)) return false;
    const DataType t = probs->dtype;
    // Back from the softmax: scales, at most one mask step, scales, the score product.
    double post_scale = 1.0;  // scales after the mask scale it too: only before it
    double scale = 1.0;
    Value* s = sm->in(0);
    const Node* reader = sm;
    Value* mask = nullptr;
    double fill = 0;
    for (;;) {
      if (!s->producer || !private_to(g_, s, reader)) return false;
      Node* p = s->producer;
      if (auto sc = scalar_scale(*p)) {
        (mask ? scale : post_scale) *= sc->second;
        reader = p;
        s = sc->first;
        continue;
      }
      if (auto m = mask_step(g_, *p)) {
        if (mask) return false;  // one mask only
        mask = m->mask;
        fill = m->fill;
        reader = p;
        s = m->scores;
        continue;
      }
      break;
    }
    // An additive mask scaled afterwards would need scaling itself: only masks after all scales.
    // A Where's fill must stay very negative through the scales after it.
    if (mask && post_scale != 1.0 && mask->dtype != DataType::kBool) return false;
    if (mask && mask->dtype == DataType::kBool && !(fill * post_scale <= kMaskedFill)) return false;
    scale *= post_scale;
    Node* qk = s->producer;
    if (!qk || !is_plain_matmul(*qk) || !private_to(g_, s, reader)) return false;
    if (qk->outputs[0]->dtype != t) return false;
    const auto& qa = qk->a<MatMulAttrs>();
    scale *= qa.alpha;
    Value* q = peel_scales(g_, qk->in(0), qk, &scale);
    // K: Kᵀ is the product's B, through scales, a transpose (a Transpose node or trans_b) and
    // scales again.
    Value* kt = peel_scales(g_, qk->in(1), qk, &scale);
    const Shape& qs = q->shape;
    if (!qs.rank_known || (qs.rank() != 3 && qs.rank() != 4)) return false;
    const size_t rank = qs.rank();
    Value* k = nullptr;
    std::optional<Ints> k_perm;  // K = Transpose(k, perm) still to make, when set
    if (qa.trans_b) {
      k = kt;
    } else if (kt->producer && kt->producer->op() == "Transpose" &&
               !kt->producer->a<TransposeAttrs>().reformats() &&
               kt->producer->a<TransposeAttrs>().perm.size() == rank) {
      const Node* tr = kt->producer;
      Ints perm = tr->a<TransposeAttrs>().perm;
      std::swap(perm[rank - 1], perm[rank - 2]);  // Transpose(x, perm) with the last two swapped
      bool identity = true;
      for (size_t i = 0; i < rank; ++i) identity = identity && perm[i] == static_cast<Int>(i);
      double pre = 1.0;
      Value* x = tr->in(0);
      if (identity) {
        if (private_to(g_, kt, qk)) x = peel_scales(g_, x, tr, &pre);
        scale *= pre;
      } else {
        k_perm = perm;
      }
      k = x;
    } else {
      Ints perm;
      for (size_t i = 0; i < rank; ++i) perm.push_back(static_cast<Int>(i));
      std::swap(perm[rank - 1], perm[rank - 2]);
      k_perm = perm;
      k = kt;
    }
    Value* v = pv->in(1);
    if (pv->a<MatMulAttrs>().trans_b) return false;
    for (const Value* x : {q, k, v})
      if (x->dtype != t || !x->shape.rank_known || x->shape.rank() != rank) return false;
    // Batch dims must be provably equal (MatMul broadcasts them; Attention does not).
    const Shape& ks = k->shape;
    const Shape& vs = v->shape;
    Shape kshape = ks;
    if (k_perm) {
      kshape.dims.clear();
      for (Int i : *k_perm) kshape.dims.push_back(ks[static_cast<size_t>(i)]);
    }
    for (size_t i = 0; i + 2 < rank; ++i)
      if (!same_dim(qs[i], kshape[i]) || !same_dim(qs[i], vs[i])) return false;
    if (!same_dim(kshape[rank - 2], vs[rank - 2]) || !same_dim(qs[rank - 1], kshape[rank - 1]))
      return false;
    if (mask) {
      const Shape& ms = mask->shape;
      if (!ms.rank_known || ms.rank() > rank) return false;
    }
    if (!(scale > 0) || !std::isfinite(scale)) return false;

    // Rewrite. Reads are added before the old nodes die (EliminateDead removes them).
    const std::string name = g_.unique_name(pv->name + "/attention");
    std::vector<std::string> origins = node_origins(*qk);
    for (const Node* n : {sm, pv})
      for (const std::string& o : node_origins(*n)) origins.push_back(o);
    if (k_perm) {
      auto ta = std::make_unique<TransposeAttrs>();
      ta->perm = *k_perm;
      Value* kk = g_.add_value(name + "/k", t);
      Node* tn = g_.add_node("Transpose", {k}, {kk}, std::move(ta), g_.unique_name(name + "/k"));
      tn->origins = node_origins(*qk);
      infer_node(*tn);
      k = kk;
    }
    int64_t rep = 0;
    if (rank == 4) {
      auto gk = ungroup(k), gv = ungroup(v);
      if (gk.first && gv.first && gk.second == gv.second && same_dim(gk.first->shape[1], gv.first->shape[1])) {
        k = gk.first;
        v = gv.first;
        rep = gk.second;
      }
    }
    Value* y = pv->outputs[0];
    std::vector<Value*> ins = {q, k, v};
    if (mask) ins.push_back(mask);
    if (rank == 3) {
      // [N, S, D] operands (bmm): Attention's heads are the N products, batch 1.
      for (Value*& x : ins) {
        if (x == mask && mask->shape.rank() < 3) continue;  // broadcasts as it is
        x = unsqueeze0(x, name);
      }
    }
    auto aa = std::make_unique<AttentionAttrs>();
    aa->scale = scale;
    g_.remove_node(pv);
    Value* out = rank == 3 ? g_.add_value(name + "/y", t) : y;
    Node* an = g_.add_node("Attention", ins, {out}, std::move(aa), name);
    an->origins = origins;
    infer_node(*an);
    if (rank == 3) {
      auto ra = std::make_unique<ReshapeAttrs>();
      ra->form = "squeeze";
      ra->axes = {0};
      Node* sq = g_.add_node("Reshape", {out}, {y}, std::move(ra), g_.unique_name(name + "/squeeze"));
      infer_node(*sq);
    }
    if (rep) ++grouped_;
    return true;
  }

  int64_t grouped() const { return grouped_; }

 private:
  Value* unsqueeze0(Value* x, const std::string& name) {
    auto ra = std::make_unique<ReshapeAttrs>();
    ra->form = "unsqueeze";
    ra->axes = {0};
    Value* u = g_.add_value(x->name + "/4d", x->dtype);
    Node* n = g_.add_node("Reshape", {x}, {u}, std::move(ra), g_.unique_name(name + "/unsqueeze"));
    infer_node(*n);
    return u;
  }

  Graph& g_;
  int64_t grouped_ = 0;
};

}  // namespace

void FuseAttention::run(Graph& g, PassContext& ctx) const {
  std::vector<Node*> products;
  for (auto& n : g.nodes())
    if (n->op() == "MatMul") products.push_back(n.get());
  Fuser f(g);
  int64_t fused = 0;
  for (Node* pv : products)
    if (f.fuse(pv)) ++fused;
  if (fused) {
    g.toposort();
    EliminateDead{}.run(g, ctx);
  }
  ctx.stats["fuse_attention.fused"] += fused;
  ctx.stats["fuse_attention.grouped"] += f.grouped();
  if (fused)
    ctx.report(cat("fuse_attention: ", fused, " attention core(s) fused (", f.grouped(),
                   " grouped-query)"));
}

}  // namespace kiln
