#include "gpu/gpu_compare.h"

#include <cmath>
#include <random>

#include "builder/build_plan.h"
#include "kiln/engine.h"

namespace kiln::testing {

Tensor random_values(DataType t, Dims d, uint32_t seed, double lo, double hi) {
  std::mt19937_64 rng(seed);
  Tensor x(t, std::move(d));
  if (dtype_is_float(t)) {
    std::uniform_real_distribution<double> u(lo, hi);
    for (int64_t i = 0; i < x.numel(); ++i) x.set_f64(i, u(rng));
  } else {
    std::uniform_int_distribution<int64_t> u(static_cast<int64_t>(lo), static_cast<int64_t>(hi));
    for (int64_t i = 0; i < x.numel(); ++i) x.set_i64(i, u(rng));
  }
  return x;
}

DeviceRun run_on_device(const std::string& op, std::unique_ptr<Attrs> attrs,
                        std::vector<NodeInput> inputs, size_t n_outputs, BuildOptions options) {
  DeviceRun r;
  SingleNode ref(op, std::move(attrs), inputs, n_outputs);
  ref.infer();
  std::unique_ptr<Graph> g = ref.graph_for_build();
  r.reference = ref.run();

  if (options.device.empty()) options.device = "cuda";
  options.opt_level = 0;
  std::shared_ptr<Plan> plan = PlanAccess::make(build_plan(std::move(g), options));
  for (const Step& s : plan->data().steps) r.tactic = s.tactic;
  std::shared_ptr<Engine> engine;
  Status st = Engine::create(plan, engine);
  if (!st) throw Error(st.code(), st.message());
  std::unique_ptr<ExecutionContext> ctx;
  st = engine->create_context(ctx);
  if (!st) throw Error(st.code(), st.message());
  std::map<std::string, Tensor> in, out;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].absent && !inputs[i].constant) in["in" + std::to_string(i)] = inputs[i].value;
  st = ctx->run(in, out);
  if (!st) throw Error(st.code(), st.message());
  for (size_t k = 0; k < n_outputs; ++k) r.device.push_back(out.at("out" + std::to_string(k)));
  return r;
}

void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                  const std::string& what) {
  ASSERT_EQ(dtype_name(got.dtype()), std::string(dtype_name(want.dtype()))) << what;
  ASSERT_EQ(dims_to_string(got.dims()), dims_to_string(want.dims())) << what;
  int reported = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    double g = got.get_f64(i), w = want.get_f64(i);
    bool ok;
    if (std::isnan(w)) ok = std::isnan(g);
    else if (std::isinf(w)) ok = g == w;
    else ok = std::fabs(g - w) <= atol + rtol * std::fabs(w);
    if (!ok && reported++ < 5)
      ADD_FAILURE() << what << ": element " << i << " is " << g << ", reference " << w;
  }
  if (reported > 5) ADD_FAILURE() << what << ": " << reported << " elements differ in all";
}

void expect_gpu_matches_reference(const std::string& op, std::unique_ptr<Attrs> attrs,
                                  std::vector<NodeInput> inputs, size_t n_outputs,
                                  const std::string& tactic_prefix, double rtol, double atol,
                                  BuildOptions options) {
  DeviceRun r = run_on_device(op, std::move(attrs), std::move(inputs), n_outputs, options);
  EXPECT_EQ(r.tactic.rfind(tactic_prefix, 0), 0u)
      << op << " ran with tactic '" << r.tactic << "', expected '" << tactic_prefix << "'";
  ASSERT_EQ(r.device.size(), r.reference.size());
  for (size_t k = 0; k < r.device.size(); ++k)
    expect_close(r.device[k], r.reference[k], rtol, atol, op + " output " + std::to_string(k));
}

}  // namespace kiln::testing
