// Det, DFT, STFT, the window functions and MelWeightMatrix, as ops and through their importers
// (constant folding when sizes are known, the canonical op otherwise). Expectations from numpy
// (np.linalg.det, np.fft.fft / ifft, the window formulas of the ONNX spec, and the ONNX
// reference code of MelWeightMatrix run with other arguments).
#include <gtest/gtest.h>

#include "ops/dft.h"
#include "ops/stft.h"
#include "ops/window_function.h"
#include "run_graph.h"
#include "single_node.h"

namespace kiln::testing {
namespace {

// --- Det ---

TEST(Det, NeedsPivotingAndBatches) {
  // A zero in the top-left corner forces a row swap.
  SingleNode n("Det", nullptr, {NodeInput::of(f64({3, 3}, {0, 2, -1, 3, 1, 4, -2, 5, 0.5}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[]");
  expect_values(n.run()[0], {}, {-36.0}, 1e-12, 1e-12);
  SingleNode m("Det", nullptr,
               {NodeInput::of(f32({4, 4}, {2, -1, 0, 3, 1, 0, 0, 2, 4, 1, -3, 0, 0, 2, 1, 1}))});
  expect_values(m.run()[0], {}, {12.0});
  // Batched, with a singular matrix and a permutation.
  SingleNode b("Det", nullptr,
               {NodeInput::of(f32({3, 1, 2, 2}, {1, 2, 3, 4, 2, 4, 1, 2, 0, 1, 1, 0}))});
  expect_values(b.run()[0], {3, 1}, {-2, 0, -1});
}

TEST(Det, Errors) {
  expect_error(
      [] {
        SingleNode n("Det", nullptr, {NodeInput::of(f32({2, 3}, {1, 2, 3, 4, 5, 6}))});
        n.infer();
      },
      "square");
  expect_error(
      [] {
        SingleNode n("Det", nullptr, {NodeInput::of(i64({2, 2}, {1, 2, 3, 4}))});
        n.infer();
      },
      "float");
}

// --- DFT ---

std::unique_ptr<DftAttrs> dft(int64_t axis, bool inverse = false, bool onesided = false) {
  auto a = std::make_unique<DftAttrs>();
  a->axis = axis;
  a->inverse = inverse;
  a->onesided = onesided;
  return a;
}

Tensor real25() { return f32({2, 5, 1}, {1, -2, 3.5f, 0, 4, 0.5f, 0.25f, -1, 2, -3}); }

TEST(DFT, RealFull) {
  SingleNode n("DFT", dft(1), {NodeInput::of(real25())});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[2,5,2]");
  expect_values(n.run()[0], {2, 5, 2},
                {6.5,
                 0.0,
                 -1.213525491562,
                 3.649090714747,
                 0.463525491562,
                 6.855409320788,
                 0.463525491562,
                 -6.855409320788,
                 -1.213525491562,
                 -3.649090714747,
                 -1.25,
                 0.0,
                 -1.158813728906,
                 -1.327577921082,
                 3.033813728906,
                 -4.763471618836,
                 3.033813728906,
                 4.763471618836,
                 -1.158813728906,
                 1.327577921082});
}

TEST(DFT, ZeroPaddedOnesidedAndTruncated) {
  // dft_length 7 pads with zeros; onesided keeps 7 / 2 + 1 = 4 bins. Known only at run time.
  SingleNode n("DFT", dft(-2, false, true), {NodeInput::of(real25()), NodeInput::of(i64({}, {7}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.rank(), 3u);
  EXPECT_FALSE(n.out(0).shape.fully_known());
  expect_values(n.run()[0], {2, 4, 2},
                {6.5, 0.0, -4.629678344174, -0.11304977123, 0.785610037689, 0.341122981403,
                 4.094068306485, 7.503889315601, -1.25, 0.0, 1.779362252323, -1.389948654023,
                 0.721848832555, 3.231541695177, -0.126211084878, -5.764941978157});
  SingleNode t("DFT", dft(1), {NodeInput::of(real25()), NodeInput::constant_of(i32({}, {3}))});
  t.infer();
  EXPECT_EQ(t.out(0).shape.str(), "[2,3,2]");
  expect_values(t.run()[0], {2, 3, 2},
                {2.5, 0.0, 0.25, 4.763139720814, 0.25, -4.763139720814, -0.25, 0.0, 0.875,
                 -1.082531754731, 0.875, 1.082531754731});
}

TEST(DFT, ComplexInverseOnOuterAxis) {
  Tensor c = f64({3, 2, 2}, {1.0, 2.0, -1.0, 0.5, 3.0, -1.0, 0.0, 0.0, 2.0, 2.0, -4.0, 1.0});
  SingleNode n("DFT", dft(0, true), {NodeInput::of(c)});
  expect_values(n.run()[0], {3, 2, 2},
                {2.0, 1.0, -1.666666666667, 0.5, 0.366025403784, 0.788675134595, 0.622008467928,
                 1.154700538379, -1.366025403784, 0.211324865405, 0.044658198739, -1.154700538379},
                1e-9, 1e-9);
}

TEST(DFT, Errors) {
  expect_error(
      [] {
        SingleNode n("DFT", dft(2), {NodeInput::of(real25())});
        n.infer();
      },
      "axis cannot be the last");
  expect_error(
      [] {
        SingleNode n("DFT", dft(1), {NodeInput::of(f32({2, 3}, {1, 2, 3, 4, 5, 6}))});
        n.infer();
      },
      "1 (real) or 2 (complex)");
  expect_error(
      [] {
        SingleNode n("DFT", dft(1),
                     {NodeInput::of(real25()), NodeInput::constant_of(i64({}, {0}))});
        n.infer();
      },
      "dft_length must be positive");
}

// --- STFT ---

Tensor signal11() { return f32({1, 11, 1}, {0.5f, 1, -2, 3, 0, 4, -1, 2.5f, 1.5f, -0.5f, 2}); }

TEST(STFT, WindowedOnesided) {
  // frames = 1 + (11 - 4) / 3 = 3; periodic Hann window of 4 = 0, .5, 1, .5.
  auto a = std::make_unique<StftAttrs>();
  SingleNode n("STFT", std::move(a),
               {NodeInput::of(signal11()), NodeInput::constant_of(i64({}, {3})),
                NodeInput::of(f32({4}, {0, 0.5f, 1, 0.5f}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[1,3,3,2]");
  expect_values(n.run()[0], {1, 3, 3, 2},
                {0.0, 0.0, 2.0, 1.0, -4.0, 0.0, 3.5, 0.0, -4.0, -0.5, 4.5, 0.0, 2.5, 0.0, -1.5,
                 -1.5, 0.5, 0.0});
}

TEST(STFT, FrameLengthWithoutWindowTwoSided) {
  auto a = std::make_unique<StftAttrs>();
  a->onesided = false;
  SingleNode n("STFT", std::move(a),
               {NodeInput::of(signal11()), NodeInput::of(i64({}, {3})), NodeInput::none(),
                NodeInput::of(i64({}, {4}))});
  expect_values(n.run()[0], {1, 3, 4, 2},
                {2.5, 0.0, 2.5,  2.0, -5.5, 0.0, 2.5,  -2.0, 6.0,  0.0, -1.0, -1.0,
                 8.0, 0.0, -1.0, 1.0, 2.5,  0.0, -2.5, -3.0, -1.5, 0.0, -2.5, 3.0});
}

TEST(STFT, Errors) {
  expect_error(
      [] {
        SingleNode n("STFT", nullptr, {NodeInput::of(signal11()), NodeInput::of(i64({}, {3}))});
        n.infer();
      },
      "needs a window or a frame_length");
  expect_error(
      [] {
        SingleNode n("STFT", nullptr,
                     {NodeInput::of(signal11()), NodeInput::constant_of(i64({}, {3})),
                      NodeInput::of(f32({3}, {1, 1, 1})), NodeInput::constant_of(i64({}, {4}))});
        n.infer();
      },
      "window has 3 elements but frame_length is 4");
  expect_error(
      [] {
        SingleNode n("STFT", nullptr,
                     {NodeInput::of(signal11()), NodeInput::constant_of(i64({}, {3})),
                      NodeInput::none(), NodeInput::constant_of(i64({}, {12}))});
        n.infer();
      },
      "shorter than frame_length");
}

// --- windows ---

TEST(WindowFunction, PeriodicAndSymmetric) {
  struct Case {
    const char* kind;
    bool periodic;
    std::vector<double> want;
  } cases[] = {
      {"hann",
       true,
       {0.0, 0.188255099071, 0.611260466978, 0.950484433951, 0.950484433951, 0.611260466978,
        0.188255099071}},
      {"hamming",
       true,
       {0.086956521739, 0.258841612195, 0.645063904632, 0.954790135347, 0.954790135347,
        0.645063904632, 0.258841612195}},
      {"blackman",
       true,
       {0.0, 0.090453424354, 0.459182957546, 0.9203636181, 0.9203636181, 0.459182957546,
        0.090453424354}},
      {"hann", false, {0.0, 0.25, 0.75, 1.0, 0.75, 0.25, 0.0}},
      {"hamming",
       false,
       {0.086956521739, 0.315217391304, 0.771739130435, 1.0, 0.771739130435, 0.315217391304,
        0.086956521739}},
      {"blackman", false, {0.0, 0.13, 0.63, 1.0, 0.63, 0.13, 0.0}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(cat(c.kind, c.periodic ? " periodic" : " symmetric"));
    auto a = std::make_unique<WindowFunctionAttrs>();
    a->kind = c.kind;
    a->periodic = c.periodic;
    a->output_dtype = DataType::kDouble;
    SingleNode n("WindowFunction", std::move(a), {NodeInput::of(i32({}, {7}))});
    n.infer();
    EXPECT_EQ(n.out(0).shape.rank(), 1u);
    expect_values(n.run()[0], {7}, c.want, 1e-10, 1e-12);
  }
  // Degenerate sizes: a symmetric window of one element is [1]; size 0 is empty.
  expect_values(make_window("hann", 1, false, DataType::kFloat), {1}, {1});
  expect_values(make_window("blackman", 0, true, DataType::kFloat), {0}, {});
  expect_error([] { make_window("hann", -2, true, DataType::kFloat); }, "must be >= 0");
  expect_error([] { make_window("kaiser", 4, true, DataType::kFloat); }, "unknown window");
}

using namespace kiln::test::proto;

TEST(WindowImport, KnownSizeFoldsUnknownSizeRuns) {
  auto folded = graph("g", {node("HammingWindow", {"n"}, {"w"}, {attr_int("periodic", 0)})}, {},
                      {value_info("w", DataType::kFloat, {4})},
                      {tensor_int32_data("n", DataType::kInt32, {}, {4})});
  auto g = testing::import_graph(folded, 17);
  for (const auto& n : g->nodes()) EXPECT_NE(n->op(), "WindowFunction");
  auto w = testing::run_graph(*g, {});
  // symmetric Hamming of 4: 25/46 - 21/46 cos(2 pi k / 3)
  expect_values(w[0], {4}, {0.086956521739, 0.771739130435, 0.771739130435, 0.086956521739});

  auto dynamic =
      graph("g",
            {node("BlackmanWindow", {"n"}, {"w"},
                  {attr_int("output_datatype", static_cast<int64_t>(DataType::kDouble))})},
            {value_info("n", DataType::kInt64, {})},
            {value_info("w", DataType::kDouble, {test::proto::Dim()})});
  auto gd = testing::import_graph(dynamic, 17);
  bool has_op = false;
  for (const auto& n : gd->nodes()) has_op = has_op || n->op() == "WindowFunction";
  EXPECT_TRUE(has_op);
  auto wd = testing::run_graph(*gd, {i64({}, {7})});
  EXPECT_EQ(wd[0].dtype(), DataType::kDouble);
  expect_values(wd[0], {7},
                {0.0, 0.090453424354, 0.459182957546, 0.9203636181, 0.9203636181, 0.459182957546,
                 0.090453424354},
                1e-10, 1e-12);
}

// --- MelWeightMatrix ---

TEST(MelWeightMatrix, FoldedAndRunTimeAgreeWithReference) {
  // The ONNX reference code with num_mel_bins 4, dft_length 40, sample_rate 16000, edges
  // 100 Hz and 7000 Hz: rows 1..10 hold the filters, the rest are zero.
  std::vector<double> want(21 * 4, 0.0);
  auto set = [&](int r, std::vector<double> v) {
    for (int c = 0; c < 4; ++c) want[r * 4 + c] = v[c];
  };
  set(1, {1, 0, 0, 0});
  set(2, {0, 1, 0, 0});
  set(3, {0, 0.5, 0.5, 0});
  set(4, {0, 0, 1, 0});
  set(5, {0, 0, 2.0 / 3, 1.0 / 3});
  set(6, {0, 0, 1.0 / 3, 2.0 / 3});
  set(7, {0, 0, 0, 1});
  set(8, {0, 0, 0, 0.75});
  set(9, {0, 0, 0, 0.5});
  set(10, {0, 0, 0, 0.25});

  auto inputs = [](bool as_initializers) {
    std::vector<test::ProtoWriter> t = {tensor_int32_data("bins", DataType::kInt32, {}, {4}),
                                        tensor_int32_data("len", DataType::kInt32, {}, {40}),
                                        tensor_int32_data("rate", DataType::kInt32, {}, {16000}),
                                        tensor_f32("lo", {}, {100}), tensor_f32("hi", {}, {7000})};
    return as_initializers ? t : std::vector<test::ProtoWriter>{};
  };
  auto n = node("MelWeightMatrix", {"bins", "len", "rate", "lo", "hi"}, {"m"});
  auto folded = graph("g", {n}, {}, {value_info("m", DataType::kFloat, {21, 4})}, inputs(true));
  auto g = testing::import_graph(folded, 17);
  for (const auto& nd : g->nodes()) EXPECT_NE(nd->op(), "MelWeightMatrix");
  expect_values(testing::run_graph(*g, {})[0], {21, 4}, want);

  auto dynamic =
      graph("g", {n},
            {value_info("bins", DataType::kInt32, {}), value_info("len", DataType::kInt32, {}),
             value_info("rate", DataType::kInt32, {}), value_info("lo", DataType::kFloat, {}),
             value_info("hi", DataType::kFloat, {})},
            {value_info("m", DataType::kFloat, {test::proto::Dim(), test::proto::Dim()})});
  auto gd = testing::import_graph(dynamic, 17);
  auto out = testing::run_graph(
      *gd, {i32({}, {4}), i32({}, {40}), i32({}, {16000}), f32({}, {100}), f32({}, {7000})});
  expect_values(out[0], {21, 4}, want);
}

TEST(MelWeightMatrix, RejectsBadEdges) {
  auto g = graph("g", {node("MelWeightMatrix", {"bins", "len", "rate", "lo", "hi"}, {"m"})}, {},
                 {value_info("m", DataType::kFloat, {test::proto::Dim(), test::proto::Dim()})},
                 {tensor_int32_data("bins", DataType::kInt32, {}, {4}),
                  tensor_int32_data("len", DataType::kInt32, {}, {40}),
                  tensor_int32_data("rate", DataType::kInt32, {}, {16000}),
                  tensor_f32("lo", {}, {500}), tensor_f32("hi", {}, {100})});
  expect_error([&] { testing::import_graph(g, 17); }, "lower_edge_hertz");
}

}  // namespace
}  // namespace kiln::testing
