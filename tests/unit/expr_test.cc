// Pointwise expression programs on the CPU, against hand-computed expectations.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "expr/eval.h"
#include "expr/program.h"

namespace kiln::expr {
namespace {

Tensor run1(const Program& p, std::vector<Tensor> ins, Dims out_dims) {
  Tensor out(p.code[p.outputs[0]].dtype, out_dims);
  std::vector<Tensor> outs{out};
  evaluate(p, ins, outs);
  return outs[0];
}

TEST(Expr, BroadcastAddMulFloat) {
  Program p;
  p.input_types = {DataType::kFloat, DataType::kFloat};
  int32_t a = p.input(0), b = p.input(1);
  p.outputs = {p.binary(Op::kMul, p.binary(Op::kAdd, a, b), p.constant(DataType::kFloat, 2))};
  // a: [2,3], b: [3] -> [2,3]
  Tensor ta = Tensor::from_vector<float>(DataType::kFloat, {2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor tb = Tensor::from_vector<float>(DataType::kFloat, {3}, {10, 20, 30});
  Tensor r = run1(p, {ta, tb}, {2, 3});
  const float want[] = {22, 44, 66, 28, 50, 72};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(r.data<float>()[i], want[i]);
}

TEST(Expr, BroadcastBothSidesAwkwardSizes) {
  // [5,1] + [1,7] -> [5,7]; 35 elements.
  Program p;
  p.input_types = {DataType::kInt32, DataType::kInt32};
  p.outputs = {p.binary(Op::kSub, p.input(0), p.input(1))};
  std::vector<int32_t> a{0, 100, 200, 300, 400}, b{1, 2, 3, 4, 5, 6, 7};
  Tensor r = run1(p, {Tensor::from_vector(DataType::kInt32, {5, 1}, a),
                      Tensor::from_vector(DataType::kInt32, {1, 7}, b)}, {5, 7});
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 7; ++j) EXPECT_EQ(r.data<int32_t>()[i * 7 + j], 100 * i - (j + 1));
}

TEST(Expr, IntegerModFollowsDivisorSignAndFmodDividend) {
  Program p;
  p.input_types = {DataType::kInt64, DataType::kInt64};
  p.outputs = {p.binary(Op::kMod, p.input(0), p.input(1))};
  Program q = p;
  q.code.back().op = Op::kFMod;
  std::vector<int64_t> a{-4, 7, 5, -5}, b{3, -3, 3, -3};
  Tensor ta = Tensor::from_vector(DataType::kInt64, {4}, a), tb = Tensor::from_vector(DataType::kInt64, {4}, b);
  Tensor m = run1(p, {ta, tb}, {4}), f = run1(q, {ta, tb}, {4});
  const int64_t want_mod[] = {2, -2, 2, -2}, want_fmod[] = {-1, 1, 2, -2};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(m.data<int64_t>()[i], want_mod[i]) << i;
    EXPECT_EQ(f.data<int64_t>()[i], want_fmod[i]) << i;
  }
}

TEST(Expr, Uint8WrapsAndCastSaturatesNothing) {
  Program p;
  p.input_types = {DataType::kUInt8};
  p.outputs = {p.binary(Op::kAdd, p.input(0), p.constant(DataType::kUInt8, 10))};
  Tensor r = run1(p, {Tensor::from_vector<uint8_t>(DataType::kUInt8, {3}, {250, 1, 246})}, {3});
  EXPECT_EQ(r.data<uint8_t>()[0], 4);
  EXPECT_EQ(r.data<uint8_t>()[1], 11);
  EXPECT_EQ(r.data<uint8_t>()[2], 0);
}

TEST(Expr, CastFloatToIntTruncatesAndToHalfRounds) {
  Program p;
  p.input_types = {DataType::kFloat};
  p.outputs = {p.cast(p.input(0), DataType::kInt32)};
  Tensor r = run1(p, {Tensor::from_vector<float>(DataType::kFloat, {4}, {1.9f, -1.9f, 0.5f, 1e3f})}, {4});
  EXPECT_EQ(r.data<int32_t>()[0], 1);
  EXPECT_EQ(r.data<int32_t>()[1], -1);
  EXPECT_EQ(r.data<int32_t>()[2], 0);
  EXPECT_EQ(r.data<int32_t>()[3], 1000);
  Program h;
  h.input_types = {DataType::kFloat};
  h.outputs = {h.cast(h.input(0), DataType::kFloat16)};
  Tensor hr = run1(h, {Tensor::from_vector<float>(DataType::kFloat, {2}, {1.0f + 1.0f / 4096, 65504.0f})}, {2});
  EXPECT_EQ(hr.get_f64(0), 1.0);  // below half's resolution: rounds to 1
  EXPECT_EQ(hr.get_f64(1), 65504.0);
}

TEST(Expr, SelectComparisonAndNaNPropagation) {
  Program p;
  p.input_types = {DataType::kFloat, DataType::kFloat};
  int32_t a = p.input(0), b = p.input(1);
  p.outputs = {p.select(p.binary(Op::kGt, a, b), a, p.binary(Op::kMax, a, b))};
  Tensor ta = Tensor::from_vector<float>(DataType::kFloat, {3}, {3, 1, NAN});
  Tensor tb = Tensor::from_vector<float>(DataType::kFloat, {3}, {2, 5, 1});
  Tensor r = run1(p, {ta, tb}, {3});
  EXPECT_EQ(r.data<float>()[0], 3);
  EXPECT_EQ(r.data<float>()[1], 5);
  EXPECT_TRUE(std::isnan(r.data<float>()[2]));
}

TEST(Expr, MultiOutputAndRoundHalfToEven) {
  Program p;
  p.input_types = {DataType::kFloat};
  int32_t x = p.input(0);
  p.outputs = {p.unary(Op::kRound, x), p.unary(Op::kIsNaN, x)};
  Tensor in = Tensor::from_vector<float>(DataType::kFloat, {4}, {0.5f, 1.5f, 2.5f, -0.5f});
  std::vector<Tensor> outs{Tensor(DataType::kFloat, {4}), Tensor(DataType::kBool, {4})};
  evaluate(p, std::vector<Tensor>{in}, outs);
  const float want[] = {0, 2, 2, -0.0f};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(outs[0].data<float>()[i], want[i]);
    EXPECT_EQ(outs[1].data<uint8_t>()[i], 0);
  }
}

TEST(Expr, LargeTensorCrossesBlocks) {
  // 3*517 elements: more than one evaluation block, with a broadcast row.
  Program p;
  p.input_types = {DataType::kFloat, DataType::kFloat};
  p.outputs = {p.binary(Op::kSub, p.input(0), p.input(1))};
  Tensor a(DataType::kFloat, {3, 517}), b(DataType::kFloat, {517});
  for (int64_t i = 0; i < a.numel(); ++i) a.data<float>()[i] = static_cast<float>(i);
  for (int64_t j = 0; j < 517; ++j) b.data<float>()[j] = static_cast<float>(j);
  Tensor r = run1(p, {a, b}, {3, 517});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 517; ++j) ASSERT_EQ(r.data<float>()[i * 517 + j], 517.0f * i);
}

TEST(Expr, ProgramPrintsItsCode) {
  Program p;
  p.input_types = {DataType::kFloat};
  p.outputs = {p.unary(Op::kExp, p.input(0))};
  EXPECT_EQ(p.str(), "in(float32); r0:float32=input 0; r1:float32=exp r0; out(r1)");
}

}  // namespace
}  // namespace kiln::expr

namespace kiln {
namespace {

TEST(Tensor, OverflowingShapeIsAnErrorNotASmallBuffer) {
  // 2^32 * 2^32 overflows to 0 in int64 arithmetic; the constructor must refuse it.
  try {
    Tensor t(DataType::kFloat, {int64_t(1) << 32, int64_t(1) << 32});
    FAIL() << "allocated " << t.numel() << " elements";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("too large"), std::string::npos) << e.message();
  }
  Tensor empty(DataType::kFloat, {int64_t(1) << 40, 0});
  EXPECT_EQ(empty.numel(), 0);
}

}  // namespace
}  // namespace kiln
