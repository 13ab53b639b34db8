// TopK: largest/smallest along inner and outer axes, stable ties (smaller index first), K known at
// build time or only at run time, integer exactness and errors. Expected values from numpy
// (argsort with kind='stable').
#include <cmath>

#include "ops/top_k.h"
#include "single_node.h"

namespace kiln::testing {
namespace {

std::unique_ptr<TopKAttrs> attrs(int64_t axis, bool largest = true) {
  auto a = std::make_unique<TopKAttrs>();
  a->axis = axis;
  a->largest = largest;
  return a;
}

Tensor x35() { return f32({3, 5}, {3, 1, 3, 0, 2, 0, 0, -1, 0, -1, 5, -2, 7, 7, 1}); }

TEST(TopK, LargestLastAxisStableTies) {
  SingleNode n("TopK", attrs(-1), {NodeInput::of(x35()), NodeInput::constant_of(i64({1}, {3}))}, 2);
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[3,3]");
  EXPECT_EQ(n.out(1).dtype, DataType::kInt64);
  auto y = n.run();
  expect_values(y[0], {3, 3}, {3, 3, 2, 0, 0, 0, 7, 7, 5});
  expect_ints(y[1], {3, 3}, {0, 2, 4, 0, 1, 3, 2, 3, 0});
}

TEST(TopK, SmallestLastAxis) {
  SingleNode n("TopK", attrs(1, false), {NodeInput::of(x35()), NodeInput::of(i64({1}, {2}))}, 2);
  n.infer();
  auto y = n.run();
  expect_values(y[0], {3, 2}, {0, 1, -1, -1, -2, 1});
  expect_ints(y[1], {3, 2}, {3, 1, 2, 4, 1, 4});
}

TEST(TopK, OuterAxis) {
  SingleNode n("TopK", attrs(0), {NodeInput::of(x35()), NodeInput::of(i64({1}, {2}))}, 2);
  n.infer();
  auto y = n.run();
  expect_values(y[0], {2, 5}, {5, 1, 7, 7, 2, 3, 0, 3, 0, 1});
  expect_ints(y[1], {2, 5}, {2, 0, 2, 2, 0, 0, 1, 0, 0, 2});
}

TEST(TopK, KnownOnlyAtRunTime) {
  SingleNode n("TopK", attrs(1), {NodeInput::of(x35()), NodeInput::of(i64({1}, {4}))}, 2);
  n.infer();
  // Build time: K unknown, so only that dim is unknown.
  ASSERT_TRUE(n.out(0).shape.rank_known);
  EXPECT_EQ(n.out(0).shape[0], Dim(3));
  EXPECT_FALSE(n.out(0).shape[1].known());
  auto y = n.run();
  expect_ints(y[1], {3, 4}, {0, 2, 4, 1, 0, 1, 3, 2, 2, 3, 0, 4});
}

TEST(TopK, KZeroAndSymbolicDims) {
  SingleNode n("TopK", attrs(0),
               {NodeInput::shaped(DataType::kFloat, Shape({Dim(), Dim::sym("s")})),
                NodeInput::constant_of(i64({1}, {0}))},
               2);
  n.infer();
  EXPECT_EQ(n.out(0).shape, Shape({Dim(0), Dim::sym("s")}));
  SingleNode z("TopK", attrs(1), {NodeInput::of(x35()), NodeInput::of(i64({1}, {0}))}, 2);
  z.infer();
  auto y = z.run();
  EXPECT_EQ(y[0].numel(), 0);
}

TEST(TopK, Int64Exact) {
  const int64_t big = int64_t{1} << 62;
  Tensor x = i64({4}, {big + 1, big + 2, -big, big + 2});
  SingleNode n("TopK", attrs(0), {NodeInput::of(x), NodeInput::of(i64({1}, {3}))}, 2);
  n.infer();
  auto y = n.run();
  expect_ints(y[0], {3}, {big + 2, big + 2, big + 1});
  expect_ints(y[1], {3}, {1, 3, 0});
}

TEST(TopK, NaNCountsAsLargest) {
  SingleNode n("TopK", attrs(0),
               {NodeInput::of(f32({3}, {1, NAN, 2})), NodeInput::of(i64({1}, {2}))}, 2);
  n.infer();
  auto y = n.run();
  expect_ints(y[1], {2}, {1, 2});
}

TEST(TopK, Errors) {
  expect_error(
      [] {
        SingleNode n("TopK", attrs(2), {NodeInput::of(x35()), NodeInput::of(i64({1}, {1}))}, 2);
        n.infer();
      },
      "TopK axis 2 is out of range for rank 2");
  expect_error(
      [] {
        SingleNode n("TopK", attrs(1),
                     {NodeInput::of(x35()), NodeInput::constant_of(i64({1}, {6}))}, 2);
        n.infer();
      },
      "K = 6 exceeds the size 5 of axis 1");
  expect_error(
      [] {
        SingleNode n("TopK", attrs(1), {NodeInput::of(x35()), NodeInput::of(i64({1}, {9}))}, 2);
        n.infer();
        n.run();
      },
      "K = 9 exceeds");
  expect_error(
      [] {
        SingleNode n("TopK", attrs(1),
                     {NodeInput::of(x35()), NodeInput::constant_of(i64({1}, {-1}))}, 2);
        n.infer();
      },
      "must not be negative");
}

}  // namespace
}  // namespace kiln::testing
