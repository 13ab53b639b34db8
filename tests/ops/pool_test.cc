// Pool (max with Indices in both storage orders, avg with and without padding in the divisor,
// Lp, global forms, 1-D/3-D, ceil_mode, dilation, auto_pad kept for symbolic shapes, int8) and
// MaxUnpool. Expected values come from a naive numpy loop implementation (independent of kiln);
// ties in max windows resolve to the first element, as numpy's argmax does.
#include "ops/pool.h"

#include "common/error.h"
#include "ops/layout_util.h"
#include "ops/max_unpool.h"
#include "single_node.h"

namespace kiln::testing {
namespace {

// v[i] = ((i * 13) % 17 - 8) / 2: values in [-4, 4] with ties inside most windows.
Tensor xs(Dims d) { return pattern(std::move(d), 13, 17, 8, 0.5f); }

std::unique_ptr<PoolAttrs> attrs(const std::string& kind, Ints kernel, Ints strides = {},
                                 Ints pads = {}, Ints dilations = {}) {
  auto a = std::make_unique<PoolAttrs>();
  a->kind = kind;
  a->kernel = std::move(kernel);
  a->strides = std::move(strides);
  a->pads = std::move(pads);
  a->dilations = std::move(dilations);
  return a;
}

std::vector<Tensor> run(std::unique_ptr<PoolAttrs> a, Tensor x, size_t n_out = 1) {
  return run_node("Pool", std::move(a), {NodeInput::of(std::move(x))}, n_out);
}

TEST(Pool, MaxWithIndicesStride2AsymmetricPads) {
  auto y = run(attrs("max", {3, 2}, {2, 2}, {1, 0, 1, 1}), xs({1, 2, 5, 7}), 2);
  expect_values(y[0], {1, 2, 3, 4}, {2.5, 3.5, 3., 4., 3.,  3.5, 3.5, 4., 3., 4., 3.5, 1.5,
                                     3.5, 1.5, 4., 2., 3.5, 2.5, 4.,  2., 4., 2., 3.5, 2.5});
  EXPECT_EQ(y[1].dtype(), DataType::kInt64);
  expect_ints(y[1], {1, 2, 3, 4}, {1,  9,  5,  13, 22, 9,  26, 13, 22, 30, 26, 27,
                                   43, 44, 47, 48, 43, 52, 47, 48, 64, 65, 60, 69});
}

TEST(Pool, MaxDilatedCeilModeColumnMajorIndices) {
  auto a = attrs("max", {2, 3}, {2, 3}, {}, {2, 1});
  a->ceil_mode = true;
  a->storage_order = 1;
  auto y = run(std::move(a), xs({1, 2, 5, 7}), 2);
  expect_values(y[0], {1, 2, 2, 3}, {2.5, 3., 1., 4., 2.5, -1.5, 2.5, 3., -1., 4., 2.5, 2.5});
  expect_ints(y[1], {1, 2, 2, 3}, {5, 25, 30, 14, 22, 32, 35, 55, 65, 44, 52, 69});
}

TEST(Pool, AverageExcludingPadWithCeilMode) {
  auto a = attrs("avg", {3, 3}, {2, 2}, {1, 1, 0, 0});
  a->ceil_mode = true;
  auto y = run(std::move(a), xs({1, 2, 5, 7}));
  expect_values(y[0], {1, 2, 3, 4},
                {-1.375,
                 0.5833333333333334,
                 -0.5833333333333334,
                 1.375,
                 -0.4166666666666667,
                 -0.1111111111111111,
                 -0.3333333333333333,
                 0.9166666666666666,
                 -0.875,
                 1.0833333333333333,
                 -0.08333333333333333,
                 -0.25,
                 0.875,
                 0.,
                 0.25,
                 1.5,
                 0.4166666666666667,
                 -0.2222222222222222,
                 0.5,
                 0.3333333333333333,
                 1.375,
                 0.5,
                 -0.6666666666666666,
                 -0.125});
}

// With count_include_pad the divisor counts padding, but not the part of a ceil_mode window
// that hangs past the end padding.
TEST(Pool, AverageIncludingPadWithCeilMode) {
  auto a = attrs("avg", {3, 3}, {2, 2}, {1, 1, 0, 0});
  a->ceil_mode = true;
  a->count_include_pad = true;
  auto y = run(std::move(a), xs({1, 2, 5, 7}));
  expect_values(y[0], {1, 2, 3, 4},
                {-0.6111111111111112,
                 0.3888888888888889,
                 -0.3888888888888889,
                 0.9166666666666666,
                 -0.2777777777777778,
                 -0.1111111111111111,
                 -0.3333333333333333,
                 0.9166666666666666,
                 -0.5833333333333334,
                 1.0833333333333333,
                 -0.08333333333333333,
                 -0.25,
                 0.3888888888888889,
                 0.,
                 0.16666666666666666,
                 1.,
                 0.2777777777777778,
                 -0.2222222222222222,
                 0.5,
                 0.3333333333333333,
                 0.9166666666666666,
                 0.5,
                 -0.6666666666666666,
                 -0.125});
}

TEST(Pool, LpOrder3) {
  auto a = attrs("lp", {2, 3}, {1, 2}, {0, 1, 0, 1});
  a->p = 3;
  auto y = run(std::move(a), xs({1, 2, 5, 7}));
  expect_values(y[0], {1, 2, 4, 4},
                {4.7566849549530525, 4.520482758367481,  4.520482758367481,  4.7566849549530525,
                 3.3019272488946263, 5.256605442296263,  4.6241171921065085, 4.364259367593021,
                 4.270375058236876,  4.657009507803835,  5.320662193562438,  3.677881184200551,
                 4.4075799097465005, 4.8857422550881395, 4.428924455282481,  4.908329578072698,
                 4.4075799097465005, 4.5265915262837675, 5.320662193562438,  4.198336453808407,
                 4.270375058236876,  5.117229946912048,  4.6241171921065085, 4.908329578072698,
                 3.3019272488946263, 4.8857422550881395, 4.520482758367481,  3.677881184200551,
                 4.7566849549530525, 4.657009507803835,  5.256605442296263,  4.364259367593021});
}

TEST(Pool, GlobalForms) {
  auto global = [](const char* kind) {
    auto a = std::make_unique<PoolAttrs>();
    a->kind = kind;
    a->global = true;
    return a;
  };
  expect_values(run(global("avg"), xs({2, 3, 4, 5}))[0], {2, 3, 1, 1},
                {-0.05, -0.1, -0.15, 0.225, 0.175, -0.3});
  expect_values(run(global("max"), xs({2, 3, 4, 5}))[0], {2, 3, 1, 1}, {4, 4, 4, 4, 4, 4});
  expect_values(run(global("lp"), xs({2, 3, 4, 5}))[0], {2, 3, 1, 1},
                {11.157956802210698, 11.20267825120404, 10.63014581273465, 10.805091392487155,
                 11.324751652906125, 11.045361017187261});
  // Symbolic spatial dims still give 1s.
  SingleNode n("Pool", global("avg"),
               {NodeInput::shaped(DataType::kFloat,
                                  Shape({Dim::sym("n"), Dim(8), Dim::unknown(), Dim::sym("w")}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[n,8,1,1]");
}

TEST(Pool, OneAndThreeDimensional) {
  auto y = run(attrs("max", {4}, {3}, {2, 0}), xs({1, 2, 9}), 2);
  expect_values(y[0], {1, 2, 3}, {2.5, 2.5, 3., 3.5, 4., 4.});
  expect_ints(y[1], {1, 2, 3}, {1, 1, 5, 9, 13, 13});
  auto z = run(attrs("avg", {2, 2, 3}, {1, 2, 2}), xs({1, 1, 3, 4, 5}));
  expect_values(z[0], {1, 1, 2, 2, 2},
                {0.16666666666666666, -0.2916666666666667, 0., -0.4583333333333333,
                 -0.16666666666666666, 0.7916666666666666, 0.375, -0.7916666666666666});
}

TEST(Pool, AutoPadSameLowerKeptForSymbolicDims) {
  auto a = attrs("max", {3, 3}, {2, 2});
  a->auto_pad = "SAME_LOWER";
  Shape sym({Dim(1), Dim(2), Dim::sym("h"), Dim::sym("w")});
  SingleNode n("Pool", std::move(a), {NodeInput{DataType::kFloat, sym, xs({1, 2, 5, 7}), false}});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[1,2,?,?]");
  expect_values(n.run()[0], {1, 2, 3, 4}, {2.5, 3.5, 3., 4., 3.,  3.5, 3.5, 4., 3., 4., 3.5, 3.5,
                                           3.5, 3.5, 4., 4., 3.5, 3.5, 4.,  4., 4., 4., 3.5, 2.5});
}

TEST(Pool, MaxInt8) {
  std::vector<int8_t> v = {-128, -91, -54, -17, 20, 57,   94,  -124, -87,
                           -50,  -13, 24,  61,  98, -120, -83, -46,  -9};
  auto y = run(attrs("max", {2, 2}), Tensor::from_vector(DataType::kInt8, {1, 2, 3, 3}, v));
  EXPECT_EQ(y[0].dtype(), DataType::kInt8);
  expect_ints(y[0], {1, 2, 2, 2}, {20, 57, 94, 57, 98, 98, 98, 98});
}

TEST(Pool, Errors) {
  auto infer = [](std::unique_ptr<PoolAttrs> a, DataType t, Dims x, size_t n_out = 1) {
    SingleNode n("Pool", std::move(a), {NodeInput::shaped(t, Shape::from(x))}, n_out);
    n.infer();
  };
  expect_error(
      [&] {
        infer(attrs("max", {3}), DataType::kFloat, {1, 2, 5, 5});
      },
      "kernel has 1 values but the input has 2 spatial axes");
  expect_error(
      [&] {
        infer(attrs("avg", {2, 2}), DataType::kInt8, {1, 2, 5, 5});
      },
      "avg pooling needs a floating-point input");
  expect_error(
      [&] {
        infer(attrs("avg", {2, 2}), DataType::kFloat, {1, 2, 5, 5}, 2);
      },
      "only max pooling has an Indices output");
  expect_error(
      [&] {
        infer(attrs("max", {2}), DataType::kFloat, {1, 5});
      },
      "X must have rank >= 3");
  expect_error(
      [&] {
        infer(attrs("max", {7, 2}), DataType::kFloat, {1, 2, 5, 5});
      },
      "larger than the padded input");
  expect_error(
      [&] {
        infer(attrs("median", {2, 2}), DataType::kFloat, {1, 2, 5, 5});
      },
      "kind 'median'");
}

// Channels-last pools against the channels-first compute, transposed: every kind, padding in and
// out of the divisor, ceil mode, dilation, global forms, 1-D and 3-D.
TEST(Pool, ChannelsLastMatchesChannelsFirst) {
  std::mt19937 rng(21);
  struct Case {
    std::unique_ptr<PoolAttrs> a;
    Dims x;
  };
  std::vector<Case> cases;
  cases.push_back({attrs("max", {3, 3}, {2, 2}, {1, 1, 1, 1}), {2, 5, 7, 6}});
  cases.push_back({attrs("avg", {3, 2}, {2, 1}, {1, 0, 1, 1}), {1, 3, 5, 7}});
  cases.push_back({attrs("avg", {2, 2}, {2, 2}, {1, 1, 0, 0}), {2, 4, 5, 5}});
  cases.back().a->count_include_pad = true;
  cases.back().a->ceil_mode = true;
  cases.push_back({attrs("max", {2, 2}, {1, 1}, {}, {2, 2}), {1, 2, 6, 6}});
  cases.push_back({attrs("lp", {2, 3}), {1, 3, 4, 5}});
  cases.back().a->p = 3;
  cases.push_back({attrs("avg", {}), {2, 6, 3, 4}});
  cases.back().a->global = true;
  cases.push_back({attrs("max", {}), {2, 6, 3, 4}});
  cases.back().a->global = true;
  cases.push_back({attrs("max", {3}, {2}), {2, 3, 9}});
  cases.push_back({attrs("avg", {2, 2, 2}), {1, 2, 3, 4, 5}});
  for (Case& c : cases) {
    SCOPED_TRACE(c.a->kind + " " + dims_to_string(c.x));
    Tensor x = random_tensor(c.x, rng);
    auto cl = std::make_unique<PoolAttrs>(*c.a);
    cl->channels_last = true;
    Tensor ref = run(std::move(c.a), x)[0];
    Tensor want = permuted(ref, channels_last_perm(ref.rank()));
    Tensor got = run(std::move(cl), permuted(x, channels_last_perm(x.rank())))[0];
    ASSERT_EQ(dims_to_string(got.dims()), dims_to_string(want.dims()));
    for (int64_t i = 0; i < want.numel(); ++i)
      EXPECT_EQ(got.get_f64(i), want.get_f64(i)) << "element " << i;
  }
}

TEST(Pool, ChannelsLastHasNoIndices) {
  auto a = attrs("max", {2, 2});
  a->channels_last = true;
  SingleNode n("Pool", std::move(a), {NodeInput::of(xs({1, 4, 4, 2}))}, 2);
  expect_error([&] { n.infer(); }, "a channels-last pool has no Indices output");
}

std::unique_ptr<MaxUnpoolAttrs> unpool_attrs(Ints kernel, Ints strides, Ints pads = {}) {
  auto a = std::make_unique<MaxUnpoolAttrs>();
  a->kernel = std::move(kernel);
  a->strides = std::move(strides);
  a->pads = std::move(pads);
  return a;
}

TEST(MaxUnpool, InvertsMaxPoolIndices) {
  // MaxPool's outputs from Pool.MaxWithIndicesStride2AsymmetricPads (input [1,2,5,7], kernel
  // [3,2], strides 2, pads [1,0,1,1]); the default unpooled shape is
  // [(3-1)*2-2+3, (4-1)*2-1+2] = [5, 7], the pooled input's.
  std::vector<double> vals = {2.5, 3.5, 3., 4., 3.,  3.5, 3.5, 4., 3., 4., 3.5, 1.5,
                              3.5, 1.5, 4., 2., 3.5, 2.5, 4.,  2., 4., 2., 3.5, 2.5};
  std::vector<int64_t> idx = {1,  9,  5,  13, 22, 9,  26, 13, 22, 30, 26, 27,
                              43, 44, 47, 48, 43, 52, 47, 48, 64, 65, 60, 69};
  Tensor x(DataType::kFloat, {1, 2, 3, 4});
  for (size_t i = 0; i < vals.size(); ++i) x.set_f64(i, vals[i]);
  SingleNode n("MaxUnpool", unpool_attrs({3, 2}, {2, 2}, {1, 0, 1, 1}),
               {NodeInput::of(x), NodeInput::of(i64({1, 2, 3, 4}, idx))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[1,2,5,7]");
  std::vector<double> want(70, 0.0);
  for (size_t i = 0; i < idx.size(); ++i) want[idx[i]] = vals[i];
  expect_values(n.run()[0], {1, 2, 5, 7}, want);
}

TEST(MaxUnpool, DefaultShapeAndOutputShape) {
  Tensor x = f32({1, 1, 2, 2}, {5, 6, 7, 8});
  Tensor ind = i64({1, 1, 2, 2}, {5, 7, 13, 15});
  SingleNode a("MaxUnpool", unpool_attrs({2, 2}, {2, 2}), {NodeInput::of(x), NodeInput::of(ind)});
  a.infer();
  expect_values(a.run()[0], {1, 1, 4, 4}, {0, 0, 0, 0, 0, 5, 0, 6, 0, 0, 0, 0, 0, 7, 0, 8});
  // A larger output_shape keeps the coordinates of the default 4x4 shape (the ONNX reference).
  SingleNode b("MaxUnpool", unpool_attrs({2, 2}, {2, 2}),
               {NodeInput::of(x), NodeInput::of(ind), NodeInput::of(i64({4}, {1, 1, 5, 5}))});
  b.infer();
  EXPECT_FALSE(b.out(0).shape.rank_known);  // output_shape is a run-time value here
  expect_values(b.run()[0], {1, 1, 5, 5},
                {0, 0, 0, 0, 0, 0, 5, 0, 6, 0, 0, 0, 0, 0, 0, 0, 7, 0, 8, 0, 0, 0, 0, 0, 0});
}

TEST(MaxUnpool, Errors) {
  Tensor x = f32({1, 1, 2, 2}, {5, 6, 7, 8});
  SingleNode bad_index("MaxUnpool", unpool_attrs({2, 2}, {2, 2}),
                       {NodeInput::of(x), NodeInput::of(i64({1, 1, 2, 2}, {5, 7, 13, 16}))});
  bad_index.infer();
  expect_error([&] { bad_index.run(); }, "index 16 at position 3 is outside");
  SingleNode small("MaxUnpool", unpool_attrs({2, 2}, {2, 2}),
                   {NodeInput::of(x), NodeInput::of(i64({1, 1, 2, 2}, {5, 7, 13, 15})),
                    NodeInput::constant_of(i64({4}, {1, 1, 3, 3}))});
  expect_error([&] { small.infer(); }, "is smaller than the unpooled shape");
  SingleNode kernel("MaxUnpool", unpool_attrs({2}, {2}),
                    {NodeInput::of(x), NodeInput::of(i64({1, 1, 2, 2}, {5, 7, 13, 15}))});
  expect_error([&] { kernel.infer(); }, "kernel has 1 values but X has 2 spatial axes");
}

}  // namespace
}  // namespace kiln::testing
