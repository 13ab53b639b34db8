// Linked into kiln_op_tests: with KILN_TEST_DEVICE=cuda every per-op case also runs its node in a
// CUDA plan and compares the outputs with the reference compute, element by element
// (|got - want| <= atol + rtol * |want|: float32/float64 rtol 1e-4, atol 1e-5; float16/bfloat16
// 1e-2 and 1e-2; integers exactly). The node must run on a device tactic: a step on the host
// fallback would compare the reference with itself. A case whose op has no device tactic at all
// (data-dependent output sizes: NonZero, Unique...) is reported as skipped, saying so; a case that
// a device tactic of its op refuses fails, naming each tactic's reason.
//
// This file is kiln_op_tests' main(). Each ctest entry runs one case, and ctest counts a case as
// skipped when the output holds GoogleTest's "[  SKIPPED ]": in the cuda mode, a case that ran
// nothing on the GPU (no GPU here; only host-fallback ops; no node run at all, e.g. a test of
// shape inference or of an error) prints that line, so it is never counted as a GPU pass.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "builder/build_plan.h"
#include "runtime/backend.h"
#include "gpu/gpu_compare.h"
#include "kiln/engine.h"

namespace kiln::testing {
namespace {

// Every tactic of the CUDA backend that could run `op` on the device, with why it refuses `n`.
std::string device_refusals(const Node& n, bool& any_device_tactic) {
  const Backend* cuda = find_backend("cuda");
  std::string why;
  any_device_tactic = false;
  for (const Tactic* t : cuda->tactics()) {
    if (t->computes_on_host() || t->op() != n.op()) continue;
    any_device_tactic = true;
    Status s = t->supports(n);
    why += cat("\n  ", t->id(), ": ", s.is_ok() ? std::string("supports it") : s.message());
  }
  return why;
}

// What the current case mirrored: nodes compared on the device, and the ops that only the host
// fallback runs.
struct MirrorCounts {
  int on_device = 0;
  std::set<std::string> host_only;
};
MirrorCounts& counts() {
  static MirrorCounts c;
  return c;
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
  for (const Step& step : plan->data().steps) {
    if (!step_computes_on_host("cuda", step.tactic)) continue;
    const Node& n = *plan->data().graph->nodes()[step.node];
    bool any = false;
    std::string why = device_refusals(n, any);
    if (!any) {
      counts().host_only.insert(std::string(n.op()));
      return;
    }
    ADD_FAILURE() << n.label() << " ran on the host fallback, though " << n.op()
                  << " has device tactics on cuda:" << why;
    return;
  }
  ASSERT_TRUE(st.is_ok()) << label << " on cuda (" << tactic << "): " << st.to_string();
  ++counts().on_device;
  for (size_t k = 0; k < reference.size(); ++k) {
    const Tensor& want = reference[k];
    auto it = out.find("out" + std::to_string(k));
    ASSERT_TRUE(it != out.end()) << label << ": no output " << k << " on cuda";
    bool low = want.dtype() == DataType::kFloat16 || want.dtype() == DataType::kBFloat16;
    double rtol = dtype_is_float(want.dtype()) ? (low ? 1e-2 : 1e-4) : 0;
    double atol = dtype_is_float(want.dtype()) ? (low ? 1e-2 : 1e-5) : 0;
    expect_close(it->second, want, rtol, atol,
                 label + " output " + std::to_string(k) + " on cuda (" + tactic + ")");
  }
}

// Reports, per case, whether anything ran on the GPU; and a summary at the end of the run.
class MirrorListener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override { counts() = MirrorCounts(); }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    const MirrorCounts& c = counts();
    if (!info.result()->Passed()) return;
    if (c.on_device > 0) {
      ++device_cases_;
      return;
    }
    std::string why = "no node of this case ran (it checks inference or errors only)";
    if (!c.host_only.empty()) {
      why = "its ops have only the host fallback on cuda:";
      for (const auto& op : c.host_only) why += " " + op;
      host_only_.insert(c.host_only.begin(), c.host_only.end());
    }
    ++skipped_;
    std::printf("[  SKIPPED ] %s.%s on cuda: nothing was compared on the GPU: %s\n",
                info.test_suite_name(), info.name(), why.c_str());
  }
  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    std::string ops;
    for (const auto& op : host_only_) ops += " " + op;
    std::printf("op mirror on cuda: %d cases compared on the GPU, %d cases skipped (nothing on "
                "the GPU; host-fallback-only ops:%s)\n",
                device_cases_, skipped_, ops.empty() ? " none" : ops.c_str());
  }

 private:
  int device_cases_ = 0, skipped_ = 0;
  std::set<std::string> host_only_;
};

}  // namespace
}  // namespace kiln::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* d = std::getenv("KILN_TEST_DEVICE");
  if (d && std::string(d) == "cuda") {
    if (!kiln::testing::gpu_available()) {
      std::printf("[  SKIPPED ] no GPU: %s: the op cases' GPU mirror cannot run here\n",
                  kiln::cuda_unavailable_reason().c_str());
      return 0;
    }
    kiln::testing::device_mirror() = &kiln::testing::mirror;
    ::testing::UnitTest::GetInstance()->listeners().Append(new kiln::testing::MirrorListener);
  }
  return RUN_ALL_TESTS();
}
