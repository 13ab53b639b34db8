// FuseAttention on what torch.onnx exports (tests/data/make_attention_models.py): each model,
// imported and optimised by the CPU pipeline, holds the expected number of Attention nodes (and no
// Softmax left) and computes what the imported graph computes, node by node on the reference.
// Hand-built graphs check what must not fuse.
#include <random>

#include "onnx/importer.h"
#include "onnx/model.h"
#include "ops/attention.h"
#include "ops/mat_mul.h"
#include "ops/softmax.h"
#include "ops/transpose.h"
#include "pass_harness.h"

namespace kiln::passtest {
namespace {

std::unique_ptr<Graph> import(const std::string& file) {
  return onnx::import_model_or_throw(
      onnx::read_model(std::string(KILN_SOURCE_DIR) + "/tests/data/" + file));
}

int count_op(const Graph& g, std::string_view op) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node->op() == op;
  return n;
}

struct Fused {
  std::unique_ptr<Graph> graph;
  PassContext ctx;
};

Fused optimise(const Graph& g) {
  Fused f;
  f.graph = g.clone();
  f.ctx.opt_level = 1;
  run_pipeline(*f.graph, f.ctx);
  return f;
}

// Imports `file`, optimises it, checks the count of Attention nodes and compares the outputs.
void check_model(const std::string& file, std::map<std::string, Tensor> inputs, int attention,
                 int grouped = 0) {
  SCOPED_TRACE(file);
  std::unique_ptr<Graph> g = import(file);
  ASSERT_GT(count_op(*g, "Softmax"), 0);
  Fused f = optimise(*g);
  EXPECT_EQ(count_op(*f.graph, "Attention"), attention) << print_graph(*f.graph);
  EXPECT_EQ(count_op(*f.graph, "Softmax"), 0) << print_graph(*f.graph);
  EXPECT_EQ(f.ctx.stats["fuse_attention.fused"], attention);
  EXPECT_EQ(f.ctx.stats["fuse_attention.grouped"], grouped);
  std::vector<Tensor> want = run(*g, inputs), got = run(*f.graph, inputs);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(dims_to_string(got[i].dims()), dims_to_string(want[i].dims()));
    double sum = 0;
    for (int64_t e = 0; e < want[i].numel(); ++e) sum += std::fabs(want[i].get_f64(e));
    EXPECT_GT(sum, 0) << "the reference output is all zeros";
    EXPECT_EQ(count_mismatches(got[i], want[i], 1e-4, 1e-5), 0);
  }
}

TEST(FuseAttention, BertPaddingMask) {
  std::mt19937 rng(1);
  Tensor mask = Tensor::from_vector(DataType::kFloat, {2, 5},
                                    std::vector<float>{1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
  check_model("attn_bert.onnx", {{"x", random({2, 5, 16}, rng)}, {"mask", mask}}, 2);
}

TEST(FuseAttention, Gpt2CausalWhere) {
  std::mt19937 rng(2);
  check_model("attn_gpt.onnx", {{"x", random({2, 6, 16}, rng)}}, 1);
}

TEST(FuseAttention, MultiheadAttentionKeyPadding) {
  std::mt19937 rng(3);
  Tensor pad(DataType::kBool, {2, 5});
  pad.set_f64(8, 1);
  pad.set_f64(9, 1);
  check_model("attn_mha.onnx", {{"x", random({2, 5, 16}, rng)}, {"pad", pad}}, 1);
}

TEST(FuseAttention, ScaledDotProductScalesOnBothSides) {
  std::mt19937 rng(4);
  check_model("attn_sdpa.onnx", {{"x", random({1, 7, 16}, rng)}}, 1);
}

TEST(FuseAttention, GroupedQueryRepeatKv) {
  std::mt19937 rng(5);
  check_model("attn_gqa.onnx", {{"x", random({2, 5, 16}, rng)}}, 1, 1);
}

TEST(FuseAttention, FusedNodeAttributes) {
  Fused f = optimise(*import("attn_bert.onnx"));
  for (const auto& n : f.graph->nodes()) {
    if (n->op() != "Attention") continue;
    const auto& a = n->a<AttentionAttrs>();
    EXPECT_NEAR(a.scale, 1 / std::sqrt(8.0), 1e-6);
    EXPECT_FALSE(a.causal);
    ASSERT_EQ(n->inputs.size(), 4u);  // the padding mask
    EXPECT_EQ(n->inputs[1]->shape, Shape({2, 2, 5, 8}));  // K, not Kᵀ
  }
}

// q, k, v [1, 2, 4, 8] -> MatMul(q, Transpose(k)) -> Softmax -> MatMul(., v); the scores also a
// graph output when `scores_out`.
std::unique_ptr<Graph> core(bool scores_out) {
  auto g = std::make_unique<Graph>();
  Value* q = g->add_value("q", DataType::kFloat, Shape({1, 2, 4, 8}));
  Value* k = g->add_value("k", DataType::kFloat, Shape({1, 2, 4, 8}));
  Value* v = g->add_value("v", DataType::kFloat, Shape({1, 2, 4, 8}));
  g->inputs = {q, k, v};
  auto ta = std::make_unique<TransposeAttrs>();
  ta->perm = {0, 1, 3, 2};
  Value* kt = g->add_value("kt", DataType::kFloat);
  g->add_node("Transpose", {k}, {kt}, std::move(ta), "t");
  Value* s = g->add_value("s", DataType::kFloat);
  g->add_node("MatMul", {q, kt}, {s}, std::make_unique<MatMulAttrs>(), "qk");
  Value* p = g->add_value("p", DataType::kFloat);
  g->add_node("Softmax", {s}, {p}, std::make_unique<SoftmaxAttrs>(), "softmax");
  Value* y = g->add_value("y", DataType::kFloat);
  g->add_node("MatMul", {p, v}, {y}, std::make_unique<MatMulAttrs>(), "pv");
  g->outputs = {y};
  if (scores_out) g->outputs.push_back(s);
  infer_graph(*g);
  return g;
}

TEST(FuseAttention, BareCoreFusesWithDefaultScaleOne) {
  std::unique_ptr<Graph> g = core(false);
  Fused f = optimise(*g);
  ASSERT_EQ(count_op(*f.graph, "Attention"), 1);
  for (const auto& n : f.graph->nodes()) {
    if (n->op() == "Attention") {
      EXPECT_EQ(n->a<AttentionAttrs>().scale, 1.0);
    }
  }
  std::mt19937 rng(6);
  std::map<std::string, Tensor> in = {{"q", random({1, 2, 4, 8}, rng)},
                                      {"k", random({1, 2, 4, 8}, rng)},
                                      {"v", random({1, 2, 4, 8}, rng)}};
  EXPECT_EQ(count_mismatches(run(*f.graph, in)[0], run(*g, in)[0], 1e-5, 1e-6), 0);
}

TEST(FuseAttention, ScoresReadElsewhereStayUnfused) {
  Fused f = optimise(*core(true));
  EXPECT_EQ(count_op(*f.graph, "Attention"), 0);
  EXPECT_EQ(count_op(*f.graph, "Softmax"), 1);
}

TEST(FuseAttention, PlanRoundTripsTheOp) {
  // The plan format carries Attention's reflected attributes: a CPU plan built from the BERT
  // export runs and matches the imported graph.
  std::unique_ptr<Graph> g = import("attn_bert.onnx");
  std::mt19937 rng(7);
  std::map<std::string, Tensor> in = {
      {"x", random({2, 5, 16}, rng)},
      {"mask", Tensor::from_vector(DataType::kFloat, {2, 5},
                                   std::vector<float>{1, 1, 1, 0, 0, 1, 1, 1, 1, 1})}};
  std::vector<Tensor> want = run(*g, in);
  BuildOptions o;
  o.device = "cpu";
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(Builder(o).build_from_onnx(std::string(KILN_SOURCE_DIR) + "/tests/data/attn_bert.onnx",
                                         plan)
                  .is_ok());
  const std::string bytes = plan->serialize();
  std::shared_ptr<Plan> back;
  ASSERT_TRUE(Plan::deserialize(bytes, back).is_ok());
  int attention = 0;
  for (const auto& n : back->data().graph->nodes()) attention += n->op() == "Attention";
  EXPECT_EQ(attention, 2);
  std::shared_ptr<Engine> engine;
  std::unique_ptr<ExecutionContext> ctx;
  ASSERT_TRUE(Engine::create(back, engine).is_ok());
  ASSERT_TRUE(engine->create_context(ctx).is_ok());
  std::map<std::string, Tensor> out;
  ASSERT_TRUE(ctx->run(in, out).is_ok());
  EXPECT_EQ(count_mismatches(out.at("y"), want[0], 1e-4, 1e-5), 0);
}

}  // namespace
}  // namespace kiln::passtest
