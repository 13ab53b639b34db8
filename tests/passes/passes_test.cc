// The passes on small graphs: before/after structure, and the optimized graph computes the same
// outputs as the unoptimized one (opt level 0) on random inputs.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ir/graph.h"
#include "kiln/kiln.h"
#include "ops/concat.h"
#include "ops/gather.h"
#include "ops/infer.h"
#include "ops/pointwise.h"
#include "ops/reshape.h"
#include "ops/shape.h"
#include "passes/pass.h"
#include "pass_harness.h"

namespace kiln {
namespace {

Value* pointwise(Graph& g, expr::Op op, std::vector<Value*> ins, const std::string& name) {
  auto a = std::make_unique<PointwiseAttrs>();
  for (Value* v : ins) a->program.input_types.push_back(v->dtype);
  int32_t r = a->program.input(0);
  if (ins.size() == 2) r = a->program.binary(op, r, a->program.input(1));
  else if (op != expr::Op::kInput) r = a->program.unary(op, r);
  a->program.outputs = {r};
  Value* out = g.add_value(name);
  infer_node(*g.add_node("Pointwise", ins, {out}, std::move(a), name));
  return out;
}

// x:[N,6] -> Shape -> Gather(0) ; concat with [2,3] -> Reshape(x, [N,2,3]) -> Neg -> copy -> y
// plus a dead branch: Exp(x) unused.
std::unique_ptr<Graph> shape_chain_graph() {
  auto g = std::make_unique<Graph>();
  Value* x = g->add_value("x", DataType::kFloat, Shape({Dim::sym("N"), Dim(6)}));
  g->inputs.push_back(x);
  Value* shp = g->add_value("shape");
  infer_node(*g->add_node("Shape", {x}, {shp}, std::make_unique<ShapeAttrs>(), "shape"));
  Value* idx = g->add_constant("idx", Tensor::from_vector<int64_t>(DataType::kInt64, {1}, {0}));
  Value* n = g->add_value("n");
  infer_node(*g->add_node("Gather", {shp, idx}, {n}, std::make_unique<GatherAttrs>(), "gather"));
  Value* rest = g->add_constant("rest", Tensor::from_vector<int64_t>(DataType::kInt64, {2}, {2, 3}));
  Value* target = g->add_value("target");
  infer_node(*g->add_node("Concat", {n, rest}, {target}, std::make_unique<ConcatAttrs>(), "concat"));
  Value* r = g->add_value("r");
  infer_node(*g->add_node("Reshape", {x, target}, {r}, std::make_unique<ReshapeAttrs>(), "reshape"));
  Value* neg = pointwise(*g, expr::Op::kNeg, {r}, "neg");
  Value* copy = pointwise(*g, expr::Op::kInput, {neg}, "copy");
  pointwise(*g, expr::Op::kExp, {x}, "dead_exp");
  g->outputs.push_back(copy);
  g->rename(copy, "y");
  infer_graph(*g);
  return g;
}

std::vector<std::string> ops_of(const Graph& g) {
  std::vector<std::string> v;
  for (auto& n : g.nodes()) v.emplace_back(n->op());
  return v;
}

TEST(Passes, PipelineBeforeAndAfter) {
  auto g = shape_chain_graph();
  EXPECT_EQ(ops_of(*g), (std::vector<std::string>{"Shape", "Gather", "Concat", "Reshape",
                                                  "Pointwise", "Pointwise", "Pointwise"}));
  // With the batch fixed, the shape chain folds, the copy and the dead branch go.
  g->inputs[0]->shape = Shape::from({4, 6});
  PassContext ctx;
  run_pipeline(*g, ctx);
  EXPECT_EQ(ops_of(*g), (std::vector<std::string>{"Reshape", "Pointwise"}));
  EXPECT_EQ(ctx.stats["fold_constants.folded"], 3);
  EXPECT_EQ(ctx.stats["eliminate_identity.removed"], 1);
  EXPECT_GE(ctx.stats["eliminate_dead.removed"], 1);
  ASSERT_TRUE(g->nodes()[0]->inputs[1]->is_constant());
  const Tensor& t = g->nodes()[0]->inputs[1]->data;
  EXPECT_EQ(t.numel(), 3);
  EXPECT_EQ(t.get_i64(0), 4);
  EXPECT_EQ(t.get_i64(1), 2);
  EXPECT_EQ(t.get_i64(2), 3);
  // The output keeps its name and its shape is now exact.
  EXPECT_EQ(g->outputs[0]->name, "y");
  EXPECT_EQ(g->outputs[0]->shape.str(), "[4,2,3]");
  verify_graph(*g);
}

TEST(Passes, SymbolicBatchLeavesShapeChainToRunTime) {
  auto g = shape_chain_graph();
  PassContext ctx;
  run_pipeline(*g, ctx);
  // Shape of a symbolic input cannot fold; the identity copy and the dead branch still go, and
  // the Gather of dim 0 is a Slice (GatherToSlice).
  EXPECT_EQ(ops_of(*g), (std::vector<std::string>{"Shape", "Slice", "Concat", "Reshape", "Pointwise"}));
  EXPECT_EQ(g->outputs[0]->name, "y");
}

TEST(Passes, CopyOfAnInputThatIsAnOutputIsKept) {
  Graph g;
  Value* x = g.add_value("x", DataType::kFloat, Shape::from({3}));
  g.inputs.push_back(x);
  Value* y = pointwise(g, expr::Op::kInput, {x}, "copy");
  g.outputs.push_back(y);
  infer_graph(g);
  PassContext ctx;
  run_pipeline(g, ctx);
  ASSERT_EQ(g.nodes().size(), 1u);  // removing it would make the output alias the input
}

TEST(Passes, OptimizedAndUnoptimizedPlansAgree) {
  // The demo model built at opt level 0 and 1 gives the same logits on random images, within
  // float32 rounding: folding BatchNorm into the convolutions' weights rounds differently.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0, 1);
  Tensor x(DataType::kFloat, {3, 1, 28, 28});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = u(rng);
  std::vector<Tensor> results;
  for (int level : {0, 1}) {
    BuildOptions o;
    o.device = "cpu";
    o.opt_level = level;
    o.input_shapes["image"] = {3, 1, 28, 28};
    std::shared_ptr<Plan> plan;
    Status s = Builder(o).build_from_onnx(KILN_SOURCE_DIR "/models/fashion_cnn.onnx", plan);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    std::shared_ptr<Engine> e;
    ASSERT_TRUE(Engine::create(plan, e).is_ok());
    std::unique_ptr<ExecutionContext> ctx;
    ASSERT_TRUE(e->create_context(ctx).is_ok());
    std::map<std::string, Tensor> out;
    ASSERT_TRUE(ctx->run({{"image", x}}, out).is_ok());
    results.push_back(out.at("logits"));
  }
  ASSERT_EQ(results[0].dims(), results[1].dims());
  ASSERT_GT(passtest::max_magnitude(results[0]), 0);
  passtest::count_mismatches(results[1], results[0], 1e-5, 1e-5);
}

TEST(PassHarness, ToleranceIsPerElementNotScaledByTheLargest) {
  // A sign flip of 0.001 beside 1000 is a wrong answer; a tolerance scaled by the largest element
  // (1e-5 * 1000 = 0.01) would let it pass.
  Tensor want = Tensor::from_vector<float>(DataType::kFloat, {2}, {1000.0f, 0.001f});
  Tensor got = Tensor::from_vector<float>(DataType::kFloat, {2}, {1000.0f, -0.001f});
  EXPECT_NONFATAL_FAILURE(passtest::count_mismatches(got, want, 1e-5, 1e-5), "element 1");
  EXPECT_EQ(passtest::count_mismatches(want, want, 1e-5, 1e-5), 0);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

using namespace passtest;

Tensor int64s(Dims d, std::vector<int64_t> v) {
  Tensor t(DataType::kInt64, std::move(d));
  for (size_t i = 0; i < v.size(); ++i) t.set_i64(static_cast<int64_t>(i), v[i]);
  return t;
}

TEST(GatherToSlice, ConsecutiveConstantIndicesBecomeSlices) {
  G b;
  Value* x = b.input("x", {3, 2, 5});
  auto gather = [&](int64_t axis, Tensor idx, const std::string& out) {
    auto a = std::make_unique<GatherAttrs>();
    a->axis = axis;
    b.output(b.node("Gather", {x, b.constant("idx", std::move(idx))}, std::move(a), "gather"), out);
  };
  gather(0, int64s({}, {1}), "first");          // qkv[1]: a scalar index drops the axis
  gather(2, int64s({3}, {1, 2, 3}), "run");     // a run along the last axis
  gather(1, int64s({1}, {-1}), "negative");     // from the end
  gather(-1, int64s({2}, {0, 2}), "gapped");    // not consecutive: stays a Gather
  gather(0, int64s({2}, {2, 1}), "backwards");  // decreasing: stays a Gather
  auto before = b.g->clone();
  PassContext ctx;
  run_pipeline(*b.g, ctx);
  EXPECT_EQ(ctx.stats["gather_to_slice.gathers"], 3);
  EXPECT_EQ(count_op(*b.g, "Gather"), 2);
  EXPECT_EQ(count_op(*b.g, "Slice"), 3);
  EXPECT_EQ(b.g->find_value("first")->shape.str(), "[2,5]");
  EXPECT_EQ(b.g->find_value("run")->shape.str(), "[3,2,3]");
  EXPECT_EQ(b.g->find_value("negative")->shape.str(), "[3,1,5]");
  expect_same_outputs(*before, *b.g, 0, b.rng, 0);
}

}  // namespace
}  // namespace kiln
