// Vision ops: GridSample (16), RoiAlign (10, 16), NonMaxSuppression (10, 11).
#include "onnx/importer.h"
#include "ops/grid_sample.h"
#include "ops/non_max_suppression.h"
#include "ops/roi_align.h"

namespace kiln::onnx {

namespace {

std::vector<Value*> present_inputs(ImportContext& c) {
  std::vector<Value*> v;
  for (size_t i = 0; i < c.num_inputs(); ++i) v.push_back(c.input_or_null(i));
  while (!v.empty() && !v.back()) v.pop_back();
  return v;
}

void imp_GridSample(ImportContext& c) {
  c.check_input_types();
  auto a = std::make_unique<GridSampleAttrs>();
  a->mode = c.attr_string("mode", "bilinear");
  a->padding_mode = c.attr_string("padding_mode", "zeros");
  a->align_corners = c.attr_int("align_corners", 0) != 0;
  c.set_output(0, c.add1("GridSample", {c.input(0), c.input(1)}, std::move(a)));
}

void imp_RoiAlign(ImportContext& c) {
  c.check_input_types();
  auto a = std::make_unique<RoiAlignAttrs>();
  a->mode = c.attr_string("mode", "avg");
  a->output_height = c.attr_int("output_height", 1);
  a->output_width = c.attr_int("output_width", 1);
  a->sampling_ratio = c.attr_int("sampling_ratio", 0);
  a->spatial_scale = c.attr_float("spatial_scale", 1.0);
  // Opset 10 had no such attribute and did not shift by half a pixel.
  a->coordinate_transformation_mode =
      c.opset() >= 16 ? c.attr_string("coordinate_transformation_mode", "half_pixel")
                      : "output_half_pixel";
  c.set_output(0, c.add1("RoiAlign", {c.input(0), c.input(1), c.input(2)}, std::move(a)));
}

void imp_NonMaxSuppression(ImportContext& c) {
  c.check_input_types();
  int64_t cpb = c.attr_int("center_point_box", 0);
  if (cpb != 0 && cpb != 1) c.invalid(cat("center_point_box must be 0 or 1, got ", cpb));
  auto a = std::make_unique<NonMaxSuppressionAttrs>();
  a->center_point_box = cpb == 1;
  c.input(0);
  c.input(1);
  c.set_output(0, c.add1("NonMaxSuppression", present_inputs(c), std::move(a)));
}

}  // namespace

const ImporterList& kiln_import_vision() {
  static const ImporterList l{{
      {"GridSample", imp_GridSample, 16, 19},  // 20: N-D, renamed modes
      {"RoiAlign", imp_RoiAlign, 10},
      {"NonMaxSuppression", imp_NonMaxSuppression, 10},
  }};
  return l;
}

}  // namespace kiln::onnx
