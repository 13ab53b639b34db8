// The example plugins on the GPU (cuda.plugin, examples/plugins/kernels.cu) against the same
// models on the CPU (cpu.plugin) and the NumPy reference: the decoder within float32 rounding,
// NMS exactly in counts and classes. Also a CUDA-graph run (the plugins say they are capturable)
// and a round trip of the GPU plan. Skips without a GPU.
#include <cstring>

#include "common/npy.h"
#include "gpu/gpu_compare.h"
#include "kiln/kiln.h"

namespace kiln {
namespace {

const std::string kData = std::string(KILN_SOURCE_DIR) + "/tests/data/";

std::map<std::string, Tensor> run_on(const std::string& device, const std::string& model,
                                     const std::map<std::string, Tensor>& in, int runs = 1) {
  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = device}).build_from_onnx(kData + model, plan);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  std::map<std::string, Tensor> out;
  if (!plan) return out;
  if (device == "cuda") {
    for (const auto& st : plan->steps())
      if (st.op == "Plugin") EXPECT_EQ(st.tactic, "cuda.plugin");
    std::shared_ptr<Plan> loaded;
    EXPECT_TRUE(Plan::deserialize(plan->serialize(), loaded).is_ok());
    plan = loaded;
  }
  std::shared_ptr<Engine> engine;
  EXPECT_TRUE(Engine::create(plan, engine).is_ok());
  std::unique_ptr<ExecutionContext> ctx;
  EXPECT_TRUE(engine->create_context(ctx).is_ok());
  for (int r = 0; r < runs; ++r) {  // the second run with the same buffers replays a CUDA graph
    s = ctx->run(in, out);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  }
  return out;
}

void compare(const std::string& model, const std::string& input, const std::vector<std::string>& names) {
  ASSERT_TRUE(load_plugin_library(KILN_EXAMPLE_PLUGINS).is_ok());
  std::map<std::string, Tensor> in{{input, read_npy(kData + model + "_input.npy")}};
  auto cpu = run_on("cpu", model + ".onnx", in);
  auto gpu = run_on("cuda", model + ".onnx", in, 3);
  for (const auto& name : names) {
    const Tensor& g = gpu.at(name);
    const Tensor& c = cpu.at(name);
    const Tensor want = read_npy(kData + model + "_" + name + ".npy");
    ASSERT_EQ(g.dims(), want.dims()) << name;
    ASSERT_EQ(g.dtype(), want.dtype()) << name;
    for (int64_t i = 0; i < want.numel(); ++i) {
      if (dtype_is_float(want.dtype())) {
        EXPECT_NEAR(g.get_f64(i), want.get_f64(i), 1e-4 + 1e-5 * std::fabs(want.get_f64(i))) << name << " " << i;
        EXPECT_NEAR(g.get_f64(i), c.get_f64(i), 1e-4 + 1e-5 * std::fabs(c.get_f64(i))) << name << " " << i;
      } else {
        EXPECT_EQ(g.get_i64(i), want.get_i64(i)) << name << " " << i;
      }
    }
  }
}

TEST(PluginGpu, DetectorMatchesCpuAndNumpy) {
  KILN_REQUIRE_GPU();
  compare("plugin_detect", "head",
          {"boxes", "scores", "num_detections", "det_boxes", "det_scores", "det_classes"});
}

TEST(PluginGpu, RowsMatchCpuAndNumpy) {
  KILN_REQUIRE_GPU();
  compare("plugin_rows", "rows", {"num_detections", "det_boxes", "det_scores", "det_classes"});
}

}  // namespace
}  // namespace kiln
