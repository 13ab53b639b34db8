// If, Loop and Scan in CUDA plans against the same models in CPU plans (the models of
// tests/data/make_control_flow_models.py): each control-flow step is cuda.if, cuda.loop or
// cuda.scan, its
// sub-graphs' steps run on the GPU (none on the host fallback), and outputs match the CPU's.
// Skipped, saying why, without a GPU.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>

#include "common/npy.h"
#include "gpu/gpu_compare.h"
#include "plan/plan_data.h"
#include "runtime/backend.h"
#include "unit/control_flow_models.h"

namespace kiln::testing {
namespace {

BuildOptions on(const std::string& device) {
  BuildOptions o;
  o.device = device;
  return o;
}

// Every step (sub-graph steps included) of a CUDA plan: control flow is cuda.if/loop/scan, and
// nothing runs on the host fallback.
void expect_device_steps(const std::vector<Step>& steps, const Graph& g, int& control_flow) {
  ASSERT_EQ(steps.size(), g.nodes().size());
  for (size_t i = 0; i < steps.size(); ++i) {
    const Node& n = *g.nodes()[i];
    EXPECT_FALSE(step_computes_on_host("cuda", steps[i].tactic)) << n.label();
    if (!n.subgraphs.empty()) {
      std::string op(n.op());
      for (char& ch : op) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      EXPECT_EQ(steps[i].tactic, "cuda." + op);
      ++control_flow;
      ASSERT_EQ(steps[i].bodies.size(), n.subgraphs.size());
      for (size_t k = 0; k < n.subgraphs.size(); ++k)
        expect_device_steps(steps[i].bodies[k], *n.subgraphs[k], control_flow);
    }
  }
}

void compare(const std::string& model, const std::vector<std::map<std::string, Tensor>>& runs,
             BuildOptions cpu_options = on("cpu")) {
  KILN_REQUIRE_GPU();
  BuildOptions gpu_options = cpu_options;
  gpu_options.device = "cuda";
  auto cpu_plan = build_cf(model, cpu_options);
  auto gpu_plan = build_cf(model, gpu_options);
  ASSERT_TRUE(cpu_plan && gpu_plan);
  int control_flow = 0;
  expect_device_steps(gpu_plan->data().steps, *gpu_plan->data().graph, control_flow);
  EXPECT_GT(control_flow, 0);
  // One context for every run: the second run with the same shapes is where a context would
  // capture a CUDA graph, which a plan with control flow must not do.
  std::shared_ptr<Engine> engine;
  ASSERT_TRUE(Engine::create(gpu_plan, engine).is_ok());
  std::unique_ptr<ExecutionContext> ctx;
  ASSERT_TRUE(engine->create_context(ctx).is_ok());
  for (int repeat = 0; repeat < 2; ++repeat)
    for (const auto& in : runs) {
      auto want = run_cf(cpu_plan, in);
      std::map<std::string, Tensor> got;
      Status s = ctx->run(in, got);
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      ASSERT_EQ(got.size(), want.size());
      for (auto& [name, t] : want) {
        ASSERT_TRUE(got.count(name)) << name;
        expect_close(got[name], t, 1e-4, 1e-5, model + " " + name);
      }
    }
}

TEST(ControlFlowGpu, IfBranchesOfDifferentShapes) {
  Tensor x = Tensor::from_vector<float>(DataType::kFloat, {2, 3}, {1, 2, 3, 4, 5, 6});
  BuildOptions o = on("cpu");
  o.input_shapes["x"] = {2, 3};
  compare("cf_if_shapes.onnx",
          {{{"cond", scalar_bool(true)}, {"x", x}}, {{"cond", scalar_bool(false)}, {"x", x}}}, o);
}

TEST(ControlFlowGpu, LoopStopsEarlyWithScanOutputsAndOuterValue) {
  auto in = [](int64_t m, float limit) {
    return std::map<std::string, Tensor>{
        {"M", scalar_i64(m)},
        {"limit", scalar_f32(limit)},
        {"x", Tensor::from_vector<float>(DataType::kFloat, {2}, {1, 2})},
        {"s0", Tensor::from_vector<float>(DataType::kFloat, {2}, {0, 0})}};
  };
  compare("cf_loop.onnx", {in(10, 10), in(2, 100), in(0, 100)});
}

TEST(ControlFlowGpu, ScanReverseOverAxis1) {
  std::vector<float> x(12);
  for (int i = 0; i < 12; ++i) x[i] = static_cast<float>(i + 1);
  compare("cf_scan_reverse.onnx",
          {{{"s0", Tensor::from_vector<float>(DataType::kFloat, {3}, {1, 0, -1})},
            {"x", Tensor::from_vector<float>(DataType::kFloat, {3, 4}, x)}}});
}

TEST(ControlFlowGpu, StreamingVadWithLstmInIfBranches) {
  std::vector<std::map<std::string, Tensor>> runs;
  for (int64_t sr : {16000, 8000})
    for (int i = 0; i < 2; ++i)
      runs.push_back({{"x", read_npy(cf_data(cat("cf_vad_x", i, ".npy")))},
                      {"sr", scalar_i64(sr)},
                      {"h", random_values(DataType::kFloat, {1, 1, 16}, 7 + i)},
                      {"c", random_values(DataType::kFloat, {1, 1, 16}, 9 + i)}});
  compare("cf_vad.onnx", runs);
}

}  // namespace
}  // namespace kiln::testing
