// cuda.attention (kiln's fused attention kernels, attention.cu) against the reference compute:
// float16 and bfloat16 on the tensor-core kernel at head sizes 32, 40, 64, 80 and 128 (padded to
// 32/64/128), float32 and float64 and head size 160 on the row kernel; sequence lengths 1, 17, 64,
// 65 and 200 (partial and several key tiles, S_q != S_kv), causal (top-left), float and bool masks
// broadcast in every way, fully masked rows (zeros), multi-query and grouped-query heads, an
// explicit scale, and BERT's export built for the GPU in float16 (the fused node on the device).
// Inputs uniform in [-1, 1) (scores of O(sqrt(D)) before scaling). float32 within 1e-4 relative +
// 1e-5 absolute (float32 accumulation against double), float64 1e-9 + 1e-10, float16 1e-2 + 1e-2
// (P is rounded to float16 for the second product), bfloat16 3e-2 + 3e-2.
#include <gtest/gtest.h>

#include <cmath>

#include "gpu/gpu_compare.h"
#include "kiln/kiln.h"
#include "ops/attention.h"

namespace kiln::testing {
namespace {

constexpr const char* kTactic = "cuda.attention";

double tol_of(DataType t, bool relative) {
  switch (t) {
    case DataType::kFloat16: return 1e-2;
    case DataType::kBFloat16: return 3e-2;
    case DataType::kDouble: return relative ? 1e-9 : 1e-10;
    default: return relative ? 1e-4 : 1e-5;
  }
}

struct Case {
  DataType dtype = DataType::kFloat16;
  int64_t B = 2, H = 2, Hkv = 2, Sq = 17, Skv = 17, D = 64, Dv = 0;  // Dv 0: D
  bool causal = false;
  double scale = 0;
  Dims mask;                                   // empty: none
  DataType mask_dtype = DataType::kFloat;
};

void check(const Case& c, uint32_t seed) {
  KILN_REQUIRE_GPU();
  const int64_t dv = c.Dv ? c.Dv : c.D;
  auto a = std::make_unique<AttentionAttrs>();
  a->scale = c.scale;
  a->causal = c.causal;
  std::vector<NodeInput> ins = {
      NodeInput::of(random_values(c.dtype, {c.B, c.H, c.Sq, c.D}, seed)),
      NodeInput::of(random_values(c.dtype, {c.B, c.Hkv, c.Skv, c.D}, seed + 1)),
      NodeInput::of(random_values(c.dtype, {c.B, c.Hkv, c.Skv, dv}, seed + 2))};
  if (!c.mask.empty()) {
    Tensor m = c.mask_dtype == DataType::kBool
                   ? random_values(DataType::kBool, c.mask, seed + 3, 0, 1)
                   : random_values(c.mask_dtype, c.mask, seed + 3, -3, 1);
    ins.push_back(NodeInput::of(m));
  }
  expect_gpu_matches_reference("Attention", std::move(a), std::move(ins), 1, kTactic,
                               tol_of(c.dtype, true), tol_of(c.dtype, false));
}

TEST(CudaAttention, Float16Head64) { check({}, 1); }
TEST(CudaAttention, BFloat16Head64) { check({DataType::kBFloat16}, 2); }
TEST(CudaAttention, Float32Head64) { check({DataType::kFloat}, 3); }
TEST(CudaAttention, Float64Causal) {
  check({DataType::kDouble, 1, 2, 2, 9, 9, 16, 0, true}, 4);
}

TEST(CudaAttention, Float16Head128LongSequence) {
  check({DataType::kFloat16, 1, 2, 2, 200, 200, 128}, 5);
}
TEST(CudaAttention, BFloat16Head128Causal) {
  check({DataType::kBFloat16, 1, 4, 4, 130, 130, 128, 0, true}, 6);
}
TEST(CudaAttention, Float16Head32SingleToken) { check({DataType::kFloat16, 3, 2, 2, 1, 1, 32}, 7); }
TEST(CudaAttention, Float16SingleQueryManyKeys) {
  check({DataType::kFloat16, 2, 4, 4, 1, 77, 64}, 8);
}
TEST(CudaAttention, Float16Head40Padded) { check({DataType::kFloat16, 2, 3, 3, 17, 17, 40}, 9); }
TEST(CudaAttention, Float16Head80ValueHead48) {
  check({DataType::kFloat16, 1, 2, 2, 65, 64, 80, 48}, 10);
}
TEST(CudaAttention, Float16Head160RowKernel) {
  check({DataType::kFloat16, 1, 2, 2, 17, 33, 160}, 11);
}
TEST(CudaAttention, Float32Head128LongSequence) {
  check({DataType::kFloat, 1, 2, 2, 150, 150, 128, 0, true}, 12);
}

TEST(CudaAttention, CausalMoreQueriesThanKeys) {
  check({DataType::kFloat16, 1, 2, 2, 100, 70, 64, 0, true}, 13);
  check({DataType::kFloat, 1, 2, 2, 100, 70, 64, 0, true}, 14);
}
TEST(CudaAttention, CausalFewerQueriesThanKeys) {
  check({DataType::kFloat16, 1, 2, 2, 30, 130, 64, 0, true}, 15);
}

TEST(CudaAttention, MultiQuery) { check({DataType::kFloat16, 2, 8, 1, 33, 33, 64}, 16); }
TEST(CudaAttention, GroupedQuery) {
  check({DataType::kBFloat16, 2, 8, 2, 33, 48, 128, 0, true}, 17);
  check({DataType::kFloat, 2, 6, 3, 9, 12, 32}, 18);
}
TEST(CudaAttention, ExplicitScale) { check({DataType::kFloat16, 1, 2, 2, 17, 17, 64, 0, false, 0.05}, 19); }

TEST(CudaAttention, FloatMasks) {
  // Padding [B,1,1,S_kv], per head [1,H,S_q,S_kv], 2-D [S_q,S_kv] and 1-D [S_kv].
  check({DataType::kFloat16, 2, 2, 2, 17, 20, 64, 0, false, 0, {2, 1, 1, 20}}, 20);
  check({DataType::kBFloat16, 2, 2, 2, 17, 20, 64, 0, true, 0, {1, 2, 17, 20}}, 21);
  check({DataType::kFloat, 2, 2, 2, 17, 20, 64, 0, false, 0, {17, 20}}, 22);
  check({DataType::kFloat16, 2, 2, 2, 70, 70, 128, 0, false, 0, {70}, DataType::kFloat16}, 23);
}

TEST(CudaAttention, BoolMasks) {
  // Random keep/drop: some rows of 5 keys lose every key (zeros, as the reference).
  check({DataType::kFloat16, 2, 2, 2, 17, 5, 64, 0, false, 0, {2, 2, 17, 5}, DataType::kBool}, 24);
  check({DataType::kFloat, 2, 2, 2, 17, 5, 32, 0, false, 0, {2, 1, 17, 5}, DataType::kBool}, 25);
  check({DataType::kBFloat16, 1, 2, 2, 65, 90, 64, 0, true, 0, {1, 1, 1, 90}, DataType::kBool},
        26);
}

TEST(CudaAttention, FullyMaskedRowsAreZero) {
  KILN_REQUIRE_GPU();
  for (DataType t : {DataType::kFloat16, DataType::kFloat}) {
    Tensor m(DataType::kBool, {1, 1, 3, 4});
    for (int j = 0; j < 4; ++j) m.set_f64(j, 1);  // row 0 sees every key, rows 1 and 2 none
    DeviceRun r = run_on_device(
        "Attention", std::make_unique<AttentionAttrs>(),
        {NodeInput::of(random_values(t, {1, 2, 3, 16}, 30)),
         NodeInput::of(random_values(t, {1, 2, 4, 16}, 31)),
         NodeInput::of(random_values(t, {1, 2, 4, 16}, 32)), NodeInput::of(m)});
    EXPECT_EQ(r.tactic, kTactic);
    ASSERT_EQ(r.device.size(), 1u);
    const Tensor& y = r.device[0];
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 1; i < 3; ++i)
        for (int64_t d = 0; d < 16; ++d) EXPECT_EQ(y.get_f64((h * 3 + i) * 16 + d), 0.0);
    expect_close(y, r.reference[0], tol_of(t, true), tol_of(t, false), "fully masked rows");
  }
}

TEST(CudaAttention, BertExportRunsFusedInFloat16) {
  KILN_REQUIRE_GPU();
  const std::string model = std::string(KILN_SOURCE_DIR) + "/tests/data/attn_bert.onnx";
  Tensor x = random_values(DataType::kFloat, {2, 5, 16}, 40);
  Tensor mask = Tensor::from_vector(DataType::kFloat, {2, 5},
                                    std::vector<float>{1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
  std::map<std::string, Tensor> in = {{"x", x}, {"mask", mask}}, want, got;
  auto run = [&](BuildOptions o, std::map<std::string, Tensor>& out, int* attention_steps) {
    std::shared_ptr<Plan> plan;
    ASSERT_TRUE(Builder(o).build_from_onnx(model, plan).is_ok());
    for (const PlanStep& s : plan->steps()) *attention_steps += s.tactic == kTactic;
    std::shared_ptr<Engine> engine;
    std::unique_ptr<ExecutionContext> ctx;
    ASSERT_TRUE(Engine::create(plan, engine).is_ok());
    ASSERT_TRUE(engine->create_context(ctx).is_ok());
    ASSERT_TRUE(ctx->run(in, out).is_ok());
  };
  BuildOptions cpu;
  cpu.device = "cpu";
  int cpu_steps = 0, gpu_steps = 0;
  run(cpu, want, &cpu_steps);
  BuildOptions gpu;
  gpu.device = "cuda";
  gpu.fp16 = true;
  run(gpu, got, &gpu_steps);
  EXPECT_EQ(gpu_steps, 2);
  expect_close(got.at("y"), want.at("y"), 2e-2, 2e-2, "BERT export, float16 on cuda");
}

}  // namespace
}  // namespace kiln::testing
