// GatherToSlice: see pass.h for the contract.
#include <memory>

#include "ops/gather.h"
#include "ops/infer.h"
#include "ops/op_util.h"
#include "ops/reshape.h"
#include "ops/slice.h"
#include "passes/pass.h"

namespace kiln {

namespace {

Tensor i64_vector(int64_t v) {
  Tensor t(DataType::kInt64, Dims{1});
  t.set_i64(0, v);
  return t;
}

}  // namespace

void GatherToSlice::run(Graph& g, PassContext& ctx) const {
  int64_t changed = 0;
  std::vector<Node*> nodes;
  for (auto& np : g.nodes()) nodes.push_back(np.get());
  for (Node* n : nodes) {
    if (n->op() != "Gather" || n->outputs.size() != 1 || n->inputs.size() != 2) continue;
    Value* data = n->in(0);
    const Value* idx = n->in(1);
    if (!data || !idx || !idx->is_constant() || !data->shape.rank_known) continue;
    const Tensor& iv = idx->data;
    if (iv.rank() > 1 || iv.numel() < 1 ||
        (iv.dtype() != DataType::kInt64 && iv.dtype() != DataType::kInt32))
      continue;
    const int64_t r = static_cast<int64_t>(data->shape.rank());
    int64_t axis = n->a<GatherAttrs>().axis;
    if (axis < -r || axis >= r) continue;  // the op reports it
    if (axis < 0) axis += r;
    const Dim d = data->shape[axis];
    if (!d.known()) continue;
    // One increasing run of consecutive in-range positions.
    bool run = true;
    int64_t first = 0;
    for (int64_t i = 0; i < iv.numel() && run; ++i) {
      int64_t p = iv.get_i64(i);
      if (p < 0) p += d.value;
      if (p < 0 || p >= d.value) run = false;
      if (i == 0) first = p;
      else if (p != first + i) run = false;
    }
    if (!run) continue;
    Value* out = n->outputs[0];
    const std::string name = n->name;
    const std::vector<std::string> origins = n->origins.empty() ? std::vector<std::string>{name}
                                                                : n->origins;
    const bool scalar = iv.rank() == 0;
    g.remove_node(n);
    Value* sliced = scalar ? g.add_value(out->name + "/slice", data->dtype) : out;
    Node* s = g.add_node(
        "Slice",
        {data, g.add_constant(name + "/starts", i64_vector(first)),
         g.add_constant(name + "/ends", i64_vector(first + iv.numel())),
         g.add_constant(name + "/axes", i64_vector(axis))},
        {sliced}, std::make_unique<SliceAttrs>(), g.unique_name(name + "/slice"));
    s->origins = origins;
    infer_node(*s);
    if (scalar) {
      auto ra = std::make_unique<ReshapeAttrs>();
      ra->form = "squeeze";
      ra->axes = {axis};
      Node* q = g.add_node("Reshape", {sliced}, {out}, std::move(ra), g.unique_name(name + "/squeeze"));
      q->origins = origins;
      infer_node(*q);
    }
    ++changed;
  }
  if (changed) g.toposort();
  ctx.stats["gather_to_slice.gathers"] += changed;
  if (changed) ctx.report(cat("gather_to_slice: ", changed, " gather(s) became slices"));
}

}  // namespace kiln
