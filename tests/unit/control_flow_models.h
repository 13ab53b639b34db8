// Shared by the control-flow unit and GPU tests: the models of tests/data/
// make_control_flow_models.py, built and run through the public API.
#pragma once
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "kiln/kiln.h"

namespace kiln::testing {

inline std::string cf_data(const std::string& name) {
  return std::string(KILN_SOURCE_DIR) + "/tests/data/" + name;
}

inline std::shared_ptr<Plan> build_cf(const std::string& model, BuildOptions o) {
  std::shared_ptr<Plan> plan;
  Status s = Builder(o).build_from_onnx(cf_data(model), plan);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return plan;
}

inline std::map<std::string, Tensor> run_cf(const std::shared_ptr<Plan>& plan,
                                            const std::map<std::string, Tensor>& inputs) {
  std::map<std::string, Tensor> out;
  if (!plan) return out;
  std::shared_ptr<Engine> engine;
  Status s = Engine::create(plan, engine);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  if (!s) return out;
  std::unique_ptr<ExecutionContext> ctx;
  s = engine->create_context(ctx);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  if (!s) return out;
  s = ctx->run(inputs, out);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

inline Tensor scalar_i64(int64_t v) {
  return Tensor::from_vector(DataType::kInt64, {}, std::vector<int64_t>{v});
}
inline Tensor scalar_f32(float v) {
  return Tensor::from_vector(DataType::kFloat, {}, std::vector<float>{v});
}
inline Tensor scalar_bool(bool v) {
  Tensor t(DataType::kBool, {});
  t.set_f64(0, v ? 1 : 0);
  return t;
}

}  // namespace kiln::testing
