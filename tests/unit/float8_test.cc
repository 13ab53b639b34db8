// float8 E4M3FN (common/half.h) and the FP8 quantization ops on the CPU (issue 13): every code
// round-trips, rounding is to nearest even, out-of-range values saturate or become NaN as ONNX
// says, and QuantizeLinear/DequantizeLinear to and from float8 compute what the definition does.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/half.h"
#include "ops/dequantize_linear.h"
#include "ops/infer.h"
#include "ops/op.h"
#include "ops/quantize_linear.h"

namespace kiln {
namespace {

TEST(Float8, EveryCodeRoundTrips) {
  int finite = 0;
  for (int b = 0; b < 256; ++b) {
    const float v = e4m3fn_bits_to_float(static_cast<uint8_t>(b));
    if ((b & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(v)) << b;
      continue;
    }
    ++finite;
    EXPECT_EQ(float_to_e4m3fn_bits(v), b) << "code " << b << " = " << v;
  }
  EXPECT_EQ(finite, 254);
  EXPECT_EQ(e4m3fn_bits_to_float(0x7e), 448.0f);
  EXPECT_EQ(e4m3fn_bits_to_float(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(e4m3fn_bits_to_float(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_TRUE(std::signbit(e4m3fn_bits_to_float(0x80)));        // -0 keeps its sign
}

TEST(Float8, RoundsToNearestEven) {
  EXPECT_EQ(e4m3fn_bits_to_float(float_to_e4m3fn_bits(1.0625)), 1.0f);    // 1 | 1.125: even
  EXPECT_EQ(e4m3fn_bits_to_float(float_to_e4m3fn_bits(1.1875)), 1.25f);   // 1.125 | 1.25: even
  EXPECT_EQ(e4m3fn_bits_to_float(float_to_e4m3fn_bits(1.07)), 1.125f);    // nearer the odd one
  EXPECT_EQ(e4m3fn_bits_to_float(float_to_e4m3fn_bits(-3.3)), -3.25f);
  EXPECT_EQ(float_to_e4m3fn_bits(std::ldexp(1.0, -10)), 0x00);            // half the subnormal: 0
  EXPECT_EQ(float_to_e4m3fn_bits(3 * std::ldexp(1.0, -10)), 0x02);        // 1.5 units: 2
  EXPECT_EQ(float_to_e4m3fn_bits(std::ldexp(7.5, -9)), 0x08);             // carries into normal
  EXPECT_EQ(float_to_e4m3fn_bits(1e-30), 0x00);
}

TEST(Float8, OutOfRangeSaturatesOrIsNaN) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(float_to_e4m3fn_bits(448), 0x7e);
  EXPECT_EQ(float_to_e4m3fn_bits(463), 0x7e);   // rounds down to 448
  EXPECT_EQ(float_to_e4m3fn_bits(464), 0x7e);   // halfway to 480: the even neighbour, 448
  EXPECT_EQ(float_to_e4m3fn_bits(464, false), 0x7e);
  EXPECT_EQ(float_to_e4m3fn_bits(465), 0x7e);   // would round to 480: saturates
  EXPECT_EQ(float_to_e4m3fn_bits(1e9), 0x7e);
  EXPECT_EQ(float_to_e4m3fn_bits(-1e9), 0xfe);
  EXPECT_EQ(float_to_e4m3fn_bits(inf), 0x7e);
  EXPECT_EQ(float_to_e4m3fn_bits(-inf), 0xfe);
  EXPECT_EQ(float_to_e4m3fn_bits(465, /*saturate=*/false), 0x7f);
  EXPECT_EQ(float_to_e4m3fn_bits(inf, false), 0x7f);
  EXPECT_EQ(float_to_e4m3fn_bits(std::nan("")), 0x7f);
}

TEST(Float8, TensorElementsReadAndWriteFloat8) {
  Tensor t(DataType::kFloat8E4M3FN, {4});
  t.set_f64(0, 0.3);
  t.set_f64(1, -1000);
  t.set_f64(2, 2.0);
  t.set_i64(3, 7);
  EXPECT_EQ(t.get_f64(0), 0.3125);  // the nearest float8
  EXPECT_EQ(t.get_f64(1), -448);
  EXPECT_EQ(t.get_f64(2), 2);
  EXPECT_EQ(t.get_i64(3), 7);
}

// Runs a node of `op` on the inputs with the reference compute.
Tensor run_op(const std::string& op, std::unique_ptr<Attrs> attrs, std::vector<Tensor> ins) {
  Graph g;
  std::vector<Value*> vals;
  for (size_t i = 0; i < ins.size(); ++i) {
    Value* v = g.add_value("in" + std::to_string(i), ins[i].dtype(), Shape::from(ins[i].dims()));
    g.inputs.push_back(v);
    vals.push_back(v);
  }
  Value* out = g.add_value("out");
  Node* n = g.add_node(op, vals, {out}, std::move(attrs), "node");
  infer_node(*n);
  EXPECT_TRUE(out->shape.fully_known());
  std::vector<Tensor> outs{Tensor(out->dtype, out->shape.concrete())};
  n->def->compute(ComputeArgs{*n, ins, outs});
  return outs[0];
}

TEST(Float8, QuantizeAndDequantizeLinear) {
  Tensor x(DataType::kFloat, {2, 3});
  const double xs[] = {0.1, -2.5, 1000, 7.0, -0.004, 3.14159};
  for (int i = 0; i < 6; ++i) x.set_f64(i, xs[i]);
  Tensor scale(DataType::kFloat, {3});  // per channel along axis 1
  const double ss[] = {0.5, 0.25, 2.0};
  for (int i = 0; i < 3; ++i) scale.set_f64(i, ss[i]);
  Tensor zero(DataType::kFloat8E4M3FN, {3});
  for (int i = 0; i < 3; ++i) zero.set_f64(i, 0);
  for (int64_t saturate : {1, 0}) {
    auto qa = std::make_unique<QuantizeLinearAttrs>();
    qa->axis = 1;
    qa->output_dtype = DataType::kFloat8E4M3FN;
    qa->saturate = saturate;
    Tensor q = run_op("QuantizeLinear", std::move(qa), {x, scale, zero});
    ASSERT_EQ(q.dtype(), DataType::kFloat8E4M3FN);
    for (int i = 0; i < 6; ++i) {
      const double v = xs[i] / ss[i % 3];
      if (std::fabs(v) > 464 && !saturate)
        EXPECT_TRUE(std::isnan(q.get_f64(i))) << i;
      else
        EXPECT_EQ(q.get_f64(i), e4m3fn_bits_to_float(float_to_e4m3fn_bits(v))) << i;
    }
    auto da = std::make_unique<DequantizeLinearAttrs>();
    da->axis = 1;
    Tensor d = run_op("DequantizeLinear", std::move(da), {q, scale, zero});
    ASSERT_EQ(d.dtype(), DataType::kFloat);
    for (int i = 0; i < 6; ++i)
      if (!std::isnan(q.get_f64(i))) EXPECT_EQ(d.get_f64(i), q.get_f64(i) * ss[i % 3]) << i;
  }
}

}  // namespace
}  // namespace kiln
