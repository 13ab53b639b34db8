// Conv: grouped, strided, dilated, asymmetric pads, 1-D/2-D/3-D, transposed (groups, dilation,
// output_padding, auto_pad kept for symbolic shapes), integer exactness, symbolic shapes and
// errors. Expected values come from a naive numpy loop implementation (independent of kiln).
#include "ops/conv.h"

#include "common/error.h"
#include "ops/layout_util.h"
#include "single_node.h"

namespace kiln::testing {
namespace {

Tensor xs(Dims d) { return pattern(std::move(d), 7, 11, 5, 0.25f); }
Tensor ws(Dims d) { return pattern(std::move(d), 5, 7, 3, 0.5f); }

std::unique_ptr<ConvAttrs> attrs(Ints strides, Ints pads, Ints dilations = {}, int64_t group = 1) {
  auto a = std::make_unique<ConvAttrs>();
  a->strides = std::move(strides);
  a->pads = std::move(pads);
  a->dilations = std::move(dilations);
  a->group = group;
  return a;
}

Tensor run(std::unique_ptr<ConvAttrs> a, std::vector<NodeInput> ins) {
  return run_node1("Conv", std::move(a), std::move(ins));
}

TEST(Conv, ThreeGroupsStride2AsymmetricPadsBias) {
  Tensor b = f32({6}, {0.5f, -1, 0.25f, 2, -0.75f, 1.5f});
  Tensor y = run(attrs({2, 2}, {1, 0, 0, 1}, {}, 3),
                 {NodeInput::of(xs({1, 6, 5, 7})), NodeInput::constant_of(ws({6, 2, 3, 3})),
                  NodeInput::constant_of(b)});
  expect_values(
      y, {1, 6, 2, 3},
      {5.25,   0.,    0.25,   -2.5,  3.25,   0.75,   1.75,   1.375, -3.125, -8.5,  5.25,  -8.5,
       -0.25,  5.625, -0.875, -2.75, 3.875,  -7.375, -3.,    7.75,  -2.125, 2.625, 5.,    -0.875,
       -4.375, 1.75,  -5.875, 2.875, -1.875, -3.875, -3.375, 7.625, 4.875,  2.,    2.625, 6.});
}

TEST(Conv, Dilation2WithPadding) {
  Tensor y = run(attrs({}, {1, 1, 1, 1}, {2, 2}),
                 {NodeInput::of(xs({1, 2, 7, 5})), NodeInput::constant_of(ws({3, 2, 2, 3}))});
  expect_values(
      y, {1, 3, 7, 3},
      {1.625, -1.5,   -2.25,  -3.375, 1.5,    1.25,   2.25,   0.125,  -1.625, 1.,     -4.,
       1.,    -1.625, 0.125,  2.25,   1.25,   1.5,    -3.375, -2.25,  -1.5,   1.625,  0.,
       -0.75, 2.25,   -1.125, -2.875, 0.875,  0.625,  -1.75,  -0.625, 1.,     2.125,  -0.75,
       0.,    4.625,  -2.25,  -1.,    -1.125, 3.125,  -0.625, -0.5,   0.625,  -1.625, 2.625,
       0.625, 0.25,   3.25,   3.125,  1.625,  -2.75,  -2.25,  -2.5,   -0.5,   -0.75,  1.625,
       0.375, -0.625, 0.25,   -2.875, 0.875,  -1.625, -1.25,  2.25});
}

TEST(Conv, OneDimensionalStride2OddLength) {
  Tensor y = run(attrs({2}, {2, 1}),
                 {NodeInput::of(xs({2, 2, 9})), NodeInput::constant_of(ws({2, 2, 4}))});
  expect_values(y, {2, 2, 5},
                {-0.5,   2.,    -0.5,   -0.25, -2.,   0.625, 4.,  -0.75, -2.75, 1.,
                 -0.125, 0.125, -2.375, 2.,    0.625, 0.625, -3., 1.875, 4.,    -0.875});
}

TEST(Conv, ThreeDimensional) {
  Tensor y = run(attrs({1, 2, 2}, {}),
                 {NodeInput::of(xs({1, 1, 3, 4, 5})), NodeInput::constant_of(ws({2, 1, 2, 3, 2})),
                  NodeInput::constant_of(f32({2}, {1, -2}))});
  expect_values(y, {1, 2, 2, 1, 2}, {4.75, 2., -0.75, 4.75, -0.5, -6.375, -2.875, -0.5});
}

TEST(Conv, DoubleAndFloat16) {
  // The 1-D case again in float64 (identical values) and in float16 (all values exact there).
  auto to = [](const Tensor& t, DataType dt) {
    Tensor r(dt, t.dims());
    for (int64_t i = 0; i < t.numel(); ++i) r.set_f64(i, t.get_f64(i));
    return r;
  };
  for (DataType dt : {DataType::kDouble, DataType::kFloat16}) {
    Tensor y = run(attrs({2}, {2, 1}),
                   {NodeInput::of(to(xs({2, 2, 9}), dt)), NodeInput::of(to(ws({2, 2, 4}), dt))});
    EXPECT_EQ(y.dtype(), dt);
    expect_values(y, {2, 2, 5},
                  {-0.5,   2.,    -0.5,   -0.25, -2.,   0.625, 4.,  -0.75, -2.75, 1.,
                   -0.125, 0.125, -2.375, 2.,    0.625, 0.625, -3., 1.875, 4.,    -0.875});
  }
}

TEST(Conv, Int64IsExact) {
  // Values near 2^40 whose products overflow a double's mantissa but not int64.
  int64_t big = int64_t(1) << 40;
  Tensor x = Tensor::from_vector<int64_t>(DataType::kInt64, {1, 1, 3}, {big + 1, 3, big + 7});
  Tensor w = Tensor::from_vector<int64_t>(DataType::kInt64, {1, 1, 2}, {1000, -1});
  Tensor y = run(attrs({}, {}), {NodeInput::of(x), NodeInput::of(w)});
  expect_ints(y, {1, 1, 2}, {(big + 1) * 1000 - 3, 3000 - big - 7});
}

TEST(ConvTranspose, TwoGroupsStridesDilationOutputPaddingPads) {
  auto a = attrs({2, 2}, {1, 0, 0, 1}, {1, 2}, 2);
  a->transposed = true;
  a->output_padding = {1, 0};
  Tensor y = run(std::move(a), {NodeInput::of(xs({1, 2, 2, 3})), NodeInput::of(ws({2, 1, 3, 2})),
                                NodeInput::of(f32({2}, {0.5f, -0.5f}))});
  expect_values(y, {1, 2, 5, 6},
                {0.5,    0.5,  1.75,  0.5,  0.,    0.5,  -3.25, 0.5,  1.5,   0.5,  1.375, 0.5,
                 0.5,    0.5,  -0.75, 0.5,  0.25,  0.5,  2.375, 0.5,  1.5,   0.5,  -0.5,  0.5,
                 0.5,    0.5,  0.5,   0.5,  0.5,   0.5,  0.5,   -0.5, -0.5,  -0.5, -1.5,  -0.5,
                 -1.875, -0.5, 0.,    -0.5, 1.5,   -0.5, 0.25,  -0.5, -0.75, -0.5, -1.75, -0.5,
                 -1.25,  -0.5, 0.875, -0.5, 0.375, -0.5, -0.5,  -0.5, -0.5,  -0.5, -0.5,  -0.5});
}

// auto_pad stays on the node while the spatial dims are symbolic; infer() gives unknown dims and
// the run resolves SAME_UPPER from the real sizes (pads end up [0,0,1,1]).
TEST(ConvTranspose, AutoPadSameUpperResolvedAtRunTime) {
  auto a = attrs({2, 2}, {});
  a->transposed = true;
  a->auto_pad = "SAME_UPPER";
  Shape sym({Dim::sym("n"), Dim(1), Dim::sym("h"), Dim::sym("w")});
  NodeInput x{DataType::kFloat, sym, xs({1, 1, 2, 3}), false, false};
  SingleNode n("Conv", std::move(a), {x, NodeInput::constant_of(ws({1, 2, 3, 3}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[n,2,?,?]");
  Tensor y = n.run()[0];
  expect_values(
      y, {1, 2, 4, 6},
      {1.875, -1.25, -0.75,  0.5,   0.75,   -0.5, 1.25,   -1.875, -1.125, 0.75,   0.75,  -0.75,
       -1.25, 3.125, -1.875, -0.5,  1.875,  0.,   -1.25,  1.875,  0.375,  0.375,  0.875, -1.125,
       0.,    1.25,  -1.875, -0.5,  0.75,   0.5,  -0.625, 0.625,  2.125,  -0.25,  -1.,   0.25,
       -1.25, -1.25, 3.625,  -0.25, -0.625, 0.75, 0.625,  -0.625, -1.75,  -0.125, -0.75, 0.375});
}

TEST(ConvTranspose, OutputShapeBeyondFullSizeGrowsAtTheEnd) {
  ConvAttrs a;
  a.transposed = true;
  a.strides = {3};
  a.output_shape = {11};
  ConvGeometry g = conv_geometry(a, {3}, {3});  // full size 3*2+3 = 9
  EXPECT_EQ(g.out, Ints{11});
  EXPECT_EQ(g.pad_begin, Ints{0});
  EXPECT_EQ(g.pad_end, Ints{0});
  EXPECT_EQ(g.output_padding, Ints{2});
}

TEST(Conv, SymbolicShapes) {
  Shape sym({Dim::sym("batch"), Dim(3), Dim::unknown(), Dim(7)});
  SingleNode n(
      "Conv", attrs({1, 2}, {0, 1, 0, 1}),
      {NodeInput::shaped(DataType::kFloat, sym), NodeInput::constant_of(ws({4, 3, 3, 3}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[batch,4,?,4]");
  SingleNode u("Conv", attrs({}, {}),
               {NodeInput::shaped(DataType::kFloat, Shape::unknown_rank()),
                NodeInput::constant_of(ws({4, 3, 3, 3}))});
  u.infer();
  EXPECT_EQ(u.out(0).shape.str(), "[?,4,?,?]");
}

TEST(Conv, AutoPadSameLowerKeptForSymbolicDims) {
  auto a = attrs({2, 2}, {});
  a->auto_pad = "SAME_LOWER";
  Shape sym({Dim(1), Dim(1), Dim::sym("h"), Dim::sym("w")});
  Tensor x = pattern({1, 1, 5, 5}, 1, 1000, 0, 1.0f);  // 0..24
  Tensor w = f32({1, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 1, 1, 1});
  SingleNode n("Conv", std::move(a),
               {NodeInput{DataType::kFloat, sym, x, false, false}, NodeInput::constant_of(w)});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[1,1,?,?]");
  // ONNX's test_conv_with_autopad_same: 3x3 output, pads [1,1,1,1].
  expect_values(n.run()[0], {1, 1, 3, 3}, {12, 27, 24, 63, 108, 81, 72, 117, 84});
}

TEST(Conv, Errors) {
  auto infer = [](std::unique_ptr<ConvAttrs> a, Dims x, Dims w) {
    SingleNode n("Conv", std::move(a),
                 {NodeInput::shaped(DataType::kFloat, Shape::from(x)),
                  NodeInput::shaped(DataType::kFloat, Shape::from(w))});
    n.infer();
  };
  expect_error([&] { infer(attrs({}, {}), {1, 4, 5, 5}, {2, 3, 3, 3}); }, "channel mismatch");
  expect_error(
      [&] {
        infer(attrs({}, {}, {}, 2), {1, 4, 5, 5}, {3, 2, 3, 3});
      },
      "group 2 does not divide");
  expect_error([&] { infer(attrs({}, {}), {1, 3, 5, 5}, {2, 3, 3}); }, "weight rank mismatch");
  expect_error([&] { infer(attrs({}, {}), {1, 3, 5, 5}, {2, 3}); }, "W must have rank >= 3");
  expect_error([&] { infer(attrs({1}, {}), {1, 3, 5, 5}, {2, 3, 3, 3}); }, "strides has 1 values");
  expect_error(
      [&] {
        infer(attrs({}, {}), {1, 3, 2, 5}, {2, 3, 3, 3});
      },
      "larger than the padded input");
  auto t = attrs({}, {});
  t->transposed = true;
  expect_error([&] { infer(std::move(t), {1, 3, 5, 5}, {4, 2, 3, 3}); }, "channel mismatch");
  SingleNode bias("Conv", attrs({}, {}),
                  {NodeInput::shaped(DataType::kFloat, Shape::from({1, 3, 5, 5})),
                   NodeInput::shaped(DataType::kFloat, Shape::from({2, 3, 3, 3})),
                   NodeInput::shaped(DataType::kFloat, Shape::from({3}))});
  expect_error([&] { bias.infer(); }, "B has 3 elements");
  SingleNode types("Conv", attrs({}, {}),
                   {NodeInput::shaped(DataType::kFloat, Shape::from({1, 3, 5, 5})),
                    NodeInput::shaped(DataType::kDouble, Shape::from({2, 3, 3, 3}))});
  expect_error([&] { types.infer(); }, "W is float64 but X is float32");
}


// Channels-last (NHWC) and the fused epilogue, both checked against the plain channels-first
// compute: the NHWC output must be the NCHW one transposed, element for element.
Tensor to_nhwc(const Tensor& t) { return permuted(t, channels_last_perm(t.rank())); }

void expect_same(const Tensor& got, const Tensor& want, double rtol = 0, double atol = 0) {
  ASSERT_EQ(dims_to_string(got.dims()), dims_to_string(want.dims()));
  ASSERT_EQ(got.dtype(), want.dtype());
  int nonzero = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    double w = want.get_f64(i);
    nonzero += w != 0;
    EXPECT_NEAR(got.get_f64(i), w, atol + rtol * std::fabs(w)) << "element " << i;
  }
  EXPECT_GT(nonzero, 0);
}

TEST(Conv, ChannelsLastMatchesChannelsFirst) {
  std::mt19937 rng(11);
  struct Case {
    Dims x, w;
    Ints strides, pads, dilations;
    int64_t group;
    bool transposed;
    Ints output_padding;
  };
  const Case cases[] = {
      {{2, 6, 7, 5}, {4, 3, 3, 3}, {2, 1}, {1, 0, 1, 1}, {}, 2, false, {}},
      {{1, 3, 9, 8}, {5, 3, 1, 1}, {}, {}, {}, 1, false, {}},
      {{3, 4, 6, 6}, {4, 1, 3, 3}, {}, {1, 1, 1, 1}, {2, 2}, 4, false, {}},  // depthwise, dilated
      {{2, 3, 11}, {2, 3, 4}, {2}, {2, 1}, {}, 1, false, {}},               // 1-D
      {{1, 2, 3, 4, 5}, {3, 2, 2, 3, 2}, {1, 2, 2}, {}, {}, 1, false, {}},  // 3-D
      {{2, 4, 5, 3}, {4, 3, 3, 2}, {2, 2}, {1, 0, 0, 1}, {}, 2, true, {1, 0}},  // transposed
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(dims_to_string(c.x) + " W " + dims_to_string(c.w));
    auto make = [&](bool cl) {
      auto a = attrs(c.strides, c.pads, c.dilations, c.group);
      a->transposed = c.transposed;
      a->output_padding = c.output_padding;
      a->channels_last = cl;
      return a;
    };
    Tensor x = random_tensor(c.x, rng), w = random_tensor(c.w, rng);
    int64_t m = c.transposed ? c.w[1] * c.group : c.w[0];
    Tensor b = random_tensor({m}, rng);
    Tensor ref = run(make(false), {NodeInput::of(x), NodeInput::constant_of(w),
                                   NodeInput::constant_of(b)});
    SingleNode n("Conv", make(true), {NodeInput::of(to_nhwc(x)), NodeInput::constant_of(w),
                                      NodeInput::constant_of(b)});
    n.infer();
    EXPECT_EQ(n.out(0).shape, Shape::from(to_nhwc(ref).dims()));
    expect_same(n.run()[0], to_nhwc(ref));
  }
}

TEST(Conv, ChannelsLastSymbolicBatchInfers) {
  auto a = attrs({2, 2}, {1, 1, 1, 1});
  a->channels_last = true;
  SingleNode n("Conv", std::move(a),
               {NodeInput::shaped(DataType::kFloat, Shape({Dim::sym("N"), Dim(9), Dim(7), Dim(3)})),
                NodeInput::shaped(DataType::kFloat, Shape::from({8, 3, 3, 3}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[N,5,4,8]");
}

TEST(Conv, FusedReluAndResidualMatchSeparateOps) {
  std::mt19937 rng(12);
  Tensor x = random_tensor({2, 3, 6, 5}, rng), w = random_tensor({4, 3, 3, 3}, rng);
  Tensor b = random_tensor({4}, rng);
  Tensor y = run(attrs({1, 1}, {1, 1, 1, 1}),
                 {NodeInput::of(x), NodeInput::constant_of(w), NodeInput::constant_of(b)});
  Tensor z = random_tensor(y.dims(), rng, -2, 2);
  // The separate ops, in float32 as the unfused graph computes them.
  Tensor add(DataType::kFloat, y.dims()), add_relu(DataType::kFloat, y.dims()),
      relu(DataType::kFloat, y.dims());
  for (int64_t i = 0; i < y.numel(); ++i) {
    float s = y.data<float>()[i] + z.data<float>()[i];
    add.data<float>()[i] = s;
    add_relu.data<float>()[i] = s > 0 ? s : 0;
    relu.data<float>()[i] = std::max(y.data<float>()[i], 0.0f);
  }
  struct Case {
    const char* act;
    bool residual;
    const Tensor& want;
  };
  const Case cases[] = {{"relu", false, relu}, {"", true, add}, {"relu", true, add_relu}};
  for (const Case& c : cases)
    for (bool cl : {false, true}) {
      SCOPED_TRACE(std::string(c.act) + (c.residual ? " + residual" : "") + (cl ? " NHWC" : ""));
      auto a = attrs({1, 1}, {1, 1, 1, 1});
      a->activation = c.act;
      a->channels_last = cl;
      std::vector<NodeInput> ins{NodeInput::of(cl ? to_nhwc(x) : x), NodeInput::constant_of(w),
                                 NodeInput::constant_of(b)};
      if (c.residual) ins.push_back(NodeInput::of(cl ? to_nhwc(z) : z));
      Tensor got = run(std::move(a), std::move(ins));
      // The fused compute rounds once where the separate ops round twice.
      expect_same(got, cl ? to_nhwc(c.want) : c.want, 1e-6, 1e-6);
      int zeros = 0;
      for (int64_t i = 0; i < got.numel(); ++i) zeros += got.get_f64(i) == 0;
      if (std::string(c.act) == "relu") {
        EXPECT_GT(zeros, 0);
      }
    }
  // B may be omitted while Z is given: inputs X, W, none, Z.
  auto a = attrs({1, 1}, {1, 1, 1, 1});
  Tensor y0 = run(attrs({1, 1}, {1, 1, 1, 1}), {NodeInput::of(x), NodeInput::constant_of(w)});
  Tensor got = run(std::move(a), {NodeInput::of(x), NodeInput::constant_of(w), NodeInput::none(),
                                  NodeInput::of(z)});
  for (int64_t i = 0; i < got.numel(); ++i)
    EXPECT_NEAR(got.get_f64(i), y0.get_f64(i) + z.get_f64(i), 1e-5) << i;
}

TEST(Conv, EpilogueErrors) {
  auto x = NodeInput::shaped(DataType::kFloat, Shape::from({1, 3, 5, 5}));
  auto w = NodeInput::shaped(DataType::kFloat, Shape::from({2, 3, 3, 3}));
  auto tanh = attrs({}, {});
  tanh->activation = "tanh";
  SingleNode act("Conv", std::move(tanh), {x, w});
  expect_error([&] { act.infer(); }, "activation 'tanh'");
  SingleNode shape("Conv", attrs({}, {}),
                   {x, w, NodeInput::none(),
                    NodeInput::shaped(DataType::kFloat, Shape::from({1, 2, 3, 4}))});
  expect_error([&] { shape.infer(); }, "residual Z [1,2,3,4] does not have the output's shape");
  SingleNode type("Conv", attrs({}, {}),
                  {x, w, NodeInput::none(),
                   NodeInput::shaped(DataType::kDouble, Shape::from({1, 2, 3, 3}))});
  expect_error([&] { type.infer(); }, "residual Z is float64");
  auto relu = attrs({}, {});
  relu->activation = "relu";
  SingleNode ints("Conv", std::move(relu),
                  {NodeInput::shaped(DataType::kInt32, Shape::from({1, 3, 5, 5})),
                   NodeInput::shaped(DataType::kInt32, Shape::from({2, 3, 3, 3}))});
  expect_error([&] { ints.infer(); }, "needs a floating-point type");
}

}  // namespace
}  // namespace kiln::testing
