// Resize (opsets 10..17) and Upsample (7..9): all lower to the canonical Resize op.
#include "ops/resize.h"

#include "onnx/importer.h"

namespace kiln::onnx {

namespace {

// An input that is absent or a constant with no elements (how opset 11 says "not given").
Value* input_or_null_if_empty(ImportContext& c, size_t i) {
  if (!c.has_input(i)) return nullptr;
  const Tensor* t = c.constant_input(i);
  if (t && t->numel() == 0) return nullptr;
  return c.input(i);
}

std::string checked_mode(ImportContext& c, std::string mode) {
  if (mode == "bilinear") mode = "linear";  // old Upsample spelling
  if (mode != "nearest" && mode != "linear" && mode != "cubic")
    c.invalid(cat("unknown mode '", mode, "'"));
  return mode;
}

void emit(ImportContext& c, std::unique_ptr<ResizeAttrs> a, Value* roi, Value* scales,
          Value* sizes) {
  Value* x = c.input(0);
  if (!dtype_is_supported(x->dtype))
    c.unsupported(cat("X has unsupported type ", dtype_name(x->dtype)));
  if (a->coordinate_transformation_mode != "tf_crop_and_resize") roi = nullptr;  // unused
  std::vector<Value*> ins = {x, roi, scales};
  if (sizes) ins.push_back(sizes);
  c.set_output(0, c.add1("Resize", ins, std::move(a)));
}

// Opset 10 Resize and Upsample: no coordinate modes yet; both behave as asymmetric with
// floor for nearest (what frameworks exporting these opsets mean, and what TensorRT does).
void import_legacy(ImportContext& c, Value* scales) {
  auto a = std::make_unique<ResizeAttrs>();
  a->mode = checked_mode(c, c.attr_string("mode", "nearest"));
  if (a->mode == "cubic") c.invalid("cubic mode needs opset 11");
  a->coordinate_transformation_mode = "asymmetric";
  a->nearest_mode = "floor";
  emit(c, std::move(a), nullptr, scales, nullptr);
}

void imp_Resize(ImportContext& c) {
  if (c.opset() < 11) {
    import_legacy(c, c.input(1));
    return;
  }
  auto a = std::make_unique<ResizeAttrs>();
  a->mode = checked_mode(c, c.attr_string("mode", "nearest"));
  a->coordinate_transformation_mode = c.attr_string("coordinate_transformation_mode", "half_pixel");
  a->nearest_mode = c.attr_string("nearest_mode", "round_prefer_floor");
  a->cubic_coeff_a = c.attr_float("cubic_coeff_a", -0.75);
  a->exclude_outside = c.attr_int("exclude_outside", 0) != 0;
  a->extrapolation_value = c.attr_float("extrapolation_value", 0.0);
  if (c.has_attr("axes") || c.has_attr("antialias") || c.has_attr("keep_aspect_ratio_policy"))
    c.unsupported("attributes axes/antialias/keep_aspect_ratio_policy belong to opset 18+");
  Value* roi = input_or_null_if_empty(c, 1);
  Value* scales = input_or_null_if_empty(c, 2);
  Value* sizes = input_or_null_if_empty(c, 3);
  if (!scales && !sizes) c.invalid("needs a non-empty scales or sizes input");
  if (scales && sizes && c.constant_input(2) && c.constant_input(3))
    c.invalid("only one of scales and sizes may be given");
  emit(c, std::move(a), roi, scales, sizes);
}

void imp_Upsample(ImportContext& c) {
  if (c.opset() >= 9) {
    import_legacy(c, c.input(1));
    return;
  }
  std::vector<double> s = c.attr_floats("scales");
  if (s.empty()) c.invalid("Upsample-7 needs the scales attribute");
  Tensor t(DataType::kFloat, {static_cast<int64_t>(s.size())});
  for (size_t i = 0; i < s.size(); ++i) t.set_f64(static_cast<int64_t>(i), s[i]);
  import_legacy(c, c.constant(std::move(t)));
}

}  // namespace

const ImporterList& kiln_import_resize() {
  static const ImporterList l{{
      {"Resize", imp_Resize, 10, 17},  // 18: antialias, axes, aspect-ratio policy
      {"Upsample", imp_Upsample, 7, 9},
  }};
  return l;
}

}  // namespace kiln::onnx
