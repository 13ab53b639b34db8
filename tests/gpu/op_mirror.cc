// Linked into kiln_op_tests: with KILN_TEST_DEVICE=cuda every per-op case also runs its node in a
// CUDA plan and compares the outputs with the reference compute (float32 to 1e-4 relative,
// float16/bfloat16 to 1e-2, integers exactly). Without a GPU the whole run is skipped, saying why.
#include <cmath>
#include <cstdlib>
#include <string>

#include "build/build_plan.h"
#include "gpu/gpu_compare.h"
#include "kiln/engine.h"

namespace kiln::testing {
namespace {

double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = std::fabs(t.get_f64(i));
    if (std::isfinite(v)) m = std::max(m, v);
  }
  return m;
}

void mirror(std::unique_ptr<Graph> g, const std::vector<NodeInput>& inputs,
            const std::vector<Tensor>& reference) {
  std::string label = g->nodes().empty() ? "?" : g->nodes()[0]->label();
  BuildOptions o;
  o.device = "cuda";
  o.opt_level = 0;
  std::shared_ptr<Plan> plan;
  std::shared_ptr<Engine> engine;
  std::unique_ptr<ExecutionContext> ctx;
  std::map<std::string, Tensor> in, out;
  try {
    plan = PlanAccess::make(build_plan(std::move(g), o));
  } catch (const Error& e) {
    ADD_FAILURE() << "building " << label << " for cuda: " << e.to_status().to_string();
    return;
  }
  Status st = Engine::create(plan, engine);
  if (st) st = engine->create_context(ctx);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].absent && !inputs[i].constant) in["in" + std::to_string(i)] = inputs[i].value;
  if (st) st = ctx->run(in, out);
  std::string tactic = plan->data().steps.empty() ? "" : plan->data().steps[0].tactic;
  ASSERT_TRUE(st.is_ok()) << label << " on cuda (" << tactic << "): " << st.to_string();
  for (size_t k = 0; k < reference.size(); ++k) {
    const Tensor& want = reference[k];
    auto it = out.find("out" + std::to_string(k));
    ASSERT_TRUE(it != out.end()) << label << ": no output " << k << " on cuda";
    double scale = max_abs(want);
    bool low = want.dtype() == DataType::kFloat16 || want.dtype() == DataType::kBFloat16;
    double rtol = dtype_is_float(want.dtype()) ? (low ? 1e-2 : 1e-4) : 0;
    double atol = dtype_is_float(want.dtype()) ? (low ? 1e-2 : 1e-5) * (1 + scale) : 0;
    expect_close(it->second, want, rtol, atol,
                 label + " output " + std::to_string(k) + " on cuda (" + tactic + ")");
  }
}

class MirrorEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* d = std::getenv("KILN_TEST_DEVICE");
    if (!d || std::string(d) != "cuda") return;
    if (!gpu_available()) GTEST_SKIP() << "no GPU: " << cuda_unavailable_reason();
    device_mirror() = &mirror;
  }
};

::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new MirrorEnvironment);

}  // namespace
}  // namespace kiln::testing
