// ChooseLayout: NHWC regions around the convolutions that want it. See pass.h for the contract.
//
// The region grows forward in node order: a Conv that prefers NHWC starts or joins it; a Pool, a
// Concat (its axis remapped), or a Pointwise node whose tensor inputs come from the region
// (constants, and operands smaller than the output, aside), joins it. Growing only forward adds no
// large Transpose: a joining node reads region values that would otherwise need one. Every value
// the region produces is then stored NHWC under a new name; the old (channels-first) value survives
// only where something outside the region, or a graph output, still reads it, as the output of one
// Transpose. Inputs the region reads from outside go through one Transpose each (constants are
// permuted here instead).
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "ops/concat.h"
#include "ops/conv.h"
#include "ops/infer.h"
#include "ops/layout_util.h"
#include "ops/pointwise.h"
#include "ops/pool.h"
#include "ops/reshape.h"
#include "ops/transpose.h"
#include "passes/pass.h"

namespace kiln {

namespace {

constexpr size_t kRank = 4;  // 2-D convolutions: NCHW <-> NHWC

bool rank4(const Value* v) { return v && v->shape.rank_known && v->shape.rank() == kRank; }

// Input slots that carry an activation in the node's layout.
std::vector<size_t> layout_slots(const Node& n) {
  if (n.op() == "Conv") return {0, 3};
  if (n.op() == "Pool" || n.op() == "QuantizeLinear") return {0};
  std::vector<size_t> all;
  for (size_t i = 0; i < n.inputs.size(); ++i) all.push_back(i);
  return all;  // Pointwise
}

bool can_join(const Node& n, const std::unordered_set<const Value*>& region_values) {
  if (n.op() == "Pool") {
    const auto& a = n.a<PoolAttrs>();
    // Indices are positions in the channels-first tensor: such a pool stays outside.
    return !a.channels_last && n.outputs.size() == 1 && rank4(n.in(0)) &&
           region_values.count(n.in(0));
  }
  if (n.op() == "QuantizeLinear") {
    // Per tensor (one scale, one zero point) it is element-wise: any layout will do.
    const Value* s = n.in(1);
    const Value* z = n.in(2);
    return rank4(n.in(0)) && region_values.count(n.in(0)) && s && s->is_constant() &&
           s->data.numel() == 1 && (!z || (z->is_constant() && z->data.numel() == 1));
  }
  if (n.op() == "Concat") {
    // Joins along its axis remapped to NHWC; every operand must be 4-D.
    bool fed = false;
    for (Value* v : n.inputs) {
      if (!rank4(v)) return false;
      if (region_values.count(v))
        fed = true;
      else if (!v->is_constant())
        return false;
    }
    return fed && rank4(n.outputs[0]);
  }
  if (n.op() != "Pointwise" || n.outputs.empty()) return false;
  for (Value* o : n.outputs)
    if (!rank4(o)) return false;
  std::optional<int64_t> out_volume = n.outputs[0]->shape.volume();
  bool fed = false;
  for (Value* v : n.inputs) {
    if (!v) return false;
    if (v->is_constant()) {
      if (v->data.rank() > kRank) return false;
    } else if (region_values.count(v)) {
      fed = true;
    } else {
      // A smaller operand from outside (a [N,C,1,1] gate, as in squeeze-and-excitation) enters
      // through its own, cheap Transpose instead of sending the large region operand out.
      std::optional<int64_t> vol = v->shape.volume();
      if (!rank4(v) || !vol || !out_volume || *vol >= *out_volume) return false;
    }
  }
  return fed;
}

// A constant operand of a region node, in NHWC: rank-4 tensors are permuted; lower ranks (numpy
// broadcast aligns them at the right: [C,1,1], [1,C,1,1]...) are first padded to rank 4; scalars
// stay as they are.
Tensor nhwc_constant(const Tensor& t) {
  if (t.rank() == 0) return t;
  Dims d(kRank - t.rank(), 1);
  d.insert(d.end(), t.dims().begin(), t.dims().end());
  return permuted(t.reshaped(d), channels_last_perm(kRank));
}

// A Pointwise node that only converts one float tensor to another float type.
bool is_float_cast(const Node& n) {
  if (n.op() != "Pointwise" || n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  const auto& p = n.a<PointwiseAttrs>().program;
  return p.code.size() == 2 && p.code[0].op == expr::Op::kInput && p.code[1].op == expr::Op::kCast &&
         p.outputs.size() == 1 && p.outputs[0] == 1 && dtype_is_float(n.inputs[0]->dtype) &&
         dtype_is_float(n.outputs[0]->dtype);
}

// Tensor cores want at least 4 input channels: cuDNN's float16 NHWC kernels run a 3-channel
// first convolution about twice as slowly as the same one padded to 4 (measured on the H100:
// ResNet-50's 7x7 stem at batch 128, 0.57 ms against 0.29 ms; 8 channels picked a slower
// algorithm again). The zeros come from the Transpose that brings the input into the region.
constexpr int64_t kMinChannels = 4;

void pad_stem_channels(Graph& g, Node& t, PassContext& ctx) {
  Value* y = t.outputs[0];
  if (y->consumers.size() != 1 || !y->shape.fully_known() || y->shape.rank() != kRank) return;
  Node& conv = *y->consumers[0];
  if (conv.op() != "Conv" || conv.in(0) != y) return;
  const auto& ca = conv.a<ConvAttrs>();
  if (!ca.channels_last || ca.group != 1 || ca.transposed) return;
  if (y->dtype != DataType::kFloat16 && y->dtype != DataType::kBFloat16) return;
  Value* w = conv.in(1);
  int64_t c = y->shape[3].value;
  if (c >= kMinChannels || !w || !w->is_constant() || w->data.rank() != kRank || w->data.dim(1) != c)
    return;
  const Tensor& wt = w->data;
  Tensor padded(wt.dtype(), {wt.dim(0), kMinChannels, wt.dim(2), wt.dim(3)});
  const int64_t hw = wt.dim(2) * wt.dim(3);
  for (int64_t i = 0; i < padded.numel(); ++i) padded.set_f64(i, 0.0);
  for (int64_t m = 0; m < wt.dim(0); ++m)
    for (int64_t k = 0; k < c * hw; ++k)
      padded.set_f64((m * kMinChannels) * hw + k, wt.get_f64((m * c) * hw + k));
  g.set_input(&conv, 1, g.add_constant(w->name + "/padded", std::move(padded)));
  auto& ta = t.a<TransposeAttrs>();
  ta.pad_end.assign(kRank, 0);
  ta.pad_end[3] = kMinChannels - c;
  infer_node(t);
  ctx.stats["choose_layout.padded_channels"] += 1;
}

// Folds lone Casts into the Transposes next to them (one pass over the data instead of two) and
// turns Transposes that only move dims of extent 1 into Reshapes (views, no copy).
int64_t tidy_transposes(Graph& g, PassContext& ctx) {
  int64_t changed = 0;
  std::vector<Node*> ts;
  for (auto& n : g.nodes())
    if (n->op() == "Transpose") ts.push_back(n.get());
  for (Node* t : ts) {
    auto& ta = t->a<TransposeAttrs>();
    // Cast -> Transpose.
    if (Node* c = t->in(0) ? t->in(0)->producer : nullptr;
        c && is_float_cast(*c) && t->in(0)->consumers.size() == 1 &&
        !g.is_graph_output(t->in(0)) && ta.to == DataType::kUndefined) {
      ta.to = t->in(0)->dtype;
      g.set_input(t, 0, c->inputs[0]);
      absorb_origins(*t, *c);
      infer_node(*t);
      ++changed;
    }
    // Transpose -> Cast.
    Value* y = t->outputs[0];
    if (y->consumers.size() == 1 && !g.is_graph_output(y) && is_float_cast(*y->consumers[0])) {
      Node* c = y->consumers[0];
      Value* out = c->outputs[0];
      ta.to = out->dtype;
      absorb_origins(*t, *c);
      g.remove_node(c);
      y->producer = nullptr;
      t->outputs[0] = out;
      out->producer = t;
      infer_node(*t);
      ++changed;
    }
  }
  for (Node* t : ts) {
    const auto& ta = t->a<TransposeAttrs>();
    Value* x = t->in(0);
    Value* y = t->outputs[0];
    if (ta.reformats() || !x || !x->shape.fully_known() || !y->shape.fully_known()) continue;
    Dims xd = x->shape.concrete();
    Ints perm = ta.perm;
    if (perm.size() != xd.size()) continue;
    // Only extent-1 dims move when the other dims keep their order.
    int64_t last = -1;
    bool order_kept = true;
    for (int64_t p : perm) {
      if (xd[p] == 1) continue;
      order_kept &= p > last;
      last = p;
    }
    if (!order_kept) continue;
    Dims yd = y->shape.concrete();
    Value* shape = g.add_constant(
        y->name + "/shape",
        Tensor::from_vector<int64_t>(DataType::kInt64, {static_cast<int64_t>(yd.size())}, yd));
    std::string name = t->name;
    std::vector<std::string> origins = node_origins(*t);
    g.remove_node(t);
    Node* r = g.add_node("Reshape", {x, shape}, {y}, std::make_unique<ReshapeAttrs>(), name);
    r->origins = std::move(origins);
    infer_node(*r);
    ++changed;
  }
  ctx.stats["choose_layout.tidied_transposes"] += changed;
  return changed;
}


}  // namespace

bool conv_prefers_channels_last(const Node& conv, const PassContext& ctx) {
  if (conv.op() != "Conv" || conv.a<ConvAttrs>().channels_last) return false;
  const Value* x = conv.in(0);
  // The CUDA tactic reorders a channels-last W once, when it instantiates: W must be a constant.
  if (!rank4(x) || conv.outputs.size() != 1 || !conv.in(1) || !conv.in(1)->is_constant())
    return false;
  if (ctx.force_channels_last) return true;
  return ctx.target->prefers_channels_last(conv);
}

void ChooseLayout::run(Graph& g, PassContext& ctx) const {
  std::vector<Node*> region;
  std::unordered_set<const Value*> region_values;
  for (auto& np : g.nodes()) {
    Node& n = *np;
    if (!conv_prefers_channels_last(n, ctx) && (region.empty() || !can_join(n, region_values)))
      continue;
    region.push_back(&n);
    for (Value* o : n.outputs) region_values.insert(o);
  }
  if (region.empty()) return;

  const Ints to_nhwc = channels_last_perm(kRank), to_nchw = channels_first_perm(kRank);
  int64_t transposes = 0;
  auto add_transpose = [&](Value* from, Value* to, const Ints& perm) {
    auto a = std::make_unique<TransposeAttrs>();
    a->perm = perm;
    g.add_node("Transpose", {from}, {to}, std::move(a), g.unique_name(to->name + "/transpose"));
    ++transposes;
  };

  // 1. Every region output gets an NHWC value; the region's node writes it.
  std::unordered_map<Value*, Value*> nhwc;  // channels-first value -> its NHWC twin
  std::vector<Value*> produced;
  for (Node* n : region) {
    if (n->op() == "Conv") n->a<ConvAttrs>().channels_last = true;
    if (n->op() == "Pool") n->a<PoolAttrs>().channels_last = true;
    if (n->op() == "Concat") {
      // NHWC axis i holds NCHW axis to_nhwc[i].
      int64_t& axis = n->a<ConcatAttrs>().axis;
      int64_t old_axis = normalize_axis(axis, kRank, "Concat axis");
      for (size_t i = 0; i < kRank; ++i)
        if (to_nhwc[i] == old_axis) axis = static_cast<int64_t>(i);
    }
    for (Value*& o : n->outputs) {
      Value* t = g.add_value(o->name + "/nhwc", o->dtype, permuted_shape(o->shape, to_nhwc));
      o->producer = nullptr;
      nhwc[o] = t;
      produced.push_back(o);
      o = t;
      t->producer = n;
    }
  }
  // 2. Region nodes read NHWC: region values directly, constants permuted, anything else through
  // a Transpose (one per value).
  std::unordered_map<Value*, Value*> entering;
  for (Node* n : region) {
    for (size_t i : layout_slots(*n)) {
      Value* v = n->in(i);
      if (!v) continue;
      Value* t = nullptr;
      if (auto it = nhwc.find(v); it != nhwc.end()) {
        t = it->second;
      } else if (auto e = entering.find(v); e != entering.end()) {
        t = e->second;
      } else if (v->is_constant()) {
        t = g.add_constant(v->name + "/nhwc", nhwc_constant(v->data));
        entering[v] = t;
      } else {
        t = g.add_value(v->name + "/nhwc", v->dtype, permuted_shape(v->shape, to_nhwc));
        add_transpose(v, t, to_nhwc);
        entering[v] = t;
      }
      g.set_input(n, i, t);
    }
  }
  // 3. Channels-first values still read outside the region (or graph outputs) come back through
  // one Transpose and keep their names.
  for (Value* v : produced)
    if (!v->consumers.empty() || g.is_graph_output(v)) add_transpose(nhwc.at(v), v, to_nchw);

  // 4. Reformats: pad a stem's channels, fold Casts into Transposes, Transposes of extent-1
  // dims become Reshapes.
  for (auto& [v, t] : entering)
    if (t->producer && t->producer->op() == "Transpose") pad_stem_channels(g, *t->producer, ctx);
  g.toposort();
  infer_graph(g);
  int64_t tidied = tidy_transposes(g, ctx);
  g.toposort();
  infer_graph(g);
  ctx.stats["choose_layout.nhwc_nodes"] += static_cast<int64_t>(region.size());
  ctx.stats["choose_layout.transposes"] += transposes;
  ctx.report(
      cat("choose_layout: ", region.size(), " node(s) in NHWC, ", transposes, " transpose(s), ",
          tidied, " cast(s)/transpose(s) folded"));
}

}  // namespace kiln
