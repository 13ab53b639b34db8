// ONNX indexing ops: Gather, GatherElements, GatherND, Scatter (opset 9-10, = ScatterElements),
// ScatterElements, ScatterND, OneHot, EyeLike. EyeLike lowers to a constant when the shape is
// known, else to ConstantOfShape(1) masked by two Trilus (upper from k, lower to k).
#include "onnx/importer.h"
#include "onnx/importers/shape_helpers.h"
#include "ops/constant_of_shape.h"
#include "ops/gather.h"
#include "ops/gather_elements.h"
#include "ops/gather_nd.h"
#include "ops/one_hot.h"
#include "ops/scatter_elements.h"
#include "ops/scatter_nd.h"
#include "ops/trilu.h"

namespace kiln::onnx {

namespace {

void require_supported(ImportContext& c, Value* x) {
  if (!dtype_is_supported(x->dtype))
    c.unsupported(cat("input type ", dtype_name(x->dtype), " is not supported"));
}

void require_indices(ImportContext& c, size_t i, bool int64_only) {
  DataType t = c.input(i)->dtype;
  if (t != DataType::kInt64 && (int64_only || t != DataType::kInt32))
    c.invalid(
        cat("indices must be ", int64_only ? "int64" : "int32 or int64", ", not ", dtype_name(t)));
}

void imp_Gather(ImportContext& c) {
  require_supported(c, c.input(0));
  require_indices(c, 1, false);
  auto a = std::make_unique<GatherAttrs>();
  a->axis = c.attr_int("axis", 0);
  c.set_output(0, add_folded1(c, "Gather", {c.input(0), c.input(1)}, std::move(a)));
}

void imp_GatherElements(ImportContext& c) {
  require_supported(c, c.input(0));
  require_indices(c, 1, false);
  auto a = std::make_unique<GatherElementsAttrs>();
  a->axis = c.attr_int("axis", 0);
  c.set_output(0, add_folded1(c, "GatherElements", {c.input(0), c.input(1)}, std::move(a)));
}

void imp_GatherND(ImportContext& c) {
  require_supported(c, c.input(0));
  require_indices(c, 1, true);
  auto a = std::make_unique<GatherNDAttrs>();
  a->batch_dims = c.opset() >= 12 ? c.attr_int("batch_dims", 0) : 0;
  c.set_output(0, add_folded1(c, "GatherND", {c.input(0), c.input(1)}, std::move(a)));
}

void imp_ScatterElements(ImportContext& c) {
  require_supported(c, c.input(0));
  require_indices(c, 1, false);
  auto a = std::make_unique<ScatterElementsAttrs>();
  a->axis = c.attr_int("axis", 0);
  if (c.opset() >= 16) a->reduction = c.attr_string("reduction", "none");
  c.set_output(
      0, add_folded1(c, "ScatterElements", {c.input(0), c.input(1), c.input(2)}, std::move(a)));
}

void imp_ScatterND(ImportContext& c) {
  require_supported(c, c.input(0));
  require_indices(c, 1, true);
  auto a = std::make_unique<ScatterNDAttrs>();
  if (c.opset() >= 16) a->reduction = c.attr_string("reduction", "none");
  c.set_output(0, add_folded1(c, "ScatterND", {c.input(0), c.input(1), c.input(2)}, std::move(a)));
}

void imp_OneHot(ImportContext& c) {
  for (size_t i = 0; i < 3; ++i) require_supported(c, c.input(i));
  auto a = std::make_unique<OneHotAttrs>();
  a->axis = c.attr_int("axis", -1);
  c.set_output(0, add_folded1(c, "OneHot", {c.input(0), c.input(1), c.input(2)}, std::move(a)));
}

void imp_EyeLike(ImportContext& c) {
  Value* x = c.input(0);
  DataType dt = c.has_attr("dtype") ? static_cast<DataType>(c.attr_int("dtype", 0)) : x->dtype;
  if (!dtype_is_supported(dt))
    c.unsupported(cat("output type ", dtype_name(dt), " is not supported"));
  int64_t k = c.attr_int("k", 0);
  const Shape& s = x->shape;
  if (s.rank_known && s.rank() != 2) c.invalid(cat("input ", s.str(), " must be 2-D"));
  if (s.fully_known()) {
    Tensor t(dt, s.concrete());
    int64_t n = t.dim(0), m = t.dim(1);
    for (int64_t i = 0; i < n; ++i)
      if (i + k >= 0 && i + k < m) t.set_f64(i * m + i + k, 1.0);
    c.set_output(0, c.constant(std::move(t)));
    return;
  }
  auto fill = std::make_unique<ConstantOfShapeAttrs>();
  fill->value = Tensor(dt, {});
  fill->value.set_f64(0, 1.0);
  Value* ones = c.add1("ConstantOfShape", {add_folded1(c, "Shape", {x})}, std::move(fill));
  Value* kv = c.const_i64({k}, true);
  auto upper = std::make_unique<TriluAttrs>();
  upper->upper = 1;
  auto lower = std::make_unique<TriluAttrs>();
  lower->upper = 0;
  Value* y = c.add1("Trilu", {ones, kv}, std::move(upper));
  c.set_output(0, c.add1("Trilu", {y, kv}, std::move(lower)));
}

}  // namespace

const ImporterList& kiln_import_indexing() {
  static const ImporterList l{{
      {"Gather", imp_Gather},
      {"GatherElements", imp_GatherElements, 11},
      {"GatherND", imp_GatherND, 11},
      {"Scatter", imp_ScatterElements, 9, 10},
      {"ScatterElements", imp_ScatterElements, 11},
      {"ScatterND", imp_ScatterND, 11},
      {"OneHot", imp_OneHot, 9},
      {"EyeLike", imp_EyeLike, 9},
  }};
  return l;
}

}  // namespace kiln::onnx
