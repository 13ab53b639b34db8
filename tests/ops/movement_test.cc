// Data-movement ops: Transpose, Slice, Concat, Pad, Tile, Expand, Trilu, Compress, NonZero,
// ReverseSequence. Expected values come from numpy (pasted as literals); symbolic-shape inference
// and error cases are checked too.
#include <limits>

#include "common/error.h"
#include "ops/compress.h"
#include "ops/concat.h"
#include "ops/pad.h"
#include "ops/reverse_sequence.h"
#include "ops/transpose.h"
#include "ops/trilu.h"
#include "single_node.h"

namespace kiln::testing {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

std::unique_ptr<TransposeAttrs> perm(Ints p) {
  auto a = std::make_unique<TransposeAttrs>();
  a->perm = std::move(p);
  return a;
}

Shape sym(std::vector<Dim> d) { return Shape(std::move(d)); }

// ---- Transpose ----

TEST(Transpose, Perm120) {
  Tensor y = run_node1("Transpose", perm({1, 2, 0}),
                       {NodeInput::of(f32({2, 3, 4}, iota_f(24, 0.5f, -3)))});
  expect_values(y, {3, 4, 2}, {-3.0, 3.0, -2.5, 3.5, -2.0, 4.0, -1.5, 4.5, -1.0, 5.0, -0.5, 5.5,
                               0.0,  6.0, 0.5,  6.5, 1.0,  7.0, 1.5,  7.5, 2.0,  8.0, 2.5,  8.5});
}

TEST(Transpose, DefaultReversesInt32) {
  Tensor x = i32({2, 3, 5}, {-4, 3,  -1, 6, 2,  -2, 5, 1,  -3, 4,  0, -4, 3,  -1, 6,
                             2,  -2, 5,  1, -3, 4,  0, -4, 3,  -1, 6, 2,  -2, 5,  1});
  Tensor y = run_node1("Transpose", perm({}), {NodeInput::of(x)});
  EXPECT_EQ(y.dtype(), DataType::kInt32);
  expect_ints(y, {5, 3, 2}, {-4, 2, -2, 4, 0, 6,  3, -2, 5, 0, -4, 2, -1, 5, 1,
                             -4, 3, -2, 6, 1, -3, 3, -1, 5, 2, -3, 4, -1, 6, 1});
}

TEST(Transpose, SymbolicDimsMove) {
  SingleNode n("Transpose", perm({2, 0, 1}),
               {NodeInput::shaped(DataType::kFloat, sym({Dim::sym("N"), 3, 5}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[5,N,3]");
}

TEST(Transpose, BadPermIsAnError) {
  auto x = NodeInput::shaped(DataType::kFloat, Shape::from({2, 3, 4}));
  expect_error([&] { SingleNode("Transpose", perm({0, 0, 1}), {x}).infer(); }, "not a permutation");
  expect_error([&] { SingleNode("Transpose", perm({1, 0}), {x}).infer(); }, "rank 3");
  expect_error([&] { SingleNode("Transpose", perm({0, 1, 3}), {x}).infer(); }, "not a permutation");
}

// ---- Slice ----

TEST(Slice, NegativeStepsAndOpenEnds) {
  // numpy: x[4::-2, 1::3]
  Tensor y = run_node1("Slice", nullptr,
                       {NodeInput::of(f32({5, 7}, iota_f(35))), c64({-1, 1}), c64({kMin, 100}),
                        c64({0, 1}), c64({-2, 3})});
  expect_values(y, {3, 2}, {29, 32, 15, 18, 1, 4});
}

TEST(Slice, NegativeStartsClampAndEndsExclusive) {
  // numpy: x[-2:-6:-1, -1:-8:-3] (axes given in reverse order)
  Tensor y = run_node1("Slice", nullptr,
                       {NodeInput::of(f32({5, 7}, iota_f(35))), c64({-1, -2}), c64({-8, -6}),
                        c64({-1, 0}), c64({-3, -1})});
  expect_values(y, {4, 3}, {27, 24, 21, 20, 17, 14, 13, 10, 7, 6, 3, 0});
}

TEST(Slice, StartPastTheEndGivesEmpty) {
  Tensor y =
      run_node1("Slice", nullptr, {NodeInput::of(f32({5, 7}, iota_f(35))), c64({10}), c64({20})});
  EXPECT_EQ(dims_to_string(y.dims()), "[0,7]");
}

TEST(Slice, RunTimeStartsWithInt32) {
  // starts/ends known only at run time, int32: x[1:3, :] of a [4,3] int64 tensor.
  Tensor x = i64({4, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  SingleNode n("Slice", nullptr,
               {NodeInput::of(x), NodeInput::of(i32({1}, {1})), NodeInput::of(i32({1}, {3}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[?,3]");
  expect_ints(n.run()[0], {2, 3}, {3, 4, 5, 6, 7, 8});
}

TEST(Slice, SymbolicInference) {
  SingleNode n("Slice", nullptr,
               {NodeInput::shaped(DataType::kFloat, sym({Dim::sym("N"), 10, Dim::sym("T")})),
                c64({0, 2, 1}), c64({kMax, 8, kMax})});
  n.infer();
  // Whole axis keeps its symbol; a partial slice of a symbolic dim is unknown.
  EXPECT_EQ(n.out(0).shape.str(), "[N,6,?]");
}

TEST(Slice, Errors) {
  auto x = NodeInput::shaped(DataType::kFloat, Shape::from({4, 5}));
  expect_error(
      [&] {
        SingleNode("Slice", nullptr, {x, c64({0}), c64({2}), c64({0}), c64({0})}).infer();
      },
      "steps must not be 0");
  expect_error(
      [&] {
        SingleNode("Slice", nullptr, {x, c64({0, 0}), c64({2, 2}), c64({1, -1})}).infer();
      },
      "repeated");
  expect_error(
      [&] {
        SingleNode("Slice", nullptr, {x, c64({0}), c64({2}), c64({2})}).infer();
      },
      "out of range");
}

// ---- Concat ----

std::unique_ptr<ConcatAttrs> cat_axis(int64_t axis) {
  auto a = std::make_unique<ConcatAttrs>();
  a->axis = axis;
  return a;
}

TEST(Concat, ThreeInputsNegativeAxis) {
  std::vector<int64_t> a(6), b(12), c(18);
  for (int i = 0; i < 6; ++i) a[i] = i;
  for (int i = 0; i < 12; ++i) b[i] = 100 + i;
  for (int i = 0; i < 18; ++i) c[i] = 200 + i;
  Tensor y = run_node1("Concat", cat_axis(-2),
                       {NodeInput::of(i64({2, 1, 3}, a)), NodeInput::of(i64({2, 2, 3}, b)),
                        NodeInput::of(i64({2, 3, 3}, c))});
  expect_ints(y, {2, 6, 3},
              {0, 1, 2, 100, 101, 102, 103, 104, 105, 200, 201, 202, 203, 204, 205, 206, 207, 208,
               3, 4, 5, 106, 107, 108, 109, 110, 111, 209, 210, 211, 212, 213, 214, 215, 216, 217});
}

TEST(Concat, SymbolicInference) {
  auto a = NodeInput::shaped(DataType::kFloat, sym({Dim::sym("N"), 2}));
  auto b = NodeInput::shaped(DataType::kFloat, sym({Dim::unknown(), 3}));
  SingleNode n1("Concat", cat_axis(1), {a, b});
  n1.infer();
  EXPECT_EQ(n1.out(0).shape.str(), "[N,5]");
  SingleNode n2("Concat", cat_axis(0),
                {a, NodeInput::shaped(DataType::kFloat, Shape::from({4, 2}))});
  n2.infer();
  EXPECT_EQ(n2.out(0).shape.str(), "[?,2]");
}

TEST(Concat, Errors) {
  auto a = NodeInput::shaped(DataType::kFloat, Shape::from({2, 3}));
  expect_error(
      [&] {
        SingleNode("Concat", cat_axis(0),
                   {a, NodeInput::shaped(DataType::kFloat, Shape::from({2, 4}))})
            .infer();
      },
      "differs");
  expect_error(
      [&] {
        SingleNode("Concat", cat_axis(0),
                   {a, NodeInput::shaped(DataType::kInt64, Shape::from({2, 3}))})
            .infer();
      },
      "int64");
  expect_error([&] { SingleNode("Concat", cat_axis(2), {a, a}).infer(); }, "out of range");
}

TEST(Concat, BoolAndFloat16MoveBytesUnchanged) {
  Tensor a = Tensor::from_vector<uint8_t>(DataType::kBool, {1, 2}, {1, 0});
  Tensor b = Tensor::from_vector<uint8_t>(DataType::kBool, {1, 1}, {1});
  Tensor y = run_node1("Concat", cat_axis(1), {NodeInput::of(a), NodeInput::of(b)});
  EXPECT_EQ(y.dtype(), DataType::kBool);
  expect_ints(y, {1, 3}, {1, 0, 1});
  // float16 bits of 1.5, -2, 65504 (max) and a NaN must survive a transpose bit for bit.
  Tensor h =
      Tensor::from_vector<uint16_t>(DataType::kFloat16, {2, 2}, {0x3e00, 0xc000, 0x7bff, 0x7e01});
  Tensor t = run_node1("Transpose", perm({}), {NodeInput::of(h)});
  ASSERT_EQ(t.dtype(), DataType::kFloat16);
  const uint16_t want[] = {0x3e00, 0x7bff, 0xc000, 0x7e01};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(t.data<uint16_t>()[i], want[i]);
}

// ---- Pad ----

std::unique_ptr<PadAttrs> pad_mode(const std::string& m) {
  auto a = std::make_unique<PadAttrs>();
  a->mode = m;
  return a;
}

TEST(Pad, ConstantWithCropping) {
  // numpy: np.pad(x[:, :3], ((1, 2), (0, 0)), constant_values=9.5)
  Tensor y = run_node1(
      "Pad", pad_mode("constant"),
      {NodeInput::of(f32({3, 4}, iota_f(12))), c64({1, 0, 2, -1}), NodeInput::of(f32({}, {9.5f}))});
  expect_values(y, {6, 3},
                {9.5, 9.5, 9.5, 0, 1, 2, 4, 5, 6, 8, 9, 10, 9.5, 9.5, 9.5, 9.5, 9.5, 9.5});
}

TEST(Pad, Reflect) {
  Tensor y = run_node1("Pad", pad_mode("reflect"),
                       {NodeInput::of(f32({2, 5}, iota_f(10))), c64({0, 3, 0, 4})});
  expect_values(y, {2, 12},
                {3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1, 0, 8, 7, 6, 5, 6, 7, 8, 9, 8, 7, 6, 5});
}

TEST(Pad, ReflectWiderThanTheInputRepeatsTheMirror) {
  Tensor y =
      run_node1("Pad", pad_mode("reflect"), {NodeInput::of(f32({3}, iota_f(3))), c64({5, 5})});
  expect_values(y, {13}, {1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1});
}

TEST(Pad, Edge) {
  Tensor y = run_node1("Pad", pad_mode("edge"),
                       {NodeInput::of(f32({3, 2}, iota_f(6))), c64({2, 1, 1, 3})});
  expect_values(y, {6, 6}, {0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1,
                            2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 5, 5, 4, 4, 5, 5, 5, 5});
}

TEST(Pad, AxesInputAndUnknownPads) {
  // Pads only the last axis (axes = [-1]): int64 data, constant 0.
  Tensor y = run_node1(
      "Pad", pad_mode("constant"),
      {NodeInput::of(i64({2, 2}, {1, 2, 3, 4})), c64({1, 2}), NodeInput::none(), c64({-1})});
  expect_ints(y, {2, 5}, {0, 1, 2, 0, 0, 0, 3, 4, 0, 0});
  SingleNode n("Pad", pad_mode("constant"),
               {NodeInput::shaped(DataType::kFloat, sym({Dim::sym("N"), 4})), c64({0, 1, 0, 1})});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[N,6]");
}

TEST(Pad, Errors) {
  auto x = NodeInput::shaped(DataType::kFloat, Shape::from({2, 3}));
  expect_error(
      [&] {
        SingleNode("Pad", pad_mode("wrap"), {x, c64({0, 0, 0, 0})}).infer();
      },
      "wrap");
  expect_error(
      [&] {
        SingleNode("Pad", pad_mode("constant"), {x, c64({0, 0, 0})}).infer();
      },
      "pads has 3 entries");
  expect_error(
      [&] {
        SingleNode("Pad", pad_mode("constant"), {x, c64({-3, 0, 0, 0})}).infer();
      },
      "below zero");
}

// ---- Tile / Expand ----

TEST(Tile, RepeatsBothAxes) {
  Tensor y =
      run_node1("Tile", nullptr, {NodeInput::of(i64({2, 3}, {1, 2, 3, 4, 5, 6})), c64({3, 2})});
  expect_ints(y, {6, 6}, {1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6, 1, 2, 3, 1, 2, 3,
                          4, 5, 6, 4, 5, 6, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6});
}

TEST(Expand, BidirectionalBroadcast) {
  Tensor y = run_node1("Expand", nullptr, {NodeInput::of(f32({3, 1}, {1, 2, 3})), c64({2, 1, 4})});
  expect_values(y, {2, 3, 4},
                {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3});
}

TEST(Expand, UnknownShapeValueKeepsRankAndFixedDims) {
  SingleNode n("Expand", nullptr,
               {NodeInput::shaped(DataType::kFloat, sym({3, 1})),
                NodeInput::shaped(DataType::kInt64, Shape::from({3}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[?,3,?]");
  expect_error(
      [&] {
        SingleNode("Expand", nullptr,
                   {NodeInput::shaped(DataType::kFloat, Shape::from({3, 2})), c64({4, 3})})
            .infer();
      },
      "broadcast");
}

// ---- Trilu ----

std::unique_ptr<TriluAttrs> tri(bool upper) {
  auto a = std::make_unique<TriluAttrs>();
  a->upper = upper;
  return a;
}

TEST(Trilu, UpperBatchedWithK) {
  Tensor y =
      run_node1("Trilu", tri(true),
                {NodeInput::of(f32({2, 3, 4}, iota_f(24, 1, 1))), NodeInput::of(i64({}, {1}))});
  expect_values(y, {2, 3, 4},
                {0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12, 0, 14, 15, 16, 0, 0, 19, 20, 0, 0, 0, 24});
}

TEST(Trilu, LowerAndExtremeK) {
  std::vector<int32_t> v(12);
  for (int i = 0; i < 12; ++i) v[i] = i + 1;
  Tensor x = i32({4, 3}, v);
  expect_ints(run_node1("Trilu", tri(false), {NodeInput::of(x), NodeInput::of(i64({}, {-1}))}),
              {4, 3}, {0, 0, 0, 4, 0, 0, 7, 8, 0, 10, 11, 12});
  expect_ints(run_node1("Trilu", tri(false), {NodeInput::of(x), NodeInput::of(i64({}, {5}))}),
              {4, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  expect_ints(run_node1("Trilu", tri(true), {NodeInput::of(x), NodeInput::of(i64({}, {5}))}),
              {4, 3}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  expect_ints(run_node1("Trilu", tri(true), {NodeInput::of(x), NodeInput::of(i64({}, {kMin}))}),
              {4, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
}

// ---- Compress / NonZero ----

std::unique_ptr<CompressAttrs> compress_axis(bool has, int64_t axis = 0) {
  auto a = std::make_unique<CompressAttrs>();
  a->has_axis = has;
  a->axis = axis;
  return a;
}

Tensor bools(std::vector<uint8_t> v) {
  return Tensor::from_vector(DataType::kBool, {static_cast<int64_t>(v.size())}, v);
}

TEST(Compress, AlongAxisAndFlattened) {
  SingleNode n("Compress", compress_axis(true, -1),
               {NodeInput::of(f32({2, 3}, iota_f(6))), NodeInput::of(bools({1, 0, 1}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[2,?]");
  expect_values(n.run()[0], {2, 2}, {0, 2, 3, 5});
  // Shorter condition than the flattened input: the rest is dropped.
  Tensor y = run_node1(
      "Compress", compress_axis(false),
      {NodeInput::of(f32({3, 4}, iota_f(12, 1, -2))), NodeInput::of(bools({0, 1, 1, 0, 0, 1, 1}))});
  expect_values(y, {4}, {-1, 0, 3, 4});
  expect_error(
      [&] {
        run_node1("Compress", compress_axis(true, 0),
                  {NodeInput::of(f32({2}, {1, 2})), NodeInput::of(bools({0, 0, 1}))});
      },
      "position 2");
}

TEST(NonZero, TwoAndThreeDims) {
  SingleNode n("NonZero", nullptr, {NodeInput::of(f32({2, 3}, {1, 0, 0, 0, 2, 3}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[2,?]");
  expect_ints(n.run()[0], {2, 3}, {0, 1, 1, 0, 1, 2});
  std::vector<int32_t> v(12, 0);
  v[3] = 5;   // [0,1,1]
  v[6] = -1;  // [1,0,0]
  v[11] = 7;  // [1,2,1]
  Tensor y = run_node1("NonZero", nullptr, {NodeInput::of(i32({2, 3, 2}, v))});
  expect_ints(y, {3, 3}, {0, 1, 1, 1, 0, 2, 1, 0, 1});
}

// ---- ReverseSequence ----

std::unique_ptr<ReverseSequenceAttrs> revseq(int64_t batch, int64_t time) {
  auto a = std::make_unique<ReverseSequenceAttrs>();
  a->batch_axis = batch;
  a->time_axis = time;
  return a;
}

TEST(ReverseSequence, TimeMajorAndBatchMajor) {
  expect_values(
      run_node1("ReverseSequence", revseq(1, 0),
                {NodeInput::of(f32({4, 3}, iota_f(12))), NodeInput::of(i64({3}, {4, 2, 1}))}),
      {4, 3}, {9, 4, 2, 6, 1, 5, 3, 7, 8, 0, 10, 11});
  std::vector<int64_t> v(15);
  for (int i = 0; i < 15; ++i) v[i] = i;
  expect_ints(run_node1("ReverseSequence", revseq(0, 1),
                        {NodeInput::of(i64({3, 5}, v)), NodeInput::of(i64({3}, {5, 3, 0}))}),
              {3, 5}, {4, 3, 2, 1, 0, 7, 6, 5, 8, 9, 10, 11, 12, 13, 14});
  expect_error(
      [&] {
        run_node1("ReverseSequence", revseq(0, 1),
                  {NodeInput::of(i64({3, 5}, v)), NodeInput::of(i64({3}, {6, 1, 1}))});
      },
      "sequence length 6");
}

}  // namespace
}  // namespace kiln::testing
