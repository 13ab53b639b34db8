// cuda.recurrent (ONNX RNN, GRU and LSTM on cuBLASLt products and kiln's cell kernels) against the
// reference: each cell in each direction and layout, every activation with its alpha and beta,
// clip, GRU linear_before_reset 0 and 1, LSTM peepholes and input_forget, sequence_lens (int32
// and int64, rows of length 0, short rows in reverse), initial states, absent optional inputs and
// outputs, hidden_size taken from R, awkward sizes (batch 3, hidden 5, input 7, sequence 0, 1 and
// 11), float16 / bfloat16 / float64, constant and computed weights, and one larger case.
// Inputs in [-1, 1), weights scaled by 1/sqrt(fan-in) so that states neither saturate nor vanish.
// float32 within 1e-4 relative + 1e-5 absolute (the GPU accumulates in float32, the reference in
// double), float64 1e-9 + 1e-10, float16 1e-2 + 1e-2, bfloat16 3e-2 + 3e-2.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gpu/gpu_compare.h"
#include "ops/recurrent.h"

namespace kiln::testing {
namespace {

constexpr const char* kTactic = "cuda.recurrent";

double rtol_of(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return 1e-2;
    case DataType::kBFloat16:
      return 3e-2;
    case DataType::kDouble:
      return 1e-9;
    default:
      return 1e-4;
  }
}
double atol_of(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return 1e-2;
    case DataType::kBFloat16:
      return 3e-2;
    case DataType::kDouble:
      return 1e-10;
    default:
      return 1e-5;
  }
}

struct RnnCase {
  std::string cell = "lstm";
  std::string direction = "forward";
  int64_t S = 4, N = 3, I = 7, H = 5;
  int64_t layout = 0;
  DataType dtype = DataType::kFloat;
  bool bias = true;
  bool h0 = false, c0 = false, peepholes = false;
  std::vector<int64_t> lens;             // empty: no sequence_lens
  DataType lens_type = DataType::kInt32;
  bool constant_weights = false;          // W, R, B, P as constants instead of graph inputs
  bool hidden_from_r = false;             // hidden_size 0: taken from R's shape
  size_t n_outputs = 0;                   // 0: every output of the cell
  std::string activations;
  Floats alpha, beta;
  double clip = 0;
  int64_t linear_before_reset = 0, input_forget = 0;
  uint32_t seed = 1;
};

int64_t gates_of(const std::string& cell) { return cell == "rnn" ? 1 : cell == "gru" ? 3 : 4; }

void check(const RnnCase& c) {
  const int64_t ndir = c.direction == "bidirectional" ? 2 : 1;
  const int64_t G = gates_of(c.cell);
  const bool lstm = c.cell == "lstm";
  SCOPED_TRACE(cat(c.cell, " ", c.direction, " layout ", c.layout, " ", dtype_name(c.dtype), " S ",
                   c.S, " N ", c.N, " I ", c.I, " H ", c.H, c.lens.empty() ? "" : " lens",
                   c.h0 ? " h0" : "", c.c0 ? " c0" : "", c.peepholes ? " P" : "",
                   c.constant_weights ? " constant" : "", c.activations.empty() ? "" : " ",
                   c.activations, c.clip > 0 ? " clip" : "",
                   c.linear_before_reset ? " linear_before_reset" : "",
                   c.input_forget ? " input_forget" : ""));
  auto a = std::make_unique<RecurrentAttrs>();
  a->cell = c.cell;
  a->direction = c.direction;
  a->hidden_size = c.hidden_from_r ? 0 : c.H;
  a->activations = c.activations;
  a->activation_alpha = c.alpha;
  a->activation_beta = c.beta;
  a->clip = c.clip;
  a->linear_before_reset = c.linear_before_reset;
  a->input_forget = c.input_forget;
  a->layout = c.layout;

  uint32_t seed = c.seed * 16;
  const Dims xd = c.layout == 0 ? Dims{c.S, c.N, c.I} : Dims{c.N, c.S, c.I};
  const Dims sd = c.layout == 0 ? Dims{ndir, c.N, c.H} : Dims{c.N, ndir, c.H};
  auto weight = [&](Tensor t) {
    return c.constant_weights ? NodeInput::constant_of(std::move(t)) : NodeInput::of(std::move(t));
  };
  const double wscale = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(c.I, 1)));
  const double rscale = 1.0 / std::sqrt(static_cast<double>(c.H));
  std::vector<NodeInput> in;
  in.push_back(NodeInput::of(random_values(c.dtype, xd, seed++)));
  in.push_back(weight(random_values(c.dtype, {ndir, G * c.H, c.I}, seed++, -wscale, wscale)));
  in.push_back(weight(random_values(c.dtype, {ndir, G * c.H, c.H}, seed++, -rscale, rscale)));
  in.push_back(c.bias ? weight(random_values(c.dtype, {ndir, 2 * G * c.H}, seed++, -0.5, 0.5))
                      : NodeInput::none());
  if (c.lens.empty()) {
    in.push_back(NodeInput::none());
  } else {
    Tensor l(c.lens_type, {c.N});
    for (int64_t b = 0; b < c.N; ++b) l.set_i64(b, c.lens[static_cast<size_t>(b)]);
    in.push_back(NodeInput::of(l));
  }
  in.push_back(c.h0 ? NodeInput::of(random_values(c.dtype, sd, seed++, -0.5, 0.5)) : NodeInput::none());
  if (lstm) {
    in.push_back(c.c0 ? NodeInput::of(random_values(c.dtype, sd, seed++, -0.5, 0.5)) : NodeInput::none());
    in.push_back(c.peepholes ? weight(random_values(c.dtype, {ndir, 3 * c.H}, seed++, -0.5, 0.5))
                             : NodeInput::none());
  }
  while (in.size() > 3 && in.back().absent) in.pop_back();
  const size_t n_out = c.n_outputs ? c.n_outputs : (lstm ? 3 : 2);
  expect_gpu_matches_reference("Recurrent", std::move(a), std::move(in), n_out, kTactic,
                               rtol_of(c.dtype), atol_of(c.dtype));
}

const char* kDirections[] = {"forward", "reverse", "bidirectional"};

TEST(CudaRecurrent, RnnEveryDirectionAndLayout) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1;
  for (const char* dir : kDirections)
    for (int64_t layout : {0, 1})
      for (bool h0 : {false, true}) {
        RnnCase c;
        c.cell = "rnn";
        c.direction = dir;
        c.layout = layout;
        c.h0 = h0;
        c.S = 6;
        c.seed = seed++;
        check(c);
      }
}

TEST(CudaRecurrent, RnnEveryActivation) {
  KILN_REQUIRE_GPU();
  struct Act {
    const char* name;
    Floats alpha, beta;
  };
  const Act acts[] = {{"Relu", {}, {}},           {"Tanh", {}, {}},
                      {"Sigmoid", {}, {}},        {"Affine", {0.7}, {-0.2}},
                      {"Affine", {}, {}},         {"LeakyRelu", {0.2}, {}},
                      {"LeakyRelu", {}, {}},      {"ThresholdedRelu", {0.1}, {}},
                      {"ScaledTanh", {1.5}, {0.6}}, {"ScaledTanh", {}, {}},
                      {"HardSigmoid", {0.3}, {0.4}}, {"HardSigmoid", {}, {}},
                      {"Elu", {0.8}, {}},         {"Softsign", {}, {}},
                      {"Softplus", {}, {}}};
  uint32_t seed = 100;
  for (const Act& f : acts)
    for (const char* dir : {"forward", "bidirectional"}) {
      RnnCase c;
      c.cell = "rnn";
      c.direction = dir;
      c.activations = f.name;
      c.alpha = f.alpha;
      c.beta = f.beta;
      c.h0 = true;
      c.seed = seed++;
      check(c);
    }
  // One function per direction, alpha/beta consumed in order across them; clip.
  RnnCase c;
  c.cell = "rnn";
  c.direction = "bidirectional";
  c.activations = "scaledtanh, LEAKYRELU";
  c.alpha = {1.2, 0.3};
  c.beta = {0.9};
  c.clip = 0.4;
  c.S = 7;
  c.seed = seed++;
  check(c);
  c.activations = "relu,affine";
  c.alpha = {0.5};
  c.beta = {0.1};
  c.clip = 0.25;
  c.seed = seed++;
  check(c);
}

TEST(CudaRecurrent, GruBothResetModesEveryDirectionAndLayout) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 200;
  for (int64_t lbr : {0, 1})
    for (const char* dir : kDirections)
      for (int64_t layout : {0, 1}) {
        RnnCase c;
        c.cell = "gru";
        c.direction = dir;
        c.layout = layout;
        c.linear_before_reset = lbr;
        c.h0 = layout == 1;
        c.S = 5;
        c.seed = seed++;
        check(c);
      }
}

TEST(CudaRecurrent, GruActivationsAndClip) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 300;
  for (int64_t lbr : {0, 1}) {
    RnnCase c;
    c.cell = "gru";
    c.direction = "bidirectional";
    c.linear_before_reset = lbr;
    c.activations = "HardSigmoid,Softsign,Sigmoid,Elu";
    c.alpha = {0.25, 0.9};
    c.beta = {0.45};
    c.h0 = true;
    c.seed = seed++;
    check(c);
    c.activations = "sigmoid,scaledtanh";
    c.alpha = {};
    c.beta = {};
    c.clip = 0.5;
    c.seed = seed++;
    check(c);
  }
}

TEST(CudaRecurrent, LstmPeepholesInputForgetClip) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 400;
  for (const char* dir : kDirections)
    for (int64_t layout : {0, 1})
      for (int variant = 0; variant < 4; ++variant) {
        RnnCase c;
        c.cell = "lstm";
        c.direction = dir;
        c.layout = layout;
        c.peepholes = variant != 0;
        c.input_forget = variant == 2 || variant == 3;
        c.clip = variant == 3 ? 0.3 : 0;
        c.h0 = variant >= 1;
        c.c0 = variant >= 2;
        c.S = 5;
        c.seed = seed++;
        check(c);
      }
}

TEST(CudaRecurrent, LstmActivations) {
  KILN_REQUIRE_GPU();
  RnnCase c;
  c.cell = "lstm";
  c.direction = "bidirectional";
  c.activations = "hardsigmoid,softsign,elu,sigmoid,scaledtanh,affine";
  c.alpha = {0.3, 0.7, 1.1, 0.9};
  c.beta = {0.45, 0.8, 0.05};
  c.peepholes = true;
  c.h0 = c.c0 = true;
  c.seed = 500;
  check(c);
  c.direction = "reverse";
  c.activations = "sigmoid,relu,softplus";
  c.alpha = {};
  c.beta = {};
  c.clip = 1.5;
  c.seed = 501;
  check(c);
}

TEST(CudaRecurrent, SequenceLens) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 600;
  // Rows of every length including 0 (Y all zeros, Y_h / Y_c the initial state) and the full one.
  for (const char* cell : {"rnn", "gru", "lstm"})
    for (const char* dir : kDirections)
      for (int64_t layout : {0, 1})
        for (DataType lt : {DataType::kInt32, DataType::kInt64}) {
          RnnCase c;
          c.cell = cell;
          c.direction = dir;
          c.layout = layout;
          c.S = 6;
          c.N = 5;
          c.lens = {6, 3, 0, 1, 5};
          c.lens_type = lt;
          c.h0 = c.c0 = true;
          c.peepholes = true;
          c.linear_before_reset = layout;
          c.seed = seed++;
          check(c);
        }
}

TEST(CudaRecurrent, AbsentInputsAndOutputs) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 700;
  for (const char* cell : {"rnn", "gru", "lstm"}) {
    const size_t max_out = std::string(cell) == "lstm" ? 3 : 2;
    for (size_t n_out = 1; n_out <= max_out; ++n_out)
      for (bool bias : {false, true}) {
        RnnCase c;
        c.cell = cell;
        c.direction = "bidirectional";
        c.bias = bias;
        c.n_outputs = n_out;
        c.hidden_from_r = !bias;
        c.seed = seed++;
        check(c);
      }
  }
  // initial_c without initial_h, P without B.
  RnnCase c;
  c.cell = "lstm";
  c.c0 = true;
  c.bias = false;
  c.peepholes = true;
  c.seed = seed++;
  check(c);
}

TEST(CudaRecurrent, AwkwardSizes) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 800;
  for (const char* cell : {"rnn", "gru", "lstm"})
    for (int64_t S : {0, 1, 11})
      for (int64_t layout : {0, 1}) {
        RnnCase c;
        c.cell = cell;
        c.direction = "bidirectional";
        c.layout = layout;
        c.S = S;
        c.N = 3;
        c.I = 7;
        c.H = 5;
        c.h0 = c.c0 = true;
        c.seed = seed++;
        check(c);
      }
  for (const char* cell : {"rnn", "gru", "lstm"}) {
    RnnCase c;
    c.cell = cell;
    c.direction = "reverse";
    c.S = 3;
    c.N = 1;
    c.I = 1;
    c.H = 1;
    c.lens = {2};
    c.seed = seed++;
    check(c);
    c.N = 2;
    c.I = 33;
    c.H = 17;
    c.lens = {3, 2};
    c.seed = seed++;
    check(c);
  }
}

TEST(CudaRecurrent, HalfBFloatAndDouble) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 900;
  for (DataType t : {DataType::kFloat16, DataType::kBFloat16, DataType::kDouble})
    for (const char* cell : {"rnn", "gru", "lstm"})
      for (bool constant : {false, true}) {
        RnnCase c;
        c.cell = cell;
        c.direction = "bidirectional";
        c.dtype = t;
        c.S = 9;
        c.N = 4;
        c.lens = {9, 4, 1, 7};
        c.h0 = c.c0 = true;
        c.peepholes = true;
        c.constant_weights = constant;
        c.seed = seed++;
        check(c);
      }
  // A longer float16 sequence: the state stays in float32 between steps.
  RnnCase c;
  c.cell = "lstm";
  c.dtype = DataType::kFloat16;
  c.S = 40;
  c.N = 8;
  c.I = 16;
  c.H = 24;
  c.seed = seed++;
  check(c);
}

TEST(CudaRecurrent, ConstantWeights) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1000;
  for (const char* cell : {"rnn", "gru", "lstm"})
    for (const char* dir : kDirections) {
      RnnCase c;
      c.cell = cell;
      c.direction = dir;
      c.constant_weights = true;
      c.peepholes = true;
      c.h0 = true;
      c.lens = {4, 2, 3};
      c.linear_before_reset = std::string(dir) == "reverse";
      c.seed = seed++;
      check(c);
    }
}

TEST(CudaRecurrent, LargerBatchAndSequence) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1100;
  for (const char* cell : {"lstm", "gru"}) {
    RnnCase c;
    c.cell = cell;
    c.direction = "bidirectional";
    c.S = 32;
    c.N = 64;
    c.I = 48;
    c.H = 64;
    c.h0 = c.c0 = true;
    c.constant_weights = true;
    c.seed = seed++;
    check(c);
  }
  RnnCase c;
  c.cell = "gru";
  c.layout = 1;
  c.S = 32;
  c.N = 64;
  c.I = 48;
  c.H = 64;
  c.seed = seed++;
  std::vector<int64_t> lens;
  for (int64_t b = 0; b < c.N; ++b) lens.push_back((b * 7) % 33);
  c.lens = lens;
  c.direction = "reverse";
  check(c);
}

}  // namespace
}  // namespace kiln::testing
