// GridSample, RoiAlign, NonMaxSuppression. GridSample expectations come from PyTorch's
// torch.nn.functional.grid_sample (float64), which the ONNX op is defined after; RoiAlign uses
// images that are linear in x and y, where bilinear sampling is exact and a bin's average is the
// value at its centre (worked out in the comments); NMS cases are hand-made boxes with IoUs given.
#include <gtest/gtest.h>

#include "ops/grid_sample.h"
#include "ops/non_max_suppression.h"
#include "ops/roi_align.h"
#include "single_node.h"

namespace kiln::testing {
namespace {

// --- GridSample ---

Tensor grid_x() {  // [1,2,3,4]: a 3x4 image and 0.5 * it + 1
  return f64({1, 2, 3, 4}, {3.0, -1.0, 4.0, 1.5,  9.0, 2.0, -6.0, 5.0, 5.0, -8.0, 9.0, 7.0,
                            2.5, 0.5,  3.0, 1.75, 5.5, 2.0, -2.0, 3.5, 3.5, -3.0, 5.5, 4.5});
}
Tensor grid_g() {  // [1,2,3,2], some points outside [-1, 1]
  return f64({1, 2, 3, 2}, {-1.0, -1.0, 0.3, -0.7, 1.2, 0.1, -1.4, 0.9, 0.05, 0.55, 0.99, 1.3});
}

std::vector<double> grid_sample(const std::string& mode, const std::string& pad, bool align) {
  auto a = std::make_unique<GridSampleAttrs>();
  a->mode = mode;
  a->padding_mode = pad;
  a->align_corners = align;
  SingleNode n("GridSample", std::move(a), {NodeInput::of(grid_x()), NodeInput::of(grid_g())});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[1,2,2,3]");
  auto y = n.run();
  std::vector<double> v;
  for (int64_t i = 0; i < y[0].numel(); ++i) v.push_back(y[0].get_f64(i));
  return v;
}

void expect_list(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-9) << "element " << i;
}

TEST(GridSample, BilinearZeros) {
  expect_list(grid_sample("bilinear", "zeros", false),
              {0.75, 3.5625, 0.53, 0.0, 1.325, 0.182, 0.625, 2.73125, 0.365, 0.0, 1.6625, 0.117});
}
TEST(GridSample, NearestBorderAlignCorners) {
  expect_list(grid_sample("nearest", "border", true),
              {3.0, 4.0, 5.0, 5.0, 9.0, 7.0, 2.5, 3.0, 3.5, 3.5, 5.5, 4.5});
}
TEST(GridSample, NearestReflection) {
  expect_list(grid_sample("nearest", "reflection", false),
              {3.0, 4.0, 5.0, 5.0, 9.0, 7.0, 2.5, 3.0, 3.5, 3.5, 5.5, 4.5});
}
TEST(GridSample, BicubicReflection) {
  expect_list(
      grid_sample("bicubic", "reflection", false),
      {2.51953125, 4.44369796875, 6.244381132812, -0.59992703125, 0.607913679688, 6.610153,
       2.259765625, 3.221848984375, 4.122190566406, 0.700036484375, 1.303956839844, 4.3050765});
}
TEST(GridSample, BilinearReflectionAlignCorners) {
  expect_list(
      grid_sample("bilinear", "reflection", true),
      {3.0, 0.945, 2.29, -2.04, -0.19375, 6.3715, 2.5, 1.4725, 2.145, -0.02, 0.903125, 4.18575});
}
TEST(GridSample, BicubicZerosAlignCorners) {
  expect_list(grid_sample("bicubic", "zeros", true),
              {3.0, 0.849820910156, 5.09476778125, 3.159729, -1.721894205383, 5.360317319711, 2.5,
               1.535160455078, 3.273250640625, 1.9914355, 0.241146647308, 3.409028397387});
}

TEST(GridSample, Errors) {
  auto make = [](const std::string& mode, const std::string& pad, Tensor x, Tensor g) {
    auto a = std::make_unique<GridSampleAttrs>();
    a->mode = mode;
    a->padding_mode = pad;
    SingleNode n("GridSample", std::move(a), {NodeInput::of(x), NodeInput::of(g)});
    n.infer();
  };
  expect_error([&] { make("area", "zeros", grid_x(), grid_g()); }, "unknown mode 'area'");
  expect_error([&] { make("bilinear", "wrap", grid_x(), grid_g()); }, "unknown padding_mode");
  expect_error(
      [&] {
        make("bilinear", "zeros", grid_x(), f64({1, 2, 3}, {1, 2, 3, 4, 5, 6}));
      },
      "grid must be 4-D");
  expect_error(
      [&] {
        make("bilinear", "zeros", grid_x(), f64({2, 1, 1, 2}, {0, 0, 0, 0}));
      },
      "X has batch 1 but grid has 2");
  expect_error(
      [&] {
        make("bilinear", "zeros", grid_x(), f64({1, 1, 1, 3}, {0, 0, 0}));
      },
      "last dimension must be 2");
}

// --- RoiAlign ---

// X[c][y][x] = (c + 1) * (x + 10 y) on an 6x8 image.
Tensor ramp() {
  std::vector<float> v;
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 8; ++x) v.push_back(static_cast<float>((c + 1) * (x + 10 * y)));
  return f32({1, 2, 6, 8}, v);
}

std::unique_ptr<RoiAlignAttrs> roi_attrs(const std::string& coord, int64_t sampling,
                                         double scale = 1.0, const std::string& mode = "avg") {
  auto a = std::make_unique<RoiAlignAttrs>();
  a->mode = mode;
  a->output_height = 2;
  a->output_width = 3;
  a->sampling_ratio = sampling;
  a->spatial_scale = scale;
  a->coordinate_transformation_mode = coord;
  return a;
}

TEST(RoiAlign, HalfPixelAverageIsBinCentre) {
  // roi (1,1)-(5,4) shifted by -0.5: x in [0.5, 4.5], y in [0.5, 3.5]; bins 4/3 wide, 1.5 high;
  // centres x = 1.1667, 2.5, 3.8333 and y = 1.25, 2.75; every sample lies inside the image.
  SingleNode n("RoiAlign", roi_attrs("half_pixel", 2),
               {NodeInput::of(ramp()), NodeInput::of(f32({1, 4}, {1, 1, 5, 4})),
                NodeInput::of(i64({1}, {0}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[1,2,2,3]");
  expect_values(n.run()[0], {1, 2, 2, 3},
                {13.666667, 15.0, 16.333333, 28.666667, 30.0, 31.333333, 27.333333, 30.0, 32.666667,
                 57.333333, 60.0, 62.666667},
                1e-6, 1e-5);
}

TEST(RoiAlign, OutputHalfPixelScaledAdaptiveSampling) {
  // spatial_scale 0.5 maps (2,2)-(10,8) to (1,1)-(5,4), no shift: centres x = 1.6667, 3, 4.3333,
  // y = 1.75, 3.25. sampling_ratio 0 takes ceil(3/2) x ceil(4/3) = 2x2 samples per bin.
  SingleNode n("RoiAlign", roi_attrs("output_half_pixel", 0, 0.5),
               {NodeInput::of(ramp()), NodeInput::of(f32({1, 4}, {2, 2, 10, 8})),
                NodeInput::of(i64({1}, {0}))});
  expect_values(n.run()[0], {1, 2, 2, 3},
                {19.166667, 20.5, 21.833333, 34.166667, 35.5, 36.833333, 38.333333, 41.0, 43.666667,
                 68.333333, 71.0, 73.666667},
                1e-6, 1e-5);
}

TEST(RoiAlign, MaxModeTakesLargestWeightedCorner) {
  // One sample at (0.5, 0.5) with weights 1/4 on each pixel of [[1,2],[3,4]]: avg 2.5, and max
  // (onnxruntime's definition) max(0.25, 0.5, 0.75, 1.0) = 1. The second roi reads batch 1.
  Tensor x = f32({2, 1, 2, 2}, {1, 2, 3, 4, 10, 20, 30, 40});
  Tensor rois = f32({2, 4}, {0, 0, 1, 1, 0, 0, 1, 1});
  for (const char* mode : {"avg", "max"}) {
    auto a = roi_attrs("output_half_pixel", 1, 1.0, mode);
    a->output_height = 1;
    a->output_width = 1;
    SingleNode n("RoiAlign", std::move(a),
                 {NodeInput::of(x), NodeInput::of(rois), NodeInput::of(i64({2}, {0, 1}))});
    SCOPED_TRACE(mode);
    if (std::string(mode) == "avg")
      expect_values(n.run()[0], {2, 1, 1, 1}, {2.5, 25});
    else
      expect_values(n.run()[0], {2, 1, 1, 1}, {1, 10});
  }
}

TEST(RoiAlign, Errors) {
  expect_error(
      [&] {
        SingleNode n("RoiAlign", roi_attrs("half_pixel", 2),
                     {NodeInput::of(ramp()), NodeInput::of(f32({1, 4}, {1, 1, 5, 4})),
                      NodeInput::of(i64({1}, {1}))});
        n.run();
      },
      "batch_indices[0] = 1 is outside [0, 1)");
  expect_error(
      [&] {
        SingleNode n("RoiAlign", roi_attrs("half_pixel", 2),
                     {NodeInput::of(ramp()), NodeInput::of(f32({1, 3}, {1, 1, 5})),
                      NodeInput::of(i64({1}, {0}))});
        n.infer();
      },
      "rois must have 4 columns");
  expect_error(
      [&] {
        SingleNode n("RoiAlign", roi_attrs("corners", 2),
                     {NodeInput::of(ramp()), NodeInput::of(f32({1, 4}, {1, 1, 5, 4})),
                      NodeInput::of(i64({1}, {0}))});
        n.infer();
      },
      "coordinate_transformation_mode");
}

// --- NonMaxSuppression ---

// Five boxes as (y1, x1, y2, x2); box 1 is given with its corners swapped.
//   0: [0,0]-[10,10]   1: [1,1]-[11,11] (IoU with 0: 81 / 119 = 0.68)
//   2: [0,20]-[10,30]  (no overlap)      3: [0,5]-[10,15] (IoU with 0: 50 / 150 = 0.33)
//   4: [50,50]-[60,60]
Tensor nms_boxes(int64_t batches = 1) {
  std::vector<float> one = {0,  0,  10, 10, 11, 11, 1,  1,  0,  20,
                            10, 30, 0,  5,  10, 15, 50, 50, 60, 60};
  std::vector<float> v;
  for (int64_t b = 0; b < batches; ++b) v.insert(v.end(), one.begin(), one.end());
  return f32({batches, 5, 4}, v);
}

std::vector<NodeInput> nms_inputs(Tensor boxes, Tensor scores, int64_t max_out, float iou,
                                  const float* score_threshold) {
  std::vector<NodeInput> in = {NodeInput::of(boxes), NodeInput::of(scores),
                               NodeInput::of(i64({1}, {max_out})), NodeInput::of(f32({1}, {iou}))};
  if (score_threshold) in.push_back(NodeInput::of(f32({1}, {*score_threshold})));
  return in;
}

Tensor nms(std::vector<NodeInput> in, bool center = false) {
  auto a = std::make_unique<NonMaxSuppressionAttrs>();
  a->center_point_box = center;
  SingleNode n("NonMaxSuppression", std::move(a), std::move(in));
  n.infer();
  EXPECT_EQ(n.out(0).dtype, DataType::kInt64);
  EXPECT_FALSE(n.out(0).shape.fully_known());
  return n.run()[0];
}

Tensor scores1() { return f32({1, 1, 5}, {0.9f, 0.8f, 0.85f, 0.7f, 0.3f}); }

TEST(NonMaxSuppression, GreedyByScore) {
  // Order 0 (.9), 2 (.85), 1 (.8, suppressed by 0), 3 (.7, IoU .33 kept), 4.
  expect_ints(nms(nms_inputs(nms_boxes(), scores1(), 10, 0.5f, nullptr)), {4, 3},
              {0, 0, 0, 0, 0, 2, 0, 0, 3, 0, 0, 4});
}

TEST(NonMaxSuppression, ScoreThresholdIsStrict) {
  float t = 0.3f;  // box 4 scores exactly 0.3 and is dropped
  expect_ints(nms(nms_inputs(nms_boxes(), scores1(), 10, 0.5f, &t)), {3, 3},
              {0, 0, 0, 0, 0, 2, 0, 0, 3});
}

TEST(NonMaxSuppression, LimitAndLowerIouThreshold) {
  expect_ints(nms(nms_inputs(nms_boxes(), scores1(), 2, 0.5f, nullptr)), {2, 3},
              {0, 0, 0, 0, 0, 2});
  // IoU 0.33 > 0.3 now suppresses box 3.
  expect_ints(nms(nms_inputs(nms_boxes(), scores1(), 10, 0.3f, nullptr)), {3, 3},
              {0, 0, 0, 0, 0, 2, 0, 0, 4});
}

TEST(NonMaxSuppression, BatchesClassesAndTies) {
  // Batch 0 class 0: as above. Batch 0 class 1: all scores equal, so index order: 0, (1
  // suppressed), 2, 3, 4. Batch 1 class 0: box 4 first, then 3, 2, 1 (0 suppressed by 1).
  // Batch 1 class 1: only box 2 scores above 0.
  Tensor s = f32({2, 2, 5}, {0.9f, 0.8f, 0.85f, 0.7f, 0.3f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f,
                             0.1f, 0.2f, 0.3f,  0.4f, 0.5f, 0,    0,    0.6f, 0,    0});
  float t = 0.05f;
  expect_ints(nms(nms_inputs(nms_boxes(2), s, 10, 0.5f, &t)), {13, 3},
              {0, 0, 0, 0, 0, 2, 0, 0, 3, 0, 0, 4,  //
               0, 1, 0, 0, 1, 2, 0, 1, 3, 0, 1, 4,  //
               1, 0, 4, 1, 0, 3, 1, 0, 2, 1, 0, 1, 1, 1, 2});
}

TEST(NonMaxSuppression, CenterPointFormat) {
  // The same boxes as (x_centre, y_centre, width, height).
  Tensor b =
      f32({1, 5, 4}, {5, 5, 10, 10, 6, 6, 10, 10, 25, 5, 10, 10, 10, 5, 10, 10, 55, 55, 10, 10});
  expect_ints(nms(nms_inputs(b, scores1(), 10, 0.5f, nullptr), true), {4, 3},
              {0, 0, 0, 0, 0, 2, 0, 0, 3, 0, 0, 4});
}

TEST(NonMaxSuppression, NothingSelectedAndErrors) {
  // No max_output_boxes_per_class: zero boxes.
  Tensor none = nms({NodeInput::of(nms_boxes()), NodeInput::of(scores1())});
  EXPECT_EQ(dims_to_string(none.dims()), "[0,3]");
  expect_error([&] { nms(nms_inputs(nms_boxes(), scores1(), 10, 1.5f, nullptr)); },
               "iou_threshold");
  expect_error(
      [&] {
        SingleNode n("NonMaxSuppression", nullptr,
                     {NodeInput::of(nms_boxes()), NodeInput::of(f32({1, 1, 4}, {1, 2, 3, 4}))});
        n.infer();
      },
      "boxes has 5 boxes but scores has 4");
}

}  // namespace
}  // namespace kiln::testing
