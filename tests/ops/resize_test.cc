// Resize: each interpolation mode and coordinate transformation on awkward sizes, N-D, integer
// exactness and rounding, shape inference with unknown values, errors, and the importers
// (Resize-10/11, Upsample-7). Float expectations come from the ONNX reference
// (onnx/backend/test/case/node/resize.py, interpolate_nd) run with numpy; the rest by hand.
#include "ops/resize.h"

#include <gtest/gtest.h>

#include "onnx/importer.h"
#include "run_graph.h"
#include "single_node.h"
#include "unit/proto_builder.h"

namespace kiln::testing {
namespace {

std::unique_ptr<ResizeAttrs> attrs(const std::string& mode, const std::string& coord = "half_pixel",
                                   const std::string& nearest = "round_prefer_floor") {
  auto a = std::make_unique<ResizeAttrs>();
  a->mode = mode;
  a->coordinate_transformation_mode = coord;
  a->nearest_mode = nearest;
  return a;
}

Tensor x35() { return f32({1, 1, 3, 5}, {3, -1, 4, 1.5, -5, 9, 2, -6, 5, 3, 5, -8, 9, 7, -9}); }

std::vector<NodeInput> with_sizes(Tensor x, std::vector<int64_t> sizes) {
  int64_t n = static_cast<int64_t>(sizes.size());
  return {NodeInput::of(x), NodeInput::none(), NodeInput::none(),
          NodeInput::of(i64({n}, std::move(sizes)))};
}
std::vector<NodeInput> with_scales(Tensor x, std::vector<float> scales) {
  int64_t n = static_cast<int64_t>(scales.size());
  return {NodeInput::of(x), NodeInput::none(), NodeInput::of(f32({n}, std::move(scales)))};
}

TEST(Resize, LinearHalfPixelSizes) {
  SingleNode n("Resize", attrs("linear"), with_sizes(x35(), {1, 1, 4, 7}));
  auto y = n.run();
  expect_values(y[0], {1, 1, 4, 7},
                {3.0,
                 0.7142857142857144,
                 0.42857142857142905,
                 4.0,
                 2.214285714285714,
                 -1.2857142857142874,
                 -5.0,
                 6.75,
                 3.392857142857143,
                 -0.017857142857143155,
                 -2.25,
                 1.9910714285714293,
                 2.1071428571428563,
                 0.0,
                 7.5,
                 2.2142857142857144,
                 -1.357142857142857,
                 -0.375,
                 4.000000000000001,
                 2.642857142857141,
                 -1.5,
                 5.0,
                 -2.428571428571428,
                 -3.1428571428571415,
                 9.0,
                 7.571428571428571,
                 0.1428571428571388,
                 -9.0});
}

TEST(Resize, CubicAlignCornersNonIntegerScales) {
  // 3 * 1.5 = 4.5 -> 4 rows; 5 * 0.7f = 3.4999998 -> 3 columns. align_corners divides by the
  // unrounded scale * length - 1, as the reference does.
  SingleNode n("Resize", attrs("cubic", "align_corners"), with_scales(x35(), {1, 1, 1.5f, 0.7f}));
  auto y = n.run();
  expect_values(y[0], {1, 1, 4, 3},
                {3.0, 2.0420002569198674, 0.11599946327207067, 6.900874635568515,
                 -2.4628456760028303, 3.537702563756781, 8.988338192419826, -4.351038117990399,
                 5.936734633704248, 6.317784256559766, -0.26079831857317914, 4.688080755017929});
}

TEST(Resize, CubicExcludeOutside) {
  auto a = attrs("cubic");
  a->cubic_coeff_a = -0.5;
  a->exclude_outside = true;
  SingleNode n("Resize", std::move(a), with_sizes(x35(), {1, 1, 5, 2}));
  auto y = n.run();
  expect_values(y[0], {1, 1, 5, 2},
                {-0.8019588074319461, -0.5200201641941529, 1.6056169534009306, 1.8808533667540157,
                 4.099236641221374, 5.312977099236641, -2.4420075196536413, 4.262276404238348,
                 -7.074175428489121, 3.1702434106294106});
}

TEST(Resize, TfCropAndResizeExtrapolates) {
  auto a = attrs("nearest", "tf_crop_and_resize");
  a->extrapolation_value = -7;
  SingleNode n("Resize", std::move(a),
               {NodeInput::of(x35()), NodeInput::of(f32({8}, {0, 0, 0.2f, 0.1f, 1, 1, 0.9f, 1.3f})),
                NodeInput::none(), NodeInput::of(i64({4}, {1, 1, 3, 4}))});
  auto y = n.run();
  expect_values(y[0], {1, 1, 3, 4}, {3, 4, -5, -7, 9, -6, 3, -7, 5, 9, -9, -7});
}

TEST(Resize, TrilinearAsymmetric3D) {
  Tensor x = f32({2, 3, 4}, {0.0f,
                             1.0f,
                             2.8284270763397217f,
                             5.196152687072754f,
                             8.0f,
                             11.180339813232422f,
                             14.696938514709473f,
                             18.5202579498291f,
                             22.627416610717773f,
                             27.0f,
                             31.62277603149414f,
                             36.482872009277344f,
                             41.56922149658203f,
                             46.87216567993164f,
                             52.383201599121094f,
                             58.094749450683594f,
                             64.0f,
                             70.0927963256836f,
                             76.3675308227539f,
                             82.81907653808594f,
                             89.44271850585938f,
                             96.23409271240234f,
                             103.18914794921875f,
                             110.30412292480469f});
  SingleNode n("Resize", attrs("linear", "asymmetric"), with_sizes(x, {3, 2, 5}));
  auto y = n.run();
  expect_values(y[0], {3, 2, 5},
                {0.0,
                 0.8,
                 2.097056245803833,
                 3.775517320632934,
                 5.196152687072754,
                 15.313708305358887,
                 18.334877586364748,
                 21.531982326507567,
                 24.896540355682372,
                 27.501564979553223,
                 27.712814331054688,
                 30.80771789550781,
                 34.151543569564815,
                 37.70371960004171,
                 40.46188386281331,
                 56.25214227040608,
                 60.69497750600179,
                 65.26558173497517,
                 69.9599424680074,
                 73.54158814748128,
                 41.56922149658203,
                 45.81157684326172,
                 50.17878723144531,
                 54.66782073974609,
                 58.094749450683594,
                 76.72135925292969,
                 81.87502746582031,
                 87.13238143920898,
                 92.49164352416992,
                 96.56159973144531});
}

TEST(Resize, NearestKeepsInt64Exact) {
  // 2 -> 5 with pytorch_half_pixel: x = (o + 0.5) * 0.4 - 0.5 = -0.3, 0.1, 0.5, 0.9, 1.3;
  // round_prefer_ceil picks 0, 0, 1, 1, 1 (clamped).
  const int64_t big = (int64_t{1} << 62) + 1;
  Tensor x = i64({1, 2}, {big, -big});
  SingleNode n("Resize", attrs("nearest", "pytorch_half_pixel", "round_prefer_ceil"),
               with_sizes(x, {1, 5}));
  auto y = n.run();
  expect_ints(y[0], {1, 5}, {big, big, -big, -big, -big});
}

TEST(Resize, NearestModesOnOneAxis) {
  // asymmetric, scale 4 on 3 elements: x = o / 4 = 0, .25, .5, .75, 1, ...; the modes differ at
  // the .5 ties and the fractions.
  Tensor x = f32({3}, {10, 20, 30});
  struct Case {
    const char* mode;
    std::vector<double> want;
  } cases[] = {
      {"round_prefer_floor", {10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30, 30}},
      {"round_prefer_ceil", {10, 10, 20, 20, 20, 20, 30, 30, 30, 30, 30, 30}},
      {"floor", {10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30}},
      {"ceil", {10, 20, 20, 20, 20, 30, 30, 30, 30, 30, 30, 30}},
  };
  for (const Case& c : cases) {
    SingleNode n("Resize", attrs("nearest", "asymmetric", c.mode), with_scales(x, {4}));
    auto y = n.run();
    SCOPED_TRACE(c.mode);
    expect_values(y[0], {12}, c.want);
  }
}

TEST(Resize, IntegerLinearRoundsHalfToEvenAndSaturates) {
  // asymmetric, scale 4: weights 0, .25, .5, .75 between neighbours.
  Tensor x = Tensor::from_vector(DataType::kUInt8, {2}, std::vector<uint8_t>{1, 2});
  SingleNode n("Resize", attrs("linear", "asymmetric"), with_scales(x, {4}));
  auto y = n.run();
  EXPECT_EQ(y[0].dtype(), DataType::kUInt8);
  expect_ints(y[0], {8}, {1, 1, 2, 2, 2, 2, 2, 2});  // 1.25 -> 1, 1.5 -> 2, 1.75 -> 2
  // Cubic overshoot of a step saturates instead of wrapping.
  Tensor s = Tensor::from_vector(DataType::kUInt8, {4}, std::vector<uint8_t>{0, 0, 255, 255});
  SingleNode c("Resize", attrs("cubic"), with_sizes(s, {8}));
  auto z = c.run();
  // half_pixel 4 -> 8: x = -0.25, 0.25, 0.75, ...; A = -0.75 cubic undershoots below 0 and
  // overshoots above 255 next to the step.
  expect_ints(z[0], {8}, {0, 0, 0, 58, 197, 255, 255, 255});  // 57.77, 197.23
}

TEST(Resize, EmptyScalesMeansSizes) {
  // Opset 11 models pass an empty scales tensor next to sizes.
  SingleNode n("Resize", attrs("nearest"),
               {NodeInput::of(f32({2}, {1, 2})), NodeInput::none(), NodeInput::of(f32({0}, {})),
                NodeInput::of(i64({1}, {4}))});
  auto y = n.run();
  expect_values(y[0], {4}, {1, 1, 2, 2});
}

TEST(Resize, InferUnknownAndSymbolic) {
  {  // scales only known at run time: rank from X, dims unknown
    SingleNode n("Resize", attrs("linear"),
                 {NodeInput::of(f32({1, 1, 2, 2}, {1, 2, 3, 4})), NodeInput::none(),
                  NodeInput::of(f32({4}, {1, 1, 2, 2}))});
    n.infer();
    EXPECT_EQ(n.out(0).shape.rank(), 4u);
    EXPECT_FALSE(n.out(0).shape.fully_known());
    auto y = n.run();
    EXPECT_EQ(dims_to_string(y[0].dims()), "[1,1,4,4]");
  }
  {  // constant scales keep a symbolic batch when its scale is 1
    Shape s({Dim::sym("N"), Dim(3), Dim(5), Dim(7)});
    SingleNode n("Resize", attrs("nearest"),
                 {NodeInput::shaped(DataType::kFloat, s), NodeInput::none(),
                  NodeInput::constant_of(f32({4}, {1, 1, 2, 0.5f}))});
    n.infer();
    EXPECT_EQ(n.out(0).shape.str(), Shape({Dim::sym("N"), Dim(3), Dim(10), Dim(3)}).str());
  }
  {  // constant sizes give exact dims whatever X's are
    SingleNode n("Resize", attrs("nearest"),
                 {NodeInput::shaped(DataType::kFloat, Shape({Dim::unknown(), Dim(2)})),
                  NodeInput::none(), NodeInput::none(), NodeInput::constant_of(i64({2}, {6, 9}))});
    n.infer();
    EXPECT_EQ(n.out(0).shape.str(), "[6,9]");
  }
  {  // constant sizes decide even while a run-time scales input (empty here) is unknown
    SingleNode n("Resize", attrs("nearest"),
                 {NodeInput::of(f32({2}, {1, 2})), NodeInput::none(), NodeInput::of(f32({0}, {})),
                  NodeInput::constant_of(i64({1}, {3}))});
    n.infer();
    EXPECT_EQ(n.out(0).shape.str(), "[3]");
    // half_pixel: x = -1/6, 1/2, 7/6; the tie at 1/2 goes down (round_prefer_floor).
    expect_values(n.run()[0], {3}, {1, 1, 2});
  }
  {  // unknown rank stays unknown
    SingleNode n("Resize", attrs("nearest"),
                 {NodeInput::shaped(DataType::kFloat, Shape::unknown_rank()), NodeInput::none(),
                  NodeInput::constant_of(f32({2}, {2, 2}))});
    n.infer();
    EXPECT_FALSE(n.out(0).shape.rank_known);
  }
}

TEST(Resize, Errors) {
  auto infer = [](std::unique_ptr<ResizeAttrs> a, std::vector<NodeInput> ins) {
    SingleNode n("Resize", std::move(a), std::move(ins));
    n.infer();
  };
  Tensor x = f32({1, 2}, {1, 2});
  expect_error(
      [&] {
        infer(attrs("nearest"),
              {NodeInput::of(x), NodeInput::none(), NodeInput::constant_of(f32({2}, {1, 2})),
               NodeInput::constant_of(i64({2}, {1, 4}))});
      },
      "only one of scales and sizes");
  expect_error(
      [&] {
        infer(attrs("nearest"),
              {NodeInput::of(x), NodeInput::none(), NodeInput::constant_of(f32({3}, {1, 2, 2}))});
      },
      "scales has 3 values but X has rank 2");
  expect_error(
      [&] {
        infer(attrs("nearest"),
              {NodeInput::of(x), NodeInput::none(), NodeInput::constant_of(f32({2}, {1, 0}))});
      },
      "must be positive");
  expect_error(
      [&] {
        infer(attrs("nearest"), {NodeInput::of(x), NodeInput::none(), NodeInput::none(),
                                 NodeInput::constant_of(i64({2}, {1, -3}))});
      },
      "negative");
  expect_error(
      [&] {
        infer(attrs("bilinear"),
              {NodeInput::of(x), NodeInput::none(), NodeInput::constant_of(f32({2}, {1, 2}))});
      },
      "unknown mode 'bilinear'");
  expect_error(
      [&] {
        infer(attrs("linear", "tf_crop_and_resize"),
              {NodeInput::of(x), NodeInput::none(), NodeInput::constant_of(f32({2}, {1, 2}))});
      },
      "needs the roi input");
  expect_error(
      [&] {
        infer(attrs("nearest"), {NodeInput::of(x), NodeInput::none(), NodeInput::none()});
      },
      "needs either scales or sizes");
  expect_error(
      [&] {
        Tensor b = Tensor::from_vector(DataType::kBool, {2}, std::vector<uint8_t>{1, 0});
        infer(attrs("linear"),
              {NodeInput::of(b), NodeInput::none(), NodeInput::constant_of(f32({1}, {2}))});
      },
      "bool");
  // Resizing an empty dimension to a non-empty one has nothing to interpolate from.
  expect_error(
      [&] {
        SingleNode n("Resize", attrs("linear"), with_sizes(f32({0}, {}), {3}));
        n.run();
      },
      "size 0");
}

// --- importers ---

using namespace kiln::test::proto;

const Node* only(const Graph& g, const std::string& op) {
  const Node* found = nullptr;
  for (const auto& n : g.nodes())
    if (n->op() == op) {
      EXPECT_EQ(found, nullptr) << "more than one " << op;
      found = n.get();
    }
  EXPECT_NE(found, nullptr) << "no " << op;
  return found;
}

TEST(ResizeImport, Opset11EmptyRoiAndScalesAreDropped) {
  auto g = graph("g",
                 {node("Resize", {"x", "roi", "scales", "sizes"}, {"y"},
                       {attr_string("mode", "nearest"),
                        attr_string("coordinate_transformation_mode", "tf_half_pixel_for_nn")})},
                 {value_info("x", DataType::kFloat, {1, 1, 4, 4})},
                 {value_info("y", DataType::kFloat, {1, 1, 3, 2})},
                 {tensor_f32("roi", {0}, {}), tensor_f32("scales", {0}, {}),
                  tensor_i64("sizes", {4}, {1, 1, 3, 2})});
  auto gr = import_graph(g, 11);
  const Node* r = only(*gr, "Resize");
  ASSERT_GE(r->inputs.size(), 4u);
  EXPECT_EQ(r->inputs[1], nullptr);
  EXPECT_EQ(r->inputs[2], nullptr);
  EXPECT_EQ(r->a<ResizeAttrs>().coordinate_transformation_mode, "tf_half_pixel_for_nn");
  EXPECT_EQ(r->outputs[0]->shape.str(), "[1,1,3,2]");
}

TEST(ResizeImport, Upsample7AndResize10AreAsymmetricFloor) {
  auto g7 = graph("g",
                  {node("Upsample", {"x"}, {"y"},
                        {attr_string("mode", "nearest"), attr_floats("scales", {1, 1, 2, 3})})},
                  {value_info("x", DataType::kFloat, {1, 1, 2, 2})},
                  {value_info("y", DataType::kFloat, {1, 1, 4, 6})});
  auto gr = import_graph(g7, 7);
  const Node* r = only(*gr, "Resize");
  EXPECT_EQ(r->a<ResizeAttrs>().coordinate_transformation_mode, "asymmetric");
  EXPECT_EQ(r->a<ResizeAttrs>().nearest_mode, "floor");
  EXPECT_EQ(r->outputs[0]->shape.str(), "[1,1,4,6]");

  auto g10 = graph("g", {node("Resize", {"x", "s"}, {"y"}, {attr_string("mode", "linear")})},
                   {value_info("x", DataType::kFloat, {1, 1, 2, 2})},
                   {value_info("y", DataType::kFloat, {1, 1, 4, 4})},
                   {tensor_f32("s", {4}, {1, 1, 2, 2})});
  auto gr10 = import_graph(g10, 10);
  const Node* r10 = only(*gr10, "Resize");
  EXPECT_EQ(r10->a<ResizeAttrs>().mode, "linear");
  EXPECT_EQ(r10->a<ResizeAttrs>().coordinate_transformation_mode, "asymmetric");
  EXPECT_EQ(r10->outputs[0]->shape.str(), "[1,1,4,4]");
}

TEST(ResizeImport, InvalidModeIsReported) {
  auto g = graph("g", {node("Resize", {"x", "", "s"}, {"y"}, {attr_string("mode", "area")})},
                 {value_info("x", DataType::kFloat, {1, 2})},
                 {value_info("y", DataType::kFloat, {1, 4})}, {tensor_f32("s", {2}, {1, 2})});
  expect_error([&] { import_graph(g, 13); }, "unknown mode 'area'");
}

}  // namespace
}  // namespace kiln::testing
