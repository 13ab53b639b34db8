// Plans (round trip, corruption, incompatibility) and the runtime (input validation, several
// contexts on several threads), on networks defined through the public Network API.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "kiln/kiln.h"
#include "plan/plan_data.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

// y = relu(x * w + b) - x, with w and b constants broadcast over [batch, 5].
std::shared_ptr<Plan> small_plan() {
  Network net;
  auto x = net.add_input("x", DataType::kFloat, {-1, 5});
  auto w = net.add_constant(Tensor::from_vector<float>(DataType::kFloat, {5}, {1, -2, 3, -4, 5}));
  auto b = net.add_constant(Tensor::from_vector<float>(DataType::kFloat, {1, 5}, {0.5f, 0.5f, -1, 0, 2}));
  auto y = net.add_elementwise(net.add_elementwise(x, w, ElementwiseOp::kMul), b, ElementwiseOp::kAdd);
  y = net.add_activation(y, Activation::kRelu);
  y = net.add_elementwise(y, x, ElementwiseOp::kSub);
  net.mark_output(y, "y");
  EXPECT_EQ(net.first_error(), "");
  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = "cpu"}).build(net, plan);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return plan;
}

std::vector<float> expected(const std::vector<float>& x) {
  const float w[] = {1, -2, 3, -4, 5}, b[] = {0.5f, 0.5f, -1, 0, 2};
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    float v = x[i] * w[i % 5] + b[i % 5];
    y[i] = (v > 0 ? v : 0) - x[i];
  }
  return y;
}

Tensor random_input(int64_t batch, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-3, 3);
  Tensor t(DataType::kFloat, {batch, 5});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

std::map<std::string, Tensor> run_plan(std::shared_ptr<const Plan> plan, const Tensor& x) {
  std::shared_ptr<Engine> e;
  EXPECT_TRUE(Engine::create(plan, e).is_ok());
  std::unique_ptr<ExecutionContext> ctx;
  EXPECT_TRUE(e->create_context(ctx).is_ok());
  std::map<std::string, Tensor> out;
  Status s = ctx->run({{"x", x}}, out);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

void expect_matches(const Tensor& y, const Tensor& x) {
  std::vector<float> xv(x.data<float>(), x.data<float>() + x.numel());
  auto want = expected(xv);
  ASSERT_EQ(y.numel(), x.numel());
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_FLOAT_EQ(y.data<float>()[i], want[i]) << i;
}

TEST(Plan, RoundTripRunsTheSame) {
  auto plan = small_plan();
  std::shared_ptr<Plan> loaded;
  ASSERT_TRUE(Plan::deserialize(plan->serialize(), loaded).is_ok());
  EXPECT_EQ(loaded->num_steps(), plan->num_steps());
  EXPECT_EQ(loaded->inputs()[0].str(), "x: float32[x_dim0,5]");
  Tensor x = random_input(7, 1);
  expect_matches(run_plan(loaded, x).at("y"), x);
  // Serialising the loaded plan again gives the same bytes.
  EXPECT_EQ(loaded->serialize(), plan->serialize());
}

TEST(Plan, SaveAndLoadFile) {
  auto plan = small_plan();
  std::string path = ::testing::TempDir() + "/small.plan";
  ASSERT_TRUE(plan->save(path).is_ok());
  std::shared_ptr<Plan> loaded;
  Status s = Plan::load(path, loaded);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  Tensor x = random_input(3, 2);
  expect_matches(run_plan(loaded, x).at("y"), x);
}

TEST(Plan, BuildsAreDeterministic) {
  // The same model and options give byte-identical plans, build after build (and at every opt
  // level and precision): what a plan holds depends on nothing but its inputs.
  for (int level : {0, 1})
    for (bool fp16 : {false, true}) {
      SCOPED_TRACE("opt level " + std::to_string(level) + (fp16 ? ", fp16" : ""));
      std::string first;
      for (int build = 0; build < 2; ++build) {
        BuildOptions o;
        o.device = "cpu";
        o.opt_level = level;
        o.fp16 = fp16;
        o.input_shapes["image"] = {3, 1, 28, 28};
        std::shared_ptr<Plan> plan;
        Status s = Builder(o).build_from_onnx(KILN_SOURCE_DIR "/models/fashion_cnn.onnx", plan);
        ASSERT_TRUE(s.is_ok()) << s.to_string();
        std::string bytes = plan->serialize();
        if (build == 0) first = bytes;
        else EXPECT_TRUE(bytes == first) << "two builds differ";
      }
      EXPECT_GT(first.size(), 1000u);
    }
}

TEST(Plan, EveryByteFlipIsDetected) {
  std::string bytes = small_plan()->serialize();
  size_t undetected = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x5a;
    std::shared_ptr<Plan> p;
    Status s = Plan::deserialize(bad, p);
    if (s.is_ok()) {
      // Only padding between sections is outside the checksums. A flip there carries no
      // information: the plan read is the original, byte for byte once written again. A flip
      // anywhere else that goes unnoticed (checksums switched off, a field left out of one)
      // changes what was read and fails here.
      ++undetected;
      EXPECT_EQ(p->serialize(), bytes) << "byte " << i << " was flipped undetected and changed the plan";
      continue;
    }
    EXPECT_TRUE(s.code() == StatusCode::kCorruptPlan || s.code() == StatusCode::kIncompatible)
        << i << ": " << s.to_string();
  }
  EXPECT_LT(undetected, bytes.size() / 4) << "most flips must be detected (only padding is not)";
}

TEST(Plan, TruncationIsACleanError) {
  std::string bytes = small_plan()->serialize();
  for (size_t n = 0; n < bytes.size(); n += 7) {
    std::shared_ptr<Plan> p;
    Status s = Plan::deserialize(bytes.substr(0, n), p);
    ASSERT_FALSE(s.is_ok()) << n;
    EXPECT_EQ(s.code(), StatusCode::kCorruptPlan) << s.to_string();
  }
  std::shared_ptr<Plan> p;
  Status s = Plan::deserialize(bytes.substr(0, bytes.size() - 1), p);
  EXPECT_THAT(s.message(), HasSubstr("truncated"));
}

TEST(Plan, NotAPlanAndWrongVersion) {
  std::shared_ptr<Plan> p;
  Status s = Plan::deserialize("this is a text file, not a plan", p);
  EXPECT_EQ(s.code(), StatusCode::kCorruptPlan);
  EXPECT_THAT(s.message(), HasSubstr("not a kiln plan"));
  std::string bytes = small_plan()->serialize();
  bytes[8] = 99;  // format version
  s = Plan::deserialize(bytes, p);
  EXPECT_EQ(s.code(), StatusCode::kIncompatible);
  EXPECT_THAT(s.message(), HasSubstr("format version 99"));
  s = Plan::load("/nonexistent/dir/x.plan", p);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_THAT(s.message(), HasSubstr("/nonexistent/dir/x.plan"));
}

// `plan` edited by `edit`, serialised with valid checksums, read back and made an engine of:
// the first error on that way.
template <class Edit>
Status forge_and_load(const Plan& plan, Edit edit) {
  PlanData d;
  d.info = plan.data().info;
  d.graph = plan.data().graph->clone();
  d.steps = plan.data().steps;
  edit(d);
  std::shared_ptr<Plan> p;
  Status s = Plan::deserialize(serialize_plan(d), p);
  if (!s) return s;
  std::shared_ptr<Engine> e;
  return Engine::create(p, e);
}

TEST(Plan, ForeignDeviceOrTacticIsRefused) {
  auto plan = small_plan();
  // Re-serialise the plan as if a CUDA build had made it, and with an unknown tactic.
  auto forge = [&](auto edit) { return forge_and_load(*plan, edit); };
  Status s = forge([](PlanData& d) { d.info.device = "tpu"; });
  EXPECT_EQ(s.code(), StatusCode::kIncompatible);
  EXPECT_THAT(s.message(), HasSubstr("targets device 'tpu'"));
  s = forge([](PlanData& d) { d.steps[0].tactic = "cpu.does_not_exist"; });
  EXPECT_EQ(s.code(), StatusCode::kIncompatible);
  EXPECT_THAT(s.message(), HasSubstr("cpu.does_not_exist"));
}

// Plans with valid checksums but inconsistent steps (issue 16): a step given a tactic of another
// op (it would read the node's attributes as its own op's: a segfault once), and repeated or
// permuted step indices, are refused with a clear error.
TEST(Plan, StepsThatDoNotFitTheirNodesAreRefused) {
  BuildOptions o;
  o.device = "cpu";
  o.input_shapes["image"] = {1, 1, 28, 28};
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(Builder(o).build_from_onnx(std::string(KILN_SOURCE_DIR) + "/models/fashion_cnn.onnx", plan).is_ok());
  const auto& nodes = plan->data().graph->nodes();
  size_t pool = nodes.size(), matmul = nodes.size();
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i]->op() == "Pool" && pool == nodes.size()) pool = i;
    if (nodes[i]->op() == "MatMul") matmul = i;
  }
  ASSERT_LT(pool, nodes.size());
  ASSERT_LT(matmul, nodes.size());
  auto reload = [&](auto edit) { return forge_and_load(*plan, edit); };
  Status s = reload([&](PlanData& d) { d.steps[pool].tactic = d.steps[matmul].tactic; });
  EXPECT_EQ(s.code(), StatusCode::kCorruptPlan);
  EXPECT_THAT(s.message(), HasSubstr("implements MatMul, not Pool"));
  s = reload([&](PlanData& d) { std::swap(d.steps[0], d.steps[1]); });
  EXPECT_EQ(s.code(), StatusCode::kCorruptPlan);
  EXPECT_THAT(s.message(), HasSubstr("step 0 names node 1"));
  s = reload([&](PlanData& d) { d.steps[1].node = 0; });
  EXPECT_EQ(s.code(), StatusCode::kCorruptPlan);
}

TEST(Runtime, WrongInputsAreClearErrors) {
  auto plan = small_plan();
  std::shared_ptr<Engine> e;
  ASSERT_TRUE(Engine::create(plan, e).is_ok());
  std::unique_ptr<ExecutionContext> ctx;
  ASSERT_TRUE(e->create_context(ctx).is_ok());
  std::map<std::string, Tensor> out;
  Status s = ctx->run({{"X", random_input(2, 0)}}, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("unknown input 'X'"));
  EXPECT_THAT(s.message(), HasSubstr("'x'"));
  s = ctx->run({}, out);
  EXPECT_THAT(s.message(), HasSubstr("input 'x' is missing"));
  s = ctx->run({{"x", Tensor(DataType::kInt32, {2, 5})}}, out);
  EXPECT_THAT(s.message(), HasSubstr("has type int32 but the engine expects float32"));
  s = ctx->run({{"x", Tensor(DataType::kFloat, {10})}}, out);
  EXPECT_THAT(s.message(), HasSubstr("has shape [10] but the engine expects [x_dim0,5]"));
  s = ctx->run({{"x", Tensor(DataType::kFloat, {2, 6})}}, out);
  EXPECT_THAT(s.message(), HasSubstr("(dimension 1)"));
  // After errors the context still works.
  Tensor x = random_input(4, 3);
  ASSERT_TRUE(ctx->run({{"x", x}}, out).is_ok());
  expect_matches(out.at("y"), x);
}

TEST(Runtime, ManyContextsOnManyThreads) {
  auto plan = small_plan();
  std::shared_ptr<Engine> e;
  ASSERT_TRUE(Engine::create(plan, e).is_ok());
  constexpr int kThreads = 4;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      std::unique_ptr<ExecutionContext> ctx;
      if (!e->create_context(ctx).is_ok()) { failures[t] = "context"; return; }
      for (int it = 0; it < 50; ++it) {
        Tensor x = random_input(1 + (t * 7 + it) % 9, t * 1000 + it);  // batch varies per run
        std::map<std::string, Tensor> out;
        if (!ctx->run({{"x", x}}, out).is_ok()) { failures[t] = "run"; return; }
        auto want = expected(std::vector<float>(x.data<float>(), x.data<float>() + x.numel()));
        for (int64_t i = 0; i < x.numel(); ++i)
          if (out.at("y").data<float>()[i] != want[i]) { failures[t] = "mismatch"; return; }
      }
    });
  for (auto& t : ts) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
}

TEST(Network, MistakesAreReportedByBuild) {
  Network net;
  auto x = net.add_input("x", DataType::kFloat, {2, 3});
  auto y = net.add_input("y", DataType::kFloat, {4, 5});
  auto z = net.add_elementwise(x, y, ElementwiseOp::kAdd);  // cannot broadcast
  net.mark_output(z, "z");
  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = "cpu"}).build(net, plan);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("cannot broadcast"));
  Network empty;
  s = Builder(BuildOptions{.device = "cpu"}).build(empty, plan);
  EXPECT_THAT(s.message(), HasSubstr("no outputs"));
}

TEST(Builder, UnknownDeviceAndBadShapes) {
  Network net;
  auto x = net.add_input("x", DataType::kFloat, {-1, 5});
  net.mark_output(net.add_activation(x, Activation::kRelu), "y");
  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = "tpu"}).build(net, plan);
  EXPECT_THAT(s.message(), HasSubstr("unknown device 'tpu'"));
  BuildOptions o;
  o.device = "cpu";
  o.input_shapes["nope"] = {1, 5};
  s = Builder(o).build(net, plan);
  EXPECT_THAT(s.message(), HasSubstr("names input 'nope'"));
  o.input_shapes = {{"x", {1, 2, 3}}};
  s = Builder(o).build(net, plan);
  EXPECT_THAT(s.message(), HasSubstr("has rank 2"));
  o.input_shapes = {{"x", {3, 5}}};
  ASSERT_TRUE(Builder(o).build(net, plan).is_ok());
  EXPECT_EQ(plan->inputs()[0].str(), "x: float32[3,5]");
}

}  // namespace
}  // namespace kiln
