// If, Loop and Scan (ops/control_flow.h) on the CPU, on the models of
// tests/data/make_control_flow_models.py: branches of different shapes, a Loop stopped early by
// its condition with scan outputs and an outer-scope value, a reverse Scan over axis 1, plan
// save/load round trips, sequence-typed control flow refused at import, and a streaming
// voice-activity detector whose If branches hold LSTMs (against torch's outputs).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "common/npy.h"
#include "onnx/importer.h"
#include "onnx/model.h"
#include "plan/plan_data.h"
#include "unit/control_flow_models.h"

namespace kiln::testing {
namespace {

using ::testing::HasSubstr;

BuildOptions cpu() {
  BuildOptions o;
  o.device = "cpu";
  return o;
}

std::vector<float> floats(const Tensor& t) {
  std::vector<float> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = static_cast<float>(t.get_f64(i));
  return v;
}

TEST(ControlFlow, IfBranchesOfDifferentShapes) {
  BuildOptions o = cpu();
  o.input_shapes["x"] = {2, 3};
  auto plan = build_cf("cf_if_shapes.onnx", o);
  ASSERT_TRUE(plan);
  // The branches give [2, 3] and [4, 3]: the output's first dim is known only at run time.
  ASSERT_EQ(plan->outputs().size(), 1u);
  EXPECT_EQ(plan->outputs()[0].dims, (std::vector<int64_t>{-1, 3}));
  Tensor x = Tensor::from_vector<float>(DataType::kFloat, {2, 3}, {1, 2, 3, 4, 5, 6});
  auto t = run_cf(plan, {{"cond", scalar_bool(true)}, {"x", x}});
  ASSERT_TRUE(t.count("y"));
  EXPECT_EQ(t["y"].dims(), (Dims{2, 3}));
  EXPECT_EQ(floats(t["y"]), (std::vector<float>{2, 3, 4, 5, 6, 7}));
  auto e = run_cf(plan, {{"cond", scalar_bool(false)}, {"x", x}});
  ASSERT_TRUE(e.count("y"));
  EXPECT_EQ(e["y"].dims(), (Dims{4, 3}));
  EXPECT_EQ(floats(e["y"]), (std::vector<float>{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}));
}

// s_{i+1} = s_i + x * (i + 1) while sum(s) < limit, at most M times.
struct LoopWant {
  std::vector<float> s;
  std::vector<std::vector<float>> rows;
};
LoopWant loop_want(int64_t m, float limit, std::vector<float> x) {
  LoopWant w{{0, 0}, {}};
  for (int64_t i = 0; i < m; ++i) {
    for (int k = 0; k < 2; ++k) w.s[k] += x[k] * static_cast<float>(i + 1);
    w.rows.push_back(w.s);
    if (!(w.s[0] + w.s[1] < limit)) break;
  }
  return w;
}

std::map<std::string, Tensor> loop_inputs(int64_t m, float limit, std::vector<float> x) {
  return {{"M", scalar_i64(m)},
          {"limit", scalar_f32(limit)},
          {"x", Tensor::from_vector<float>(DataType::kFloat, {2}, x)},
          {"s0", Tensor::from_vector<float>(DataType::kFloat, {2}, {0, 0})}};
}

void expect_loop(std::map<std::string, Tensor>& got, const LoopWant& w) {
  ASSERT_TRUE(got.count("s") && got.count("s_all") && got.count("i_all"));
  EXPECT_EQ(floats(got["s"]), w.s);
  const auto n = static_cast<int64_t>(w.rows.size());
  ASSERT_EQ(got["s_all"].dims(), (Dims{n, 2}));
  ASSERT_EQ(got["i_all"].dims(), (Dims{n}));
  std::vector<float> flat;
  for (auto& r : w.rows) flat.insert(flat.end(), r.begin(), r.end());
  EXPECT_EQ(floats(got["s_all"]), flat);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(got["i_all"].get_i64(i), i);
}

TEST(ControlFlow, LoopConditionStopsEarlyWithScanOutputs) {
  auto plan = build_cf("cf_loop.onnx", cpu());
  ASSERT_TRUE(plan);
  // sums 3, 9, 18: the condition stops the loop after 3 of 10 iterations.
  auto got = run_cf(plan, loop_inputs(10, 10, {1, 2}));
  LoopWant w = loop_want(10, 10, {1, 2});
  ASSERT_EQ(w.rows.size(), 3u);
  expect_loop(got, w);
  // The trip count stops it first.
  got = run_cf(plan, loop_inputs(2, 100, {1, 2}));
  expect_loop(got, loop_want(2, 100, {1, 2}));
  // No iteration at all: empty scan outputs, the initial value carried through.
  got = run_cf(plan, loop_inputs(0, 100, {1, 2}));
  expect_loop(got, loop_want(0, 100, {1, 2}));
}

TEST(ControlFlow, LoopReadsAnOuterScopeValue) {
  // The body reads x and limit from the graph around it: the importer makes them explicit
  // inputs of the Loop node and of its body.
  onnx::ModelProto m = onnx::read_model(cf_data("cf_loop.onnx"));
  auto g = onnx::import_model_or_throw(m);
  const Node* loop = nullptr;
  for (auto& n : g->nodes())
    if (n->op() == "Loop") loop = n.get();
  ASSERT_NE(loop, nullptr);
  ASSERT_EQ(loop->subgraphs.size(), 1u);
  std::vector<std::string> names;
  for (const Value* v : loop->inputs) names.push_back(v ? v->name : "");
  EXPECT_THAT(names, ::testing::Contains("x"));
  EXPECT_THAT(names, ::testing::Contains("limit"));
  EXPECT_EQ(loop->subgraphs[0]->inputs.size(), loop->inputs.size());
  // A different x changes the result: the capture is live, not a copy taken at import.
  auto plan = build_cf("cf_loop.onnx", cpu());
  auto got = run_cf(plan, loop_inputs(10, 50, {3, -1}));
  expect_loop(got, loop_want(10, 50, {3, -1}));
}

TEST(ControlFlow, ScanReverseOverAxis1) {
  auto plan = build_cf("cf_scan_reverse.onnx", cpu());
  ASSERT_TRUE(plan);
  std::vector<float> x(12);
  for (int i = 0; i < 12; ++i) x[i] = static_cast<float>(i + 1);
  auto got = run_cf(plan, {{"s0", Tensor::from_vector<float>(DataType::kFloat, {3}, {1, 0, -1})},
                           {"x", Tensor::from_vector<float>(DataType::kFloat, {3, 4}, x)}});
  ASSERT_TRUE(got.count("s") && got.count("y"));
  // Iteration t reads column 3 - t; output column t holds (s after it) * that column.
  std::vector<float> s = {1, 0, -1}, y(12);
  for (int t = 0; t < 4; ++t)
    for (int r = 0; r < 3; ++r) {
      float col = x[r * 4 + (3 - t)];
      s[r] += col;
      y[r * 4 + t] = s[r] * col;
    }
  EXPECT_EQ(floats(got["s"]), s);
  ASSERT_EQ(got["y"].dims(), (Dims{3, 4}));
  EXPECT_EQ(floats(got["y"]), y);
}

TEST(ControlFlow, PlanRoundTripRunsTheSame) {
  for (const char* model : {"cf_loop.onnx", "cf_vad.onnx"}) {
    SCOPED_TRACE(model);
    auto plan = build_cf(model, cpu());
    ASSERT_TRUE(plan);
    std::string bytes = plan->serialize();
    std::shared_ptr<Plan> loaded;
    Status s = Plan::deserialize(bytes, loaded);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_EQ(loaded->serialize(), bytes);
    ASSERT_EQ(loaded->data().steps.size(), plan->data().steps.size());
    size_t bodies = 0;
    for (const Step& st : loaded->data().steps) bodies += st.bodies.size();
    EXPECT_GT(bodies, 0u);
    std::map<std::string, Tensor> in;
    if (std::string(model) == "cf_loop.onnx") {
      in = loop_inputs(10, 10, {1, 2});
    } else {
      in = {{"x", read_npy(cf_data("cf_vad_x0.npy"))},
            {"sr", scalar_i64(8000)},
            {"h", Tensor(DataType::kFloat, {1, 1, 16})},
            {"c", Tensor(DataType::kFloat, {1, 1, 16})}};
    }
    auto a = run_cf(plan, in);
    auto b = run_cf(loaded, in);
    ASSERT_EQ(a.size(), b.size());
    for (auto& [name, t] : a) {
      ASSERT_TRUE(b.count(name)) << name;
      ASSERT_EQ(t.dims(), b[name].dims()) << name;
      ASSERT_EQ(t.nbytes(), b[name].nbytes());
      EXPECT_EQ(std::memcmp(t.raw(), b[name].raw(), t.nbytes()), 0) << name;
    }
  }
}

TEST(ControlFlow, OlderPlanFormatAsksForARebuild) {
  auto plan = build_cf("cf_if_shapes.onnx", cpu());
  ASSERT_TRUE(plan);
  std::string bytes = plan->serialize();
  bytes[8] = 6;   // the format version before sub-graphs
  std::shared_ptr<Plan> loaded;
  Status s = Plan::deserialize(bytes, loaded);
  EXPECT_EQ(s.code(), StatusCode::kIncompatible);
  EXPECT_THAT(s.message(), HasSubstr("rebuild the plan"));
}

TEST(ControlFlow, SequenceTypedControlFlowIsACleanImportError) {
  const std::string dir = KILN_ONNX_TESTDATA;
  for (const char* t : {"test_if_seq", "test_loop13_seq"}) {
    SCOPED_TRACE(t);
    std::string path = dir + "/" + t + "/model.onnx";
    if (!std::ifstream(path)) GTEST_SKIP() << "no ONNX test data at " << dir;
    onnx::ImportResult r = onnx::import_model(onnx::read_model(path));
    ASSERT_FALSE(r.problems.empty());
    std::string all = onnx::format_problems(r.problems);
    EXPECT_THAT(all, ::testing::AnyOf(HasSubstr("sequence"), HasSubstr("Sequence")));
    EXPECT_THAT(all, HasSubstr("deliberately unsupported"));
    for (const auto& p : r.problems) EXPECT_TRUE(p.skipped) << p.reason;
  }
}

// The streaming voice-activity detector: If (sr == 16000) picks one of two LSTMs; the state
// (h, c) goes out after one chunk and back in with the next. Against torch (float32).
void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.dims(), want.dims()) << what;
  for (int64_t i = 0; i < want.numel(); ++i)
    EXPECT_NEAR(got.get_f64(i), want.get_f64(i), 1e-5 + 1e-4 * std::fabs(want.get_f64(i)))
        << what << " element " << i;
}

TEST(ControlFlow, StreamingVadWithLstmInIfBranches) {
  auto plan = build_cf("cf_vad.onnx", cpu());
  ASSERT_TRUE(plan);
  for (auto [sr, name] : {std::pair<int64_t, const char*>{16000, "16k"}, {8000, "8k"}}) {
    SCOPED_TRACE(name);
    Tensor h(DataType::kFloat, {1, 1, 16}), c(DataType::kFloat, {1, 1, 16});
    for (int i = 0; i < 2; ++i) {
      auto out = run_cf(plan, {{"x", read_npy(cf_data(cat("cf_vad_x", i, ".npy")))},
                               {"sr", scalar_i64(sr)},
                               {"h", h},
                               {"c", c}});
      ASSERT_TRUE(out.count("prob") && out.count("h_out") && out.count("c_out"));
      std::string p = cat("cf_vad_", name, "_");
      expect_close(out["prob"], read_npy(cf_data(cat(p, "prob", i, ".npy"))), "prob");
      expect_close(out["h_out"], read_npy(cf_data(cat(p, "h", i, ".npy"))), "h");
      expect_close(out["c_out"], read_npy(cf_data(cat(p, "c", i, ".npy"))), "c");
      h = out["h_out"];
      c = out["c_out"];
    }
  }
}

}  // namespace
}  // namespace kiln::testing
