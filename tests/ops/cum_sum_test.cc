// CumSum: inclusive/exclusive, forward/reverse, axis from a constant or a run-time input, int32
// axis, integer exactness, errors. Expected values from numpy.cumsum.
#include "ops/cum_sum.h"

#include "single_node.h"

namespace kiln::testing {
namespace {

std::unique_ptr<CumSumAttrs> attrs(bool exclusive = false, bool reverse = false) {
  auto a = std::make_unique<CumSumAttrs>();
  a->exclusive = exclusive;
  a->reverse = reverse;
  return a;
}

Tensor run1(std::unique_ptr<CumSumAttrs> a, Tensor x, Tensor axis) {
  return run_node1("CumSum", std::move(a),
                   {NodeInput::of(std::move(x)), NodeInput::of(std::move(axis))});
}

Tensor a23() { return f64({2, 3}, {1, 2, 3, 4, 5, 6}); }

TEST(CumSum, AxesAndDirections) {
  expect_values(run1(attrs(), a23(), i32({}, {0})), {2, 3}, {1, 2, 3, 5, 7, 9});
  expect_values(run1(attrs(), a23(), i64({1}, {-1})), {2, 3}, {1, 3, 6, 4, 9, 15});
  expect_values(run1(attrs(true, true), a23(), i64({}, {1})), {2, 3}, {5, 3, 0, 11, 6, 0});
  expect_values(run1(attrs(true, false), f64({5}, {1, 2, 3, 4, 5}), i32({}, {0})), {5},
                {0, 1, 3, 6, 10});
  expect_values(run1(attrs(false, true), f64({5}, {1, 2, 3, 4, 5}), i32({}, {0})), {5},
                {15, 14, 12, 9, 5});
}

TEST(CumSum, MiddleAxisOfRank3) {
  // x[2,3,2] = 0..11; cumsum over axis 1 (numpy).
  std::vector<double> v(12);
  for (int i = 0; i < 12; ++i) v[i] = i;
  expect_values(run1(attrs(), f64({2, 3, 2}, v), i64({}, {1})), {2, 3, 2},
                {0, 1, 2, 4, 6, 9, 6, 7, 14, 16, 24, 27});
}

TEST(CumSum, Int64Exact) {
  const int64_t big = int64_t{1} << 61;
  expect_ints(run1(attrs(), i64({3}, {big + 1, big + 1, -3}), i64({}, {0})), {3},
              {big + 1, 2 * big + 2, 2 * big - 1});
}

TEST(CumSum, ShapeKeptWhenAxisUnknown) {
  SingleNode n("CumSum", attrs(),
               {NodeInput::shaped(DataType::kFloat, Shape({Dim::sym("b"), Dim(4)})),
                NodeInput::shaped(DataType::kInt32, Shape(std::vector<Dim>{}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape, Shape({Dim::sym("b"), Dim(4)}));
  EXPECT_EQ(n.out(0).dtype, DataType::kFloat);
}

TEST(CumSum, Errors) {
  expect_error([] { run1(attrs(), a23(), i64({}, {2})); },
               "CumSum axis 2 is out of range for rank 2");
  expect_error(
      [] {
        SingleNode n("CumSum", attrs(),
                     {NodeInput::of(a23()), NodeInput::constant_of(i64({}, {-3}))});
        n.infer();
      },
      "CumSum axis -3");
  expect_error([] { run1(attrs(), a23(), i64({2}, {0, 1})); }, "must be a scalar");
}

}  // namespace
}  // namespace kiln::testing
