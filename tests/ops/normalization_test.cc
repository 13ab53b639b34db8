// Normalization: batch, instance, group (per-channel and per-group parameters), layer (with its
// Mean/InvStdDev outputs), RMS and LRN; shapes and errors. Expected values come from numpy.
#include "ops/normalization.h"

#include <cmath>

#include "single_node.h"

namespace kiln::testing {
namespace {

std::unique_ptr<NormalizationAttrs> attrs(const std::string& kind, double eps = 1e-5) {
  auto a = std::make_unique<NormalizationAttrs>();
  a->kind = kind;
  a->epsilon = eps;
  return a;
}

std::vector<Tensor> run(std::unique_ptr<NormalizationAttrs> a, std::vector<NodeInput> ins,
                        size_t n_out = 1) {
  return run_node("Normalization", std::move(a), std::move(ins), n_out);
}

TEST(Normalization, Batch) {
  auto y =
      run(attrs("batch", 1e-3),
          {NodeInput::of(pattern({2, 3, 2}, 5, 7, 3, 0.5f)), NodeInput::of(f32({3}, {0.5f, -1, 2})),
           NodeInput::of(f32({3}, {0.1f, 0.2f, -0.3f})), NodeInput::of(f32({3}, {0.25f, -0.5f, 1})),
           NodeInput::of(f32({3}, {1, 0.5f, 2.25f}))});
  expect_values(
      y[0], {2, 3, 2},
      {-0.7745628279, 0.4748126405, -0.5064007333, 0.9064007333, 0.3665185679, -0.9665185679,
       -0.2748126405, -0.7745628279, -1.9192021999, -0.5064007333, -2.9660742715, 0.3665185679});
}

TEST(Normalization, BatchSpatialParameters) {
  // ONNX spatial=0: one parameter per (channel, position): [C, D] aligned from axis 1.
  Tensor x = f32({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor mean = f32({2, 2}, {1, 2, 3, 4});
  Tensor var = f32({2, 2}, {4, 4, 16, 16});
  auto y = run(attrs("batch", 0.0), {NodeInput::of(x), NodeInput::none(), NodeInput::none(),
                                     NodeInput::of(mean), NodeInput::of(var)});
  expect_values(y[0], {2, 2, 2}, {0, 0, 0, 0, 2, 2, 1, 1});
}

TEST(Normalization, Instance) {
  auto y = run(attrs("instance"),
               {NodeInput::of(pattern({2, 3, 5}, 3, 11, 5, 0.25f)),
                NodeInput::of(f32({3}, {1.5f, -0.5f, 2})), NodeInput::of(f32({3}, {0, 1, -1}))});
  expect_values(
      y[0], {2, 3, 5},
      {-1.7217353986, -0.3624706102, 0.9967941782,  2.3560589665,  -1.2686471358, 1.2932910764,
       0.7433703082,  0.1934495399,  1.6599049219,  1.1099841536,  0.6915295144,  -4.1414119554,
       -2.3290589042, -0.516705853,  1.2956471982,  -1.7217353986, -0.3624706102, 0.9967941782,
       2.3560589665,  -1.2686471358, 0.8900158464,  0.3400950781,  1.8065504601,  1.2566296918,
       0.7067089236,  0.6915295144,  -4.1414119554, -2.3290589042, -0.516705853,  1.2956471982},
      1e-5, 1e-5);
}

TEST(Normalization, GroupPerChannelAndPerGroup) {
  Tensor x = pattern({2, 4, 3}, 3, 11, 5, 0.25f);
  auto a = attrs("group");
  a->num_groups = 2;
  auto y = run(std::move(a), {NodeInput::of(x), NodeInput::of(f32({4}, {1, 2, -1, 0.5f})),
                              NodeInput::of(f32({4}, {0.5f, 0, 0, -0.5f}))});
  expect_values(
      y[0], {2, 4, 3},
      {-0.7680199468, 0.2243434898,  1.2167069265,  3.4181407262,  -1.8744642692, 0.1102626041,
       -0.483364992,  -1.3534219776, 0.966729984,   -0.5483364992, -0.1133080064, -1.2733839872,
       -0.255920307,  0.8779601535,  2.011840614,   -3.0236812279, -0.755920307,  1.511840614,
       -1.5467679743, 0.7733839872,  -0.0966729984, -0.016635008,  -1.1767109888, -0.741682496},
      1e-5, 1e-5);
  auto g = attrs("group");
  g->num_groups = 2;
  auto z = run(std::move(g), {NodeInput::of(x), NodeInput::of(f32({2}, {2, -1})),
                              NodeInput::of(f32({2}, {0.25f, -0.25f}))});
  expect_values(
      z[0], {2, 4, 3},
      {-2.2860398936, -0.3013130204, 1.6834138529,  3.6681407262,  -1.6244642692, 0.3602626041,
       -0.733364992,  -1.6034219776, 0.716729984,   -0.1533270016, -1.0233839872, 1.2967679743,
       -1.261840614,  1.005920307,   3.2736812279,  -2.7736812279, -0.505920307,  1.761840614,
       -1.7967679743, 0.5233839872,  -0.3466729984, -1.216729984,  1.1034219776,  0.233364992},
      1e-5, 1e-5);
}

TEST(Normalization, LayerWithStatistics) {
  auto a = attrs("layer", 0.1);
  a->axis = 1;
  auto y =
      run(std::move(a),
          {NodeInput::of(pattern({3, 2, 5}, 3, 11, 5, 0.25f)),
           NodeInput::of(f32({2, 5}, {0, 1, 2, 0.5f, 1.5f, 0, 1, 2, 0.5f, 1.5f})),
           NodeInput::of(f32({2, 5}, {-0.1f, 0.2f, 0.1f, 0, -0.1f, 0.2f, 0.1f, 0, -0.1f, 0.2f}))},
          3);
  expect_values(y[0], {3, 2, 5}, {-0.1, -0.2989221803, 0.8630574521,  0.6309898162,  -1.7288341767,
                                  0.2,  0.7750123615,  3.1109265357,  -0.4962029078, 0.3320676359,
                                  -0.1, -1.2085904245, -1.0268723396, 0.1408590425,  1.5903085095,
                                  0.2,  -0.1817180849, 1.1268723396,  0.6042952123,  -1.0677313821,
                                  -0.1, 0.9924058157,  -3.0109265357, -0.3375061808, 0.2081578172,
                                  0.2,  -1.1619796324, -0.7630574521, 0.1494610901,  2.2690596299});
  EXPECT_EQ(y[1].dtype(), DataType::kFloat);
  expect_values(y[1], {3, 1, 1}, {-0.075, 0, 0.075});
  expect_values(y[2], {3, 1, 1}, {1.1739345418, 1.1268723396, 1.1739345418});
}

TEST(Normalization, LayerStatisticsShapeAndStashType) {
  auto a = attrs("layer");
  a->axis = -1;
  a->stash_type = DataType::kFloat;
  SingleNode n("Normalization", std::move(a),
               {NodeInput::shaped(DataType::kFloat16, Shape({Dim::sym("b"), Dim(), Dim(8)})),
                NodeInput::shaped(DataType::kFloat16, Shape({Dim(8)}))},
               3);
  n.infer();
  EXPECT_EQ(n.out(0).dtype, DataType::kFloat16);
  EXPECT_EQ(n.out(0).shape, Shape({Dim::sym("b"), Dim(), Dim(8)}));
  EXPECT_EQ(n.out(1).dtype, DataType::kFloat);
  EXPECT_EQ(n.out(2).shape, Shape({Dim::sym("b"), Dim(), Dim(1)}));
}

TEST(Normalization, Rms) {
  auto a = attrs("rms", 1e-6);
  a->axis = -1;
  auto y = run(std::move(a), {NodeInput::of(pattern({2, 5}, 3, 11, 5, 0.25f)),
                              NodeInput::of(f32({5}, {1, 2, 0.5f, -1, 1.5f}))});
  expect_values(y[0], {2, 5},
                {-1.4199036696, -1.1359229356, 0.141990367, -1.1359229356, -1.7038844035,
                 -0.3580570698, 1.4322282791, 0.8951426745, 1.0741712093, 0.0});
}

TEST(Normalization, LrnOddAndEvenSize) {
  Tensor x = pattern({1, 5, 2}, 3, 11, 5, 0.25f);
  auto a = attrs("lrn");
  a->size = 3;
  a->alpha = 0.2;
  a->beta = 0.75;
  a->lrn_bias = 2.0;
  expect_values(run(std::move(a), {NodeInput::of(x)})[0], {1, 5, 2},
                {-0.7144232121, -0.2883373697, 0.1395871894, 0.5758112383, -0.5758112383,
                 -0.1395871894, 0.2845051281, 0.7144232121, -0.4371037226, 0.0});
  // Even size: the window reaches floor((size-1)/2) channels back and ceil((size-1)/2) ahead.
  auto b = attrs("lrn");
  b->size = 4;
  b->alpha = 1e-3;
  b->beta = 0.75;
  b->lrn_bias = 1.0;
  expect_values(run(std::move(b), {NodeInput::of(x)})[0], {1, 5, 2},
                {-1.2493851187, -0.4998769884, 0.2498653191, 0.9994612763, -0.9996485816,
                 -0.2498770237, 0.4998301455, 1.249619276, -0.7498857625, 0.0});
}

TEST(Normalization, Errors) {
  Tensor x = pattern({2, 3, 4}, 3, 11, 5, 0.25f);
  expect_error(
      [&] {
        auto a = attrs("layer");
        a->axis = 3;
        SingleNode n("Normalization", std::move(a), {NodeInput::of(x)});
        n.infer();
      },
      "normalization axis 3 is out of range for rank 3");
  expect_error(
      [&] {
        auto a = attrs("group");
        a->num_groups = 2;
        SingleNode n("Normalization", std::move(a), {NodeInput::of(x)});
        n.infer();
      },
      "does not divide the 3 channels");
  expect_error(
      [&] {
        SingleNode n("Normalization", attrs("batch"),
                     {NodeInput::of(x), NodeInput::of(f32({3}, {1, 1, 1}))});
        n.infer();
      },
      "mean and var");
  expect_error(
      [&] {
        SingleNode n("Normalization", attrs("instance"),
                     {NodeInput::of(x), NodeInput::of(f32({4}, {1, 1, 1, 1}))});
        n.infer();
      },
      "scale of shape [4] does not broadcast onto X of shape [2,3,4]");
  expect_error(
      [&] {
        SingleNode n("Normalization", attrs("instance"), {NodeInput::of(x)}, 3);
        n.infer();
      },
      "one output");
  expect_error(
      [&] {
        SingleNode n("Normalization", attrs("whiten"), {NodeInput::of(x)});
        n.infer();
      },
      "unknown normalization kind 'whiten'");
}

}  // namespace
}  // namespace kiln::testing
