// Shape ops (Reshape and its squeeze/unsqueeze/flatten forms, Shape, Size, Range,
// ConstantOfShape) and the importers of the shape, movement and indexing families where they
// lower (Squeeze, Unsqueeze, Flatten, Split, DepthToSpace, SpaceToDepth, EyeLike, Constant) or
// fold shape subgraphs. Expected values come from numpy.
#include <limits>

#include "common/error.h"
#include "kiln/kiln.h"
#include "onnx/importer.h"
#include "ops/constant_of_shape.h"
#include "ops/reshape.h"
#include "ops/shape.h"
#include "single_node.h"
#include "unit/proto_builder.h"

namespace kiln::testing {
namespace {

std::unique_ptr<ReshapeAttrs> plain(bool allowzero = false) {
  auto a = std::make_unique<ReshapeAttrs>();
  a->allowzero = allowzero;
  return a;
}
std::unique_ptr<ReshapeAttrs> form(const std::string& f, Ints axes, int64_t axis = 1) {
  auto a = std::make_unique<ReshapeAttrs>();
  a->form = f;
  a->axes = std::move(axes);
  a->axis = axis;
  return a;
}

std::string inferred(std::unique_ptr<Attrs> a, std::vector<NodeInput> ins,
                     const std::string& op = "Reshape") {
  SingleNode n(op, std::move(a), std::move(ins));
  n.infer();
  return n.out(0).shape.str();
}

NodeInput sym_in(std::vector<Dim> d, DataType t = DataType::kFloat) {
  return NodeInput::shaped(t, Shape(std::move(d)));
}

// ---- Reshape ----

TEST(Reshape, ZeroCopiesAndMinusOneInfers) {
  Tensor y =
      run_node1("Reshape", plain(), {NodeInput::of(f32({2, 3, 4}, iota_f(24))), c64({0, -1})});
  ASSERT_EQ(dims_to_string(y.dims()), "[2,12]");
  for (int i = 0; i < 24; ++i) EXPECT_EQ(y.data<float>()[i], i);
  Tensor z =
      run_node1("Reshape", plain(), {NodeInput::of(i64({6}, {1, 2, 3, 4, 5, 6})), c64({3, -1, 1})});
  expect_ints(z, {3, 2, 1}, {1, 2, 3, 4, 5, 6});
}

TEST(Reshape, AllowZeroMakesRealZeros) {
  Tensor y = run_node1("Reshape", plain(true), {NodeInput::of(f32({0, 3}, {})), c64({3, 0})});
  EXPECT_EQ(dims_to_string(y.dims()), "[3,0]");
  // Without allowzero the 0 copies dim 1 (3): [3,3] needs 9 elements, not 0.
  expect_error(
      [] {
        SingleNode("Reshape", plain(),
                   {NodeInput::shaped(DataType::kFloat, Shape::from({0, 3})), c64({3, 0})})
            .infer();
      },
      "cannot reshape");
}

TEST(Reshape, SymbolicInference) {
  Dim n = Dim::sym("N");
  EXPECT_EQ(inferred(plain(), {sym_in({n, 3, 4}), c64({0, -1})}), "[N,12]");
  EXPECT_EQ(inferred(plain(), {sym_in({n, 3, 4}), c64({-1, 12})}), "[N,12]");
  EXPECT_EQ(inferred(plain(), {sym_in({n, 3, 4}), c64({-1, 4})}), "[?,4]");
  EXPECT_EQ(inferred(plain(), {sym_in({n, 12}), c64({0, 3, -1})}), "[N,3,4]");
  // Shape value unknown: the rank is the shape tensor's length.
  EXPECT_EQ(inferred(plain(), {sym_in({n, 12}), sym_in({3}, DataType::kInt64)}), "[?,?,?]");
  EXPECT_EQ(inferred(plain(), {sym_in({n, 12}), sym_in({Dim::unknown()}, DataType::kInt64)}),
            "[*]");
}

TEST(Reshape, Errors) {
  auto x = NodeInput::shaped(DataType::kFloat, Shape::from({2, 3, 4}));
  expect_error([&] { SingleNode("Reshape", plain(), {x, c64({5, -1})}).infer(); }, "do not divide");
  expect_error(
      [&] {
        SingleNode("Reshape", plain(), {x, c64({-1, -1})}).infer();
      },
      "more than one -1");
  expect_error([&] { SingleNode("Reshape", plain(), {x, c64({7, 3})}).infer(); }, "21 elements");
  expect_error(
      [&] {
        SingleNode("Reshape", plain(), {x, c64({0, 0, 0, 0})}).infer();
      },
      "copies dim 3");
  expect_error(
      [&] {
        SingleNode("Reshape", plain(true), {x, c64({0, -1})}).infer();
      },
      "both 0 and -1");
}

TEST(Reshape, SqueezeUnsqueezeFlattenForms) {
  Dim n = Dim::sym("N");
  EXPECT_EQ(inferred(form("squeeze", {1, -1}), {sym_in({n, 1, 3, 1})}), "[N,3]");
  EXPECT_EQ(inferred(form("squeeze", {}), {sym_in({n, 1, 3})}), "[*]");  // N might be 1
  EXPECT_EQ(inferred(form("squeeze", {}), {sym_in({2, 1, 3, 1})}), "[2,3]");
  EXPECT_EQ(inferred(form("unsqueeze", {0, -1}), {sym_in({n, 3})}), "[1,N,3,1]");
  EXPECT_EQ(inferred(form("unsqueeze", {3, 1}), {sym_in({n, 3})}), "[N,1,3,1]");
  EXPECT_EQ(inferred(form("flatten", {}, 1), {sym_in({n, 3, 4})}), "[N,12]");
  EXPECT_EQ(inferred(form("flatten", {}, 2), {sym_in({n, 3, 4})}), "[?,4]");
  EXPECT_EQ(inferred(form("flatten", {}, 0), {sym_in({n, 3, 4})}), "[1,?]");
  EXPECT_EQ(inferred(form("flatten", {}, -3), {sym_in({2, 3, 4})}), "[1,24]");
  expect_error([&] { inferred(form("squeeze", {1}), {sym_in({n, 3})}); }, "not 1");
  expect_error([&] { inferred(form("unsqueeze", {4}), {sym_in({n, 3})}); }, "out of range");
  expect_error([&] { inferred(form("unsqueeze", {1, 1}), {sym_in({n, 3})}); }, "repeated");
  // Run time: the form's dims come from the concrete input.
  Tensor y =
      run_node1("Reshape", form("unsqueeze", {1}), {NodeInput::of(f32({2, 2}, {1, 2, 3, 4}))});
  expect_values(y, {2, 1, 2}, {1, 2, 3, 4});
}

TEST(Reshape, SqueezeAndUnsqueezeAxesGivenAtRunTime) {
  auto axes = NodeInput::of(i64({2}, {0, -1}));
  SingleNode n("Reshape", form("unsqueeze", {}), {NodeInput::of(f32({3}, {1, 2, 3})), axes});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[?,?,?]");
  expect_values(n.run()[0], {1, 3, 1}, {1, 2, 3});
  SingleNode s("Reshape", form("squeeze", {}),
               {NodeInput::of(f32({1, 3, 1}, {1, 2, 3})), NodeInput::of(i64({1}, {2}))});
  s.infer();
  EXPECT_EQ(s.out(0).shape.str(), "[?,?]");
  expect_values(s.run()[0], {1, 3}, {1, 2, 3});
  expect_error(
      [] {
        run_node1("Reshape", form("squeeze", {}),
                  {NodeInput::of(f32({1, 3}, {1, 2, 3})), NodeInput::of(i64({1}, {1}))});
      },
      "cannot squeeze axis 1");
}

// ---- Shape / Size ----

std::unique_ptr<ShapeAttrs> shape_range(int64_t start, int64_t end) {
  auto a = std::make_unique<ShapeAttrs>();
  a->start = start;
  a->end = end;
  return a;
}

TEST(Shape, StartEndClampAndSymbolic) {
  auto x = NodeInput::of(Tensor(DataType::kFloat, {2, 3, 5, 7}));
  expect_ints(run_node1("Shape", shape_range(0, std::numeric_limits<int64_t>::max()), {x}), {4},
              {2, 3, 5, 7});
  expect_ints(run_node1("Shape", shape_range(1, -1), {x}), {2}, {3, 5});
  expect_ints(run_node1("Shape", shape_range(-10, 10), {x}), {4}, {2, 3, 5, 7});
  expect_ints(run_node1("Shape", shape_range(3, 1), {x}), {0}, {});
  EXPECT_EQ(inferred(shape_range(-2, 100), {sym_in({Dim::sym("N"), 3, 5})}, "Shape"), "[2]");
}

TEST(Size, CountsElements) {
  expect_ints(run_node1("Size", nullptr, {NodeInput::of(Tensor(DataType::kInt8, {3, 0, 2}))}), {},
              {0});
  expect_ints(run_node1("Size", nullptr, {NodeInput::of(Tensor(DataType::kFloat16, {3, 5, 2}))}),
              {}, {30});
}

// ---- Range / ConstantOfShape ----

TEST(Range, IntAndFloat) {
  SingleNode n(
      "Range", nullptr,
      {NodeInput::of(i64({}, {10})), NodeInput::of(i64({}, {-3})), NodeInput::of(i64({}, {-4}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[?]");
  expect_ints(n.run()[0], {4}, {10, 6, 2, -2});
  Tensor y = run_node1("Range", nullptr,
                       {NodeInput::constant_of(f32({}, {1})), NodeInput::constant_of(f32({}, {2})),
                        NodeInput::constant_of(f32({}, {0.3f}))});
  expect_values(y, {4}, {1.0, 1.2999999523, 1.5999999046, 1.8999998569});
  expect_ints(run_node1("Range", nullptr,
                        {NodeInput::of(i32({}, {5})), NodeInput::of(i32({}, {1})),
                         NodeInput::of(i32({}, {2}))}),
              {0}, {});
  expect_error(
      [] {
        run_node1("Range", nullptr,
                  {NodeInput::of(i64({}, {0})), NodeInput::of(i64({}, {4})),
                   NodeInput::of(i64({}, {0}))});
      },
      "delta must not be 0");
}

TEST(ConstantOfShape, ValueTypesAndEmpty) {
  auto a = std::make_unique<ConstantOfShapeAttrs>();
  a->value = i32({}, {7});
  expect_ints(run_node1("ConstantOfShape", std::move(a), {NodeInput::of(i64({2}, {2, 3}))}), {2, 3},
              {7, 7, 7, 7, 7, 7});
  Tensor z = run_node1("ConstantOfShape", nullptr, {NodeInput::of(i64({1}, {3}))});
  EXPECT_EQ(z.dtype(), DataType::kFloat);
  expect_values(z, {3}, {0, 0, 0});
  auto b = std::make_unique<ConstantOfShapeAttrs>();
  b->value = f32({1}, {1.5f});
  EXPECT_EQ(
      dims_to_string(
          run_node1("ConstantOfShape", std::move(b), {NodeInput::of(i64({2}, {4, 0}))}).dims()),
      "[4,0]");
  EXPECT_EQ(inferred(nullptr, {sym_in({2}, DataType::kInt64)}, "ConstantOfShape"), "[?,?]");
  expect_error(
      [] {
        run_node1("ConstantOfShape", nullptr, {NodeInput::of(i64({2}, {2, -1}))});
      },
      "negative");
}

// ---- Importers ----

using namespace kiln::test::proto;  // NOLINT
using kiln::test::ProtoWriter;

onnx::ImportResult import(const ProtoWriter& g, int64_t opset = 13) {
  return onnx::import_model(parse_bytes(model(g, opset).str()));
}

// Builds (without fixing symbolic dims unless `shapes` says so) and runs a model on the CPU.
std::map<std::string, Tensor> build_and_run(const ProtoWriter& g, int64_t opset,
                                            const std::map<std::string, Tensor>& inputs,
                                            std::map<std::string, Dims> shapes = {}) {
  BuildOptions o;
  o.device = "cpu";
  o.input_shapes = std::move(shapes);
  std::shared_ptr<Plan> plan;
  Status s = Builder(o).build_from_onnx_bytes(model(g, opset).str(), plan);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  if (!s.is_ok()) return {};
  std::shared_ptr<Engine> e;
  EXPECT_TRUE(Engine::create(plan, e).is_ok());
  std::unique_ptr<ExecutionContext> ctx;
  EXPECT_TRUE(e->create_context(ctx).is_ok());
  std::map<std::string, Tensor> out;
  s = ctx->run(inputs, out);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

Value* output(const onnx::ImportResult& r, size_t i = 0) { return r.graph->outputs.at(i); }

TEST(ShapeImport, SqueezeUnsqueezeFlattenKeepSymbols) {
  auto g = graph("g",
                 {node("Squeeze", {"x", "axes"}, {"s"}), node("Unsqueeze", {"s", "axes2"}, {"u"}),
                  node("Flatten", {"u"}, {"y"}, {attr_int("axis", 2)})},
                 {value_info("x", DataType::kFloat, {"N", 1, 3})},
                 {value_info("y", DataType::kFloat, {"N", 3})},
                 {tensor_i64("axes", {1}, {1}), tensor_i64("axes2", {2}, {0, -1})});
  auto r = import(g);
  ASSERT_TRUE(r.problems.empty()) << onnx::format_problems(r.problems);
  // [N,1,3] -> [N,3] -> [1,N,3,1] -> flatten at 2: [N, 3]
  EXPECT_EQ(output(r)->shape.str(), "[N,3]");
  auto out = build_and_run(g, 13, {{"x", f32({2, 1, 3}, iota_f(6))}});
  expect_values(out.at("y"), {2, 3}, {0, 1, 2, 3, 4, 5});
}

TEST(ShapeImport, KnownDimsBecomeConstantShapes) {
  auto g = graph("g", {node("Unsqueeze", {"x"}, {"y"}, {attr_ints("axes", {0, 3})})},
                 {value_info("x", DataType::kFloat, {2, 0})},
                 {value_info("y", DataType::kFloat, {1, 2, 0, 1})});
  auto r = import(g, 11);
  ASSERT_TRUE(r.problems.empty()) << onnx::format_problems(r.problems);
  const Node& n = *r.graph->nodes().at(0);
  EXPECT_EQ(n.op(), "Reshape");
  ASSERT_EQ(n.inputs.size(), 2u);
  ASSERT_TRUE(n.inputs[1]->is_constant());
  expect_ints(n.inputs[1]->data, {4}, {1, 2, 0, 1});
  EXPECT_EQ(n.a<ReshapeAttrs>().allowzero, 1);  // zero-sized dims are exact
  EXPECT_EQ(output(r)->shape.str(), "[1,2,0,1]");
}

// y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])): a shape subgraph as exporters
// write them, with x and y described by `x_info` and `y_info`.
ProtoWriter shape_subgraph(ProtoWriter x_info, ProtoWriter y_info) {
  return graph(
      "g",
      {node("Shape", {"x"}, {"s"}), node("Gather", {"s", "zero"}, {"d0"}),
       node("Unsqueeze", {"d0", "axes"}, {"d0v"}),
       node("Concat", {"d0v", "minus1"}, {"shape"}, {attr_int("axis", 0)}),
       node("Reshape", {"x", "shape"}, {"y"})},
      {std::move(x_info)}, {std::move(y_info)},
      {tensor_i64("zero", {}, {0}), tensor_i64("axes", {1}, {0}), tensor_i64("minus1", {1}, {-1})});
}

TEST(ShapeImport, ShapeSubgraphFoldsWhileImporting) {
  // With x static [2,3,4] the whole subgraph folds into one Reshape.
  auto g = shape_subgraph(value_info("x", DataType::kFloat, {2, 3, 4}),
                          value_info("y", DataType::kFloat, {2, 12}));
  auto r = import(g);
  ASSERT_TRUE(r.problems.empty()) << onnx::format_problems(r.problems);
  ASSERT_EQ(r.graph->nodes().size(), 1u);
  EXPECT_EQ(r.graph->nodes()[0]->op(), "Reshape");
  EXPECT_EQ(output(r)->shape.str(), "[2,12]");
}

TEST(ShapeImport, SymbolicShapeSubgraphRunsAtRunTime) {
  auto g = shape_subgraph(value_info("x", DataType::kFloat, {"N", 3, 4}),
                          value_info("y", DataType::kFloat, {"N", 12}));
  auto r = import(g);
  ASSERT_TRUE(r.problems.empty()) << onnx::format_problems(r.problems);
  EXPECT_EQ(output(r)->shape.str(), "[?,?]");  // the shape tensor's length is known
  auto out = build_and_run(g, 13, {{"x", f32({2, 3, 4}, iota_f(24))}});
  EXPECT_EQ(dims_to_string(out.at("y").dims()), "[2,12]");
  out = build_and_run(g, 13, {{"x", f32({1, 3, 4}, iota_f(12))}}, {{"x", {1, 3, 4}}});
  EXPECT_EQ(dims_to_string(out.at("y").dims()), "[1,12]");
}

TEST(MovementImport, EqualSplitOfASymbolicAxis) {
  auto g = graph(
      "g", {node("Split", {"x"}, {"a", "b"}, {attr_int("axis", 0)})},
      {value_info("x", DataType::kFloat, {"N", 2})},
      {value_info("a", DataType::kFloat, {"M", 2}), value_info("b", DataType::kFloat, {"M", 2})});
  auto out = build_and_run(g, 13, {{"x", f32({4, 2}, iota_f(8))}});
  expect_values(out.at("a"), {2, 2}, {0, 1, 2, 3});
  expect_values(out.at("b"), {2, 2}, {4, 5, 6, 7});
}

TEST(MovementImport, SplitSizesAndErrors) {
  auto g =
      graph("g", {node("Split", {"x", "split"}, {"a", "b", "c"}, {attr_int("axis", -1)})},
            {value_info("x", DataType::kInt64, {2, 5})},
            {value_info("a", DataType::kInt64, {2, 1}), value_info("b", DataType::kInt64, {2, 0}),
             value_info("c", DataType::kInt64, {2, 4})},
            {tensor_i64("split", {3}, {1, 0, 4})});
  auto out = build_and_run(g, 13, {{"x", i64({2, 5}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9})}});
  expect_ints(out.at("a"), {2, 1}, {0, 5});
  expect_ints(out.at("b"), {2, 0}, {});
  expect_ints(out.at("c"), {2, 4}, {1, 2, 3, 4, 6, 7, 8, 9});
  auto bad =
      graph("g", {node("Split", {"x"}, {"a", "b"}, {attr_ints("split", {2, 2})})},
            {value_info("x", DataType::kFloat, {5})},
            {value_info("a", DataType::kFloat, {2}), value_info("b", DataType::kFloat, {2})});
  auto r = import(bad, 11);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_NE(r.problems[0].reason.find("add up to 4"), std::string::npos) << r.problems[0].reason;
}

TEST(MovementImport, DepthToSpaceCrdWithSymbolicSpatialDims) {
  auto g = graph(
      "g",
      {node("DepthToSpace", {"x"}, {"y"}, {attr_int("blocksize", 2), attr_string("mode", "CRD")})},
      {value_info("x", DataType::kFloat, {1, 8, "H", "W"})},
      {value_info("y", DataType::kFloat, {1, 2, "H2", "W2"})});
  auto out = build_and_run(g, 13, {{"x", f32({1, 8, 2, 3}, iota_f(48))}});
  expect_values(out.at("y"), {1, 2, 4, 6},
                {0,  6,  1,  7,  2,  8,  12, 18, 13, 19, 14, 20, 3,  9,  4,  10,
                 5,  11, 15, 21, 16, 22, 17, 23, 24, 30, 25, 31, 26, 32, 36, 42,
                 37, 43, 38, 44, 27, 33, 28, 34, 29, 35, 39, 45, 40, 46, 41, 47});
}

TEST(MovementImport, SpaceToDepthStatic) {
  auto g = graph("g", {node("SpaceToDepth", {"x"}, {"y"}, {attr_int("blocksize", 2)})},
                 {value_info("x", DataType::kFloat, {1, 2, 4, 4})},
                 {value_info("y", DataType::kFloat, {1, 8, 2, 2})});
  auto out = build_and_run(g, 13, {{"x", f32({1, 2, 4, 4}, iota_f(32))}});
  expect_values(out.at("y"), {1, 8, 2, 2},
                {0, 2, 8,  10, 16, 18, 24, 26, 1, 3, 9,  11, 17, 19, 25, 27,
                 4, 6, 12, 14, 20, 22, 28, 30, 5, 7, 13, 15, 21, 23, 29, 31});
}

TEST(IndexingImport, EyeLikeSymbolicAndConstant) {
  auto g =
      graph("g",
            {node("EyeLike", {"x"}, {"y"},
                  {attr_int("k", 1), attr_int("dtype", static_cast<int64_t>(DataType::kInt32))})},
            {value_info("x", DataType::kFloat, {"N", "M"})},
            {value_info("y", DataType::kInt32, {"N", "M"})});
  auto out = build_and_run(g, 13, {{"x", Tensor(DataType::kFloat, {3, 4})}});
  expect_ints(out.at("y"), {3, 4}, {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});
  auto gs = graph(
      "g",
      {node("EyeLike", {"x"}, {"y"},
            {attr_int("k", 1), attr_int("dtype", static_cast<int64_t>(DataType::kInt32))})},
      {value_info("x", DataType::kFloat, {3, 4})}, {value_info("y", DataType::kInt32, {3, 4})});
  auto r = import(gs);
  ASSERT_TRUE(r.problems.empty()) << onnx::format_problems(r.problems);
  EXPECT_TRUE(r.graph->nodes().size() <= 1u);  // a constant (plus the output copy)
  out = build_and_run(gs, 13, {{"x", Tensor(DataType::kFloat, {3, 4})}});
  expect_ints(out.at("y"), {3, 4}, {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});
}

TEST(ShapeImport, ConstantAttributeKinds) {
  auto g =
      graph("g",
            {node("Constant", {}, {"a"}, {attr_ints("value_ints", {3, -2})}),
             node("Constant", {}, {"b"}, {attr_float("value_float", 2.5f)}),
             node("Constant", {}, {"c"}, {attr_tensor("value", tensor_f32("", {2}, {1, 2}))}),
             node("Add", {"c", "b"}, {"d"})},
            {}, {value_info("a", DataType::kInt64, {2}), value_info("d", DataType::kFloat, {2})});
  auto r = import(g);
  ASSERT_TRUE(r.problems.empty()) << onnx::format_problems(r.problems);
  auto out = build_and_run(g, 13, {});
  expect_ints(out.at("a"), {2}, {3, -2});
  expect_values(out.at("d"), {2}, {3.5, 4.5});
  auto bad = graph(
      "g", {node("Constant", {}, {"a"}, {attr_int("value_int", 1), attr_float("value_float", 1)})},
      {}, {value_info("a", DataType::kInt64, {})});
  auto rb = import(bad);
  ASSERT_EQ(rb.problems.size(), 1u);
  EXPECT_NE(rb.problems[0].reason.find("exactly one value"), std::string::npos)
      << rb.problems[0].reason;
}

TEST(IndexingImport, GatherOutOfRangeAtRunTimeIsAStatus) {
  auto g = graph("g", {node("Gather", {"x", "i"}, {"y"}, {attr_int("axis", 0)}, "g0")},
                 {value_info("x", DataType::kFloat, {3}), value_info("i", DataType::kInt64, {2})},
                 {value_info("y", DataType::kFloat, {2})});
  BuildOptions o;
  o.device = "cpu";
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(Builder(o).build_from_onnx_bytes(model(g, 13).str(), plan).is_ok());
  std::shared_ptr<Engine> e;
  ASSERT_TRUE(Engine::create(plan, e).is_ok());
  std::unique_ptr<ExecutionContext> ctx;
  ASSERT_TRUE(e->create_context(ctx).is_ok());
  std::map<std::string, Tensor> out;
  Status s = ctx->run({{"x", f32({3}, {1, 2, 3})}, {"i", i64({2}, {1, 7})}}, out);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("index 7 is out of range for axis 0 of size 3"), std::string::npos)
      << s.message();
}

}  // namespace
}  // namespace kiln::testing
