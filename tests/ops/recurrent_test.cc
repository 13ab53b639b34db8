// Recurrent (ONNX RNN/GRU/LSTM): each cell, bidirectional, reverse with layout 1, sequence_lens,
// clip and a parameterised activation, symbolic shape inference and a shape error. Expected values
// from an independent numpy implementation of the ONNX equations (inputs from pattern()).
#include "ops/recurrent.h"

#include "single_node.h"

namespace kiln::testing {
namespace {

constexpr int64_t S = 3, N = 2, I = 5, H = 4;

std::unique_ptr<RecurrentAttrs> attrs(const char* cell, const char* direction = "forward") {
  auto a = std::make_unique<RecurrentAttrs>();
  a->cell = cell;
  a->direction = direction;
  a->hidden_size = H;
  return a;
}

Tensor x() { return pattern({S, N, I}, 7, 11, 5, 0.1f); }
Tensor w(int64_t d, int64_t g) { return pattern({d, g * H, I}, 5, 13, 6, 0.05f); }
Tensor r(int64_t d, int64_t g) { return pattern({d, g * H, H}, 3, 7, 3, 0.1f); }
Tensor b(int64_t d, int64_t g) { return pattern({d, 2 * g * H}, 3, 5, 2, 0.1f); }

TEST(Recurrent, RnnForwardWithBiasAndInitialH) {
  auto y = run_node(
      "Recurrent", attrs("rnn"),
      {NodeInput::of(x()), NodeInput::of(w(1, 1)), NodeInput::of(r(1, 1)), NodeInput::of(b(1, 1)),
       NodeInput::none(), NodeInput::of(pattern({1, N, H}, 5, 9, 4, 0.1f))},
      2);
  expect_values(
      y[0], {S, 1, N, H},
      {-0.182917958,  -0.547637161,  -0.226028356,   0.263624849,   -0.0449696424, -0.345214051,
       0.148885043,   -0.0897577926, -0.0791298222,  -0.0287385363, 0.0160352831,  0.12890716,
       -0.0876423757, 0.121265022,   -0.00640418954, 0.168193527,   -0.39637528,   -0.170466296,
       0.00555628565, 0.238460857,   -0.452188525,   -0.195337021,  0.0306490215,  0.306407869});
  expect_values(y[1], {1, N, H},
                {-0.39637528, -0.170466296, 0.00555628565, 0.238460857, -0.452188525, -0.195337021,
                 0.0306490215, 0.306407869});
}

TEST(Recurrent, GruBidirectionalLinearBeforeReset) {
  auto a = attrs("gru", "bidirectional");
  a->linear_before_reset = 1;
  auto y = run_node(
      "Recurrent", std::move(a),
      {NodeInput::of(x()), NodeInput::of(w(2, 3)), NodeInput::of(r(2, 3)), NodeInput::of(b(2, 3))},
      2);
  expect_values(
      y[0], {S, 2, N, H},
      {0.143487508,  0.0984936655, -0.0663719085, 0.106403033,  0.142914237,   0.0857211818,
       -0.048694564, 0.196709573,  -0.0847695187, 0.20317814,   0.118418573,   -0.136568256,
       -0.091616862, 0.129052053,  0.0658901975,  -0.207682395, 0.11125173,    0.0897623866,
       -0.145751052, 0.211222529,  -0.0585836206, -0.019812928, -0.247223089,  0.200930871,
       -0.172537485, 0.0884066962, 0.045555782,   -0.170797405, -0.0527373919, -0.0465981455,
       -0.053735502, -0.293500563, 0.0805486924,  0.102157474,  -0.170846934,  0.0726500731,
       0.05796227,   0.0403675641, -0.223828315,  0.0796598477, 0.0161180629,  0.0644564174,
       0.0330150905, -0.111806035, 0.00539897086, 0.103861513,  0.0363536635,  -0.134002588});
  expect_values(y[1], {2, N, H},
                {0.0805486924, 0.102157474, -0.170846934, 0.0726500731, 0.05796227, 0.0403675641,
                 -0.223828315, 0.0796598477, -0.0847695187, 0.20317814, 0.118418573, -0.136568256,
                 -0.091616862, 0.129052053, 0.0658901975, -0.207682395});
}

TEST(Recurrent, GruForwardResetBeforeLinear) {
  // W/R/B are the forward halves of the bidirectional test's tensors.
  auto y = run_node(
      "Recurrent", attrs("gru"),
      {NodeInput::of(x()), NodeInput::of(w(1, 3)), NodeInput::of(r(1, 3)), NodeInput::of(b(1, 3))},
      2);
  expect_values(y[1], {1, N, H},
                {-0.0195810599, 0.156921004, -0.195639904, 0.147866077, -0.0440255913, 0.0947105918,
                 -0.246175011, 0.151356121});
}

TEST(Recurrent, LstmPeepholesAndSequenceLens) {
  auto y = run_node(
      "Recurrent", attrs("lstm"),
      {NodeInput::of(x()), NodeInput::of(w(1, 4)), NodeInput::of(r(1, 4)), NodeInput::of(b(1, 4)),
       NodeInput::of(i32({N}, {3, 1})), NodeInput::of(pattern({1, N, H}, 5, 9, 4, 0.1f)),
       NodeInput::of(pattern({1, N, H}, 4, 7, 3, 0.2f)),
       NodeInput::of(pattern({1, 3 * H}, 2, 5, 2, 0.2f))},
      3);
  expect_values(y[0], {S, 1, N, H},
                {-0.106154796,
                 0.100079813,
                 -0.232643034,
                 -0.0731718045,
                 0.0116320543,
                 0.175678019,
                 -0.0694270083,
                 -0.208437187,
                 -0.0249518776,
                 0.130541016,
                 -0.130376355,
                 -0.0394502568,
                 0,
                 0,
                 0,
                 0,
                 -0.054379161,
                 0.077755669,
                 -0.152014227,
                 -0.0665394105,
                 0,
                 0,
                 0,
                 0});
  expect_values(y[1], {1, N, H},
                {-0.054379161, 0.077755669, -0.152014227, -0.0665394105, 0.0116320543, 0.175678019,
                 -0.0694270083, -0.208437187});
  expect_values(y[2], {1, N, H},
                {-0.115708472, 0.16111847, -0.28856294, -0.124297989, 0.034448283, 0.542416055,
                 -0.132390182, -0.480060913});
}

TEST(Recurrent, RnnReverseBatchFirstLeakyReluClip) {
  auto a = attrs("rnn", "reverse");
  a->layout = 1;
  a->clip = 0.3;
  a->activations = "LeakyRelu";
  a->activation_alpha = {0.1};
  auto y = run_node("Recurrent", std::move(a),
                    {NodeInput::of(pattern({N, S, I}, 7, 11, 5, 0.1f)), NodeInput::of(w(1, 1)),
                     NodeInput::of(r(1, 1)), NodeInput::none(), NodeInput::of(i32({N}, {2, 3}))},
                    2);
  expect_values(y[0], {N, S, 1, H},
                {-0.00425000016,
                 -0.0283000005,
                 -0.03,
                 -0.00423999998,
                 0.16500001,
                 -0.00300000069,
                 -0.00300000005,
                 -0.0290000014,
                 0,
                 0,
                 0,
                 0,
                 0.0463455015,
                 0.0769270025,
                 0.153084007,
                 0.135875005,
                 -0.0245850011,
                 -0.00867000009,
                 0.0272500021,
                 0.142050008,
                 -0.0295000012,
                 -0.00049999994,
                 -0.0040000009,
                 0.185000007});
  expect_values(y[1], {N, 1, H},
                {-0.00425000016, -0.0283000005, -0.03, -0.00423999998, 0.0463455015, 0.0769270025,
                 0.153084007, 0.135875005});
}

TEST(Recurrent, InferSymbolicDims) {
  auto a = attrs("lstm", "bidirectional");
  a->layout = 1;
  SingleNode n("Recurrent", std::move(a),
               {NodeInput::shaped(DataType::kFloat, Shape({Dim::sym("b"), Dim::sym("s"), I})),
                NodeInput::shaped(DataType::kFloat, Shape({2, 4 * H, I})),
                NodeInput::shaped(DataType::kFloat, Shape({2, 4 * H, H}))},
               3);
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), Shape({Dim::sym("b"), Dim::sym("s"), 2, H}).str());
  EXPECT_EQ(n.out(1).shape.str(), Shape({Dim::sym("b"), 2, H}).str());
  EXPECT_EQ(n.out(2).shape.str(), Shape({Dim::sym("b"), 2, H}).str());
  EXPECT_EQ(n.out(0).dtype, DataType::kFloat);
}

TEST(Recurrent, WrongWeightShapeIsAnError) {
  expect_error(
      [] {
        SingleNode n("Recurrent", attrs("gru"),
                     {NodeInput::of(x()), NodeInput::of(w(1, 1)), NodeInput::of(r(1, 3))}, 2);
        n.infer();
      },
      "input W must have shape");
}

}  // namespace
}  // namespace kiln::testing
