// MergeSiblings: Convs and MatMuls reading the same input become one wider op plus Slices, only
// where the memory planner turns every Slice into a view. Each rewrite is checked for structure,
// for the planner's verdict (every Slice a view), and for computing what the original computes on
// the CPU reference and on the GPU; the cases that must stay apart are checked unchanged.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "ir/graph.h"
#include "ops/concat.h"
#include "ops/conv.h"
#include "ops/epilogue.h"
#include "ops/infer.h"
#include "ops/mat_mul.h"
#include "ops/pointwise.h"
#include "ops/pool.h"
#include "passes/pass.h"
#include "pass_harness.h"
#include "runtime/memory_plan.h"

namespace kiln {
namespace {

using namespace passtest;
using expr::Op;

struct ConvOpts {
  int64_t k = 1;             // square kernel
  int64_t stride = 1;
  int64_t dilation = 1;
  bool bias = true;
  std::string activation;
  Value* residual = nullptr;
  bool spell_defaults = false;  // explicit strides/dilations/pads instead of empty lists
  int64_t group = 1;
};

Value* conv(G& b, Value* x, int64_t m, const ConvOpts& o = {}) {
  const int64_t c = x->shape[1].value;
  auto a = std::make_unique<ConvAttrs>();
  const int64_t p = o.dilation * (o.k - 1) / 2;
  if (o.stride != 1 || o.spell_defaults) a->strides = {o.stride, o.stride};
  if (o.dilation != 1 || o.spell_defaults) a->dilations = {o.dilation, o.dilation};
  if (p != 0 || o.spell_defaults) a->pads = {p, p, p, p};
  a->group = o.group;
  a->activation = o.activation;
  const int64_t cg = c / o.group;
  std::vector<Value*> ins{x, b.constant("w", random({m, cg, o.k, o.k}, b.rng,
                                                    1.0 / std::sqrt(double(cg * o.k * o.k))))};
  if (o.bias || o.residual)
    ins.push_back(o.bias ? b.constant("b", random({m}, b.rng, 0.5)) : nullptr);
  if (o.residual) ins.push_back(o.residual);
  return b.node("Conv", ins, std::move(a), "conv");
}

Value* matmul(G& b, Value* x, int64_t k, int64_t n, bool bias, bool trans_b = false,
              const std::string& activation = "") {
  auto a = std::make_unique<MatMulAttrs>();
  a->trans_b = trans_b;
  a->activation = activation;
  Dims wd = trans_b ? Dims{n, k} : Dims{k, n};
  std::vector<Value*> ins{x, b.constant("w", random(wd, b.rng, 1.0 / std::sqrt(double(k))))};
  if (bias) ins.push_back(b.constant("bias", random({n}, b.rng, 0.5)));
  return b.node("MatMul", ins, std::move(a), "mm");
}

Value* concat(G& b, std::vector<Value*> ins, int64_t axis) {
  auto a = std::make_unique<ConcatAttrs>();
  a->axis = axis;
  return b.node("Concat", std::move(ins), std::move(a), "concat");
}

// The memory plan of g at its own (fully known) shapes, as a device context makes it.
MemoryPlan plan_of(const Graph& g) {
  std::unordered_map<const Value*, size_t> index;
  for (size_t i = 0; i < g.values().size(); ++i) index[g.values()[i].get()] = i;
  std::vector<Dims> dims(g.values().size());
  for (size_t i = 0; i < g.values().size(); ++i)
    if (g.values()[i]->shape.fully_known()) dims[i] = g.values()[i]->shape.concrete();
  std::vector<size_t> last_use(g.values().size(), 0);
  for (size_t s = 0; s < g.nodes().size(); ++s)
    for (Value* v : g.nodes()[s]->inputs)
      if (v) last_use[index[v]] = s;
  for (Value* v : g.outputs) last_use[index[v]] = SIZE_MAX;
  MemoryPlanRequest r;
  r.graph = &g;
  r.index = &index;
  r.dims = &dims;
  r.last_use = &last_use;
  r.in_place_ok = [&](size_t s, size_t) { return g.nodes()[s]->op() == "Pointwise"; };
  return plan_memory(r);
}

// Every Slice step of g is a view of its input (nothing to launch), and there is at least one.
void expect_slices_are_views(const Graph& g) {
  MemoryPlan p = plan_of(g);
  int slices = 0;
  for (size_t s = 0; s < g.nodes().size(); ++s) {
    const Node& n = *g.nodes()[s];
    if (n.op() != "Slice") continue;
    ++slices;
    EXPECT_TRUE(p.skip[s]) << n.label() << " is a copy, not a view";
    EXPECT_EQ(p.note[s], "view of " + n.inputs[0]->name) << n.label();
  }
  EXPECT_GT(slices, 0);
}

// The Slices reading merged's output, by start: {start, width}, each on `axis`.
std::vector<std::pair<int64_t, int64_t>> slices_of(const Node& merged, int64_t axis) {
  std::vector<std::pair<int64_t, int64_t>> r;
  for (const Node* s : merged.outputs[0]->consumers) {
    EXPECT_EQ(s->op(), "Slice");
    if (s->op() != "Slice") continue;
    EXPECT_EQ(s->inputs.size(), 4u);
    EXPECT_EQ(s->inputs[3]->data.get_i64(0), axis);
    int64_t b = s->inputs[1]->data.get_i64(0), e = s->inputs[2]->data.get_i64(0);
    r.push_back({b, e - b});
  }
  std::sort(r.begin(), r.end());
  return r;
}

const Node* merged_node(const Graph& g, std::string_view op) {
  for (auto& n : g.nodes())
    if (n->op() == op && !n->outputs[0]->consumers.empty() &&
        n->outputs[0]->consumers[0]->op() == "Slice")
      return n.get();
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// An inception block (GoogLeNet's shape): x feeds a 1x1 conv straight into the Concat, two 1x1
// "reduce" convs (relu) in front of 3x3 convs, a 1x1 relu conv in front of a pool, a 1x1 conv
// without relu in front of a Sigmoid, and a 3x3 conv. The three relu 1x1 convs merge (K 7, 13, 5,
// one without bias); the 3x3 one differs in kernel, the Sigmoid one in activation, and the one
// feeding the Concat is written into the Concat by the planner already.
std::unique_ptr<Graph> inception(int64_t n, std::mt19937::result_type seed, G& b) {
  b.rng.seed(seed);
  Value* x = b.input("x", {n, 6, 8, 10});
  ConvOpts relu;
  relu.activation = "relu";
  ConvOpts relu_nobias = relu;
  relu_nobias.bias = false;
  ConvOpts k3;
  k3.k = 3;
  Value* direct = conv(b, x, 5);
  Value* r1 = conv(b, x, 7, relu);
  Value* r2 = conv(b, x, 13, relu_nobias);
  Value* r3 = conv(b, x, 5, relu);
  Value* plain = conv(b, x, 4);
  Value* wide = conv(b, x, 4, k3);
  Value* b1 = conv(b, r1, 6, k3);
  Value* b2 = conv(b, r2, 3, k3);
  Value* b3 = b.pool("max", r3, {3, 3}, {1, 1}, {1, 1, 1, 1});
  Value* b4 = b.unary(Op::kSigmoid, plain);
  // A reader after the Concat: a Concat writing a graph output is never eliminated.
  b.output(b.unary(Op::kTanh, concat(b, {direct, b1, b2, b3, b4, wide}, 1)), "y");
  return std::move(b.g);
}

TEST(MergeSiblings, InceptionBlockAtBatch1) {
  G b;
  auto g = inception(1, 3, b);
  auto before = g->clone();
  ASSERT_EQ(count_op(*g, "Conv"), 8);
  std::vector<std::string> lines;
  PassContext ctx;
  ctx.progress = [&](const std::string& l) { lines.push_back(l); };
  apply(MergeSiblings{}, *g, ctx);
  EXPECT_EQ(count_op(*g, "Conv"), 6);
  EXPECT_EQ(count_op(*g, "Slice"), 3);
  EXPECT_EQ(ctx.stats["merge_siblings.groups"], 1);
  EXPECT_EQ(ctx.stats["merge_siblings.convs"], 3);
  EXPECT_EQ(ctx.stats["merge_siblings.strided_skipped"], 0);
  EXPECT_EQ(ctx.stats["merge_siblings.concat_kept"], 1);
  EXPECT_EQ(ctx.stats["merge_siblings.padded_channels"], 0);  // 80 floats a channel: aligned
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "merge_siblings: 1 group(s), 3 convs -> 1");
  const Node* m = merged_node(*g, "Conv");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->inputs[0]->name, "x");
  EXPECT_EQ(m->a<ConvAttrs>().activation, "relu");
  EXPECT_EQ(m->in(1)->shape.str(), "[25,6,1,1]");
  ASSERT_NE(m->in(2), nullptr);
  EXPECT_EQ(m->in(2)->shape.str(), "[25]");
  EXPECT_EQ(node_origins(*m).size(), 3u);
  EXPECT_EQ(slices_of(*m, 1), (std::vector<std::pair<int64_t, int64_t>>{{0, 7}, {7, 13}, {20, 5}}));
  // The bias of the sibling that had none is zeros; the others' are theirs.
  for (int64_t c = 7; c < 20; ++c) EXPECT_EQ(m->in(2)->data.get_f64(c), 0.0);
  // The 3x3 conv on x, the Sigmoid branch and the Concat-fed conv still read x on their own.
  int alone = 0;
  for (Node* c : g->find_value("x")->consumers) alone += c != m;
  EXPECT_EQ(alone, 3);
  expect_slices_are_views(*g);
  // And the Concat is still eliminated: no copy anywhere in the block.
  MemoryPlan p = plan_of(*g);
  for (size_t s = 0; s < g->nodes().size(); ++s)
    if (g->nodes()[s]->op() == "Concat") {
      EXPECT_TRUE(p.skip[s]);
    }
  expect_same_outputs(*before, *g, 1e-5, b.rng);
}

TEST(MergeSiblings, InceptionBlockAtBatch1OnGpu) {
  G b;
  auto g = inception(1, 4, b);
  auto before = g->clone();
  PassContext ctx;
  apply(MergeSiblings{}, *g, ctx);
  ASSERT_EQ(count_op(*g, "Slice"), 3);
  if (!expect_same_outputs_on_gpu(*before, *g, 1e-4, b.rng)) GTEST_SKIP() << "no GPU";
}

TEST(MergeSiblings, InceptionBlockAtBatch2IsLeftAlone) {
  // At batch 2 each Slice would gather two separate ranges: a copy per sibling.
  G b;
  auto g = inception(2, 3, b);
  auto want = ops_of(*g);
  PassContext ctx;
  apply(MergeSiblings{}, *g, ctx);
  EXPECT_EQ(ops_of(*g), want);
  EXPECT_EQ(ctx.stats["merge_siblings.groups"], 0);
  EXPECT_EQ(ctx.stats["merge_siblings.strided_skipped"], 1);
}

// ---------------------------------------------------------------------------------------------
// What keeps two convs apart.

// x -> conv(a), conv(b) -> Add -> y: whether the pass merges the pair.
bool pair_merges(const ConvOpts& a, const ConvOpts& b, Dims x_dims = {1, 4, 7, 5}) {
  G g;
  Value* x = g.input("x", x_dims);
  Value* ya = conv(g, x, 6, a);
  Value* yb = conv(g, x, 6, b);
  if (ya->shape != yb->shape) {
    ADD_FAILURE() << "the pair must have one output shape for this test";
    return false;
  }
  g.output(g.binary(Op::kAdd, ya, yb), "y");
  auto before = g.g->clone();
  PassContext ctx;
  apply(MergeSiblings{}, *g.g, ctx);
  bool merged = ctx.stats["merge_siblings.groups"] == 1;
  EXPECT_EQ(count_op(*g.g, "Slice"), merged ? 2 : 0);
  if (merged) expect_same_outputs(*before, *g.g, 1e-5, g.rng);
  return merged;
}

TEST(MergeSiblings, ConvsDifferingInGeometryOrActivationStayApart) {
  ConvOpts base;
  EXPECT_TRUE(pair_merges(base, base));
  ConvOpts relu;
  relu.activation = "relu";
  EXPECT_FALSE(pair_merges(base, relu));
  ConvOpts k3;
  k3.k = 3;
  EXPECT_TRUE(pair_merges(k3, k3));
  ConvOpts dilated = k3;
  dilated.dilation = 2;   // pads 2: same output size
  EXPECT_FALSE(pair_merges(k3, dilated, {1, 4, 9, 9}));
  // Strides differ: on one pixel a 1x1 conv gives one pixel at either stride.
  ConvOpts s2;
  s2.stride = 2;
  EXPECT_TRUE(pair_merges(s2, s2, {1, 4, 1, 1}));
  EXPECT_FALSE(pair_merges(base, s2, {1, 4, 1, 1}));
  // Defaults spelled out (strides 1, dilations 1, pads 0) are the same geometry.
  ConvOpts spelled;
  spelled.spell_defaults = true;
  EXPECT_TRUE(pair_merges(base, spelled));
  // Grouped convolutions never merge.
  ConvOpts grouped;
  grouped.group = 2;
  EXPECT_FALSE(pair_merges(grouped, grouped));
}

TEST(MergeSiblings, ResidualEpilogueProgramOrComputedWeightsKeepConvsApart) {
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(variant);
    G g;
    Value* x = g.input("x", {1, 4, 5, 6});
    Value* z = g.input("z", {1, 6, 5, 6});
    Value* a = conv(g, x, 6);
    Value* c = nullptr;
    if (variant == 0) {
      ConvOpts res;
      res.residual = z;
      c = conv(g, x, 6, res);
    } else if (variant == 1) {
      c = conv(g, x, 6);
      c->producer->a<ConvAttrs>().epilogue = activation_program("relu", DataType::kFloat);
    } else {
      Value* w = g.unary(Op::kNeg, g.constant("w", random({6, 4, 1, 1}, g.rng)));
      c = g.node("Conv", {x, w}, std::make_unique<ConvAttrs>(), "conv");
    }
    g.output(g.binary(Op::kAdd, a, c), "y");
    auto want = ops_of(*g.g);
    PassContext ctx;
    apply(MergeSiblings{}, *g.g, ctx);
    EXPECT_EQ(ops_of(*g.g), want);
    EXPECT_EQ(ctx.stats["merge_siblings.groups"], 0);
  }
}

TEST(MergeSiblings, GraphOutputsAreNotSlicedAndUnknownShapesNotTouched) {
  {
    G g;
    Value* x = g.input("x", {1, 4, 5, 6});
    Value* a = conv(g, x, 5);
    Value* c = conv(g, x, 7);
    Value* d = conv(g, x, 3);
    g.output(a, "ya");   // the caller's buffer: it cannot be a view
    g.output(g.unary(Op::kNeg, c), "yc");
    g.output(g.unary(Op::kNeg, d), "yd");
    auto before = g.g->clone();
    PassContext ctx;
    apply(MergeSiblings{}, *g.g, ctx);
    EXPECT_EQ(ctx.stats["merge_siblings.convs"], 2);
    EXPECT_EQ(count_op(*g.g, "Slice"), 2);
    EXPECT_EQ(g.g->find_value("ya")->producer->op(), "Conv");
    expect_slices_are_views(*g.g);
    expect_same_outputs(*before, *g.g, 1e-5, g.rng);
  }
  {
    G g;
    Value* x =
        g.g->add_value("x", DataType::kFloat, Shape(std::vector<Dim>{Dim::sym("n"), 4, 5, 6}));
    g.g->inputs.push_back(x);
    g.output(g.binary(Op::kAdd, conv(g, x, 5), conv(g, x, 5)), "y");
    auto want = ops_of(*g.g);
    PassContext ctx;
    apply(MergeSiblings{}, *g.g, ctx);
    EXPECT_EQ(ops_of(*g.g), want);
    EXPECT_EQ(ctx.stats["merge_siblings.strided_skipped"], 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Awkward sizes: 7x9 floats a channel (252 bytes) put a view only at every 4th channel, so the
// merged conv gets zero channels between siblings of 5, 7, 13 and 3 channels.
std::unique_ptr<Graph> awkward(G& b, std::mt19937::result_type seed) {
  b.rng.seed(seed);
  Value* x = b.input("x", {1, 3, 13, 17});
  ConvOpts o;
  o.k = 3;
  o.stride = 2;
  std::vector<Value*> ys;
  for (int64_t m : {5, 7, 13, 3}) {
    ConvOpts oi = o;
    oi.bias = m != 7;
    ys.push_back(b.unary(Op::kTanh, conv(b, x, m, oi)));
  }
  b.output(concat(b, ys, 1), "y");
  return std::move(b.g);
}

TEST(MergeSiblings, AwkwardSizesStartEverySiblingAtAViewOffset) {
  G b;
  auto g = awkward(b, 5);
  auto before = g->clone();
  PassContext ctx;
  apply(MergeSiblings{}, *g, ctx);
  EXPECT_EQ(count_op(*g, "Conv"), 1);
  EXPECT_EQ(ctx.stats["merge_siblings.padded_channels"], 7);
  const Node* m = merged_node(*g, "Conv");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->outputs[0]->shape.str(), "[1,35,7,9]");
  EXPECT_EQ(slices_of(*m, 1),
            (std::vector<std::pair<int64_t, int64_t>>{{0, 5}, {8, 7}, {16, 13}, {32, 3}}));
  expect_slices_are_views(*g);
  expect_same_outputs(*before, *g, 1e-5, b.rng);
}

TEST(MergeSiblings, AwkwardSizesOnGpu) {
  G b;
  auto g = awkward(b, 6);
  auto before = g->clone();
  PassContext ctx;
  apply(MergeSiblings{}, *g, ctx);
  ASSERT_EQ(count_op(*g, "Slice"), 4);
  if (!expect_same_outputs_on_gpu(*before, *g, 1e-4, b.rng)) GTEST_SKIP() << "no GPU";
}

// ---------------------------------------------------------------------------------------------
// Channels-last: the values hold NHWC dims, the channels are the last axis, and a Slice is
// contiguous only when N*H*W == 1 (one pixel), whatever the batch.

std::unique_ptr<Graph> one_pixel(G& b, Dims x_dims, std::mt19937::result_type seed) {
  b.rng.seed(seed);
  Value* x = b.input("x", x_dims);
  Value* q = conv(b, x, 8);
  Value* k = conv(b, x, 5);
  Value* v = conv(b, x, 12);
  b.output(concat(b, {b.unary(Op::kTanh, q), b.unary(Op::kNeg, k), b.unary(Op::kExp, v)}, 1), "y");
  return std::move(b.g);
}

TEST(MergeSiblings, ChannelsLastSlicesTheLastAxisAtOnePixel) {
  G b;
  auto g = one_pixel(b, {1, 6, 1, 1}, 7);
  auto before = g->clone();
  PassContext ctx;
  ctx.force_channels_last = true;
  apply(ChooseLayout{}, *g, ctx);
  apply(MergeSiblings{}, *g, ctx);
  EXPECT_EQ(count_op(*g, "Conv"), 1);
  const Node* m = merged_node(*g, "Conv");
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->a<ConvAttrs>().channels_last);
  EXPECT_EQ(m->outputs[0]->shape.str(), "[1,1,1,28]");  // 8, 5 (+3 to a 16-byte offset), 12
  EXPECT_EQ(m->in(1)->shape.str(), "[28,6,1,1]");      // W keeps its ONNX layout
  EXPECT_EQ(slices_of(*m, 3),
            (std::vector<std::pair<int64_t, int64_t>>{{0, 8}, {8, 5}, {16, 12}}));
  expect_slices_are_views(*g);
  expect_same_outputs(*before, *g, 1e-5, b.rng);

  // At batch 1 but 3x3 pixels the channels of one pixel are apart from the next pixel's.
  G b2;
  auto h = one_pixel(b2, {1, 6, 3, 3}, 7);
  PassContext c2;
  c2.force_channels_last = true;
  apply(ChooseLayout{}, *h, c2);
  auto want = ops_of(*h);
  apply(MergeSiblings{}, *h, c2);
  EXPECT_EQ(ops_of(*h), want);
  EXPECT_EQ(c2.stats["merge_siblings.strided_skipped"], 1);
}

// The real channels-last case: float16 convolutions on the CUDA backend.
std::unique_ptr<Graph> one_pixel_fp16(G& b, std::unique_ptr<Graph>& original) {
  auto g = one_pixel(b, {1, 16, 1, 1}, 8);
  original = g->clone();
  PassContext ctx;
  ctx.target = &backend_traits("cuda");
  ctx.fp16 = true;
  apply(AssignPrecision{}, *g, ctx);
  apply(ChooseLayout{}, *g, ctx);
  return g;
}

TEST(MergeSiblings, Float16ChannelsLastOnCuda) {
  G b;
  std::unique_ptr<Graph> original;
  auto g = one_pixel_fp16(b, original);
  PassContext ctx;
  ctx.target = &backend_traits("cuda");
  ctx.fp16 = true;
  apply(MergeSiblings{}, *g, ctx);
  const Node* m = merged_node(*g, "Conv");
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->a<ConvAttrs>().channels_last);
  EXPECT_EQ(m->outputs[0]->dtype, DataType::kFloat16);
  // float16: a 16-byte offset is every 8th channel: 8, 5 (+3), 12.
  EXPECT_EQ(m->outputs[0]->shape.str(), "[1,1,1,28]");
  expect_slices_are_views(*g);
  expect_same_outputs(*original, *g, 2e-2, b.rng);
}

TEST(MergeSiblings, Float16ChannelsLastOnGpu) {
  G b;
  std::unique_ptr<Graph> original;
  auto before = one_pixel_fp16(b, original);
  auto g = before->clone();
  PassContext ctx;
  ctx.target = &backend_traits("cuda");
  ctx.fp16 = true;
  apply(MergeSiblings{}, *g, ctx);
  ASSERT_EQ(count_op(*g, "Slice"), 3);
  if (!expect_same_outputs_on_gpu(*before, *g, 2e-2, b.rng)) GTEST_SKIP() << "no GPU";
}

// GoogLeNet's inception block as the CUDA backend runs it: float16, NHWC, batch 3, 7x9 pixels.
// The two relu 1x1 "reduce" convs merge although their slices are strided (each of their readers
// is a 3x3 conv, which reads a channel slice in place); the 1x1 conv feeding the Concat stays (the
// planner writes it into the Concat), and the one behind the pool reads another input.
std::unique_ptr<Graph> inception_fp16_nhwc(G& b, std::unique_ptr<Graph>& original) {
  b.rng.seed(11);
  Value* x = b.input("x", {3, 16, 7, 9});
  ConvOpts relu;
  relu.activation = "relu";
  ConvOpts k3 = relu;
  k3.k = 3;
  Value* direct = conv(b, x, 8, relu);
  Value* r1 = conv(b, x, 16, relu);
  Value* r2 = conv(b, x, 8, relu);
  Value* b1 = conv(b, r1, 24, k3);
  Value* b2 = conv(b, r2, 8, k3);
  Value* b4 = conv(b, b.pool("max", x, {3, 3}, {1, 1}, {1, 1, 1, 1}), 8, relu);
  b.output(b.unary(Op::kTanh, concat(b, {direct, b1, b2, b4}, 1)), "y");
  original = b.g->clone();
  PassContext ctx;
  ctx.target = &backend_traits("cuda");
  ctx.fp16 = true;
  apply(AssignPrecision{}, *b.g, ctx);
  apply(ChooseLayout{}, *b.g, ctx);
  return std::move(b.g);
}

TEST(MergeSiblings, Float16InceptionBlockAtBatch3OnCuda) {
  G b;
  std::unique_ptr<Graph> original;
  auto g = inception_fp16_nhwc(b, original);
  // The layout pass kept the block in NHWC: the Concat joins the last axis.
  for (auto& n : g->nodes())
    if (n->op() == "Concat") EXPECT_EQ(n->a<ConcatAttrs>().axis, 3);
  auto on_cpu = g->clone();
  PassContext ctx;
  ctx.target = &backend_traits("cuda");
  ctx.fp16 = true;
  apply(MergeSiblings{}, *g, ctx);
  EXPECT_EQ(ctx.stats["merge_siblings.groups"], 1);
  EXPECT_EQ(ctx.stats["merge_siblings.convs"], 2);
  EXPECT_EQ(ctx.stats["merge_siblings.concat_kept"], 1);
  EXPECT_EQ(ctx.stats["merge_siblings.strided_skipped"], 0);
  const Node* m = merged_node(*g, "Conv");
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->a<ConvAttrs>().channels_last);
  EXPECT_EQ(m->outputs[0]->shape.str(), "[3,7,9,24]");
  EXPECT_EQ(slices_of(*m, 3), (std::vector<std::pair<int64_t, int64_t>>{{0, 16}, {16, 8}}));
  expect_same_outputs(*original, *g, 2e-2, b.rng);

  // For the CPU backend nothing reads a strided slice in place: left alone.
  PassContext cpu;
  cpu.fp16 = true;
  auto want = ops_of(*on_cpu);
  apply(MergeSiblings{}, *on_cpu, cpu);
  EXPECT_EQ(ops_of(*on_cpu), want);
  EXPECT_EQ(cpu.stats["merge_siblings.strided_skipped"], 1);
}

// On the GPU: the merged block computes what the original computes, and the device context's
// memory plan has no copy left: both Slices are strided views read by the 3x3 convs, and the
// Concat is eliminated with its four producers writing strided boxes of its output.
TEST(MergeSiblings, Float16InceptionBlockAtBatch3OnGpu) {
  G b;
  std::unique_ptr<Graph> original;
  auto before = inception_fp16_nhwc(b, original);
  auto g = before->clone();
  PassContext ctx;
  ctx.target = &backend_traits("cuda");
  ctx.fp16 = true;
  apply(MergeSiblings{}, *g, ctx);
  ASSERT_EQ(count_op(*g, "Slice"), 2);
  if (!expect_same_outputs_on_gpu(*before, *g, 2e-2, b.rng)) GTEST_SKIP() << "no GPU";
  BuildOptions o;
  o.device = "cuda";
  o.opt_level = 0;
  std::shared_ptr<Plan> plan = PlanAccess::make(build_plan(g->clone(), o));
  std::shared_ptr<Engine> engine;
  ASSERT_TRUE(Engine::create(plan, engine).is_ok());
  std::unique_ptr<ExecutionContext> c;
  ASSERT_TRUE(engine->create_context(c).is_ok());
  MemoryReport r;
  Status st = c->memory_report(r);
  ASSERT_TRUE(st.is_ok()) << st.message();
  int strided_views = 0, strided_concats = 0;
  for (const StepMemory& sm : r.steps) {
    if (sm.note.rfind("strided view of ", 0) == 0) {
      ++strided_views;
      EXPECT_FALSE(sm.runs);
    }
    if (sm.note == "eliminated: its inputs are written in place, strided") {
      ++strided_concats;
      EXPECT_FALSE(sm.runs);
    }
  }
  EXPECT_EQ(strided_views, 2);
  EXPECT_EQ(strided_concats, 1);
  EXPECT_EQ(r.strided, 6);
}

// ---------------------------------------------------------------------------------------------
// MatMul: Q/K/V projections of one token.

std::unique_ptr<Graph> qkv(G& b, Dims a_dims, bool trans_b, bool all_bias,
                           std::mt19937::result_type seed) {
  b.rng.seed(seed);
  Value* a = b.input("a", a_dims);
  Value* q = matmul(b, a, 24, 16, true, trans_b);
  Value* k = matmul(b, a, 24, 16, all_bias, trans_b);
  Value* v = matmul(b, a, 24, 8, true, trans_b);
  b.output(b.unary(Op::kTanh, q), "q");
  b.output(b.unary(Op::kNeg, k), "k");
  b.output(b.unary(Op::kExp, v), "v");
  return std::move(b.g);
}

TEST(MergeSiblings, QkvProjectionsOfOneToken) {
  for (bool trans_b : {false, true})
    for (bool all_bias : {true, false}) {
      SCOPED_TRACE(std::string(trans_b ? "trans_b" : "B [K,N]") +
                   (all_bias ? ", all biased" : ", K without bias"));
      G b;
      auto g = qkv(b, {1, 24}, trans_b, all_bias, 9);
      auto before = g->clone();
      PassContext ctx;
      apply(MergeSiblings{}, *g, ctx);
      EXPECT_EQ(count_op(*g, "MatMul"), 1);
      EXPECT_EQ(ctx.stats["merge_siblings.matmuls"], 3);
      const Node* m = merged_node(*g, "MatMul");
      ASSERT_NE(m, nullptr);
      EXPECT_EQ(m->in(1)->shape.str(), trans_b ? "[40,24]" : "[24,40]");
      ASSERT_NE(m->in(2), nullptr);
      EXPECT_EQ(m->in(2)->shape.str(), "[40]");
      EXPECT_EQ(m->outputs[0]->shape.str(), "[1,40]");
      EXPECT_EQ(slices_of(*m, 1),
                (std::vector<std::pair<int64_t, int64_t>>{{0, 16}, {16, 16}, {32, 8}}));
      expect_slices_are_views(*g);
      expect_same_outputs(*before, *g, 1e-5, b.rng);
    }
}

TEST(MergeSiblings, QkvProjectionsOnGpu) {
  G b;
  auto g = qkv(b, {1, 24}, false, true, 10);
  auto before = g->clone();
  PassContext ctx;
  apply(MergeSiblings{}, *g, ctx);
  ASSERT_EQ(count_op(*g, "MatMul"), 1);
  if (!expect_same_outputs_on_gpu(*before, *g, 1e-4, b.rng)) GTEST_SKIP() << "no GPU";
}

TEST(MergeSiblings, MatMulsOfSeveralRowsOrDifferentEpiloguesStayApart) {
  {
    G b;
    auto g = qkv(b, {3, 24}, false, true, 9);
    auto want = ops_of(*g);
    PassContext ctx;
    apply(MergeSiblings{}, *g, ctx);
    EXPECT_EQ(ops_of(*g), want);
    EXPECT_EQ(ctx.stats["merge_siblings.strided_skipped"], 1);
  }
  {
    // One row in a 3-D A ([1, 1, 24]) is still one contiguous range per slice.
    G b;
    auto g = qkv(b, {1, 1, 24}, false, true, 9);
    auto before = g->clone();
    PassContext ctx;
    apply(MergeSiblings{}, *g, ctx);
    EXPECT_EQ(count_op(*g, "MatMul"), 1);
    expect_slices_are_views(*g);
    expect_same_outputs(*before, *g, 1e-5, b.rng);
  }
  {
    // Awkward widths (5, 7) get zero columns up to a 16-byte offset; a residual and a different
    // activation keep their MatMuls apart.
    G b;
    Value* a = b.input("a", {1, 11});
    Value* z = b.input("z", {1, 5});
    Value* p = matmul(b, a, 11, 5, true);
    Value* q = matmul(b, a, 11, 7, false);
    Value* r = matmul(b, a, 11, 5, true, false, "relu");
    Value* s = matmul(b, a, 11, 5, true);
    s->producer->inputs.push_back(z);
    z->consumers.push_back(s->producer);
    infer_node(*s->producer);
    b.output(b.unary(Op::kTanh, p), "p");
    b.output(b.unary(Op::kTanh, q), "q");
    b.output(b.unary(Op::kTanh, r), "r");
    b.output(b.unary(Op::kTanh, s), "s");
    auto before = b.g->clone();
    PassContext ctx;
    apply(MergeSiblings{}, *b.g, ctx);
    EXPECT_EQ(count_op(*b.g, "MatMul"), 3);
    EXPECT_EQ(ctx.stats["merge_siblings.matmuls"], 2);
    EXPECT_EQ(ctx.stats["merge_siblings.padded_channels"], 3);
    const Node* m = merged_node(*b.g, "MatMul");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->outputs[0]->shape.str(), "[1,15]");
    expect_slices_are_views(*b.g);
    expect_same_outputs(*before, *b.g, 1e-5, b.rng);
  }
}

// ---------------------------------------------------------------------------------------------
// In the pipeline: after the layout choice, at every level >= 1.

TEST(MergeSiblings, RunsInThePipeline) {
  G b;
  auto g = inception(1, 11, b);
  auto before = g->clone();
  PassContext ctx;
  run_pipeline(*g, ctx);
  EXPECT_EQ(ctx.stats["merge_siblings.groups"], 1);
  EXPECT_EQ(count_op(*g, "Slice"), 3);
  expect_same_outputs(*before, *g, 1e-5, b.rng);
}

}  // namespace
}  // namespace kiln
