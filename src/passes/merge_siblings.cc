// MergeSiblings: Convs (or MatMuls) that read the same input become one wider op whose output
// channels are sliced back into the original values, so that one launch reads X once instead of
// once per sibling (inception blocks' 1x1 branches, Q/K/V projections). See pass.h for the
// contract.
//
// The merge only pays when the Slices cost nothing: the memory planner (runtime/memory_plan.cc,
// slice_view) makes a Slice a view when it is one contiguous range of its input at a 16-byte
// offset, and the Slice's output is free to live there (not a graph output, not already placed
// inside an eliminated Concat). Everything here is chosen so that each Slice meets those rules at
// the graph's concrete shapes. A Slice that is not one contiguous range (channels of an NHWC
// tensor at batch > 1) is a strided view only where every step reading it accepts strided input:
// where the target backend says its readers read such slices in place (BackendTraits; on CUDA,
// float16/bfloat16 ungrouped Convs through cuDNN graph-API plans). Such groups merge the siblings
// whose every reader does; other groups whose Slices would be strided copies are only counted.
#include <cstring>
#include <numeric>

#include "common/error.h"
#include "ops/conv.h"
#include "ops/epilogue.h"
#include "ops/infer.h"
#include "ops/mat_mul.h"
#include "ops/slice.h"
#include "passes/pass.h"

namespace kiln {

namespace {

// memory_plan.cc makes no view at a byte offset that is not a multiple of this.
constexpr int64_t kViewAlign = 16;

Ints filled(const Ints& v, size_t n, int64_t fill) { return v.empty() ? Ints(n, fill) : v; }

// A Conv or MatMul that may merge with others of its kind, and what it must share with them.
struct Candidate {
  Node* node = nullptr;
  Value* weight = nullptr;           // Conv W [M, C, k...]; MatMul B [K, N] or [N, K] (trans_b)
  Value* bias = nullptr;             // constant [width], or none
  int64_t width = 0;                 // output channels: Conv M, MatMul N
  size_t axis = 0;                   // the channel axis of the output as stored
  std::unique_ptr<Attrs> key_attrs;  // attributes with defaults spelled out, for comparison
  Dims key_dims;                     // weight dims other than the width (kernel, K)
  bool into_concat = false;          // see feeds_concat
};

bool fully_known(const Value* v) { return v && v->shape.rank_known && v->shape.fully_known(); }

// What every candidate needs, whatever its op: a non-constant data input and one output that
// something other than a graph output or a lone Concat reads.
bool common_ok(const Graph& g, const Node& n) {
  if (n.outputs.size() != 1 || !n.in(0) || !n.in(1) || n.in(0)->is_constant()) return false;
  const Value* x = n.in(0);
  const Value* y = n.outputs[0];
  if (!fully_known(x) || !fully_known(y) || y->shape.rank() == 0) return false;
  if (!dtype_is_float(y->dtype) || x->dtype != y->dtype) return false;
  // A graph output cannot be a view (the caller owns its buffer).
  if (g.is_graph_output(y)) return false;
  return true;
}

// The planner writes a lone Concat operand straight into the Concat's output (when the Concat's
// slices are contiguous, which at the shapes where merging pays they are); the Slice feeding it
// would then be a copy instead of a view. Such an op already costs no copy as it is.
bool feeds_concat(const Node& n) {
  const Value* y = n.outputs[0];
  return y->consumers.size() == 1 && y->consumers[0]->op() == "Concat";
}

// A constant 1-D bias of `width` entries of the output's type, or none. False when the input is
// there but is not such a constant.
bool bias_ok(const Node& n, int64_t width, Value** bias) {
  Value* b = n.in(2);
  *bias = b;
  if (!b) return true;
  return b->is_constant() && b->dtype == n.outputs[0]->dtype && b->data.rank() == 1 &&
         b->data.dim(0) == width;
}

bool conv_candidate(const Node& n, Candidate& c) {
  const auto& a = n.a<ConvAttrs>();
  if (a.group != 1 || a.transposed || has_epilogue_program(a.epilogue) || n.in(3) ||
      n.inputs.size() > 4)
    return false;
  Value* w = n.in(1);
  const Value* y = n.outputs[0];
  if (!w->is_constant() || w->dtype != y->dtype || w->data.rank() < 3 ||
      w->data.rank() != y->shape.rank())
    return false;
  c.width = w->data.dim(0);
  if (c.width <= 0 || !bias_ok(n, c.width, &c.bias)) return false;
  // A channels-last Conv's values carry their physical dims (ChooseLayout): channels last.
  c.axis = a.channels_last ? y->shape.rank() - 1 : 1;
  if (y->shape[c.axis].value != c.width) return false;
  c.weight = w;
  c.key_dims.assign(w->data.dims().begin() + 1, w->data.dims().end());
  const size_t nsp = w->data.rank() - 2;
  auto k = std::make_unique<ConvAttrs>(a);
  k->strides = filled(a.strides, nsp, 1);
  k->dilations = filled(a.dilations, nsp, 1);
  k->pads = filled(a.pads, 2 * nsp, 0);
  k->output_padding = filled(a.output_padding, nsp, 0);
  c.key_attrs = std::move(k);
  return true;
}

bool matmul_candidate(const Node& n, Candidate& c) {
  const auto& a = n.a<MatMulAttrs>();
  if (has_epilogue_program(a.epilogue) || n.in(3) || n.inputs.size() > 4) return false;
  Value* b = n.in(1);
  const Value* y = n.outputs[0];
  if (!b->is_constant() || b->dtype != y->dtype || b->data.rank() != 2) return false;
  c.width = a.trans_b ? b->data.dim(0) : b->data.dim(1);
  if (c.width <= 0 || !bias_ok(n, c.width, &c.bias)) return false;
  c.axis = y->shape.rank() - 1;
  if (y->shape[c.axis].value != c.width) return false;
  c.weight = b;
  c.key_dims = {a.trans_b ? b->data.dim(1) : b->data.dim(0)};
  c.key_attrs = std::make_unique<MatMulAttrs>(a);
  return true;
}

bool compatible(const Candidate& a, const Candidate& b) {
  return a.node->op() == b.node->op() && a.node->outputs[0]->dtype == b.node->outputs[0]->dtype &&
         a.axis == b.axis && a.key_dims == b.key_dims && a.key_attrs->equals(*b.key_attrs);
}

// Writes `from`, a block of rows x (cols * es) bytes, into `to` (rows x to_cols elements) at
// column `at`.
void put_block(const Tensor& from, int64_t rows, int64_t cols, Tensor& to, int64_t to_cols,
               int64_t at) {
  const size_t es = dtype_size(from.dtype());
  const auto* src = static_cast<const unsigned char*>(from.raw());
  auto* dst = static_cast<unsigned char*>(to.raw());
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(dst + (r * to_cols + at) * es, src + r * cols * es, static_cast<size_t>(cols) * es);
}

Value* i64_constant(Graph& g, const std::string& hint, int64_t v) {
  return g.add_constant(hint, Tensor::from_vector<int64_t>(DataType::kInt64, {1}, {v}));
}

struct Counts {
  int64_t groups = 0, convs = 0, conv_groups = 0, matmuls = 0, matmul_groups = 0;
  int64_t strided = 0, padded = 0, concat_kept = 0;
};

// Whether every reader of c's output (a channels-last Conv's, whose channel slices at batch > 1
// are strided) can read a strided channel slice in place, as the target says (see the file
// comment; the kernels' accepts_strided has the final word at run time).
bool readers_take_strided(const Candidate& c, const BackendTraits& target) {
  const Node& n = *c.node;
  if (n.op() != "Conv" || !n.a<ConvAttrs>().channels_last) return false;
  const Value* y = n.outputs[0];
  for (const Node* r : y->consumers)
    for (size_t i = 0; i < r->inputs.size(); ++i)
      if (r->inputs[i] == y && !target.reads_strided_channel_slice(*r, i)) return false;
  return !y->consumers.empty();
}

// Merges one group (>= 2 compatible candidates, in node order) when every Slice will be a view.
void merge_group(Graph& g, std::vector<Candidate>& group, const BackendTraits& target,
                 Counts& counts) {
  const Dims yd = group[0].node->outputs[0]->shape.concrete();
  const size_t axis = group[0].axis;
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= yd[d];
  for (size_t d = axis + 1; d < yd.size(); ++d) inner *= yd[d];
  if (outer != 1) {
    // Each Slice is `outer` separate ranges: a view only where its readers take strided input,
    // else a copy per sibling for the launches saved.
    std::vector<Candidate> keep;
    for (Candidate& c : group)
      if (readers_take_strided(c, target)) keep.push_back(std::move(c));
    if (keep.size() < 2) {
      ++counts.strided;
      return;
    }
    group = std::move(keep);
  }
  Node* first = group[0].node;
  const DataType dt = first->outputs[0]->dtype;
  const int64_t es = static_cast<int64_t>(dtype_size(dt));
  const int64_t row_bytes = inner * es;
  if (row_bytes <= 0) return;
  // Each sibling starts at a channel whose byte offset the planner accepts for a view; the
  // channels in between compute zeros nobody reads.
  const int64_t step = kViewAlign / std::gcd(row_bytes, kViewAlign);
  std::vector<int64_t> start;
  int64_t total = 0, used = 0;
  for (const Candidate& c : group) {
    total = (total + step - 1) / step * step;
    start.push_back(total);
    total += c.width;
    used += c.width;
  }
  // Strided slices: the merged tensor's rows (one pixel's channels) start at view offsets too.
  if (outer != 1) total = (total + step - 1) / step * step;

  // The merged weights (and bias, zeros where a sibling has none), widths side by side.
  const bool is_conv = first->op() == "Conv";
  const bool trans_b = !is_conv && first->a<MatMulAttrs>().trans_b;
  Dims wd = group[0].weight->data.dims();
  const bool width_first = is_conv || trans_b;  // the width is the weight's axis 0
  wd[width_first ? 0 : 1] = total;
  Tensor w(dt, wd);
  bool any_bias = false;
  for (size_t i = 0; i < group.size(); ++i) {
    const Tensor& wi = group[i].weight->data;
    if (width_first) {
      const int64_t per = wi.numel() / group[i].width;  // elements per output channel
      put_block(wi, 1, wi.numel(), w, 0, start[i] * per);
    } else {
      put_block(wi, wi.dim(0), wi.dim(1), w, total, start[i]);
    }
    any_bias |= group[i].bias != nullptr;
  }
  Tensor b;
  if (any_bias) {
    b = Tensor(dt, {total});
    for (size_t i = 0; i < group.size(); ++i)
      if (group[i].bias) put_block(group[i].bias->data, 1, group[i].width, b, 0, start[i]);
  }

  // The first sibling becomes the merged op, keeping its place in the order.
  std::vector<Value*> outs;
  for (const Candidate& c : group) outs.push_back(c.node->outputs[0]);
  g.set_input(first, 1, g.add_constant(group[0].weight->name + "/merged", std::move(w)));
  if (any_bias) {
    while (first->inputs.size() < 3) first->inputs.push_back(nullptr);
    g.set_input(first, 2, g.add_constant(first->name + "/merged_bias", std::move(b)));
  }
  Value* merged = g.add_value(outs[0]->name + "/merged", dt);
  outs[0]->producer = nullptr;
  first->outputs[0] = merged;
  merged->producer = first;
  for (size_t i = 1; i < group.size(); ++i) {
    absorb_origins(*first, *group[i].node);
    g.remove_node(group[i].node);
  }
  infer_node(*first);
  KILN_CHECK(merged->shape.fully_known() && merged->shape[axis].value == total,
             "merge_siblings: merged ", first->label(), " infers ", merged->shape.str());

  // One Slice per original output, writing that value: its consumers are untouched.
  Value* axes = i64_constant(g, merged->name + "/axis", static_cast<int64_t>(axis));
  for (size_t i = 0; i < group.size(); ++i) {
    const Shape want = outs[i]->shape;
    Node* s = g.add_node(
        "Slice",
        {merged, i64_constant(g, outs[i]->name + "/start", start[i]),
         i64_constant(g, outs[i]->name + "/end", start[i] + group[i].width), axes},
        {outs[i]}, std::make_unique<SliceAttrs>(), outs[i]->name + "/slice");
    infer_node(*s);
    KILN_CHECK(outs[i]->shape == want, "merge_siblings: the slice for ", outs[i]->name, " infers ",
               outs[i]->shape.str(), " instead of ", want.str());
  }
  ++counts.groups;
  (is_conv ? counts.conv_groups : counts.matmul_groups) += 1;
  (is_conv ? counts.convs : counts.matmuls) += static_cast<int64_t>(group.size());
  counts.padded += total - used;
}

}  // namespace

void MergeSiblings::run(Graph& g, PassContext& ctx) const {
  Counts counts;
  // Groups of compatible candidates in node order (by their first member).
  std::vector<std::vector<Candidate>> groups;
  for (auto& np : g.nodes()) {
    Node& n = *np;
    if ((n.op() != "Conv" && n.op() != "MatMul") || !common_ok(g, n)) continue;
    Candidate c;
    c.node = &n;
    if (!(n.op() == "Conv" ? conv_candidate(n, c) : matmul_candidate(n, c))) continue;
    c.into_concat = feeds_concat(n);
    bool placed = false;
    for (auto& grp : groups)
      if (grp[0].node->in(0) == n.in(0) && compatible(grp[0], c)) {
        grp.push_back(std::move(c));
        placed = true;
        break;
      }
    if (!placed) {
      groups.emplace_back();
      groups.back().push_back(std::move(c));
    }
  }
  for (auto& grp : groups) {
    if (grp.size() < 2) continue;
    std::vector<Candidate> merging;
    for (Candidate& c : grp) {
      if (c.into_concat)
        ++counts.concat_kept;
      else
        merging.push_back(std::move(c));
    }
    if (merging.size() >= 2) merge_group(g, merging, *ctx.target, counts);
  }
  // The Slices were appended; their consumers come earlier in the order.
  if (counts.groups) g.toposort();

  ctx.stats["merge_siblings.groups"] += counts.groups;
  ctx.stats["merge_siblings.convs"] += counts.convs;
  ctx.stats["merge_siblings.matmuls"] += counts.matmuls;
  ctx.stats["merge_siblings.strided_skipped"] += counts.strided;
  ctx.stats["merge_siblings.padded_channels"] += counts.padded;
  ctx.stats["merge_siblings.concat_kept"] += counts.concat_kept;
  if (counts.groups == 0 && counts.strided == 0) return;
  std::string line = cat("merge_siblings: ", counts.groups, " group(s)");
  if (counts.conv_groups) line += cat(", ", counts.convs, " convs -> ", counts.conv_groups);
  if (counts.matmul_groups)
    line += cat(", ", counts.matmuls, " matmuls -> ", counts.matmul_groups);
  if (counts.padded) line += cat(", ", counts.padded, " padding channel(s)");
  if (counts.strided)
    line += cat("; ", counts.strided,
                " group(s) left alone (their slices would be strided copies)");
  ctx.report(line);
}

}  // namespace kiln
