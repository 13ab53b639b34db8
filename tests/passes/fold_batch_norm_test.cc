// FoldBatchNorm: batch norms and per-channel constant Mul/Add after a Conv or a MatMul become part
// of its weights and bias. Each rewrite is checked for structure and for computing what the
// original graph computes on random inputs (CPU reference, and a CUDA plan when there is a GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "ir/graph.h"
#include "kiln/kiln.h"
#include "ops/conv.h"
#include "ops/mat_mul.h"
#include "ops/normalization.h"
#include "ops/pointwise.h"
#include "passes/pass.h"
#include "pass_harness.h"

namespace kiln {
namespace {

using namespace passtest;
using expr::Op;

Value* conv(G& b, Value* x, Value* w, Value* bias, int64_t group, bool transposed,
            int64_t stride, int64_t pad) {
  size_t spatial = x->shape.rank() - 2;
  auto a = std::make_unique<ConvAttrs>();
  a->group = group;
  a->transposed = transposed;
  a->strides.assign(spatial, stride);
  a->pads.assign(2 * spatial, pad);
  std::vector<Value*> ins{x, w};
  if (bias) ins.push_back(bias);
  return b.node("Conv", ins, std::move(a), "conv");
}

// Weights of a conv with c input and m output channels and a kernel of `k` per spatial axis.
Value* weights(G& b, int64_t c, int64_t m, int64_t group, bool transposed, size_t spatial,
               int64_t k) {
  Dims d = transposed ? Dims{c, m / group} : Dims{m, c / group};
  for (size_t i = 0; i < spatial; ++i) d.push_back(k);
  return b.constant("w", random(d, b.rng, 1.0 / std::sqrt(double(c / group * k * k))));
}

struct BnParams {
  Value* scale;
  Value* bias;
  Value* mean;
  Value* var;
};

// Non-trivial statistics: scales of both signs, means away from zero, variances in [0.1, 1.1].
BnParams bn_params(G& b, Dims d) {
  Tensor var = random(d, b.rng);
  for (int64_t i = 0; i < var.numel(); ++i)
    var.data<float>()[i] = 0.1f + std::fabs(var.data<float>()[i]);
  return {b.constant("gamma", random(d, b.rng, 1.5)), b.constant("beta", random(d, b.rng, 0.5)),
          b.constant("mean", random(d, b.rng, 0.5)), b.constant("var", var)};
}

Value* batch_norm(G& b, Value* x, const BnParams& p, double eps = 1e-3) {
  auto a = std::make_unique<NormalizationAttrs>();
  a->kind = "batch";
  a->epsilon = eps;
  return b.node("Normalization", {x, p.scale, p.bias, p.mean, p.var}, std::move(a), "bn");
}

Value* matmul(G& b, Value* a, Value* w, bool trans_b, double alpha = 1.0) {
  auto at = std::make_unique<MatMulAttrs>();
  at->trans_b = trans_b;
  at->alpha = alpha;
  return b.node("MatMul", {a, w}, std::move(at), "matmul");
}

Value* constant(G& b, Dims d, double scale = 1.0) { return b.constant("k", random(d, b.rng, scale)); }

// ---------------------------------------------------------------------------------------------
// The graphs (shared by the CPU and GPU tests).

struct ConvCase {
  const char* label;
  size_t spatial;
  int64_t c, m, group;
  bool bias, transposed;
  int64_t stride, pad, k;
  bool param_rank_matches_x;  // parameters [M,1,..] rather than [M]
};

const ConvCase kConvCases[] = {
    {"2-D, bias", 2, 3, 5, 1, true, false, 1, 1, 3, false},
    {"2-D grouped, no bias, stride 2", 2, 6, 9, 3, false, false, 2, 1, 3, false},
    {"depthwise, bias, [M,1,1] params", 2, 7, 7, 7, true, false, 1, 1, 3, true},
    {"1-D, bias", 1, 4, 7, 1, true, false, 1, 2, 5, false},
    {"3-D, no bias", 3, 2, 3, 1, false, false, 1, 1, 3, false},
    {"transposed grouped, bias, stride 2", 2, 4, 6, 2, true, true, 2, 1, 3, false},
    {"transposed, no bias", 2, 3, 5, 1, false, true, 1, 0, 2, false},
};

G conv_bn_graph(const ConvCase& cc) {
  G b;
  Dims xd{2, cc.c};
  const int64_t sizes[] = {9, 7, 5};
  for (size_t i = 0; i < cc.spatial; ++i) xd.push_back(sizes[i]);
  Value* x = b.input("x", xd);
  Value* w = weights(b, cc.c, cc.m, cc.group, cc.transposed, cc.spatial, cc.k);
  Value* bias = cc.bias ? constant(b, {cc.m}, 0.5) : nullptr;
  Value* y = conv(b, x, w, bias, cc.group, cc.transposed, cc.stride, cc.pad);
  Dims pd{cc.m};
  if (cc.param_rank_matches_x) pd.resize(cc.spatial + 1, 1);
  b.output(batch_norm(b, y, bn_params(b, pd)), "y");
  return b;
}

// conv -> BN -> Mul [1,M,1,1] -> Add [M,1,1] (constant first) -> Mul scalar (constant first) ->
// Relu; and beside it a conv followed by a Mul only.
G conv_bn_mul_add_graph() {
  G b;
  Value* x = b.input("x", {2, 3, 8, 7});
  Value* y = conv(b, x, weights(b, 3, 5, 1, false, 2, 3), constant(b, {5}, 0.5), 1, false, 1, 1);
  y = batch_norm(b, y, bn_params(b, {5}));
  y = b.binary(Op::kMul, y, constant(b, {1, 5, 1, 1}, 2.0));
  y = b.binary(Op::kAdd, constant(b, {5, 1, 1}), y);
  y = b.binary(Op::kMul, constant(b, {}, 3.0), y);
  b.output(b.unary(Op::kRelu, y), "y");
  Value* z = conv(b, x, weights(b, 3, 4, 1, false, 2, 1), nullptr, 1, false, 1, 0);
  b.output(b.binary(Op::kMul, z, constant(b, {4, 1, 1}, 2.0)), "z");
  return b;
}

// Two convs share W and B; each has its own batch norm.
G shared_weights_graph() {
  G b;
  Value* x1 = b.input("x1", {1, 4, 6, 5});
  Value* x2 = b.input("x2", {2, 4, 5, 7});
  Value* w = weights(b, 4, 6, 1, false, 2, 3);
  Value* bias = constant(b, {6}, 0.5);
  b.output(batch_norm(b, conv(b, x1, w, bias, 1, false, 1, 1), bn_params(b, {6})), "y1");
  b.output(batch_norm(b, conv(b, x2, w, bias, 1, false, 1, 1), bn_params(b, {6}), 1e-5), "y2");
  return b;
}

struct MatMulCase {
  const char* label;
  bool trans_b;
  double alpha;
  bool mul_add;  // BN followed by Mul [1,N] and Add [N]
};
const MatMulCase kMatMulCases[] = {
    {"plain", false, 1.0, false},
    {"trans_b, alpha", true, 0.5, false},
    {"then Mul and Add", false, 1.0, true},
};

G matmul_bn_graph(const MatMulCase& mc) {
  G b;
  Value* a = b.input("a", {7, 5});
  Value* w = constant(b, mc.trans_b ? Dims{6, 5} : Dims{5, 6}, 0.5);
  Value* y = batch_norm(b, matmul(b, a, w, mc.trans_b, mc.alpha), bn_params(b, {6}));
  if (mc.mul_add) {
    y = b.binary(Op::kMul, y, constant(b, {1, 6}, 2.0));
    y = b.binary(Op::kAdd, y, constant(b, {6}));
  }
  b.output(y, "y");
  return b;
}

// ---------------------------------------------------------------------------------------------
// CPU

TEST(FoldBatchNorm, ConvBatchNorm) {
  for (const ConvCase& cc : kConvCases) {
    SCOPED_TRACE(cc.label);
    G b = conv_bn_graph(cc);
    auto before = b.g->clone();
    const Node* bn = first(*before, "Normalization");
    PassContext ctx;
    apply(FoldBatchNorm{}, *b.g, ctx);
    ASSERT_EQ(ops_of(*b.g), std::vector<std::string>{"Conv"});
    const Node* c = first(*b.g, "Conv");
    EXPECT_EQ(c->outputs[0]->name, "y");
    ASSERT_GE(c->inputs.size(), 3u);
    ASSERT_TRUE(c->inputs[2] && c->inputs[2]->is_constant());
    EXPECT_EQ(c->inputs[2]->shape.str(), "[" + std::to_string(cc.m) + "]");
    EXPECT_EQ(c->inputs[1]->shape, first(*before, "Conv")->inputs[1]->shape);
    std::vector<std::string> origins = node_origins(*c);
    EXPECT_NE(std::find(origins.begin(), origins.end(), bn->name), origins.end());
    EXPECT_EQ(ctx.stats["fold_batch_norm.conv"], 1);
    EXPECT_EQ(ctx.stats["fold_batch_norm.batch_norm"], 1);
    expect_same_outputs(*before, *b.g, 1e-5, b.rng);
  }
}

TEST(FoldBatchNorm, ConvBatchNormMulAdd) {
  G b = conv_bn_mul_add_graph();
  auto before = b.g->clone();
  PassContext ctx;
  apply(FoldBatchNorm{}, *b.g, ctx);
  ASSERT_EQ(ops_of(*b.g), (std::vector<std::string>{"Conv", "Pointwise", "Conv"}));
  const Node* relu = b.g->nodes()[1].get();
  EXPECT_EQ(relu->inputs[0]->producer, b.g->nodes()[0].get());
  EXPECT_EQ(relu->outputs[0]->name, "y");
  EXPECT_EQ(b.g->nodes()[2]->outputs[0]->name, "z");
  EXPECT_EQ(ctx.stats["fold_batch_norm.conv"], 2);
  EXPECT_EQ(ctx.stats["fold_batch_norm.batch_norm"], 1);
  EXPECT_EQ(ctx.stats["fold_batch_norm.mul"], 3);
  EXPECT_EQ(ctx.stats["fold_batch_norm.add"], 1);
  expect_same_outputs(*before, *b.g, 1e-5, b.rng);
  // The epilogue pass then takes the Relu, as the pipeline runs them.
  apply(FuseConvEpilogue{}, *b.g, ctx);
  EXPECT_EQ(ops_of(*b.g), (std::vector<std::string>{"Conv", "Conv"}));
  expect_same_outputs(*before, *b.g, 1e-5, b.rng);
}

TEST(FoldBatchNorm, SharedWeightsGetTheirOwnFoldedCopies) {
  G b = shared_weights_graph();
  const Node* c0 = b.g->nodes()[0].get();
  Value* w = c0->inputs[1];
  Value* bias = c0->inputs[2];
  Tensor w_data = w->data, b_data = bias->data;  // shares the storage a rewrite would touch
  Tensor w_copy = w_data.clone(), b_copy = b_data.clone();
  auto before = b.g->clone();
  PassContext ctx;
  apply(FoldBatchNorm{}, *b.g, ctx);
  ASSERT_EQ(ops_of(*b.g), (std::vector<std::string>{"Conv", "Conv"}));
  const Node* n0 = b.g->nodes()[0].get();
  const Node* n1 = b.g->nodes()[1].get();
  EXPECT_NE(n0->inputs[1], n1->inputs[1]);
  EXPECT_NE(n0->inputs[2], n1->inputs[2]);
  EXPECT_EQ(ctx.stats["fold_batch_norm.batch_norm"], 2);
  for (int64_t i = 0; i < w_copy.numel(); ++i) ASSERT_EQ(w_data.get_f64(i), w_copy.get_f64(i));
  for (int64_t i = 0; i < b_copy.numel(); ++i) ASSERT_EQ(b_data.get_f64(i), b_copy.get_f64(i));
  expect_same_outputs(*before, *b.g, 1e-5, b.rng);
}

TEST(FoldBatchNorm, MatMulBatchNorm) {
  for (const MatMulCase& mc : kMatMulCases) {
    SCOPED_TRACE(mc.label);
    G b = matmul_bn_graph(mc);
    auto before = b.g->clone();
    PassContext ctx;
    apply(FoldBatchNorm{}, *b.g, ctx);
    ASSERT_EQ(ops_of(*b.g), (std::vector<std::string>{"MatMul", "Pointwise"}));
    const Node* mm = b.g->nodes()[0].get();
    const Node* add = b.g->nodes()[1].get();
    EXPECT_EQ(add->inputs[0], mm->outputs[0]);
    ASSERT_TRUE(add->inputs[1]->is_constant());
    EXPECT_EQ(add->inputs[1]->shape.str(), "[6]");
    const auto& p = add->a<PointwiseAttrs>().program;
    EXPECT_EQ(p.code[p.outputs[0]].op, Op::kAdd);
    EXPECT_EQ(add->outputs[0]->name, "y");
    EXPECT_TRUE(mm->inputs[1]->is_constant());
    EXPECT_EQ(mm->inputs[1]->shape, first(*before, "MatMul")->inputs[1]->shape);
    EXPECT_EQ(ctx.stats["fold_batch_norm.matmul"], 1);
    EXPECT_EQ(ctx.stats["fold_batch_norm.batch_norm"], 1);
    EXPECT_EQ(ctx.stats["fold_batch_norm.mul"], mc.mul_add ? 1 : 0);
    expect_same_outputs(*before, *b.g, 1e-5, b.rng);
  }
}

TEST(FoldBatchNorm, MatMulMulWithoutShiftNeedsNoAdd) {
  G b;
  Value* a = b.input("a", {3, 4});
  Value* y = matmul(b, a, constant(b, {4, 5}), false);
  b.output(b.binary(Op::kMul, constant(b, {5}, 2.0), y), "y");
  auto before = b.g->clone();
  PassContext ctx;
  apply(FoldBatchNorm{}, *b.g, ctx);
  ASSERT_EQ(ops_of(*b.g), std::vector<std::string>{"MatMul"});
  EXPECT_EQ(b.g->nodes()[0]->outputs[0]->name, "y");
  expect_same_outputs(*before, *b.g, 1e-5, b.rng);
}

TEST(FoldBatchNorm, LeavesWhatItMustNotFold) {
  G b;
  Value* x = b.input("x", {1, 3, 6, 5});
  auto plain_conv = [&](int64_t m) {
    return conv(b, x, weights(b, 3, m, 1, false, 2, 3), constant(b, {m}), 1, false, 1, 1);
  };
  // The conv's output has two consumers.
  Value* c1 = plain_conv(4);
  b.output(batch_norm(b, c1, bn_params(b, {4})), "bn1");
  b.output(b.unary(Op::kRelu, c1), "r1");
  // The conv's output is a graph output.
  Value* c2 = plain_conv(4);
  b.output(c2, "c2");
  b.output(batch_norm(b, c2, bn_params(b, {4})), "bn2");
  // The mean is not constant.
  Value* mean = b.input("mean", {4});
  BnParams p = bn_params(b, {4});
  p.mean = mean;
  b.output(batch_norm(b, plain_conv(4), p), "bn3");
  // Parameters vary along the spatial axes (ONNX spatial=0).
  b.output(batch_norm(b, plain_conv(2), bn_params(b, {2, 6, 5})), "bn4");
  // Weights are not constant.
  Value* w = b.input("w", {4, 3, 1, 1});
  b.output(batch_norm(b, conv(b, x, w, nullptr, 1, false, 1, 0), bn_params(b, {4})), "bn5");
  // No conv before it.
  b.output(batch_norm(b, x, bn_params(b, {3})), "bn6");
  // A constant Add alone is the epilogue pass's.
  b.output(b.binary(Op::kAdd, plain_conv(4), constant(b, {1, 4, 1, 1})), "a7");
  // A per-element (not per-channel) Mul.
  b.output(b.binary(Op::kMul, plain_conv(4), constant(b, {4, 6, 5})), "m8");
  // A batched MatMul: the batch norm's channel axis is not the columns.
  Value* a = b.input("a", {2, 3, 5});
  b.output(batch_norm(b, matmul(b, a, constant(b, {5, 3}), false), bn_params(b, {3})), "bn9");
  // A MatMul whose B is not constant.
  Value* bm = b.input("bm", {5, 4});
  Value* a2 = b.input("a2", {3, 5});
  b.output(batch_norm(b, matmul(b, a2, bm, false), bn_params(b, {4})), "bn10");
  auto before = b.g->clone();
  PassContext ctx;
  apply(FoldBatchNorm{}, *b.g, ctx);
  EXPECT_EQ(ops_of(*b.g), ops_of(*before));
  EXPECT_EQ(count_op(*b.g, "Normalization"), 8);
  EXPECT_EQ(ctx.stats["fold_batch_norm.conv"], 0);
  EXPECT_EQ(ctx.stats["fold_batch_norm.matmul"], 0);
  EXPECT_EQ(ctx.stats["fold_batch_norm.batch_norm"], 0);
}

TEST(FoldBatchNorm, DemoModelLosesItsBatchNormsAtLevelOne) {
  std::mt19937 rng(3);
  Tensor x = random({3, 1, 28, 28}, rng);
  for (int i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.5f + 0.5f * x.data<float>()[i];
  auto build = [&](int level, int* norms) {
    BuildOptions o;
    o.device = "cpu";
    o.opt_level = level;
    o.input_shapes["image"] = {3, 1, 28, 28};
    std::shared_ptr<Plan> plan;
    Status s = Builder(o).build_from_onnx(KILN_SOURCE_DIR "/models/fashion_cnn.onnx", plan);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    if (!plan) return Tensor();
    *norms = count_op(*plan->data().graph, "Normalization");
    std::shared_ptr<Engine> e;
    EXPECT_TRUE(Engine::create(plan, e).is_ok());
    std::unique_ptr<ExecutionContext> ctx;
    EXPECT_TRUE(e->create_context(ctx).is_ok());
    std::map<std::string, Tensor> out;
    EXPECT_TRUE(ctx->run({{"image", x}}, out).is_ok());
    return out.at("logits");
  };
  int norms0 = -1, norms1 = -1;
  Tensor want = build(0, &norms0);
  Tensor got = build(1, &norms1);
  EXPECT_GT(norms0, 0);
  EXPECT_EQ(norms1, 0);
  ASSERT_EQ(dims_to_string(got.dims()), dims_to_string(want.dims()));
  ASSERT_GT(max_magnitude(want), 0);
  count_mismatches(got, want, 1e-4, 1e-4);
}

// ---------------------------------------------------------------------------------------------
// GPU: the folded graphs in CUDA plans compute what the originals compute.

// Folds b's graph and compares both on the GPU; false when there is no GPU.
bool fold_and_compare_on_gpu(G& b) {
  auto before = b.g->clone();
  PassContext ctx;
  apply(FoldBatchNorm{}, *b.g, ctx);
  EXPECT_GT(ctx.stats["fold_batch_norm.conv"] + ctx.stats["fold_batch_norm.matmul"], 0);
  return expect_same_outputs_on_gpu(*before, *b.g, 1e-4, b.rng);
}

TEST(FoldBatchNormGpu, ConvBatchNorm) {
  for (const ConvCase& cc : kConvCases) {
    SCOPED_TRACE(cc.label);
    G b = conv_bn_graph(cc);
    if (!fold_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
  }
}

TEST(FoldBatchNormGpu, ConvBatchNormMulAdd) {
  G b = conv_bn_mul_add_graph();
  if (!fold_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
}

TEST(FoldBatchNormGpu, SharedWeights) {
  G b = shared_weights_graph();
  if (!fold_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
}

TEST(FoldBatchNormGpu, MatMulBatchNorm) {
  for (const MatMulCase& mc : kMatMulCases) {
    SCOPED_TRACE(mc.label);
    G b = matmul_bn_graph(mc);
    if (!fold_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
  }
}

}  // namespace
}  // namespace kiln
