// The passes that prepare a graph for the GPU: conv epilogue fusion, precision assignment and the
// NHWC layout choice. Each test checks the rewritten structure and that the rewritten graph
// computes what the original computes on random inputs, with the CPU reference (float32 within
// rounding, float16 within 1e-2 relative to the output's scale).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "ir/graph.h"
#include "kiln/kiln.h"
#include "kiln/network.h"
#include "ops/concat.h"
#include "ops/conv.h"
#include "ops/expand.h"
#include "ops/gather.h"
#include "ops/infer.h"
#include "ops/mat_mul.h"
#include "ops/normalization.h"
#include "ops/op.h"
#include "ops/pad.h"
#include "ops/pointwise.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/reshape.h"
#include "ops/resize.h"
#include "ops/slice.h"
#include "ops/softmax.h"
#include "ops/tile.h"
#include "ops/transpose.h"
#include "ops/quantize_linear.h"
#include "passes/pass.h"
#include "pass_harness.h"

namespace kiln {
namespace {

using namespace passtest;
using expr::Op;

// ---------------------------------------------------------------------------------------------
// FuseEpilogue

TEST(FuseEpilogue, ConvRelu) {
  for (bool transposed : {false, true}) {
    SCOPED_TRACE(transposed ? "transposed" : "forward");
    G b;
    Value* x = b.input("x", {2, 3, 9, 7});
    b.output(b.unary(Op::kRelu, b.conv(x, 5, 3, true, transposed ? 2 : 1, transposed)), "y");
    auto before = b.g->clone();
    PassContext ctx;
    apply(FuseEpilogue{}, *b.g, ctx);
    ASSERT_EQ(ops_of(*b.g), std::vector<std::string>{"Conv"});
    const Node* c = first(*b.g, "Conv");
    EXPECT_EQ(c->a<ConvAttrs>().activation, "relu");
    EXPECT_EQ(c->outputs[0]->name, "y");
    EXPECT_EQ(ctx.stats["fuse_epilogue.relu"], 1);
    expect_same_outputs(*before, *b.g, 1e-6, b.rng);
  }
}

TEST(FuseEpilogue, BiasResidualAndReluFromALaterBranch) {
  // y = relu((conv_a(x) + k) + conv_b(x)): conv_b comes after conv_a in node order, so fusing its
  // output into conv_a as the residual needs a reorder.
  G b;
  Value* x = b.input("x", {2, 4, 6, 6});
  Value* a = b.conv(x, 6, 3, /*bias=*/false);
  Value* k = b.constant("k", random({1, 6, 1, 1}, b.rng));
  Value* ab = b.binary(Op::kAdd, a, k);
  Value* r = b.conv(x, 6, 1);
  Value* sum = b.binary(Op::kAdd, r, ab);  // the Conv's chain is the second operand
  b.output(b.unary(Op::kRelu, sum), "y");
  auto before = b.g->clone();
  PassContext ctx;
  apply(FuseEpilogue{}, *b.g, ctx);
  ASSERT_EQ(ops_of(*b.g), (std::vector<std::string>{"Conv", "Conv"}));
  const Node* fused = b.g->nodes()[1].get();
  EXPECT_EQ(fused->outputs[0]->name, "y");
  EXPECT_EQ(fused->a<ConvAttrs>().activation, "relu");
  ASSERT_EQ(fused->inputs.size(), 4u);
  ASSERT_TRUE(fused->inputs[2] && fused->inputs[2]->is_constant());
  EXPECT_EQ(fused->inputs[2]->shape.str(), "[6]");
  EXPECT_EQ(fused->inputs[3], b.g->nodes()[0]->outputs[0]);
  EXPECT_EQ(ctx.stats["fuse_epilogue.bias"], 1);
  EXPECT_EQ(ctx.stats["fuse_epilogue.residual"], 1);
  EXPECT_EQ(ctx.stats["fuse_epilogue.relu"], 1);
  expect_same_outputs(*before, *b.g, 1e-6, b.rng);
}

TEST(FuseEpilogue, ChannelConstantWithoutLeadingOneFoldsIntoExistingBias) {
  G b;
  Value* x = b.input("x", {1, 3, 5, 5});
  Value* c = b.conv(x, 4, 3);
  Value* y = b.binary(Op::kAdd, b.constant("k", random({4, 1, 1}, b.rng)), c);
  b.output(b.binary(Op::kAdd, y, b.constant("s", random({}, b.rng))), "y");
  auto before = b.g->clone();
  PassContext ctx;
  apply(FuseEpilogue{}, *b.g, ctx);
  EXPECT_EQ(ops_of(*b.g), std::vector<std::string>{"Conv"});
  EXPECT_EQ(ctx.stats["fuse_epilogue.bias"], 2);
  expect_same_outputs(*before, *b.g, 1e-6, b.rng);
}

TEST(FuseEpilogue, LeavesWhatItMustNotFuse) {
  G b;
  Value* x = b.input("x", {1, 3, 6, 6});
  // The Conv's output is a graph output.
  Value* c1 = b.conv(x, 3, 3);
  b.output(c1, "c1");
  b.output(b.unary(Op::kRelu, c1), "r1");
  // Two consumers.
  Value* c2 = b.conv(x, 3, 3);
  b.output(b.unary(Op::kRelu, c2), "r2");
  b.output(b.unary(Op::kExp, c2), "e2");
  // The Add broadcasts a computed [1,3,1,1] tensor: not a residual of the output's shape.
  Value* m = b.pool("avg", x, {});
  b.output(b.binary(Op::kAdd, b.conv(x, 3, 3), m), "a3");
  // Relu then Add: the Add comes after the activation, so it cannot join the epilogue.
  Value* c5 = b.unary(Op::kRelu, b.conv(x, 3, 3));
  b.output(b.binary(Op::kAdd, c5, x), "a5");
  auto before = b.g->clone();
  PassContext ctx;
  apply(FuseEpilogue{}, *b.g, ctx);
  EXPECT_EQ(ctx.stats["fuse_epilogue.residual"], 0);
  EXPECT_EQ(ctx.stats["fuse_epilogue.relu"], 1);  // c5's
  EXPECT_EQ(count_op(*b.g, "Pointwise"), count_op(*before, "Pointwise") - 1);
  expect_same_outputs(*before, *b.g, 1e-6, b.rng);
}

// ---------------------------------------------------------------------------------------------
// A small ResNet through the Network API: conv 7x7/2 + relu, max pool, a basic block, a
// downsampling block, global average pool, flatten, fully connected.

// w: the first block's width (8; the INT8 tests take 16, the fewest channels kiln quantizes on
// CUDA).
void resnet_like_into(Network& net, std::mt19937& rng, int64_t w = 8) {
  auto conv = [&](Network::Ref x, int64_t c, int64_t m, int64_t k, int64_t s) {
    ConvParams p;
    p.strides = {s, s};
    p.pads = {k / 2, k / 2, k / 2, k / 2};
    return net.add_conv(x, random({m, c, k, k}, rng, 1.0 / std::sqrt(double(c * k * k))),
                        random({m}, rng, 0.2), p);
  };
  auto relu = [&](Network::Ref x) { return net.add_activation(x, Activation::kRelu); };
  auto x = net.add_input("image", DataType::kFloat, {2, 3, 32, 32});
  auto y = relu(conv(x, 3, w, 7, 2));
  y = net.add_pool(y, {PoolKind::kMax, {3, 3}, {2, 2}, {1, 1, 1, 1}});
  // Basic block.
  auto t = relu(conv(y, w, w, 3, 1));
  y = relu(net.add_elementwise(conv(t, w, w, 3, 1), y, ElementwiseOp::kAdd));
  // Downsampling block.
  t = relu(conv(y, w, 2 * w, 3, 2));
  auto shortcut = conv(y, w, 2 * w, 1, 2);
  y = relu(net.add_elementwise(conv(t, 2 * w, 2 * w, 3, 1), shortcut, ElementwiseOp::kAdd));
  y = net.add_pool(y, {PoolKind::kAverage, {}});
  y = net.add_reshape(y, {0, -1});
  y = net.add_fully_connected(y, random({10, 2 * w}, rng, 0.25), random({10}, rng, 0.1));
  net.mark_output(y, "logits");
  EXPECT_EQ(net.first_error(), "");
}

std::unique_ptr<Graph> resnet_like(std::mt19937& rng, int64_t w = 8) {
  Network net;
  resnet_like_into(net, rng, w);
  return net.graph().clone();
}

TEST(FuseEpilogue, ResNetBlocksBecomeConvsOnly) {
  std::mt19937 rng(3);
  auto g = resnet_like(rng);
  auto before = g->clone();
  PassContext ctx;
  run_pipeline(*g, ctx);
  // Every Relu and residual Add went into a Conv, the classifier's bias into its MatMul.
  EXPECT_EQ(ops_of(*g),
            (std::vector<std::string>{"Conv", "Pool", "Conv", "Conv", "Conv", "Conv", "Conv",
                                      "Pool", "Reshape", "MatMul"}));
  EXPECT_EQ(ctx.stats["fuse_epilogue.residual"], 2);
  EXPECT_EQ(ctx.stats["fuse_epilogue.relu"], 5);
  EXPECT_EQ(count_op(*g, "Transpose"), 0);  // the CPU keeps NCHW
  expect_same_outputs(*before, *g, 1e-5, rng);
}

// ---------------------------------------------------------------------------------------------
// AssignPrecision

TEST(AssignPrecision, Float16RegionWithCastsAtItsEdges) {
  G b;
  Value* x = b.input("x", {2, 3, 8, 8});
  Value* c1 = b.conv(x, 4, 3);
  b.output(c1, "feat");  // a graph output computed in float16: a Cast writes it
  Value* r = b.unary(Op::kRelu, c1);
  Value* p = b.pool("max", r, {2, 2}, {2, 2});
  Value* c2 = b.conv(p, 4, 3);
  // A reduction that stays float32: a Cast back in front of it.
  auto sum = std::make_unique<ReduceAttrs>();
  sum->kind = "sum";
  sum->axes = {2, 3};
  b.output(b.node("Reduce", {c2}, std::move(sum), "sum"), "sum");
  // The first conv's weights, also read by a float32 reduction: duplicated, not converted.
  Value* w1 = b.g->nodes()[0]->inputs[1];
  auto wsum = std::make_unique<ReduceAttrs>();
  wsum->kind = "sum";
  b.output(b.node("Reduce", {w1}, std::move(wsum), "wsum"), "wsum");
  // Pointwise on the graph input: reads float32, writes float16 (no Cast node needed).
  Value* scaled = b.binary(Op::kMul, x, b.constant("half", random({}, b.rng)));
  Value* c3 = b.conv(scaled, 4, 1);
  // Softmax over channels of c2 + c3, then a float32 graph output straight from a Pointwise.
  auto sm = std::make_unique<SoftmaxAttrs>();
  sm->axis = 1;
  Value* s = b.node("Softmax", {b.binary(Op::kAdd, c2, b.pool("max", c3, {2, 2}, {2, 2}))},
                    std::move(sm), "softmax");
  b.output(b.unary(Op::kNeg, s), "y");
  auto before = b.g->clone();

  PassContext ctx;
  ctx.fp16 = true;
  apply(AssignPrecision{}, *b.g, ctx);
  const Graph& g = *b.g;
  for (Value* v : g.inputs) EXPECT_EQ(v->dtype, DataType::kFloat) << v->name;
  for (Value* v : g.outputs) EXPECT_EQ(v->dtype, DataType::kFloat) << v->name;
  int convs = 0;
  for (auto& n : g.nodes()) {
    if (n->op() == "Conv" || n->op() == "Pool" || n->op() == "Softmax") {
      ++convs;
      for (Value* v : n->inputs)
        if (v) {
          EXPECT_EQ(v->dtype, DataType::kFloat16) << n->label() << " reads " << v->str();
        }
      EXPECT_EQ(n->outputs[0]->dtype, DataType::kFloat16) << n->label();
    }
    if (n->op() == "Reduce") {
      EXPECT_EQ(n->inputs[0]->dtype, DataType::kFloat) << n->label();
    }
  }
  EXPECT_EQ(convs, 6);
  // Casts: x into conv 1, feat out, c2 back to float32 for the sum. The Mul on x is its own cast;
  // the Neg writes the float32 output itself.
  EXPECT_EQ(count_casts(g), 3);
  EXPECT_EQ(ctx.stats["assign_precision.casts"], 3);
  EXPECT_EQ(g.find_value("feat")->producer->op(), "Pointwise");
  EXPECT_TRUE(is_cast(*g.find_value("feat")->producer));
  // The shared weight: the float32 original for the reduction, a float16 copy for the conv.
  EXPECT_EQ(w1->dtype, DataType::kFloat);
  EXPECT_EQ(w1->consumers.size(), 1u);
  EXPECT_EQ(w1->consumers[0]->op(), "Reduce");
  // The Mul reads float32 x and a float32 scalar constant, and stores float16.
  const Node* mul = nullptr;
  for (const Node* n : g.find_value("x")->consumers)
    if (!is_cast(*n)) mul = n;
  ASSERT_TRUE(mul);
  const auto& prog = mul->a<PointwiseAttrs>().program;
  EXPECT_EQ(prog.input_types, (std::vector<DataType>{DataType::kFloat, DataType::kFloat}));
  EXPECT_EQ(prog.type_of(prog.outputs[0]), DataType::kFloat16);
  expect_same_outputs(*before, g, 1e-2, b.rng);
}

TEST(AssignPrecision, MovementFollowsItsDataAndPointwiseComputesInFloat32) {
  // exp(x) is float16 in the region; the Reshape of it follows; the Reshape of the float32 input
  // does not; the MatMul switches. Inside the Exp program the math stays float32.
  Network net;
  std::mt19937 rng(9);
  auto x = net.add_input("x", DataType::kFloat, {4, 6});
  auto e = net.add_activation(net.add_reshape(x, {4, 6}), Activation::kSigmoid);
  auto r = net.add_reshape(e, {6, 4});
  auto m = net.add_matmul(r, net.add_constant(random({4, 5}, rng)));
  net.mark_output(m, "y");
  auto g = net.graph().clone();
  auto before = g->clone();
  PassContext ctx;
  ctx.fp16 = true;
  apply(AssignPrecision{}, *g, ctx);
  EXPECT_EQ(ops_of(*g),
            (std::vector<std::string>{"Reshape", "Pointwise", "Reshape", "MatMul", "Pointwise"}));
  EXPECT_EQ(g->nodes()[0]->outputs[0]->dtype, DataType::kFloat);
  EXPECT_EQ(g->nodes()[2]->outputs[0]->dtype, DataType::kFloat16);
  EXPECT_EQ(g->nodes()[3]->inputs[1]->dtype, DataType::kFloat16);
  const auto& p = g->nodes()[1]->a<PointwiseAttrs>().program;
  EXPECT_EQ(p.str(),
            "in(float32); r0:float32=input 0; r1:float32=sigmoid r0; "
            "r2:float16=cast r1; out(r2)");
  EXPECT_TRUE(is_cast(*g->nodes()[4]));
  expect_same_outputs(*before, *g, 1e-2, rng);
}

TEST(AssignPrecision, Tf32MarksFloat32ConvAndMatMul) {
  std::mt19937 rng(4);
  auto g = resnet_like(rng);
  PassContext ctx;
  ctx.tf32 = true;
  run_pipeline(*g, ctx);
  int marked = 0;
  for (auto& n : g->nodes()) {
    if (n->op() == "Conv") marked += n->a<ConvAttrs>().allow_tf32;
    if (n->op() == "MatMul") marked += n->a<MatMulAttrs>().allow_tf32;
  }
  EXPECT_EQ(marked, 7);
  EXPECT_EQ(count_casts(*g), 0);
}

TEST(AssignPrecision, EveryListedOpRunsInFloat16OnTheReference) {
  // A chain through every op the pass switches or lets follow, checked against float32.
  G b;
  auto i64c = [&](const std::string& name, std::vector<int64_t> v) {
    return b.constant(
        name, Tensor::from_vector<int64_t>(DataType::kInt64, {static_cast<int64_t>(v.size())}, v));
  };
  Value* x = b.input("x", {2, 4, 6});
  Value* m = b.node("MatMul", {x, b.constant("w", random({6, 6}, b.rng))},
                    std::make_unique<MatMulAttrs>(), "matmul");
  auto ln = std::make_unique<NormalizationAttrs>();
  ln->kind = "layer";
  Value* n =
      b.node("Normalization",
             {m, b.constant("gamma", random({6}, b.rng)), b.constant("beta", random({6}, b.rng))},
             std::move(ln), "layernorm");
  Value* s = b.node("Softmax", {n}, std::make_unique<SoftmaxAttrs>(), "softmax");
  auto tp = std::make_unique<TransposeAttrs>();
  tp->perm = {0, 2, 1};
  Value* t = b.node("Transpose", {s}, std::move(tp), "transpose");  // [2,6,4]
  Value* sl = b.node("Slice", {t, i64c("starts", {0}), i64c("ends", {3}), i64c("axes", {2})},
                     std::make_unique<SliceAttrs>(), "slice");  // [2,6,3]
  auto ca = std::make_unique<ConcatAttrs>();
  ca->axis = 2;
  Value* c = b.node("Concat", {sl, t}, std::move(ca), "concat");  // [2,6,7]
  Value* pd = b.node("Pad",
                     {c, i64c("pads", {0, 0, 1, 0, 0, 1}),
                      b.constant("fill", Tensor::from_vector<float>(DataType::kFloat, {}, {0.5f}))},
                     std::make_unique<PadAttrs>(), "pad");  // [2,6,9]
  auto ga = std::make_unique<GatherAttrs>();
  ga->axis = 1;
  Value* gt = b.node("Gather", {pd, i64c("idx", {0, 2, 5})}, std::move(ga), "gather");  // [2,3,9]
  Value* tl = b.node("Tile", {gt, i64c("reps", {1, 2, 1})}, std::make_unique<TileAttrs>(),
                     "tile");  // [2,6,9]
  Value* ex = b.node("Expand", {tl, i64c("shape", {2, 2, 6, 9})}, std::make_unique<ExpandAttrs>(),
                     "expand");
  auto ra = std::make_unique<ResizeAttrs>();
  ra->mode = "linear";
  Value* rs = b.node(
      "Resize",
      {ex, nullptr,
       b.constant("scales", Tensor::from_vector<float>(DataType::kFloat, {4}, {1, 1, 2, 1.5f}))},
      std::move(ra), "resize");
  auto mean = std::make_unique<ReduceAttrs>();
  mean->kind = "mean";
  mean->axes = {3};
  b.output(b.node("Reduce", {rs}, std::move(mean), "mean"), "mean");
  auto mx = std::make_unique<ReduceAttrs>();
  mx->kind = "max";
  b.output(b.node("Reduce", {rs}, std::move(mx), "max"), "max");
  auto am = std::make_unique<ReduceAttrs>();
  am->kind = "argmax";
  am->axes = {2};
  b.output(b.node("Reduce", {x}, std::move(am), "argmax"), "argmax");
  auto before = b.g->clone();
  PassContext ctx;
  ctx.fp16 = true;
  apply(AssignPrecision{}, *b.g, ctx);
  for (auto& node : b.g->nodes()) {
    if (is_cast(*node)) continue;
    EXPECT_EQ(node->inputs[0]->dtype, DataType::kFloat16) << node->label();
    if (node->op() != "Reduce") {
      EXPECT_EQ(node->outputs[0]->dtype, DataType::kFloat16) << node->label();
    }
  }
  // x into the MatMul and the argmax (one shared Cast), mean and max out.
  EXPECT_EQ(count_casts(*b.g), 3);
  // LayerNorm's scale and bias, Resize's scales stay float32; Pad's fill follows the data.
  EXPECT_EQ(b.g->find_value("gamma")->consumers.size(), 1u);
  EXPECT_EQ(b.g->find_value("scales")->dtype, DataType::kFloat);
  EXPECT_EQ(first(*b.g, "Pad")->inputs[2]->dtype, DataType::kFloat16);
  expect_same_outputs(*before, *b.g, 1e-2, b.rng);
}

TEST(AssignPrecision, FloatMathOnIntegersStaysFloat32) {
  // pos = float(idx) * 1.0 + 0.5 is computed from integers only (positions up to 3000 are not
  // exact in float16) and stays float32; h = x * 2 switches, and so does h + pos.
  G b;
  Value* x = b.input("x", {4, 3});
  Value* idx = b.g->add_value("idx", DataType::kInt64, Shape::from({4, 1}));
  b.g->inputs.push_back(idx);
  auto cast = std::make_unique<PointwiseAttrs>();
  cast->program.input_types = {DataType::kInt64};
  cast->program.outputs = {cast->program.cast(cast->program.input(0), DataType::kFloat)};
  Value* f = b.node("Pointwise", {idx}, std::move(cast), "to_float");
  Value* pos = b.binary(
      Op::kAdd, f, b.constant("half", Tensor::from_vector<float>(DataType::kFloat, {}, {0.5f})));
  Value* h = b.binary(Op::kMul, x,
                      b.constant("two", Tensor::from_vector<float>(DataType::kFloat, {}, {2.f})));
  Value* sum = b.binary(Op::kAdd, h, pos);
  b.output(b.node("Softmax", {sum}, std::make_unique<SoftmaxAttrs>(), "softmax"), "y");
  PassContext ctx;
  ctx.fp16 = true;
  apply(AssignPrecision{}, *b.g, ctx);
  EXPECT_EQ(f->dtype, DataType::kFloat);
  EXPECT_EQ(pos->dtype, DataType::kFloat);
  EXPECT_EQ(h->dtype, DataType::kFloat16);
  EXPECT_EQ(sum->dtype, DataType::kFloat16);
  EXPECT_EQ(count_casts(*b.g), 2);  // the importer-style int64 -> float32 Cast, and y out
}

TEST(AssignPrecision, BuilderRunsTheDemoModelInFloat16OnTheCpu) {
  // End to end through the Builder and the CPU backend: float16 logits agree with float32 ones,
  // at every opt level (precision is a request, not an optimisation).
  std::mt19937 rng(8);
  Tensor x = random({3, 1, 28, 28}, rng);
  for (int i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.5f + 0.5f * x.data<float>()[i];
  auto logits = [&](bool fp16, int level) {
    BuildOptions o;
    o.device = "cpu";
    o.fp16 = fp16;
    o.opt_level = level;
    o.input_shapes["image"] = {3, 1, 28, 28};
    std::shared_ptr<Plan> plan;
    Status s = Builder(o).build_from_onnx(KILN_SOURCE_DIR "/models/fashion_cnn.onnx", plan);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    std::shared_ptr<Engine> e;
    EXPECT_TRUE(Engine::create(plan, e).is_ok());
    std::unique_ptr<ExecutionContext> ctx;
    EXPECT_TRUE(e->create_context(ctx).is_ok());
    std::map<std::string, Tensor> out;
    EXPECT_TRUE(ctx->run({{"image", x}}, out).is_ok());
    return out.at("logits");
  };
  Tensor want = logits(false, 1);
  ASSERT_GT(max_magnitude(want), 0);
  for (int level : {0, 1}) {
    SCOPED_TRACE("level " + std::to_string(level));
    Tensor got = logits(true, level);
    ASSERT_EQ(got.dtype(), DataType::kFloat);
    ASSERT_EQ(dims_to_string(got.dims()), dims_to_string(want.dims()));
    double worst = 0;
    for (int64_t i = 0; i < want.numel(); ++i)
      worst = std::max(worst, std::fabs(got.get_f64(i) - want.get_f64(i)));
    count_mismatches(got, want, 1e-2, 2e-2);
    EXPECT_GT(worst, 0) << "float16 should differ somewhere";
  }
}

// ---------------------------------------------------------------------------------------------
// ChooseLayout

TEST(ChooseLayout, ResNetGetsOneTransposeInAndAViewBeforeFlatten) {
  std::mt19937 rng(5);
  auto g = resnet_like(rng);
  auto before = g->clone();
  PassContext ctx;
  ctx.force_channels_last = true;
  run_pipeline(*g, ctx);
  EXPECT_EQ(count_op(*g, "Transpose"), 1);
  for (auto& n : g->nodes()) {
    if (n->op() == "Conv") {
      EXPECT_TRUE(n->a<ConvAttrs>().channels_last) << n->label();
    }
    if (n->op() == "Pool") {
      EXPECT_TRUE(n->a<PoolAttrs>().channels_last) << n->label();
    }
  }
  // The input's Transpose feeds the first Conv (float32: no channel padding); the pooled
  // [2,1,1,16] goes back to [2,16,1,1] by a Reshape (only extent-1 dims move), a view.
  const Node* t0 = g->find_value("image")->consumers.at(0);
  EXPECT_EQ(t0->op(), "Transpose");
  EXPECT_EQ(t0->outputs[0]->shape.str(), "[2,32,32,3]");
  EXPECT_FALSE(t0->a<TransposeAttrs>().reformats());
  EXPECT_EQ(count_op(*g, "Reshape"), 2);
  const Node* unpermute = first(*g, "Reshape");
  EXPECT_EQ(unpermute->inputs[0]->shape.str(), "[2,1,1,16]");
  EXPECT_EQ(unpermute->outputs[0]->shape.str(), "[2,16,1,1]");
  EXPECT_EQ(ctx.stats["choose_layout.transposes"], 2);
  expect_same_outputs(*before, *g, 1e-5, rng);
}

TEST(ChooseLayout, ResNetInFloat16OnCuda) {
  // The real condition: float16 2-D convolutions on the CUDA backend (no forcing).
  std::mt19937 rng(6);
  auto g = resnet_like(rng);
  auto before = g->clone();
  PassContext ctx;
  ctx.target = &backend_traits("cuda");
  ctx.fp16 = true;
  run_pipeline(*g, ctx);
  // x -> Transpose (to float16 NHWC, channels padded 3 -> 4) -> Conv ... Pool -> Reshape ->
  // Reshape -> MatMul -> ... (the last step writes the float32 output itself).
  EXPECT_EQ(count_op(*g, "Transpose"), 1);
  EXPECT_EQ(count_casts(*g), 0);
  const Node* t0 = g->find_value("image")->consumers.at(0);
  ASSERT_EQ(t0->op(), "Transpose");
  EXPECT_EQ(t0->a<TransposeAttrs>().to, DataType::kFloat16);
  EXPECT_EQ(t0->outputs[0]->shape.str(), "[2,32,32,4]");
  EXPECT_EQ(t0->outputs[0]->consumers.at(0)->in(1)->shape.str(), "[8,4,7,7]");
  for (auto& n : g->nodes())
    if (n->op() == "Conv") {
      EXPECT_TRUE(n->a<ConvAttrs>().channels_last);
      EXPECT_EQ(n->inputs[0]->dtype, DataType::kFloat16);
    }
  EXPECT_EQ(g->outputs[0]->dtype, DataType::kFloat);
  expect_same_outputs(*before, *g, 1e-2, rng);
  // Float32 on CUDA, or float16 on the CPU, keeps NCHW.
  for (auto [device, fp16] : {std::pair{"cuda", false}, std::pair{"cpu", true}}) {
    auto h = resnet_like(rng);
    PassContext c2;
    c2.target = &backend_traits(device);
    c2.fp16 = fp16;
    run_pipeline(*h, c2);
    EXPECT_EQ(count_op(*h, "Transpose"), 0) << device;
  }
}

TEST(ChooseLayout, PointwiseWithChannelConstantsJoinsTheRegion) {
  G b;
  Value* x = b.input("x", {2, 4, 5, 6});
  Value* c = b.conv(x, 3, 3);
  Value* m = b.binary(Op::kMul, c, b.constant("scale", random({1, 3, 1, 1}, b.rng)));
  Value* a = b.binary(Op::kAdd, b.constant("shift", random({3, 1, 1}, b.rng)), m);
  Value* w = b.binary(Op::kSub, a, b.constant("row", random({6}, b.rng)));  // per column
  b.output(m, "mid");  // read outside the region: one Transpose back
  Value* y = b.conv(b.unary(Op::kSigmoid, w), 5, 1);
  b.output(y, "y");  // a region conv writes a graph output: one Transpose back
  // A consumer that is not layout-agnostic (Softmax over channels): one Transpose back.
  auto sm = std::make_unique<SoftmaxAttrs>();
  sm->axis = 1;
  b.output(b.node("Softmax", {a}, std::move(sm), "softmax"), "s");
  auto before = b.g->clone();
  PassContext ctx;
  ctx.force_channels_last = true;
  apply(ChooseLayout{}, *b.g, ctx);
  const Graph& g = *b.g;
  EXPECT_EQ(count_op(g, "Transpose"), 4);  // x in; mid, y and the Softmax's input out
  EXPECT_EQ(ctx.stats["choose_layout.nhwc_nodes"], 6);
  for (auto& n : g.nodes())
    if (n->op() == "Pointwise")
      for (Value* v : n->inputs)
        if (v->is_constant() && v->data.rank() > 0) {
          EXPECT_TRUE(v->shape.str() == "[1,1,1,3]" || v->shape.str() == "[1,1,6,1]") << v->str();
        }
  EXPECT_EQ(g.find_value("y")->producer->op(), "Transpose");
  EXPECT_EQ(g.find_value("y")->shape.str(), "[2,5,5,6]");
  EXPECT_EQ(g.find_value("mid")->producer->op(), "Transpose");
  expect_same_outputs(*before, g, 1e-6, b.rng);
}

TEST(ChooseLayout, SqueezeExcitationGateEntersTheRegion) {
  // y = conv(c * sigmoid(fc(flatten(gap(c))))), c = conv(x): the [N,C,1,1] gate is computed
  // outside the region (through a Flatten and a MatMul) and enters it through a small Transpose;
  // the Mul stays in the region.
  G b;
  Value* x = b.input("x", {2, 3, 6, 6});
  Value* c = b.conv(x, 4, 3);
  Value* gap = b.pool("avg", c, {});
  Value* flat = b.node(
      "Reshape",
      {gap, b.constant("shape", Tensor::from_vector<int64_t>(DataType::kInt64, {2}, {2, 4}))},
      std::make_unique<ReshapeAttrs>(), "flatten");
  Value* fc = b.node("MatMul", {flat, b.constant("fc", random({4, 4}, b.rng))},
                     std::make_unique<MatMulAttrs>(), "fc");
  Value* gate = b.node(
      "Reshape",
      {b.unary(Op::kSigmoid, fc),
       b.constant("shape4", Tensor::from_vector<int64_t>(DataType::kInt64, {4}, {2, 4, 1, 1}))},
      std::make_unique<ReshapeAttrs>(), "unflatten");
  b.output(b.conv(b.binary(Op::kMul, c, gate), 2, 1), "y");
  auto before = b.g->clone();
  PassContext ctx;
  ctx.force_channels_last = true;
  apply(ChooseLayout{}, *b.g, ctx);
  // x in and y out; the pooled value and the gate move only extent-1 dims: Reshapes.
  EXPECT_EQ(count_op(*b.g, "Transpose"), 2);
  EXPECT_EQ(ctx.stats["choose_layout.nhwc_nodes"], 4);  // conv, pool, mul, conv
  expect_same_outputs(*before, *b.g, 1e-6, b.rng);
}

TEST(ChooseLayout, ConcatOnChannelsJoinsWithItsAxisRemapped) {
  G b;
  Value* x = b.input("x", {2, 3, 5, 5});
  Value* c1 = b.conv(x, 4, 3);
  Value* c2 = b.conv(x, 2, 1);
  auto cat_c = std::make_unique<ConcatAttrs>();
  cat_c->axis = 1;
  Value* joined = b.node("Concat", {c1, c2, b.constant("extra", random({2, 1, 5, 5}, b.rng))},
                         std::move(cat_c), "concat");
  auto cat_h = std::make_unique<ConcatAttrs>();
  cat_h->axis = -2;  // along H
  Value* tall = b.node("Concat", {joined, joined}, std::move(cat_h), "concat_h");
  b.output(b.conv(tall, 3, 3), "y");
  auto before = b.g->clone();
  PassContext ctx;
  ctx.force_channels_last = true;
  apply(ChooseLayout{}, *b.g, ctx);
  EXPECT_EQ(count_op(*b.g, "Transpose"), 2);
  std::vector<int64_t> axes;
  for (auto& n : b.g->nodes())
    if (n->op() == "Concat") axes.push_back(n->a<ConcatAttrs>().axis);
  EXPECT_EQ(axes, (std::vector<int64_t>{3, 1}));
  expect_same_outputs(*before, *b.g, 1e-6, b.rng);
}

TEST(ChooseLayout, PoolWithIndicesStaysOutside) {
  G b;
  Value* x = b.input("x", {1, 2, 6, 6});
  Value* c = b.conv(x, 3, 3);
  auto a = std::make_unique<PoolAttrs>();
  a->kind = "max";
  a->kernel = {2, 2};
  a->strides = {2, 2};
  Value* y = b.g->add_value("pool_y");
  Value* idx = b.g->add_value("pool_i");
  infer_node(*b.g->add_node("Pool", {c}, {y, idx}, std::move(a), "pool"));
  b.output(y, "y");
  b.output(idx, "i");
  auto before = b.g->clone();
  PassContext ctx;
  ctx.force_channels_last = true;
  apply(ChooseLayout{}, *b.g, ctx);
  EXPECT_FALSE(first(*b.g, "Pool")->a<PoolAttrs>().channels_last);
  EXPECT_EQ(count_op(*b.g, "Transpose"), 2);
  expect_same_outputs(*before, *b.g, 1e-6, b.rng);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// ---------------------------------------------------------------------------------------------
// INT8 on CUDA: quantized convolutions channels-last with float16 between them

std::vector<std::string> conv_names(const Graph& g) {
  std::vector<std::string> v;
  for (auto& n : g.nodes())
    if (n->op() == "Conv") v.push_back(n->name);
  return v;
}

// The scale of every tensor InsertQuantization would quantize in g (6/127: the harness's
// activations stay within a few units).
std::map<std::string, double> uniform_scales(const Graph& g, const BackendTraits& target) {
  auto h = g.clone();
  PassContext c;
  c.target = &target;
  c.stop_before_quantization = true;
  run_pipeline(*h, c);
  std::map<std::string, double> scales;
  for (Node* n : quantization_targets(*h, c)) scales[n->in(0)->name] = 6.0 / 127;
  return scales;
}

TEST(Int8OnGpu, ConvolutionsRunInt8ChannelsLastWithFloat16Between) {
  std::mt19937 rng(21);
  auto g = resnet_like(rng, 16);
  const auto scales = uniform_scales(*g, backend_traits("cuda"));
  // The pool's output, two block inputs, one inner: the stem (3 input channels) stays in float
  // on CUDA, where cuDNN's int8 engines run it far slower than float16.
  EXPECT_EQ(scales.size(), 4u);
  // The reference: the same quantization on the CPU (float32, NCHW).
  auto ref = g->clone();
  PassContext rc;
  rc.activation_scales = &scales;
  run_pipeline(*ref, rc);
  PassContext ctx;
  ctx.target = &backend_traits("cuda");
  ctx.fp16 = true;
  ctx.activation_scales = &scales;
  run_pipeline(*g, ctx);
  int quantized = 0, requantized = 0;
  const std::string stem = conv_names(*ref).at(0);
  for (auto& n : g->nodes()) {
    if (n->op() == "Conv" && n->name == stem) {
      EXPECT_FALSE(n->a<ConvAttrs>().quantized());
      EXPECT_EQ(n->outputs[0]->dtype, DataType::kFloat16);
    } else if (n->op() == "Conv") {
      const auto& a = n->a<ConvAttrs>();
      EXPECT_TRUE(a.quantized()) << n->label();
      EXPECT_TRUE(a.channels_last) << n->label();
      EXPECT_EQ(a.q_out, DataType::kFloat16) << n->label();
      EXPECT_EQ(n->in(0)->dtype, DataType::kInt8) << n->label();
      // Read only by the next layer's quantizer: int8 out (FoldRequantization); else float16.
      EXPECT_EQ(n->outputs[0]->dtype, a.requantized() ? DataType::kInt8 : DataType::kFloat16)
          << n->label();
      quantized += a.quantized();
      requantized += a.requantized();
    }
    // The classifier (N = 10, not a multiple of 4) has no int8 device tactic: it stays float.
    if (n->op() == "MatMul") EXPECT_FALSE(n->a<MatMulAttrs>().quantized());
    // The QuantizeLinear reads float16 NHWC inside the region: no Cast back to float32 and no
    // Transpose around it.
    if (n->op() == "QuantizeLinear") EXPECT_EQ(n->in(0)->dtype, DataType::kFloat16) << n->label();
  }
  EXPECT_EQ(quantized, 5);
  // The first block's two, and the downsampling block's first (the shortcut and the last Conv
  // feed a residual and the pool, the stem the max pool).
  EXPECT_EQ(requantized, 3);
  EXPECT_EQ(count_op(*g, "QuantizeLinear"), 1);  // the max pool's
  // One Transpose: the image into float16 NHWC, its 3 channels padded to 4 (with W).
  EXPECT_EQ(count_op(*g, "Transpose"), 1);
  const Node* t = first(*g, "Transpose");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->outputs[0]->dtype, DataType::kFloat16);
  EXPECT_EQ(t->outputs[0]->shape.str(), "[2,32,32,4]");
  EXPECT_EQ(t->outputs[0]->consumers.at(0)->in(1)->shape.str(), "[16,4,7,7]");
  EXPECT_EQ(count_casts(*g), 0);
  // Against the CPU's quantized graph: float16 rounding before a quantizer can move a value by
  // one int8 step, so the bound is a few steps of the logits' scale.
  std::map<std::string, Tensor> in{{"image", random({2, 3, 32, 32}, rng)}};
  Tensor want = run(*ref, in)[0], got = run(*g, in)[0];
  const double m = max_magnitude(want);
  ASSERT_GT(m, 0);
  count_mismatches(got, want, 0, 0.03 * m);
}

TEST(FoldRequantization, ConvsReadOnlyByAQuantizerWriteInt8AndComputeWhatTheyDid) {
  std::mt19937 rng(23);
  auto g = resnet_like(rng);
  const auto scales = uniform_scales(*g, backend_traits("cpu"));
  // Unfolded: the graph with its QuantizeLinear/DequantizeLinear pairs inserted and its products
  // quantized (the same int8 weights), each quantizer still a node of its own.
  auto before = g->clone();
  PassContext c0;
  c0.stop_before_quantization = true;
  run_pipeline(*before, c0);
  c0.activation_scales = &scales;
  apply(InsertQuantization{}, *before, c0);
  apply(FoldQuantization{}, *before, c0);
  PassContext ctx;
  ctx.activation_scales = &scales;
  run_pipeline(*g, ctx);
  EXPECT_EQ(ctx.stats["fold_requantization.folded"], 3);
  // The first block's identity path: its last Conv reads the block input as int8.
  EXPECT_EQ(ctx.stats["fold_requantization.residuals"], 1);
  int requantized = 0;
  for (auto& n : g->nodes())
    if (n->op() == "Conv" && n->a<ConvAttrs>().requantized()) {
      ++requantized;
      EXPECT_EQ(n->outputs[0]->dtype, DataType::kInt8);
      EXPECT_EQ(n->outputs[0]->consumers.at(0)->op(), "Conv") << "read by the next layer";
    }
  EXPECT_EQ(requantized, 3);
  // Integer products are exact in both; rounding a value once (fused) or after storing it in
  // float32 (unfolded) can differ by one int8 step at a tie, so the bound is a few steps.
  std::map<std::string, Tensor> in{{"image", random({2, 3, 32, 32}, rng)}};
  Tensor want = run(*before, in)[0], got = run(*g, in)[0];
  const double m = max_magnitude(want);
  ASSERT_GT(m, 0);
  EXPECT_GT(count_op(*before, "QuantizeLinear"), count_op(*g, "QuantizeLinear"));
  count_mismatches(got, want, 0, 0.03 * m);
}

// FP8 post-training quantization (PassContext::quantized_type): every Conv and the classifier
// take float8 X and W, the convolutions read only by the next layer write float8, the identity
// path's residual is read as float8, and the result stays near the float graph's (float8 keeps
// 4 significant bits: a few percent per layer).
TEST(Fp8, ProductsRunInFloat8AndStayNearTheFloatGraph) {
  std::mt19937 rng(31);
  auto g = resnet_like(rng);
  auto ref = g->clone();
  std::map<std::string, double> scales;
  for (const auto& [name, s] : uniform_scales(*g, backend_traits("cpu"))) scales[name] = 6.0 / 448;
  PassContext ctx;
  ctx.activation_scales = &scales;
  ctx.quantized_type = DataType::kFloat8E4M3FN;
  run_pipeline(*g, ctx);
  int convs = 0, requantized = 0;
  for (auto& n : g->nodes()) {
    if (n->op() != "Conv" && n->op() != "MatMul") continue;
    EXPECT_EQ(n->in(0)->dtype, DataType::kFloat8E4M3FN) << n->label();
    EXPECT_EQ(n->in(1)->dtype, DataType::kFloat8E4M3FN) << n->label();
    if (n->op() == "Conv") {
      ++convs;
      const auto& a = n->a<ConvAttrs>();
      EXPECT_TRUE(a.quantized()) << n->label();
      requantized += a.requantized();
      if (a.requantized()) EXPECT_EQ(n->outputs[0]->dtype, DataType::kFloat8E4M3FN);
      if (a.quantized_residual()) EXPECT_EQ(n->in(3)->dtype, DataType::kFloat8E4M3FN);
    }
  }
  EXPECT_EQ(convs, 6);
  EXPECT_EQ(requantized, 3);
  EXPECT_EQ(ctx.stats["fold_requantization.residuals"], 1);
  std::map<std::string, Tensor> in{{"image", random({2, 3, 32, 32}, rng)}};
  Tensor want = run(*ref, in)[0], got = run(*g, in)[0];
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    num += (got.get_f64(i) - want.get_f64(i)) * (got.get_f64(i) - want.get_f64(i));
    den += want.get_f64(i) * want.get_f64(i);
  }
  ASSERT_GT(den, 0);
  EXPECT_LT(std::sqrt(num / den), 0.1) << "relative L2 error of the logits";
}

// ---------------------------------------------------------------------------------------------
// --layer-precision and --precision-constraints

TEST(LayerPrecision, Fp32KeepsALayerOutOfFloat16AndFp16PutsOneIn) {
  std::mt19937 rng(24);
  for (bool global : {true, false}) {
    SCOPED_TRACE(global ? "--fp16 with one layer pinned to fp32" : "one layer pinned to fp16");
    auto g = resnet_like(rng);
    auto before = g->clone();
    const std::string pinned = conv_names(*g).at(2);
    PassContext ctx;
    ctx.target = &backend_traits("cuda");
    ctx.fp16 = global;
    ctx.tf32 = true;
    ctx.layer_precisions = {{pinned, global ? "fp32" : "fp16"}};
    run_pipeline(*g, ctx);
    int half = 0;
    for (auto& n : g->nodes()) {
      if (n->op() != "Conv") continue;
      const bool is_half = n->outputs[0]->dtype == DataType::kFloat16;
      half += is_half;
      if (n->name == pinned) {
        EXPECT_EQ(is_half, !global) << n->label();
        EXPECT_FALSE(n->a<ConvAttrs>().allow_tf32) << "fp32 is strict float32";
      }
    }
    EXPECT_EQ(half, global ? 5 : 1);
    EXPECT_TRUE(unmet_layer_precisions(*g, ctx).empty());
    expect_same_outputs(*before, *g, 1e-2, rng);
  }
}

TEST(LayerPrecision, UnmetRequestsAreWarningsOrWithObeyAnError) {
  auto build = [](std::vector<std::pair<std::string, std::string>> lp, const std::string& c,
                  std::vector<std::string>* lines) {
    BuildOptions o;
    o.device = "cpu";
    o.layer_precisions = std::move(lp);
    o.precision_constraints = c;
    o.progress = [lines](const std::string& l) { lines->push_back(l); };
    std::shared_ptr<Plan> p;
    return Builder(o).build_from_onnx(std::string(KILN_SOURCE_DIR) + "/models/fashion_cnn.onnx", p);
  };
  std::vector<std::string> lines;
  // A pattern that names nothing, and int8 without --int8.
  const std::vector<std::pair<std::string, std::string>> lp = {{"/no/such/*", "fp16"},
                                                               {"/block1/*", "int8"}};
  Status s = build(lp, "obey", &lines);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'/no/such/*:fp16' names no layer"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("runs in fp32, not int8"), std::string::npos) << s.message();
  lines.clear();
  s = build(lp, "prefer", &lines);
  EXPECT_TRUE(s.is_ok()) << s.message();
  int warned = 0;
  for (const auto& l : lines) warned += l.find("layer precision (preferred, not obeyed)") == 0;
  EXPECT_GE(warned, 2);
  EXPECT_EQ(build({}, "sometimes", &lines).code(), StatusCode::kInvalidArgument);
}

// A calibrator over a few random batches.
class RandomBatches : public Calibrator {
 public:
  RandomBatches(Dims d, int n) : dims_(std::move(d)), left_(n) {}
  bool next_batch(std::map<std::string, Tensor>& b) override {
    if (left_-- <= 0) return false;
    b["image"] = random(dims_, rng_);
    return true;
  }

 private:
  Dims dims_;
  int left_;
  std::mt19937 rng_{4};
};

TEST(Int8OnGpu, PlanRunsEveryConvolutionOnTheInt8TacticAndMatchesTheCpuPlan) {
  if (!find_backend("cuda")) GTEST_SKIP() << "no usable GPU: " << cuda_unavailable_reason();
  std::mt19937 rng(22);
  Network net;
  resnet_like_into(net, rng, 16);
  const std::string cache = ::testing::TempDir() + "kiln_int8_cuda.calib";
  std::remove(cache.c_str());
  auto build = [&](const std::string& device) {
    BuildOptions o;
    o.device = device;
    o.int8 = true;
    o.fp16 = device == "cuda";
    o.calibrator = std::make_shared<RandomBatches>(Dims{2, 3, 32, 32}, 3);
    o.calib_cache = cache;  // the CPU build writes it, the GPU build reads it: the same scales
    std::shared_ptr<Plan> p;
    Status s = Builder(o).build(net, p);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return p;
  };
  auto cpu = build("cpu");
  auto gpu = build("cuda");
  ASSERT_TRUE(cpu && gpu);
  int int8_steps = 0;
  for (const PlanStep& st : gpu->steps()) {
    EXPECT_FALSE(st.on_host) << st.op << " '" << st.name << "' ran on the host (" << st.tactic
                             << ")";
    if (st.op == "Conv") int8_steps += st.tactic == "cuda.cudnn_conv_int8";
  }
  EXPECT_EQ(int8_steps, 5);  // all but the stem
  const std::map<std::string, Tensor> in{{"image", random({2, 3, 32, 32}, rng)}};
  Tensor want = run_plan(cpu, in)["logits"], got = run_plan(gpu, in)["logits"];
  ASSERT_EQ(got.numel(), want.numel());
  const double m = max_magnitude(want);
  ASSERT_GT(m, 0);
  count_mismatches(got, want, 0, 0.03 * m);
  std::remove(cache.c_str());
}

}  // namespace
}  // namespace kiln
