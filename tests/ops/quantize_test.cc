// QuantizeLinear / DequantizeLinear: round-half-to-even, saturation, per-tensor and per-axis
// (negative axis, awkward shapes), optional zero point, int32 and double inputs, errors; and the
// DynamicQuantizeLinear lowering end to end. Expectations by hand (the arithmetic is shown) or
// from numpy's float32 version of the ONNX definition.
#include <gtest/gtest.h>

#include "ops/dequantize_linear.h"
#include "ops/quantize_linear.h"
#include "run_graph.h"
#include "single_node.h"

namespace kiln::testing {
namespace {

std::unique_ptr<QuantizeLinearAttrs> qattrs(DataType out, int64_t axis = 1) {
  auto a = std::make_unique<QuantizeLinearAttrs>();
  a->output_dtype = out;
  a->axis = axis;
  return a;
}
std::unique_ptr<DequantizeLinearAttrs> dqattrs(int64_t axis = 1) {
  auto a = std::make_unique<DequantizeLinearAttrs>();
  a->axis = axis;
  return a;
}

TEST(QuantizeLinear, PerTensorTiesToEvenAndSaturation) {
  // x / 0.5 = 0.5, 1.5, -0.5, 2.5, 260, -200, 2, 126 -> rint 0, 2, -0, 2, 260, -200, 2, 126;
  // + 10 and clamp to [0, 255].
  SingleNode n("QuantizeLinear", qattrs(DataType::kUInt8),
               {NodeInput::of(f32({8}, {0.25f, 0.75f, -0.25f, 1.25f, 130, -100, 1, 63})),
                NodeInput::of(f32({}, {0.5f})), NodeInput::of(u8({}, {10}))});
  n.infer();
  EXPECT_EQ(n.out(0).dtype, DataType::kUInt8);
  auto y = n.run();
  expect_ints(y[0], {8}, {10, 12, 10, 12, 255, 0, 12, 136});
}

TEST(QuantizeLinear, PerAxisInt8) {
  // axis 1 of [2,3,2]: scales 1, 0.5, 4; zero points 0, -3, 100.
  // c0: 1.5->2, -2.5->-2, -200->-128, 127.4->127
  // c1: 0.6->1 (-2), 140 (137->127), -0.52->-1 (-4), 0.48->0 (-3)
  // c2: 2.5->2 (102), 100 (200->127), -0.5->-0 (100), 0.5->0 (100)
  Tensor x = f32({2, 3, 2}, {1.5f, -2.5f, 0.3f, 70, 10, 400, -200, 127.4f, -0.26f, 0.24f, -2, 2});
  SingleNode n("QuantizeLinear", qattrs(DataType::kInt8),
               {NodeInput::of(x), NodeInput::of(f32({3}, {1, 0.5f, 4})),
                NodeInput::of(s8({3}, {0, -3, 100}))});
  auto y = n.run();
  EXPECT_EQ(y[0].dtype(), DataType::kInt8);
  expect_ints(y[0], {2, 3, 2}, {2, -2, -2, 127, 102, 127, -128, 127, -4, -3, 100, 100});
}

TEST(QuantizeLinear, NegativeAxisAndNoZeroPoint) {
  // axis -1 of [2,3]: x / [1,2,4] = 1, 1, .75, 4, 2.5, 1.5 -> 1, 1, 1, 4, 2, 2; + [0,1,2].
  SingleNode n("QuantizeLinear", qattrs(DataType::kUInt8, -1),
               {NodeInput::of(f32({2, 3}, {1, 2, 3, 4, 5, 6})), NodeInput::of(f32({3}, {1, 2, 4})),
                NodeInput::of(u8({3}, {0, 1, 2}))});
  expect_ints(n.run()[0], {2, 3}, {1, 2, 3, 4, 3, 4});
  // Without a zero point: uint8 around 0.
  SingleNode z("QuantizeLinear", qattrs(DataType::kUInt8),
               {NodeInput::of(f32({3}, {-1, 1.5f, 2.5f})), NodeInput::of(f32({}, {1}))});
  expect_ints(z.run()[0], {3}, {0, 2, 2});
}

TEST(QuantizeLinear, Int32AndDoubleInputs) {
  // 7/2 = 3.5 -> 4, -3.5 -> -4, 500 -> 127.
  SingleNode n("QuantizeLinear", qattrs(DataType::kInt8),
               {NodeInput::of(i32({3}, {7, -7, 1000})), NodeInput::of(f32({}, {2})),
                NodeInput::of(s8({}, {0}))});
  expect_ints(n.run()[0], {3}, {4, -4, 127});
  SingleNode d("QuantizeLinear", qattrs(DataType::kUInt8),
               {NodeInput::of(f64({2}, {2.5, 3.5})), NodeInput::of(f64({}, {1})),
                NodeInput::of(u8({}, {1}))});
  expect_ints(d.run()[0], {2}, {3, 5});
}

TEST(DequantizeLinear, PerTensorAndPerAxis) {
  // (x - 128) * 2
  SingleNode n("DequantizeLinear", dqattrs(),
               {NodeInput::of(u8({4}, {0, 3, 128, 255})), NodeInput::of(f32({}, {2})),
                NodeInput::of(u8({}, {128}))});
  n.infer();
  EXPECT_EQ(n.out(0).dtype, DataType::kFloat);
  expect_values(n.run()[0], {4}, {-256, -250, 0, 254});
  // axis 0 of [3,2]: (x - [1,0,-1]) * [0.5, 2, 0.25]
  SingleNode p("DequantizeLinear", dqattrs(0),
               {NodeInput::of(s8({3, 2}, {-128, 127, 0, 5, -5, 1})),
                NodeInput::of(f32({3}, {0.5f, 2, 0.25f})), NodeInput::of(s8({3}, {1, 0, -1}))});
  expect_values(p.run()[0], {3, 2}, {-64.5, 63, 0, 10, -1, 0.5});
}

TEST(DequantizeLinear, Int32WithoutZeroPointAndHalfScale) {
  SingleNode n(
      "DequantizeLinear", dqattrs(),
      {NodeInput::of(i32({3}, {2147483647, -2147483647 - 1, 5})), NodeInput::of(f32({}, {0.5f}))});
  // float(2147483647) = 2^31, halved.
  expect_values(n.run()[0], {3}, {1073741824.0, -1073741824.0, 2.5}, 0, 0);
  Tensor h(DataType::kFloat16, {});
  h.set_f64(0, 0.25);
  SingleNode f("DequantizeLinear", dqattrs(),
               {NodeInput::of(s8({2}, {-3, 9})), NodeInput::of(h), NodeInput::of(s8({}, {1}))});
  auto y = f.run();
  EXPECT_EQ(y[0].dtype(), DataType::kFloat16);
  expect_values(y[0], {2}, {-1, 2});
}

TEST(QuantizeLinear, Errors) {
  auto run_q = [](std::unique_ptr<QuantizeLinearAttrs> a, std::vector<NodeInput> in) {
    SingleNode n("QuantizeLinear", std::move(a), std::move(in));
    n.infer();
    n.run();
  };
  expect_error(
      [&] {
        run_q(qattrs(DataType::kInt8), {NodeInput::of(f32({2}, {1, 2})),
                                        NodeInput::of(f32({}, {1})), NodeInput::of(u8({}, {1}))});
      },
      "zero_point is uint8 but the output type is int8");
  expect_error(
      [&] {
        run_q(qattrs(DataType::kUInt8),
              {NodeInput::of(f32({2, 3}, {1, 2, 3, 4, 5, 6})), NodeInput::of(f32({2}, {1, 2}))});
      },
      "scale has 2 elements but x has 3 along axis 1");
  expect_error(
      [&] {
        run_q(qattrs(DataType::kUInt8),
              {NodeInput::of(f32({2, 2}, {1, 2, 3, 4})), NodeInput::of(f32({2, 2}, {1, 2, 3, 4}))});
      },
      "scalar or 1-D");
  expect_error(
      [&] {
        run_q(qattrs(DataType::kFloat),
              {NodeInput::of(f32({1}, {1})), NodeInput::of(f32({}, {1}))});
      },
      "cannot quantize to float32");
  expect_error(
      [&] {
        run_q(qattrs(DataType::kUInt8),
              {NodeInput::of(f32({2, 3}, {1, 2, 3, 4, 5, 6})), NodeInput::of(f32({3}, {1, 2, 3})),
               NodeInput::of(u8({2}, {1, 2}))});
      },
      "zero_point has 2 elements");
  expect_error(
      [&] {
        SingleNode n("DequantizeLinear", dqattrs(),
                     {NodeInput::of(f32({1}, {1})), NodeInput::of(f32({}, {1}))});
        n.infer();
      },
      "x must be int8");
}

// --- DynamicQuantizeLinear: lowered by the importer to Reduce + Pointwise ---

using namespace kiln::test::proto;

test::ProtoWriter dql_model(const Dims& dims) {
  std::vector<test::proto::Dim> d(dims.begin(), dims.end());
  return graph("g", {node("DynamicQuantizeLinear", {"x"}, {"y", "s", "z"})},
               {value_info("x", DataType::kFloat, d)},
               {value_info("y", DataType::kUInt8, d), value_info("s", DataType::kFloat, {}),
                value_info("z", DataType::kUInt8, {})});
}

TEST(DynamicQuantizeLinear, LoweredAndRun) {
  auto g = testing::import_graph(dql_model({2, 3}), 11);
  for (const auto& n : g->nodes())
    EXPECT_TRUE(n->op() == "Reduce" || n->op() == "Pointwise") << n->op();
  // numpy (float32): scale = (3 - -1) / 255, zero point = round(1 / scale) = 64.
  auto out = testing::run_graph(*g, {f32({2, 3}, {-1, 0, 1.5f, 3, 0.7f, -0.33f})});
  expect_ints(out[0], {2, 3}, {0, 64, 160, 255, 109, 43});
  expect_values(out[1], {}, {0.01568627543747425}, 1e-7, 0);
  expect_ints(out[2], {}, {64});
  // Positive-only data: the range is extended to 0, zero point 0.
  auto pos = testing::run_graph(*g, {f32({2, 3}, {0.5f, 2, 7.25f, 0.5f, 0.5f, 0.5f})});
  expect_ints(pos[0], {2, 3}, {18, 70, 255, 18, 18, 18});
  expect_ints(pos[2], {}, {0});
  // All zeros: scale 0 must not turn into NaN through 0 / 0.
  auto zero = testing::run_graph(*g, {f32({2, 3}, {0, 0, 0, 0, 0, 0})});
  expect_ints(zero[0], {2, 3}, {0, 0, 0, 0, 0, 0});
  expect_values(zero[1], {}, {0});
  expect_ints(zero[2], {}, {0});
}

TEST(DynamicQuantizeLinear, RejectsNonFloat) {
  auto g = graph("g", {node("DynamicQuantizeLinear", {"x"}, {"y", "s", "z"})},
                 {value_info("x", DataType::kDouble, {2})},
                 {value_info("y", DataType::kUInt8, {2}), value_info("s", DataType::kFloat, {}),
                  value_info("z", DataType::kUInt8, {})});
  expect_error([&] { testing::import_graph(g, 11); }, "x must be float32");
}

}  // namespace
}  // namespace kiln::testing
