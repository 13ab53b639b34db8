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
#include "ops/pool.h"
#include "ops/transpose.h"
#include "passes/pass.h"

namespace kiln {

namespace {

constexpr size_t kRank = 4;  // 2-D convolutions: NCHW <-> NHWC

bool rank4(const Value* v) { return v && v->shape.rank_known && v->shape.rank() == kRank; }

// Input slots that carry an activation in the node's layout.
std::vector<size_t> layout_slots(const Node& n) {
  if (n.op() == "Conv") return {0, 3};
  if (n.op() == "Pool") return {0};
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

}  // namespace

bool conv_prefers_channels_last(const Node& conv, const PassContext& ctx) {
  if (conv.op() != "Conv" || conv.a<ConvAttrs>().channels_last) return false;
  const Value* x = conv.in(0);
  // The CUDA tactic reorders a channels-last W once, when it instantiates: W must be a constant.
  if (!rank4(x) || conv.outputs.size() != 1 || !conv.in(1) || !conv.in(1)->is_constant())
    return false;
  if (ctx.force_channels_last) return true;
  return ctx.device == "cuda" &&
         (x->dtype == DataType::kFloat16 || x->dtype == DataType::kBFloat16);
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

  g.toposort();
  infer_graph(g);
  ctx.stats["choose_layout.nhwc_nodes"] += static_cast<int64_t>(region.size());
  ctx.stats["choose_layout.transposes"] += transposes;
  ctx.report(
      cat("choose_layout: ", region.size(), " node(s) in NHWC, ", transposes, " transpose(s)"));
}

}  // namespace kiln
