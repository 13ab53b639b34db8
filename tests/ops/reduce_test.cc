// Reduce: every kind, keepdims, axes as attribute and as a run-time input, integer exactness,
// empty reductions, symbolic shapes and errors. Expected values come from numpy.
#include "ops/reduce.h"

#include <cmath>
#include <limits>

#include "single_node.h"

namespace kiln::testing {
namespace {

std::unique_ptr<ReduceAttrs> attrs(const std::string& kind, Ints axes, bool keepdims = true) {
  auto a = std::make_unique<ReduceAttrs>();
  a->kind = kind;
  a->axes = std::move(axes);
  a->keepdims = keepdims;
  return a;
}

// x[3,5,7] = ((i * 7) % 11 - 5) / 4, exact in float32.
Tensor x357() { return pattern({3, 5, 7}, 7, 11, 5, 0.25f); }

Tensor run1(std::unique_ptr<ReduceAttrs> a, std::vector<NodeInput> ins) {
  return run_node1("Reduce", std::move(a), std::move(ins));
}

TEST(Reduce, SumOverTwoAxesKeepDims) {
  Tensor y = run1(attrs("sum", {0, 2}), {NodeInput::of(x357())});
  expect_values(y, {1, 5, 1}, {0.75, -0.5, -1.75, 2.5, -1.5});
}

TEST(Reduce, MeanLastAxisNoKeepDims) {
  Tensor y = run1(attrs("mean", {-1}, false), {NodeInput::of(x357())});
  expect_values(
      y, {3, 5},
      {0.0714285714, -0.25, 0.2142857143, -0.1071428571, -0.0357142857, 0.0357142857, 0.1071428571,
       -0.2142857143, 0.25, -0.0714285714, 0., 0.0714285714, -0.25, 0.2142857143, -0.1071428571});
}

TEST(Reduce, MaxAndMinMiddleAxis) {
  Tensor mx = run1(attrs("max", {1}, false), {NodeInput::of(x357())});
  expect_values(mx, {3, 7}, {1.25, 0.5,  0.75, 1.25, 1.25, 0.5, 1.,   0.75, 1.25, 1.25, 0.5,
                             1.,   1.25, 1.25, 1.25, 0.5,  1.,  1.25, 1.25, 0.75, 1.});
  Tensor mn = run1(attrs("min", {1}, false), {NodeInput::of(x357())});
  expect_values(mn, {3, 7},
                {-1.25, -1.25, -1.,   -0.5,  -1.25, -1.25, -0.75, -1.,   -0.5, -1.25, -1.25,
                 -0.75, -0.5,  -1.25, -1.25, -1.25, -0.75, -0.5,  -1.25, -1.,  -0.75});
}

TEST(Reduce, LogSumExpAndL2) {
  Tensor lse = run1(attrs("log_sum_exp", {0}, false), {NodeInput::of(x357())});
  ASSERT_EQ(lse.numel(), 35);
  // Spot checks (numpy): elements 0, 1, 3, 34.
  EXPECT_NEAR(lse.get_f64(0), 0.7779757439, 1e-6);
  EXPECT_NEAR(lse.get_f64(1), 1.7248057282, 1e-6);
  EXPECT_NEAR(lse.get_f64(3), 1.6019518638, 1e-6);
  EXPECT_NEAR(lse.get_f64(34), 1.7248057282, 1e-6);
  Tensor l2 = run1(attrs("l2", {1, 2}), {NodeInput::of(x357())});
  expect_values(l2, {3, 1, 1}, {4.7368238304, 4.7368238304, 4.6097722286});
}

TEST(Reduce, LogSumExpDoesNotOverflow) {
  Tensor y = run1(attrs("log_sum_exp", {1}, false),
                  {NodeInput::of(f32({2, 2}, {1000, 1000, -INFINITY, -INFINITY}))});
  expect_values(y, {2}, {1000.6931471806, -INFINITY});
}

TEST(Reduce, ProdL1LogSumSumSquare) {
  Tensor x = f32({2, 3}, {1.5f, -2, 3, 0.5f, 4, -0.25f});
  expect_values(run1(attrs("prod", {1}, false), {NodeInput::of(x)}), {2}, {-9, -0.5});
  expect_values(run1(attrs("l1", {0}, false), {NodeInput::of(x)}), {3}, {2, 6, 3.25});
  expect_values(run1(attrs("sum_square", {}), {NodeInput::of(x)}), {1, 1}, {31.5625});
  Tensor pos = f32({2, 3}, {1.5f, 2, 3, 0.5f, 4, 0.25f});
  expect_values(run1(attrs("log_sum", {0}, false), {NodeInput::of(pos)}), {3},
                {0.6931471806, 1.7917594692, 1.1786549963});
}

TEST(Reduce, EmptyAxesReduceAllOrNothing) {
  Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_values(run1(attrs("sum", {}, false), {NodeInput::of(x)}), {}, {21});
  auto a = attrs("sum", {});
  a->noop_with_empty_axes = true;
  expect_values(run1(std::move(a), {NodeInput::of(x)}), {2, 3}, {1, 2, 3, 4, 5, 6});
}

TEST(Reduce, ArgMaxTiesFirstOrLast) {
  // Rows: [3 1 3 0 2], [0 0 -1 0 -1]
  Tensor x = f32({2, 5}, {3, 1, 3, 0, 2, 0, 0, -1, 0, -1});
  expect_ints(run1(attrs("argmax", {1}), {NodeInput::of(x)}), {2, 1}, {0, 0});
  auto last = attrs("argmax", {-1}, false);
  last->select_last_index = true;
  expect_ints(run1(std::move(last), {NodeInput::of(x)}), {2}, {2, 3});
  expect_ints(run1(attrs("argmin", {1}, false), {NodeInput::of(x)}), {2}, {3, 2});
  auto last_min = attrs("argmin", {1}, false);
  last_min->select_last_index = true;
  expect_ints(run1(std::move(last_min), {NodeInput::of(x)}), {2}, {3, 4});
  // Outer axis: only column 3 ties (0 vs 0); the last index wins it.
  auto outer = attrs("argmax", {0}, false);
  outer->select_last_index = true;
  Tensor y = run1(std::move(outer), {NodeInput::of(x)});
  EXPECT_EQ(y.dtype(), DataType::kInt64);
  expect_ints(y, {5}, {0, 0, 0, 1, 0});
}

TEST(Reduce, Int64StaysExact) {
  const int64_t big = int64_t{1} << 60;
  Tensor x = i64({2, 3}, {big + 1, big + 3, -7, 5, big - 1, -big});
  expect_ints(run1(attrs("sum", {1}, false), {NodeInput::of(x)}), {2}, {2 * big - 3, 4});
  expect_ints(run1(attrs("max", {0}, false), {NodeInput::of(x)}), {3}, {big + 1, big + 3, -7});
  expect_ints(run1(attrs("min", {0}, false), {NodeInput::of(x)}), {3}, {5, big - 1, -big});
  expect_ints(run1(attrs("argmax", {1}, false), {NodeInput::of(x)}), {2}, {1, 1});
  // Integer mean truncates toward zero: (5 + (big-1) - big) / 3 = 4 / 3 -> 1.
  expect_ints(run1(attrs("mean", {1}, false), {NodeInput::of(x)}), {2}, {(2 * big - 3) / 3, 1});
}

TEST(Reduce, UInt64ComparesUnsigned) {
  Tensor x(DataType::kUInt64, {3});
  x.data<uint64_t>()[0] = 5;
  x.data<uint64_t>()[1] = (uint64_t{1} << 63) + 9;  // negative if read as int64
  x.data<uint64_t>()[2] = 7;
  Tensor y = run1(attrs("max", {0}, false), {NodeInput::of(x)});
  EXPECT_EQ(y.data<uint64_t>()[0], (uint64_t{1} << 63) + 9);
  Tensor m = run1(attrs("min", {0}, false), {NodeInput::of(x)});
  EXPECT_EQ(m.data<uint64_t>()[0], 5u);
}

TEST(Reduce, Int32SumOfSquaresAndL1) {
  Tensor x = testing::i32({2, 2}, {-3, 4, 5, -6});
  Tensor y = run1(attrs("sum_square", {1}, false), {NodeInput::of(x)});
  EXPECT_EQ(y.dtype(), DataType::kInt32);
  expect_ints(y, {2}, {25, 61});
  expect_ints(run1(attrs("l1", {0}, false), {NodeInput::of(x)}), {2}, {8, 10});
}

TEST(Reduce, EmptyReduction) {
  Tensor x(DataType::kFloat, {2, 0, 3});
  expect_values(run1(attrs("sum", {1}, false), {NodeInput::of(x)}), {2, 3}, {0, 0, 0, 0, 0, 0});
  expect_values(run1(attrs("prod", {1}, false), {NodeInput::of(x)}), {2, 3}, {1, 1, 1, 1, 1, 1});
  Tensor mx = run1(attrs("max", {1}, false), {NodeInput::of(x)});
  expect_values(mx, {2, 3}, std::vector<double>(6, -INFINITY));
}

TEST(Reduce, NaNPropagatesThroughMax) {
  Tensor x = f32({1, 3}, {1, NAN, 2});
  Tensor y = run1(attrs("max", {1}, false), {NodeInput::of(x)});
  EXPECT_TRUE(std::isnan(y.get_f64(0)));
}

TEST(Reduce, AxesAsConstantInput) {
  auto a = attrs("sum", {});
  SingleNode n("Reduce", std::move(a),
               {NodeInput::of(x357()), NodeInput::constant_of(i64({1}, {-2}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[3,1,7]");
  Tensor y = n.run()[0];
  ASSERT_EQ(y.numel(), 21);
  // numpy: x.sum(axis=1, keepdims=True)[0, 0, 0] = -1.25 + 0 + 1.25 - 0.25 + 1.
  EXPECT_NEAR(y.get_f64(0), 0.75, 1e-6);
}

TEST(Reduce, AxesKnownOnlyAtRunTime) {
  Tensor x = f32({2, 3, 4}, std::vector<float>(24, 1.0f));
  {
    SingleNode n("Reduce", attrs("sum", {}, true),
                 {NodeInput::of(x), NodeInput::of(i64({1}, {1}))});
    n.infer();
    // keepdims: the rank survives, the dims do not.
    EXPECT_TRUE(n.out(0).shape.rank_known);
    EXPECT_EQ(n.out(0).shape.rank(), 3u);
    EXPECT_FALSE(n.out(0).shape[0].known());
    expect_values(n.run()[0], {2, 1, 4}, std::vector<double>(8, 3.0));
  }
  {
    SingleNode n("Reduce", attrs("mean", {}, false),
                 {NodeInput::of(x), NodeInput::of(i64({2}, {0, -1}))});
    n.infer();
    EXPECT_FALSE(n.out(0).shape.rank_known);
    expect_values(n.run()[0], {3}, {1, 1, 1});
  }
  {
    auto a = attrs("sum", {}, false);
    a->noop_with_empty_axes = true;
    SingleNode n("Reduce", std::move(a), {NodeInput::of(x), NodeInput::of(i64({0}, {}))});
    n.infer();
    expect_values(n.run()[0], {2, 3, 4}, std::vector<double>(24, 1.0));
  }
}

TEST(Reduce, SymbolicAndUnknownDims) {
  SingleNode n("Reduce", attrs("max", {2}, false),
               {NodeInput::shaped(DataType::kFloat, Shape({Dim::sym("batch"), Dim(5), Dim()}))});
  n.infer();
  EXPECT_EQ(n.out(0).dtype, DataType::kFloat);
  EXPECT_EQ(n.out(0).shape, Shape({Dim::sym("batch"), Dim(5)}));
  SingleNode u("Reduce", attrs("argmin", {0}),
               {NodeInput::shaped(DataType::kFloat16, Shape::unknown_rank())});
  u.infer();
  EXPECT_EQ(u.out(0).dtype, DataType::kInt64);
  EXPECT_FALSE(u.out(0).shape.rank_known);
}

TEST(Reduce, Float16RoundsOnce) {
  Tensor x(DataType::kFloat16, {4});
  for (int i = 0; i < 4; ++i) x.set_f64(i, 0.1);  // 0.0999755859375 in float16
  Tensor y = run1(attrs("sum", {0}, false), {NodeInput::of(x)});
  EXPECT_EQ(y.dtype(), DataType::kFloat16);
  EXPECT_NEAR(y.get_f64(0), 0.39990234375, 1e-9);  // float16 nearest to 4 * 0.0999755859375
}

TEST(Reduce, Errors) {
  auto bad_axis = [] {
    SingleNode n("Reduce", attrs("sum", {3}), {NodeInput::of(x357())});
    n.infer();
  };
  expect_error(bad_axis, "reduce axis 3 is out of range for rank 3");
  expect_error(
      [] {
        SingleNode n("Reduce", attrs("sum", {-4}), {NodeInput::of(x357())});
        n.infer();
      },
      "reduce axis -4");
  expect_error(
      [] {
        SingleNode n("Reduce", attrs("sum", {1, -2}), {NodeInput::of(x357())});
        n.infer();
      },
      "listed twice");
  expect_error(
      [] {
        SingleNode n("Reduce", attrs("argmax", {0, 1}), {NodeInput::of(x357())});
        n.infer();
      },
      "exactly one axis");
  expect_error(
      [] {
        SingleNode n("Reduce", attrs("median", {0}), {NodeInput::of(x357())});
        n.infer();
      },
      "unknown reduce kind 'median'");
  // A run-time axes input that is out of range is reported at run time, naming the axis.
  expect_error(
      [] {
        SingleNode n("Reduce", attrs("sum", {}),
                     {NodeInput::of(x357()), NodeInput::of(i64({1}, {7}))});
        n.infer();
        n.run();
      },
      "reduce axis 7");
  expect_error(
      [] {
        SingleNode n("Reduce", attrs("argmax", {1}),
                     {NodeInput::of(Tensor(DataType::kFloat, {2, 0}))});
        n.infer();
      },
      "size 0");
}

}  // namespace
}  // namespace kiln::testing
