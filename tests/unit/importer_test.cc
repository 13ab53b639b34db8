// The importer on hand-made models: graph-level malformations (dangling inputs, cycles, values
// produced twice, missing outputs), all unsupported nodes reported at once, and a model built
// from bytes end to end through Builder and a context.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "kiln/kiln.h"
#include "onnx/importer.h"
#include "proto_builder.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;
using namespace kiln::test::proto;

std::string import_error(const test::ProtoWriter& g, int64_t opset = 13) {
  try {
    onnx::ModelProto m = parse_bytes(model(g, opset).str());
    onnx::import_model_or_throw(m);
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}

auto x_in() { return value_info("x", DataType::kFloat, {2, 3}); }
auto y_out() { return value_info("y", DataType::kFloat, {2, 3}); }

TEST(Importer, DanglingInputNamesTheNodeAndValue) {
  auto g = graph("g", {node("Relu", {"nobody"}, {"y"}, {}, "relu1")}, {x_in()}, {y_out()});
  std::string e = import_error(g);
  EXPECT_THAT(e, HasSubstr("node 'relu1' (Relu) reads 'nobody'"));
  EXPECT_THAT(e, HasSubstr("dangling input"));
}

TEST(Importer, CycleIsAnErrorNotAHang) {
  // a = Relu(b); b = Relu(a): neither can come first.
  auto g = graph("g",
                 {node("Relu", {"b"}, {"a"}, {}, "first"), node("Relu", {"a"}, {"b"}, {}, "second"),
                  node("Add", {"x", "b"}, {"y"}, {}, "out")},
                 {x_in()}, {y_out()});
  std::string e = import_error(g);
  EXPECT_THAT(e, HasSubstr("'first'"));
  EXPECT_THAT(e, HasSubstr("cycle"));
}

TEST(Importer, ValueProducedTwice) {
  auto g = graph("g", {node("Relu", {"x"}, {"y"}, {}, "a"), node("Neg", {"x"}, {"y"}, {}, "b")},
                 {x_in()}, {y_out()});
  EXPECT_THAT(import_error(g), HasSubstr("'y' is produced twice"));
}

TEST(Importer, MissingGraphOutput) {
  auto g = graph("g", {node("Relu", {"x"}, {"z"})}, {x_in()}, {y_out()});
  EXPECT_THAT(import_error(g), HasSubstr("graph output 'y' is not produced"));
}

TEST(Importer, AllUnsupportedNodesAreReportedAtOnce) {
  auto g = graph("g",
                 {node("FancyOp", {"x"}, {"a"}, {}, "n1"), node("Relu", {"a"}, {"b"}, {}, "n2"),
                  node("OtherOp", {"x"}, {"c"}, {}, "n3"),
                  node("Add", {"b", "c"}, {"y"}, {}, "n4")},
                 {x_in()}, {y_out()});
  std::string e = import_error(g);
  EXPECT_THAT(e, HasSubstr("2 node(s) cannot be imported"));
  EXPECT_THAT(e, HasSubstr("node 'n1' op FancyOp (opset 13): no importer for this op"));
  EXPECT_THAT(e, HasSubstr("node 'n3' op OtherOp (opset 13)"));
  // Nodes downstream of a failure are not reported again.
  EXPECT_THAT(e, ::testing::Not(HasSubstr("'n2'")));
}

TEST(Importer, InvalidAttributeTypeNamesIt) {
  auto g = graph("g", {node("LeakyRelu", {"x"}, {"y"}, {attr_int("alpha", 3)}, "lr")}, {x_in()},
                 {y_out()});
  EXPECT_THAT(import_error(g), HasSubstr("attribute 'alpha' should be of type FLOAT"));
}

TEST(Importer, BadBroadcastIsReportedWithTheNode) {
  auto g = graph("g", {node("Add", {"x", "w"}, {"y"}, {}, "add")}, {x_in()}, {y_out()},
                 {tensor_f32("w", {4}, {1, 2, 3, 4})});
  std::string e = import_error(g);
  EXPECT_THAT(e, HasSubstr("'add'"));
  EXPECT_THAT(e, HasSubstr("cannot broadcast"));
}

TEST(Importer, ModelBytesBuildAndRun) {
  // y = relu(x * w) with symbolic batch; built from bytes, fixed to batch 2 at build time.
  auto g = graph("g",
                 {node("Mul", {"x", "w"}, {"t"}), node("Relu", {"t"}, {"y"})},
                 {value_info("x", DataType::kFloat, {"N", 3})},
                 {value_info("y", DataType::kFloat, {"N", 3})}, {tensor_f32("w", {3}, {1, -1, 2})});
  BuildOptions o;
  o.device = "cpu";
  o.input_shapes["x"] = {2, 3};
  std::shared_ptr<Plan> plan;
  Status s = Builder(o).build_from_onnx_bytes(model(g).str(), plan);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  std::shared_ptr<Engine> e;
  ASSERT_TRUE(Engine::create(plan, e).is_ok());
  std::unique_ptr<ExecutionContext> ctx;
  ASSERT_TRUE(e->create_context(ctx).is_ok());
  std::map<std::string, Tensor> out;
  Tensor x = Tensor::from_vector<float>(DataType::kFloat, {2, 3}, {1, 2, 3, -4, -5, 6});
  ASSERT_TRUE(ctx->run({{"x", x}}, out).is_ok());
  const float want[] = {1, 0, 6, 0, 5, 12};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out.at("y").data<float>()[i], want[i]);
  // The plan fixed the batch: a different batch is a clear error.
  s = ctx->run({{"x", Tensor(DataType::kFloat, {5, 3})}}, out);
  EXPECT_THAT(s.message(), HasSubstr("has shape [5,3] but the engine expects [2,3]"));
}

TEST(Importer, MalformedBytesThroughTheBuilderAreAStatus) {
  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = "cpu"}).build_from_onnx_bytes("\x0a\xff\xff", plan);
  EXPECT_EQ(s.code(), StatusCode::kInvalidModel);
  s = Builder(BuildOptions{.device = "cpu"}).build_from_onnx("/no/such/model.onnx", plan);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_THAT(s.message(), HasSubstr("/no/such/model.onnx"));
}

// A shape operand declared with 2^26 elements and no data (a 70-byte model) once made shape
// inference build a rank-67,108,864 shape, gigabytes, for tens of seconds: ranks are capped.
TEST(Importer, HugeDeclaredShapeOperandsAreAnErrorNotGigabytes) {
  for (const char* op : {"ConstantOfShape", "Expand", "Reshape"}) {
    std::vector<std::string> ins = std::string(op) == "ConstantOfShape" ? std::vector<std::string>{"s"}
                                                                      : std::vector<std::string>{"x", "s"};
    auto g = graph("g", {node(op, ins, {"y"})},
                   {value_info("x", DataType::kFloat, {2, 3}),
                    value_info("s", DataType::kInt64, {int64_t{1} << 26})},
                   {value_info("y", DataType::kFloat, {})});
    std::string e = import_error(g);
    EXPECT_THAT(e, HasSubstr("kiln supports up to 64")) << op << ": " << e;
  }
}

// ---- legacy opsets and newer ones (issue 15, point 4) -----------------------------------------

// Builds a model of `opset` from bytes on the CPU and runs it on x; returns output "y".
Tensor run_model(const test::ProtoWriter& g, int64_t opset, const Tensor& x) {
  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = "cpu"}).build_from_onnx_bytes(model(g, opset).str(), plan);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  if (!s) return Tensor();
  std::shared_ptr<Engine> e;
  EXPECT_TRUE(Engine::create(plan, e).is_ok());
  std::unique_ptr<ExecutionContext> ctx;
  EXPECT_TRUE(e->create_context(ctx).is_ok());
  std::map<std::string, Tensor> out;
  s = ctx->run({{"x", x}}, out);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out["y"];
}

Tensor iota(Dims d) {
  Tensor t(DataType::kFloat, d);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i) - 5.0f;
  return t;
}

TEST(ImporterOpsets, LegacyBroadcastWithAnAxisAlignsBAtThatAxis) {
  // Opset 6: Add(x [2,3,2], b [3], broadcast=1, axis=1) adds b[c] along axis 1; numpy's rule
  // would align b with the last axis (and fail: 3 against 2).
  auto g = graph("g", {node("Add", {"x", "b"}, {"y"}, {attr_int("broadcast", 1), attr_int("axis", 1)})},
                 {value_info("x", DataType::kFloat, {2, 3, 2})},
                 {value_info("y", DataType::kFloat, {2, 3, 2})}, {tensor_f32("b", {3}, {10, 20, 30})});
  Tensor x = iota({2, 3, 2});
  Tensor y = run_model(g, 6, x);
  ASSERT_TRUE(y.defined());
  for (int64_t i = 0; i < 12; ++i)
    EXPECT_EQ(y.data<float>()[i], x.data<float>()[i] + 10.0f * (1 + (i / 2) % 3)) << i;
}

TEST(ImporterOpsets, PReluBeforeOpset7IsPerChannel) {
  auto g = graph("g", {node("PRelu", {"x", "s"}, {"y"})},
                 {value_info("x", DataType::kFloat, {1, 3, 2, 2})},
                 {value_info("y", DataType::kFloat, {1, 3, 2, 2})}, {tensor_f32("s", {3}, {0.5, 2, -1})});
  Tensor x = iota({1, 3, 2, 2});
  Tensor y = run_model(g, 6, x);
  ASSERT_TRUE(y.defined());
  const float slope[] = {0.5f, 2.0f, -1.0f};
  for (int64_t i = 0; i < 12; ++i) {
    const float v = x.data<float>()[i];
    EXPECT_EQ(y.data<float>()[i], v < 0 ? v * slope[i / 4] : v) << i;
  }
}

TEST(ImporterOpsets, GemmOfOpset6) {
  auto g = graph("g", {node("Gemm", {"x", "w", "c"}, {"y"}, {attr_int("broadcast", 1), attr_float("beta", 2.0f)})},
                 {value_info("x", DataType::kFloat, {2, 2})}, {value_info("y", DataType::kFloat, {2, 1})},
                 {tensor_f32("w", {2, 1}, {1, 1}), tensor_f32("c", {1}, {0.5})});
  Tensor x = Tensor::from_vector<float>(DataType::kFloat, {2, 2}, {1, 2, 3, 4});
  Tensor y = run_model(g, 6, x);
  ASSERT_TRUE(y.defined());
  EXPECT_EQ(y.data<float>()[0], 4.0f);
  EXPECT_EQ(y.data<float>()[1], 8.0f);
}

TEST(ImporterOpsets, AnOpIsNotImportedBeforeTheOpsetItAppearedIn) {
  // Trilu appeared in opset 14 and Gelu in 20: a model that declares an older opset and uses
  // them is invalid, and the error says from when the op exists.
  auto trilu = graph("g", {node("Trilu", {"x"}, {"y"}, {}, "tri")}, {x_in()}, {y_out()});
  EXPECT_THAT(import_error(trilu, 13), HasSubstr("does not exist before opset 14"));
  EXPECT_EQ(import_error(trilu, 14), "");
  auto gelu = graph("g", {node("Gelu", {"x"}, {"y"}, {}, "gelu")}, {x_in()}, {y_out()});
  EXPECT_THAT(import_error(gelu, 19), HasSubstr("does not exist before opset 20"));
  EXPECT_EQ(import_error(gelu, 20), "");
  // kiln ops / kiln info print the ranges from the first opset on.
  for (const onnx::ImporterRange& r : onnx::importer_ranges()) {
    if (r.domain.empty() && r.op_type == "Trilu") EXPECT_EQ(r.min_opset, 14);
    if (r.domain.empty() && r.op_type == "Relu") EXPECT_EQ(r.min_opset, 1);
  }
}

TEST(ImporterOpsets, OpsUnchangedSinceAnOlderVersionServeNewerOpsets) {
  // BatchNormalization's last version is 15: a model of opset 17 or 22 imports it (it failed
  // with "opset 17 of this op is not supported").
  auto g = graph("g", {node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"})},
                 {value_info("x", DataType::kFloat, {1, 2, 1, 1})},
                 {value_info("y", DataType::kFloat, {1, 2, 1, 1})},
                 {tensor_f32("s", {2}, {1, 2}), tensor_f32("b", {2}, {0, 1}),
                  tensor_f32("m", {2}, {0, 0}), tensor_f32("v", {2}, {1, 1})});
  Tensor x = Tensor::from_vector<float>(DataType::kFloat, {1, 2, 1, 1}, {3, 4});
  for (int64_t opset : {15, 16, 17, 22}) {
    Tensor y = run_model(g, opset, x);
    ASSERT_TRUE(y.defined()) << "opset " << opset;
    EXPECT_NEAR(y.data<float>()[0], 3.0f, 1e-4) << "opset " << opset;
    EXPECT_NEAR(y.data<float>()[1], 9.0f, 1e-3) << "opset " << opset;
  }
  // Past the newest opset kiln knows, and where an op changed in a way kiln does not implement
  // (Resize 18), the error says which opset.
  auto r = graph("g", {node("Relu", {"x"}, {"y"})}, {x_in()}, {y_out()});
  EXPECT_THAT(import_error(r, onnx::kNewestOpset + 1), HasSubstr("opset"));
  EXPECT_EQ(import_error(r, onnx::kNewestOpset), "");
}

TEST(ImporterOpsets, SplitOfOpset18TakesNumOutputs) {
  auto g = graph("g", {node("Split", {"x"}, {"y", "z"}, {attr_int("axis", 0), attr_int("num_outputs", 2)})},
                 {value_info("x", DataType::kFloat, {5})},
                 {value_info("y", DataType::kFloat, {3}), value_info("z", DataType::kFloat, {2})});
  Tensor x = iota({5});
  Tensor y = run_model(g, 18, x);
  ASSERT_TRUE(y.defined());
  EXPECT_EQ(dims_to_string(y.dims()), "[3]");
  EXPECT_EQ(y.data<float>()[2], -3.0f);
  auto bad = graph("g", {node("Split", {"x"}, {"y", "z"}, {attr_int("axis", 0)})},
                   {value_info("x", DataType::kFloat, {5})},
                   {value_info("y", DataType::kFloat, {3}), value_info("z", DataType::kFloat, {2})});
  EXPECT_THAT(import_error(bad, 18), HasSubstr("num_outputs"));
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

using namespace kiln::test::proto;

TEST(Importer, AnOutputThatIsAnInputLeavesTheInputItsName) {
  // ONNX lets one tensor be both; the input keeps "x" (what --shapes and --input name), the
  // output becomes "x/output", and both run.
  auto g = graph("g", {node("Relu", {"x"}, {"y"}, {}, "relu")},
                 {value_info("x", DataType::kFloat, {2, 3})},
                 {value_info("y", DataType::kFloat, {2, 3}), value_info("x", DataType::kFloat, {2, 3})});
  BuildOptions o;
  o.device = "cpu";
  std::shared_ptr<Plan> p;
  Status s = Builder(o).build_from_onnx_bytes(model(g, 13).str(), p);
  ASSERT_TRUE(s.is_ok()) << s.message();
  std::shared_ptr<Engine> e;
  ASSERT_TRUE(Engine::create(p, e).is_ok());
  ASSERT_EQ(e->inputs().size(), 1u);
  EXPECT_EQ(e->inputs()[0].name, "x");
  ASSERT_EQ(e->outputs().size(), 2u);
  EXPECT_EQ(e->outputs()[1].name, "x/output");
  std::unique_ptr<ExecutionContext> c;
  ASSERT_TRUE(e->create_context(c).is_ok());
  Tensor x(DataType::kFloat, {2, 3});
  for (int64_t i = 0; i < 6; ++i) x.set_f64(i, i - 2.5);
  std::map<std::string, Tensor> out;
  ASSERT_TRUE(c->run({{"x", x}}, out).is_ok());
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(out.at("x/output").get_f64(i), i - 2.5);
    EXPECT_EQ(out.at("y").get_f64(i), std::max(0.0, i - 2.5));
  }
}

}  // namespace
}  // namespace kiln
