// Unique: distinct elements or slices, first occurrences, inverse mapping and counts. Expected
// values come from numpy 1.24 (numpy.unique with return_index/return_inverse/return_counts, and
// for sorted=0 the same results reordered by first occurrence, as the ONNX reference does),
// pasted as literals.
#include "ops/unique.h"

#include <cmath>
#include <limits>

#include "common/error.h"
#include "single_node.h"

namespace kiln::testing {
namespace {

std::unique_ptr<UniqueAttrs> unique_attrs(bool sorted, bool has_axis = false, int64_t axis = 0) {
  auto a = std::make_unique<UniqueAttrs>();
  a->sorted = sorted;
  a->has_axis = has_axis;
  a->axis = axis;
  return a;
}

struct Expected {
  Dims y_dims;
  std::vector<double> y;
  std::vector<int64_t> indices, inverse, counts;
};

// Runs Unique with all four outputs and checks each.
void expect_unique(Tensor x, std::unique_ptr<UniqueAttrs> attrs, const Expected& want) {
  auto outs = run_node("Unique", std::move(attrs), {NodeInput::of(std::move(x))}, 4);
  ASSERT_EQ(outs.size(), 4u);
  expect_values(outs[0], want.y_dims, want.y, 0, 0);
  auto u = static_cast<int64_t>(want.indices.size());
  expect_ints(outs[1], {u}, want.indices);
  expect_ints(outs[2], {static_cast<int64_t>(want.inverse.size())}, want.inverse);
  expect_ints(outs[3], {u}, want.counts);
  for (size_t k = 1; k < 4; ++k) EXPECT_EQ(outs[k].dtype(), DataType::kInt64);
}

const std::vector<float> kFlat = {2.5, -1, 7, -1, 0, 2.5, -3.25, 7, 7, 0, -0.5, 2.5};

TEST(Unique, FlattenedSorted) {
  expect_unique(f32({3, 4}, kFlat), unique_attrs(true),
                {{6},
                 {-3.25, -1.0, -0.5, 0.0, 2.5, 7.0},
                 {6, 1, 10, 4, 0, 2},
                 {4, 1, 5, 1, 3, 4, 0, 5, 5, 3, 2, 4},
                 {1, 2, 1, 2, 3, 3}});
}

TEST(Unique, FlattenedNotSorted) {
  expect_unique(f32({3, 4}, kFlat), unique_attrs(false),
                {{6},
                 {2.5, -1.0, 7.0, 0.0, -3.25, -0.5},
                 {0, 1, 2, 4, 6, 10},
                 {0, 1, 2, 1, 3, 0, 4, 2, 2, 3, 5, 0},
                 {3, 2, 3, 2, 1, 1}});
}

const std::vector<float> kRows = {3, 1, 2, 1, 1, 2, 3, 1, 2, 0, 5, 5, 1, 1, 2};

TEST(Unique, Axis0On2D) {
  expect_unique(f32({5, 3}, kRows), unique_attrs(true, true, 0),
                {{3, 3}, {0, 5, 5, 1, 1, 2, 3, 1, 2}, {3, 1, 0}, {2, 1, 2, 0, 1}, {1, 2, 2}});
  expect_unique(f32({5, 3}, kRows), unique_attrs(false, true, 0),
                {{3, 3}, {3, 1, 2, 1, 1, 2, 0, 5, 5}, {0, 1, 3}, {0, 1, 0, 2, 1}, {2, 2, 1}});
}

TEST(Unique, MiddleAxisOn3D) {
  expect_unique(
      f32({2, 5, 2}, {4, 1, 2, 9, 4, 1, 2, 0, 2, 9, 3, 3, 1, 1, 3, 3, 1, 1, 1, 1}),
      unique_attrs(true, true, 1),
      {{2, 3, 2}, {2, 0, 2, 9, 4, 1, 1, 1, 1, 1, 3, 3}, {3, 1, 0}, {2, 1, 2, 0, 1}, {1, 2, 2}});
}

const std::vector<float> kCols = {5, -1, 5, 0, 2, 2, 2, 2, 7, 3, 7, 3,
                                  1, 0,  1, 1, 6, 4, 6, 4, 0, 8, 0, 8};

TEST(Unique, NegativeAxisOn3D) {
  expect_unique(f32({2, 3, 4}, kCols), unique_attrs(true, true, -1),
                {{2, 3, 3},
                 {-1, 0, 5, 2, 2, 2, 3, 3, 7, 0, 1, 1, 4, 4, 6, 8, 8, 0},
                 {1, 3, 0},
                 {2, 0, 2, 1},
                 {1, 1, 2}});
  expect_unique(f32({2, 3, 4}, kCols), unique_attrs(false, true, -1),
                {{2, 3, 3},
                 {5, -1, 0, 2, 2, 2, 7, 3, 3, 1, 0, 1, 6, 4, 4, 0, 8, 8},
                 {0, 1, 3},
                 {0, 1, 0, 2},
                 {2, 1, 1}});
}

// 2^60 and 2^60 + 1 differ only below double's precision: int64 must compare exactly.
constexpr int64_t kBig = int64_t{1} << 60;

TEST(Unique, Int64Exact) {
  std::vector<int64_t> v = {kBig + 1, -5, kBig, kBig + 1, 7, -5, kBig, 0, kBig + 1};
  auto outs = run_node("Unique", unique_attrs(true), {NodeInput::of(i64({9}, v))}, 4);
  ASSERT_EQ(outs[0].dtype(), DataType::kInt64);
  expect_ints(outs[0], {5}, {-5, 0, 7, kBig, kBig + 1});
  expect_ints(outs[1], {5}, {1, 7, 4, 2, 0});
  expect_ints(outs[2], {9}, {4, 0, 3, 4, 2, 0, 3, 1, 4});
  expect_ints(outs[3], {5}, {2, 1, 1, 2, 3});

  outs = run_node("Unique", unique_attrs(false), {NodeInput::of(i64({9}, v))}, 4);
  expect_ints(outs[0], {5}, {kBig + 1, -5, kBig, 7, 0});
  expect_ints(outs[1], {5}, {0, 1, 2, 4, 7});
  expect_ints(outs[2], {9}, {0, 1, 2, 0, 3, 1, 2, 4, 0});
  expect_ints(outs[3], {5}, {3, 2, 2, 1, 1});

  outs = run_node("Unique", unique_attrs(true, true, -2),
                  {NodeInput::of(i64({4, 2}, {kBig + 1, 3, kBig, 3, kBig + 1, 3, kBig, 2}))}, 4);
  expect_ints(outs[0], {3, 2}, {kBig, 2, kBig, 3, kBig + 1, 3});
  expect_ints(outs[1], {3}, {3, 1, 0});
  expect_ints(outs[2], {4}, {2, 1, 2, 0});
  expect_ints(outs[3], {3}, {1, 1, 2});
}

// numpy sorts NaN last and (since 1.21) merges all NaNs into one entry.
TEST(Unique, DoubleWithNaN) {
  double nan = std::numeric_limits<double>::quiet_NaN();
  expect_unique(f64({6}, {1.5, nan, -2, nan, 1.5, 0}), unique_attrs(true),
                {{4}, {-2, 0, 1.5, nan}, {2, 5, 0, 1}, {2, 3, 0, 3, 2, 1}, {1, 1, 2, 2}});
}

TEST(Unique, FewerOutputs) {
  // Only Y (and Y with indices): the node has just those outputs.
  auto outs = run_node("Unique", unique_attrs(true), {NodeInput::of(i32({5}, {4, -2, 4, 9, -2}))});
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(outs[0].dtype(), DataType::kInt32);
  expect_ints(outs[0], {3}, {-2, 4, 9});
  outs = run_node("Unique", unique_attrs(false), {NodeInput::of(i32({5}, {4, -2, 4, 9, -2}))}, 2);
  expect_ints(outs[0], {3}, {4, -2, 9});
  expect_ints(outs[1], {3}, {0, 1, 3});
}

TEST(Unique, EmptyInputs) {
  // numpy: unique(zeros((0,)))  -> [], and unique(zeros((2,0)), axis=0) -> one empty row, inverse
  // [0,0], counts [2].
  auto outs = run_node("Unique", unique_attrs(true), {NodeInput::of(f32({0}, {}))}, 4);
  expect_values(outs[0], {0}, {});
  expect_ints(outs[2], {0}, {});
  outs = run_node("Unique", unique_attrs(true, true, 0), {NodeInput::of(f32({2, 0}, {}))}, 4);
  expect_values(outs[0], {1, 0}, {});
  expect_ints(outs[1], {1}, {0});
  expect_ints(outs[2], {2}, {0, 0});
  expect_ints(outs[3], {1}, {2});
}

TEST(Unique, InferShapes) {
  SingleNode flat("Unique", unique_attrs(true), {NodeInput::of(f32({3, 4}, kFlat))}, 4);
  flat.infer();
  EXPECT_EQ(flat.out(0).dtype, DataType::kFloat);
  EXPECT_EQ(flat.out(0).shape.str(), "[?]");
  EXPECT_EQ(flat.out(1).shape.str(), "[?]");
  EXPECT_EQ(flat.out(2).shape.str(), "[12]");
  EXPECT_EQ(flat.out(3).shape.str(), "[?]");
  EXPECT_EQ(flat.out(3).dtype, DataType::kInt64);

  SingleNode ax("Unique", unique_attrs(true, true, -2),
                {NodeInput::shaped(DataType::kInt64, Shape({Dim::sym("b"), Dim(7), Dim(3)}))}, 4);
  ax.infer();
  EXPECT_EQ(ax.out(0).shape.str(), "[b,?,3]");
  EXPECT_EQ(ax.out(2).shape.str(), "[7]");

  SingleNode sym("Unique", unique_attrs(true),
                 {NodeInput::shaped(DataType::kFloat, Shape({Dim::sym("b"), Dim(3)}))}, 3);
  sym.infer();
  EXPECT_EQ(sym.out(0).shape.str(), "[?]");
  EXPECT_EQ(sym.out(2).shape.str(), "[?]");

  SingleNode unranked("Unique", unique_attrs(true, true, 1),
                      {NodeInput::shaped(DataType::kFloat, Shape::unknown_rank())}, 4);
  unranked.infer();
  EXPECT_FALSE(unranked.out(0).shape.rank_known);
  EXPECT_EQ(unranked.out(2).shape.str(), "[?]");
}

TEST(Unique, AxisOutOfRange) {
  expect_error(
      [&] {
        run_node("Unique", unique_attrs(true, true, 2), {NodeInput::of(f32({2, 3}, iota_f(6)))}, 4);
      },
      "axis 2 is out of range");
}

}  // namespace
}  // namespace kiln::testing
