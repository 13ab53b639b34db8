// ONNX shape ops: Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Expand, Constant,
// ConstantOfShape, Range. Flatten/Squeeze/Unsqueeze lower to Reshape: with a constant shape when
// the input dims are known, else in Reshape's attribute forms so symbolic dims stay symbolic.
// Small all-constant results fold while importing (shape_helpers.h).
#include <algorithm>
#include <limits>

#include "onnx/importer.h"
#include "onnx/importers/shape_helpers.h"
#include "ops/constant_of_shape.h"
#include "ops/reshape.h"
#include "ops/shape.h"

namespace kiln::onnx {

namespace {

void require_supported(ImportContext& c, Value* x) {
  if (!dtype_is_supported(x->dtype))
    c.unsupported(cat("input type ", dtype_name(x->dtype), " is not supported"));
}

// The axes operand of Squeeze/Unsqueeze from opset 13: folded into `axes` when constant, else
// returned to be passed on as a run-time input (null when folded).
Value* axes_input(ImportContext& c, size_t i, Ints& axes) {
  Value* v = c.input(i);
  if (v->dtype != DataType::kInt64)
    c.invalid(cat("axes must be int64, not ", dtype_name(v->dtype)));
  const Tensor* t = c.constant_input(i);
  if (!t) return v;
  if (t->rank() > 1) c.invalid("axes must be 1-D");
  for (int64_t k = 0; k < t->numel(); ++k) axes.push_back(t->get_i64(k));
  return nullptr;
}

void imp_Shape(ImportContext& c) {
  Value* x = c.input(0);
  auto a = std::make_unique<ShapeAttrs>();
  if (c.opset() >= 15) {
    a->start = c.attr_int("start", 0);
    a->end = c.attr_int("end", std::numeric_limits<int64_t>::max());
  }
  if (x->shape.fully_known()) {
    // The dims are fixed: the shape is a constant (what fold_constants would make of it).
    Dims d = x->shape.concrete();
    int64_t r = static_cast<int64_t>(d.size());
    auto norm = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
    int64_t b = norm(a->start), e = std::max(b, norm(a->end));
    c.set_output(0, c.const_i64(Dims(d.begin() + b, d.begin() + e)));
    return;
  }
  c.set_output(0, c.add1("Shape", {x}, std::move(a)));
}

void imp_Size(ImportContext& c) {
  Value* x = c.input(0);
  if (auto v = x->shape.volume()) {
    c.set_output(0, c.const_i64({*v}, true));
    return;
  }
  c.set_output(0, c.add1("Size", {x}));
}

void imp_Reshape(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  auto a = std::make_unique<ReshapeAttrs>();
  Value* shape;
  if (c.opset() < 5) {
    if (!c.has_attr("shape")) c.invalid("the shape attribute is required");
    shape = c.const_i64(c.attr_ints("shape"));
  } else {
    shape = c.input(1);
    if (shape->dtype != DataType::kInt64)
      c.invalid(cat("shape must be int64, not ", dtype_name(shape->dtype)));
    if (c.opset() >= 14) a->allowzero = c.attr_int("allowzero", 0);
  }
  c.set_output(0, add_folded1(c, "Reshape", {x, shape}, std::move(a)));
}

void imp_Flatten(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  int64_t axis = c.attr_int("axis", 1);
  if (c.opset() < 11 && axis < 0) c.invalid(cat("axis ", axis, " must be >= 0 before opset 11"));
  c.set_output(0, reshape_form(c, x, "flatten", {}, axis));
}

void imp_Squeeze(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  Ints axes;
  Value* run_time_axes = nullptr;
  if (c.opset() < 13) {
    axes = c.attr_ints("axes");
  } else if (c.has_input(1)) {
    run_time_axes = axes_input(c, 1, axes);
  }
  c.set_output(0, reshape_form(c, x, "squeeze", axes, 1, run_time_axes));
}

void imp_Unsqueeze(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  Ints axes;
  Value* run_time_axes = nullptr;
  if (c.opset() < 13) {
    if (!c.has_attr("axes")) c.invalid("the axes attribute is required");
    axes = c.attr_ints("axes");
  } else {
    run_time_axes = axes_input(c, 1, axes);
  }
  c.set_output(0, reshape_form(c, x, "unsqueeze", axes, 1, run_time_axes));
}

void imp_Expand(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  Value* shape = c.input(1);
  if (shape->dtype != DataType::kInt64)
    c.invalid(cat("shape must be int64, not ", dtype_name(shape->dtype)));
  c.set_output(0, add_folded1(c, "Expand", {x, shape}));
}

void imp_Constant(ImportContext& c) {
  if (c.has_attr("sparse_value")) c.unsupported("sparse constants are not supported");
  if (c.has_attr("value_string") || c.has_attr("value_strings"))
    c.unsupported("string constants are not supported");
  Tensor t;
  int given = 0;
  if (c.has_attr("value")) {
    t = *c.attr_tensor("value");
    ++given;
  }
  if (c.has_attr("value_float")) {
    t = Tensor(DataType::kFloat, {});
    t.data<float>()[0] = static_cast<float>(c.attr_float("value_float", 0));
    ++given;
  }
  if (c.has_attr("value_floats")) {
    auto v = c.attr_floats("value_floats");
    t = Tensor(DataType::kFloat, {static_cast<int64_t>(v.size())});
    for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = static_cast<float>(v[i]);
    ++given;
  }
  if (c.has_attr("value_int")) {
    t = Tensor(DataType::kInt64, {});
    t.data<int64_t>()[0] = c.attr_int("value_int", 0);
    ++given;
  }
  if (c.has_attr("value_ints")) {
    auto v = c.attr_ints("value_ints");
    t = Tensor::from_vector(DataType::kInt64, {static_cast<int64_t>(v.size())}, v);
    ++given;
  }
  if (given != 1) c.invalid(cat("exactly one value attribute is required, not ", given));
  if (!dtype_is_supported(t.dtype()))
    c.unsupported(cat("constants of type ", dtype_name(t.dtype()), " are not supported"));
  c.set_output(0, c.constant(std::move(t)));
}

void imp_ConstantOfShape(ImportContext& c) {
  auto a = std::make_unique<ConstantOfShapeAttrs>();
  if (c.has_attr("value")) {
    const Tensor* v = c.attr_tensor("value");
    if (v->numel() != 1) c.invalid(cat("value must hold one element, not ", v->numel()));
    if (!dtype_is_supported(v->dtype()))
      c.unsupported(cat("value of type ", dtype_name(v->dtype()), " is not supported"));
    a->value = v->clone().reshaped({});
  }
  Value* shape = c.input(0);
  if (shape->dtype != DataType::kInt64)
    c.invalid(cat("shape must be int64, not ", dtype_name(shape->dtype)));
  c.set_output(0, add_folded1(c, "ConstantOfShape", {shape}, std::move(a)));
}

void imp_Range(ImportContext& c) {
  for (size_t i = 0; i < 3; ++i) require_supported(c, c.input(i));
  c.set_output(0, add_folded1(c, "Range", {c.input(0), c.input(1), c.input(2)}));
}

}  // namespace

const ImporterList& kiln_import_shape_ops() {
  static const ImporterList l{{
      {"Shape", imp_Shape},
      {"Size", imp_Size},
      {"Reshape", imp_Reshape},
      {"Flatten", imp_Flatten},
      {"Squeeze", imp_Squeeze},
      {"Unsqueeze", imp_Unsqueeze},
      {"Expand", imp_Expand, 8},
      {"Constant", imp_Constant},
      {"ConstantOfShape", imp_ConstantOfShape, 9},
      {"Range", imp_Range, 11},
  }};
  return l;
}

}  // namespace kiln::onnx
