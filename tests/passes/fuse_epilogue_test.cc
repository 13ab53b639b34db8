// FuseEpilogue on MatMul (bias, residual, relu into the MatMul's epilogue) and
// FuseEpilogueProgram (a following single-input Pointwise into a Conv's or MatMul's epilogue
// program). Each rewrite: the structure after the pass, the same outputs as the original on the CPU
// reference, and (a separate test, skipped without a GPU) the same outputs in CUDA plans.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "common/error.h"
#include "ir/graph.h"
#include "ops/conv.h"
#include "ops/epilogue.h"
#include "ops/mat_mul.h"
#include "ops/pointwise.h"
#include "pass_harness.h"
#include "passes/pass.h"

namespace kiln {
namespace {

using namespace passtest;
using expr::Op;

// x @ W (+ options) with a constant W of dims wd.
Value* matmul(G& b, Value* x, Dims wd, bool trans_b = false, double alpha = 1.0) {
  auto a = std::make_unique<MatMulAttrs>();
  a->trans_b = trans_b;
  a->alpha = alpha;
  const int64_t k = trans_b ? wd.back() : wd[wd.size() - 2];
  Value* w = b.constant("w", random(wd, b.rng, 1.0 / std::sqrt(static_cast<double>(k))));
  return b.node("MatMul", {x, w}, std::move(a), "mm");
}

// A single-input Pointwise node running `build` over its input register.
template <class F>
Value* pointwise(G& b, Value* x, F build, const std::string& hint) {
  auto a = std::make_unique<PointwiseAttrs>();
  a->program.input_types = {x->dtype};
  a->program.outputs = {build(a->program, a->program.input(0))};
  return b.node("Pointwise", {x}, std::move(a), hint);
}

Value* clip(G& b, Value* x, double lo, double hi) {
  // As the importer lowers Clip with constant bounds: min(max(x, lo), hi) over scalar inputs.
  auto a = std::make_unique<PointwiseAttrs>();
  auto& p = a->program;
  p.input_types = {x->dtype, x->dtype, x->dtype};
  p.outputs = {p.binary(Op::kMin, p.binary(Op::kMax, p.input(0), p.input(1)), p.input(2))};
  Tensor tl(DataType::kFloat, {}), th(DataType::kFloat, {});
  tl.set_f64(0, lo);
  th.set_f64(0, hi);
  return b.node("Pointwise", {x, b.constant("lo", tl), b.constant("hi", th)}, std::move(a), "clip");
}

Tensor scalar(double v) {
  Tensor t(DataType::kFloat, {});
  t.set_f64(0, v);
  return t;
}

const Node* first_node(const Graph& g, std::string_view op) { return first(g, op); }

#define SKIP_WITHOUT_GPU(ok) \
  if (!(ok)) GTEST_SKIP() << "no GPU: " << cuda_unavailable_reason()

// ---------------------------------------------------------------------------------------------
// FuseEpilogue on MatMul

// [3,5,7] @ [7,6] + bias[6], the bias given as [6] or [1,1,6], on either side of the Add.
std::unique_ptr<Graph> matmul_bias(G& b, bool wide_bias, bool bias_first, bool relu) {
  Value* x = b.input("x", {3, 5, 7});
  Value* y = matmul(b, x, {7, 6});
  Value* c = b.constant("c", random(wide_bias ? Dims{1, 1, 6} : Dims{6}, b.rng, 0.5));
  y = bias_first ? b.binary(Op::kAdd, c, y) : b.binary(Op::kAdd, y, c);
  if (relu) y = b.unary(Op::kRelu, y);
  b.output(y, "y");
  return b.g->clone();
}

TEST(FuseEpilogue, MatMulBias) {
  for (bool wide : {false, true})
    for (bool first : {false, true}) {
      SCOPED_TRACE(cat("bias ", wide ? "[1,1,6]" : "[6]", first ? " + mm" : ", mm + bias"));
      G b;
      auto before = matmul_bias(b, wide, first, false);
      PassContext ctx;
      apply(FuseEpilogue{}, *b.g, ctx);
      ASSERT_EQ(ops_of(*b.g), std::vector<std::string>{"MatMul"});
      const Node* mm = first_node(*b.g, "MatMul");
      ASSERT_EQ(mm->inputs.size(), 3u);
      ASSERT_TRUE(mm->in(2) && mm->in(2)->is_constant());
      EXPECT_EQ(mm->in(2)->shape.str(), "[6]");
      EXPECT_EQ(mm->a<MatMulAttrs>().activation, "");
      EXPECT_EQ(mm->outputs[0]->name, "y");
      EXPECT_EQ(ctx.stats["fuse_epilogue.bias"], 1);
      EXPECT_EQ(ctx.stats["fuse_epilogue.matmul"], 1);
      expect_same_outputs(*before, *b.g, 1e-6, b.rng);
    }
}

TEST(FuseEpilogue, MatMulBiasRelu) {
  G b;
  auto before = matmul_bias(b, false, false, true);
  PassContext ctx;
  apply(FuseEpilogue{}, *b.g, ctx);
  ASSERT_EQ(ops_of(*b.g), std::vector<std::string>{"MatMul"});
  const Node* mm = first_node(*b.g, "MatMul");
  EXPECT_EQ(mm->a<MatMulAttrs>().activation, "relu");
  EXPECT_TRUE(mm->in(2) != nullptr);
  EXPECT_EQ(ctx.stats["fuse_epilogue.relu"], 1);
  expect_same_outputs(*before, *b.g, 1e-6, b.rng);
}

// BERT's attention output and FFN output: [B,S,H] @ [H,H] + bias, + the block's input.
std::unique_ptr<Graph> bert_residual(G& b, bool later_branch) {
  Value* x = b.input("x", {2, 5, 12});
  Value* r = x;
  Value* y = matmul(b, x, {12, 12});
  y = b.binary(Op::kAdd, y, b.constant("bias", random({12}, b.rng, 0.5)));
  // The residual computed after the MatMul in node order (needs a reorder when fused).
  if (later_branch) r = b.unary(Op::kTanh, x);
  y = b.binary(Op::kAdd, r, y);
  b.output(y, "y");
  return b.g->clone();
}

TEST(FuseEpilogue, MatMulBiasResidualBertStyle) {
  for (bool later : {false, true}) {
    SCOPED_TRACE(later ? "residual computed later" : "residual is the input");
    G b;
    auto before = bert_residual(b, later);
    PassContext ctx;
    apply(FuseEpilogue{}, *b.g, ctx);
    EXPECT_EQ(count_op(*b.g, "MatMul"), 1);
    EXPECT_EQ(count_op(*b.g, "Pointwise"), later ? 1 : 0);
    const Node* mm = first_node(*b.g, "MatMul");
    ASSERT_EQ(mm->inputs.size(), 4u);
    EXPECT_TRUE(mm->in(2) && mm->in(2)->is_constant());
    if (later)
      EXPECT_EQ(mm->in(3), b.g->nodes()[0]->outputs[0]);  // the Tanh now comes first
    else
      EXPECT_EQ(mm->in(3), b.g->inputs[0]);
    EXPECT_EQ(mm->outputs[0]->name, "y");
    EXPECT_EQ(ctx.stats["fuse_epilogue.bias"], 1);
    EXPECT_EQ(ctx.stats["fuse_epilogue.residual"], 1);
    expect_same_outputs(*before, *b.g, 1e-6, b.rng);
  }
}

// Gemm as the importer lowers it (transposed B, alpha) with a [1,N] C, and a 1-D A.
std::unique_ptr<Graph> gemm_and_vector(G& b) {
  Value* a = b.input("a", {4, 9});
  Value* y = matmul(b, a, {5, 9}, /*trans_b=*/true, /*alpha=*/0.75);
  b.output(b.binary(Op::kAdd, y, b.constant("c", random({1, 5}, b.rng))), "gemm");
  Value* v = b.input("v", {9});
  Value* yv = matmul(b, v, {9, 3});
  b.output(b.unary(Op::kRelu, b.binary(Op::kAdd, yv, b.constant("cv", random({3}, b.rng)))),
           "vec");
  return b.g->clone();
}

TEST(FuseEpilogue, GemmAndVectorOperand) {
  G b;
  auto before = gemm_and_vector(b);
  PassContext ctx;
  apply(FuseEpilogue{}, *b.g, ctx);
  EXPECT_EQ(ops_of(*b.g), (std::vector<std::string>{"MatMul", "MatMul"}));
  EXPECT_EQ(ctx.stats["fuse_epilogue.bias"], 2);
  EXPECT_EQ(ctx.stats["fuse_epilogue.relu"], 1);
  expect_same_outputs(*before, *b.g, 1e-6, b.rng);
}

TEST(FuseEpilogue, MatMulLeavesWhatItMustNotFuse) {
  G b;
  Value* x = b.input("x", {6, 8});
  // A product of two activations (attention-score style): B is not a constant.
  Value* xt = b.input("xt", {8, 6});
  auto att = std::make_unique<MatMulAttrs>();
  Value* s = b.node("MatMul", {x, xt}, std::move(att), "scores");
  b.output(b.unary(Op::kRelu, b.binary(Op::kAdd, s, b.constant("k0", random({6}, b.rng)))), "s");
  // The product is a graph output.
  Value* m1 = matmul(b, x, {8, 6});
  b.output(m1, "m1");
  b.output(b.binary(Op::kAdd, m1, b.constant("k1", random({6}, b.rng))), "a1");
  // Two consumers.
  Value* m2 = matmul(b, x, {8, 6});
  b.output(b.unary(Op::kRelu, m2), "r2");
  b.output(b.unary(Op::kExp, m2), "e2");
  // A per-row constant [6,1] is no bias (and not of the output's shape).
  Value* m3 = matmul(b, x, {8, 6});
  b.output(b.binary(Op::kAdd, m3, b.constant("k3", random({6, 1}, b.rng))), "a3");
  // A computed [6] vector is neither a constant bias nor a residual of the output's shape.
  Value* m4 = matmul(b, x, {8, 6});
  Value* v = b.unary(Op::kExp, b.input("v", {6}));
  b.output(b.binary(Op::kAdd, m4, v), "a4");
  // Relu, then Add: only the Relu joins.
  Value* m5 = b.unary(Op::kRelu, matmul(b, x, {8, 6}));
  b.output(b.binary(Op::kAdd, m5, b.constant("k5", random({6}, b.rng))), "a5");
  auto before = b.g->clone();
  PassContext ctx;
  apply(FuseEpilogue{}, *b.g, ctx);
  EXPECT_EQ(ctx.stats["fuse_epilogue.bias"], 0);
  EXPECT_EQ(ctx.stats["fuse_epilogue.residual"], 0);
  EXPECT_EQ(ctx.stats["fuse_epilogue.relu"], 1);  // m5's
  EXPECT_EQ(count_op(*b.g, "Pointwise"), count_op(*before, "Pointwise") - 1);
  expect_same_outputs(*before, *b.g, 1e-6, b.rng);
}

TEST(FuseEpilogue, MatMulUnderFp16TakesOnlyTheRelu) {
  G b;
  Value* x = b.input("x", {3, 7});
  b.output(b.unary(Op::kRelu, matmul(b, x, {7, 6})), "r");
  b.output(b.binary(Op::kAdd, matmul(b, x, {7, 6}), b.constant("c", random({6}, b.rng))), "a");
  auto before = b.g->clone();
  PassContext ctx;
  ctx.fp16 = true;
  apply(FuseEpilogue{}, *b.g, ctx);
  EXPECT_EQ(ops_of(*b.g), (std::vector<std::string>{"MatMul", "MatMul", "Pointwise"}));
  EXPECT_EQ(first_node(*b.g, "MatMul")->a<MatMulAttrs>().activation, "relu");
  EXPECT_EQ(ctx.stats["fuse_epilogue.bias"], 0);
  expect_same_outputs(*before, *b.g, 1e-6, b.rng);
}

TEST(FuseEpilogueGpu, MatMulRewritesMatchOnTheGpu) {
  struct Case {
    const char* name;
    std::function<std::unique_ptr<Graph>(G&)> make;
  };
  const Case cases[] = {
      {"bias", [](G& b) { return matmul_bias(b, false, false, false); }},
      {"bias relu", [](G& b) { return matmul_bias(b, true, true, true); }},
      {"bias residual", [](G& b) { return bert_residual(b, false); }},
      {"bias residual, later branch", [](G& b) { return bert_residual(b, true); }},
      {"gemm and vector", [](G& b) { return gemm_and_vector(b); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    G b;
    auto before = c.make(b);
    PassContext ctx;
    apply(FuseEpilogue{}, *b.g, ctx);
    ASSERT_GT(ctx.stats["fuse_epilogue.matmul"], 0);
    SKIP_WITHOUT_GPU(expect_same_outputs_on_gpu(*before, *b.g, 1e-5, b.rng));
  }
}

}  // namespace
}  // namespace kiln
