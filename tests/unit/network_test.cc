// A small CNN defined layer by layer through the public Network API (no model file), built,
// saved, reloaded and run; its outputs are checked against a direct float64 computation in this
// test (plain loops, independent of kiln's op implementations).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kiln/kiln.h"
#include "ops/test_util.h"

namespace kiln {
namespace {

using testing::random_tensor;

TEST(Network, HandBuiltCnnMatchesDirectComputation) {
  std::mt19937 rng(42);
  const int64_t N = 3, C = 2, H = 9, W = 7, M = 5, K = 3, CLASSES = 4;
  Tensor wconv = random_tensor({M, C, K, K}, rng), bconv = random_tensor({M}, rng);
  Tensor scale = random_tensor({M}, rng, 0.5f, 1.5f), shift = random_tensor({M}, rng);
  Tensor mean = random_tensor({M}, rng), var = random_tensor({M}, rng, 0.2f, 2.0f);
  Tensor wfc = random_tensor({CLASSES, M}, rng), bfc = random_tensor({CLASSES}, rng);

  Network net;
  auto x = net.add_input("image", DataType::kFloat, {-1, C, H, W});
  auto y = net.add_conv(x, wconv, bconv, {.strides = {2, 1}, .pads = {1, 1, 1, 1}});
  y = net.add_batch_norm(y, scale, shift, mean, var, 1e-5);
  y = net.add_activation(y, Activation::kRelu);
  y = net.add_pool(y, {.kind = PoolKind::kAverage});  // global average -> [N, M, 1, 1]
  y = net.add_reshape(y, {0, -1});
  y = net.add_fully_connected(y, wfc, bfc);
  y = net.add_softmax(y, -1);
  net.mark_output(y, "probs");
  ASSERT_EQ(net.first_error(), "");

  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = "cpu"}).build(net, plan);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  std::shared_ptr<Plan> loaded;
  ASSERT_TRUE(Plan::deserialize(plan->serialize(), loaded).is_ok());
  std::shared_ptr<Engine> engine;
  ASSERT_TRUE(Engine::create(loaded, engine).is_ok());
  std::unique_ptr<ExecutionContext> ctx;
  ASSERT_TRUE(engine->create_context(ctx).is_ok());

  Tensor in = random_tensor({N, C, H, W}, rng);
  std::map<std::string, Tensor> out;
  s = ctx->run({{"image", in}}, out);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  const Tensor& probs = out.at("probs");
  ASSERT_EQ(probs.dims(), (Dims{N, CLASSES}));

  // Direct computation in double.
  const int64_t OH = (H + 2 - K) / 2 + 1, OW = (W + 2 - K) / 1 + 1;
  auto f = [](const Tensor& t, int64_t i) { return static_cast<double>(t.data<float>()[i]); };
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> pooled(M, 0.0);
    for (int64_t m = 0; m < M; ++m) {
      double sum = 0;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = f(bconv, m);
          for (int64_t c = 0; c < C; ++c)
            for (int64_t kh = 0; kh < K; ++kh)
              for (int64_t kw = 0; kw < K; ++kw) {
                int64_t ih = oh * 2 - 1 + kh, iw = ow - 1 + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += f(in, ((n * C + c) * H + ih) * W + iw) * f(wconv, ((m * C + c) * K + kh) * K + kw);
              }
          double bn = (acc - f(mean, m)) / std::sqrt(f(var, m) + 1e-5) * f(scale, m) + f(shift, m);
          sum += bn > 0 ? bn : 0;
        }
      pooled[m] = sum / static_cast<double>(OH * OW);
    }
    std::vector<double> logits(CLASSES);
    double mx = -1e300;
    for (int64_t k = 0; k < CLASSES; ++k) {
      logits[k] = f(bfc, k);
      for (int64_t m = 0; m < M; ++m) logits[k] += pooled[m] * f(wfc, k * M + m);
      mx = std::max(mx, logits[k]);
    }
    double z = 0;
    for (double& l : logits) z += (l = std::exp(l - mx));
    for (int64_t k = 0; k < CLASSES; ++k)
      EXPECT_NEAR(probs.data<float>()[n * CLASSES + k], logits[k] / z, 1e-5) << n << "," << k;
  }
}

TEST(Network, ShapeMistakesNameTheLayer) {
  std::mt19937 rng(1);
  Network net;
  auto x = net.add_input("x", DataType::kFloat, {1, 3, 8, 8});
  // Weights expect 4 input channels, x has 3.
  auto y = net.add_conv(x, random_tensor({2, 4, 3, 3}, rng), Tensor());
  net.mark_output(y, "y");
  EXPECT_NE(net.first_error().find("add_conv"), std::string::npos) << net.first_error();
  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = "cpu"}).build(net, plan);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("add_conv"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace kiln
