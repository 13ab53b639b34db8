// QuantizeLinear, DequantizeLinear (opsets 10..17; per-axis from 13) and DynamicQuantizeLinear.
#include "onnx/importer.h"
#include "ops/dequantize_linear.h"
#include "ops/quantize_linear.h"

namespace kiln::onnx {

namespace {

void check_supported(ImportContext& c, size_t i) {
  if (c.has_input(i) && !dtype_is_supported(c.input(i)->dtype))
    c.unsupported(cat("input ", i, " has unsupported type ", dtype_name(c.input(i)->dtype)));
}

void imp_QuantizeLinear(ImportContext& c) {
  for (size_t i = 0; i < 3; ++i) check_supported(c, i);
  if (c.has_attr("saturate")) c.unsupported("the saturate attribute (float8) needs opset 19");
  auto a = std::make_unique<QuantizeLinearAttrs>();
  a->axis = c.opset() >= 13 ? c.attr_int("axis", 1) : 1;
  a->output_dtype = c.has_input(2) ? c.input(2)->dtype : DataType::kUInt8;
  std::vector<Value*> ins = {c.input(0), c.input(1)};
  if (c.has_input(2)) ins.push_back(c.input(2));
  c.set_output(0, c.add1("QuantizeLinear", ins, std::move(a)));
}

void imp_DequantizeLinear(ImportContext& c) {
  for (size_t i = 0; i < 3; ++i) check_supported(c, i);
  auto a = std::make_unique<DequantizeLinearAttrs>();
  a->axis = c.opset() >= 13 ? c.attr_int("axis", 1) : 1;
  std::vector<Value*> ins = {c.input(0), c.input(1)};
  if (c.has_input(2)) ins.push_back(c.input(2));
  c.set_output(0, c.add1("DequantizeLinear", ins, std::move(a)));
}

void imp_DynamicQuantizeLinear(ImportContext& c) {
  check_supported(c, 0);
  auto outs = c.add("DynamicQuantizeLinear", {c.input(0)}, nullptr, 3);
  for (size_t i = 0; i < 3; ++i) c.set_output(i, outs[i]);
}

}  // namespace

const ImporterList& kiln_import_quantize() {
  static const ImporterList l{{
      {"QuantizeLinear", imp_QuantizeLinear, 10, 17},
      {"DequantizeLinear", imp_DequantizeLinear, 10, 17},
      {"DynamicQuantizeLinear", imp_DynamicQuantizeLinear, 11, 17},
  }};
  return l;
}

}  // namespace kiln::onnx
