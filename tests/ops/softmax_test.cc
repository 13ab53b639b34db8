// Softmax, log-softmax and hardmax over inner and middle axes, the opset<13 2-D coercion, large
// inputs, float16, symbolic shapes and errors. Expected values come from numpy.
#include "ops/softmax.h"

#include <cmath>

#include "single_node.h"

namespace kiln::testing {
namespace {

std::unique_ptr<SoftmaxAttrs> attrs(const std::string& mode, int64_t axis, bool legacy = false) {
  auto a = std::make_unique<SoftmaxAttrs>();
  a->mode = mode;
  a->axis = axis;
  a->legacy_2d = legacy;
  return a;
}

// x[2,3,4] = ((i * 5) % 7 - 3) / 2
Tensor x234() { return pattern({2, 3, 4}, 5, 7, 3, 0.5f); }

Tensor run1(std::unique_ptr<SoftmaxAttrs> a, Tensor x) {
  return run_node1("Softmax", std::move(a), {NodeInput::of(std::move(x))});
}

TEST(Softmax, MiddleAxis) {
  expect_values(
      run1(attrs("softmax", 1), x234()), {2, 3, 4},
      {0.0300588876, 0.5064803911, 0.5064803911, 0.0725214457, 0.6037488961, 0.3071958857,
       0.3071958857, 0.0439864803, 0.3661922163, 0.1863237232, 0.1863237232, 0.883492074,
       0.5064803911, 0.5064803911, 0.0300588876, 0.5064803911, 0.3071958857, 0.3071958857,
       0.6037488961, 0.3071958857, 0.1863237232, 0.1863237232, 0.3661922163, 0.1863237232});
}

TEST(Softmax, LogSoftmaxLastAxis) {
  expect_values(
      run1(attrs("log_softmax", -1), x234()), {2, 3, 4},
      {-2.9607734892, -0.4607734892, -1.4607734892, -2.4607734892, -0.4401896986, -1.4401896986,
       -2.4401896986, -3.4401896986, -1.1480168657, -2.1480168657, -3.1480168657, -0.6480168657,
       -1.1480168657, -2.1480168657, -3.1480168657, -0.6480168657, -2.0146749655, -3.0146749655,
       -0.5146749655, -1.5146749655, -2.0146749655, -3.0146749655, -0.5146749655, -1.5146749655});
}

TEST(Softmax, Legacy2DCoercion) {
  // Opset < 13: [2,3,4] at axis 1 is treated as [2,12]; normalises over 12 elements.
  expect_values(
      run1(attrs("softmax", 1, true), x234()), {2, 3, 4},
      {0.0112480599, 0.1370294223, 0.0504103073, 0.0185449157, 0.2259233233, 0.0831125459,
       0.0305753969, 0.0112480599, 0.1370294223, 0.0504103073, 0.0185449157, 0.2259233233,
       0.0956174205, 0.0351756832, 0.0129404107, 0.157646475,  0.0579948971, 0.0213351303,
       0.2599150966, 0.0956174205, 0.0351756832, 0.0129404107, 0.157646475,  0.0579948971});
  // Axis 0 in legacy mode: the whole tensor is one row.
  Tensor y = run1(attrs("hardmax", 0, true), x234());
  std::vector<double> want(24, 0.0);
  want[4] = 1;  // the first 1.5 in row-major order
  expect_values(y, {2, 3, 4}, want);
}

TEST(Softmax, HardmaxFirstMaximumWins) {
  expect_values(run1(attrs("hardmax", 1), x234()), {2, 3, 4},
                {0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0});
  expect_values(run1(attrs("hardmax", -1), f32({1, 3}, {2, 2, 1})), {1, 3}, {1, 0, 0});
}

TEST(Softmax, LargeValuesStayFinite) {
  Tensor x = f32({1, 3}, {10000, 10001, 10002});
  expect_values(run1(attrs("softmax", -1), x), {1, 3}, {0.0900305732, 0.2447284711, 0.6652409558});
  expect_values(run1(attrs("log_softmax", -1), x), {1, 3},
                {-2.4076059644, -1.4076059644, -0.4076059644});
}

TEST(Softmax, Float16) {
  Tensor x(DataType::kFloat16, {3});
  x.set_f64(0, 0);
  x.set_f64(1, 1);
  x.set_f64(2, 2);
  Tensor y = run1(attrs("softmax", 0), x);
  EXPECT_EQ(y.dtype(), DataType::kFloat16);
  expect_values(y, {3}, {0.0900305732, 0.2447284711, 0.6652409558}, 1e-3, 1e-4);
}

TEST(Softmax, ShapesPassThrough) {
  SingleNode n("Softmax", attrs("log_softmax", 1),
               {NodeInput::shaped(DataType::kFloat, Shape({Dim::sym("n"), Dim(), Dim(7)}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape, Shape({Dim::sym("n"), Dim(), Dim(7)}));
  SingleNode u("Softmax", attrs("softmax", 5),
               {NodeInput::shaped(DataType::kDouble, Shape::unknown_rank())});
  u.infer();
  EXPECT_FALSE(u.out(0).shape.rank_known);
}

TEST(Softmax, Errors) {
  expect_error(
      [] {
        SingleNode n("Softmax", attrs("softmax", 3), {NodeInput::of(x234())});
        n.infer();
      },
      "softmax axis 3 is out of range for rank 3");
  expect_error(
      [] {
        SingleNode n("Softmax", attrs("softmax", -4), {NodeInput::of(x234())});
        n.infer();
      },
      "softmax axis -4");
  expect_error(
      [] {
        SingleNode n("Softmax", attrs("argmax", 0), {NodeInput::of(x234())});
        n.infer();
      },
      "unknown softmax mode 'argmax'");
  expect_error(
      [] {
        SingleNode n("Softmax", attrs("softmax", 0), {NodeInput::of(testing::i64({2}, {1, 2}))});
        n.infer();
      },
      "floating-point");
}

}  // namespace
}  // namespace kiln::testing
