// ONNX TopK and CumSum, each lowered to the canonical op of the same name.
#include "onnx/importer.h"
#include "ops/cum_sum.h"
#include "ops/top_k.h"

namespace kiln::onnx {

namespace {

void imp_TopK(ImportContext& c) {
  Value* x = c.input(0);
  if (!dtype_is_supported(x->dtype) || x->dtype == DataType::kBool)
    c.unsupported(cat("TopK of ", dtype_name(x->dtype), " is not supported"));
  auto a = std::make_unique<TopKAttrs>();
  a->axis = c.attr_int("axis", -1);
  Value* k;
  if (c.opset() < 10) {
    if (!c.has_attr("k")) c.invalid("attribute k is required before opset 10");
    int64_t kv = c.attr_int("k", 0);
    if (kv < 0) c.invalid(cat("k must not be negative, got ", kv));
    k = c.const_i64({kv});
  } else {
    k = c.input(1);
  }
  if (c.opset() >= 11) {
    a->largest = c.attr_int("largest", 1) != 0;
    a->sorted = c.attr_int("sorted", 1) != 0;
  }
  auto outs = c.add("TopK", {x, k}, std::move(a), 2);
  c.set_output(0, outs[0]);
  c.set_output(1, outs[1]);
}

void imp_CumSum(ImportContext& c) {
  Value* x = c.input(0);
  if (!dtype_is_supported(x->dtype) || x->dtype == DataType::kBool)
    c.unsupported(cat("CumSum of ", dtype_name(x->dtype), " is not supported"));
  auto a = std::make_unique<CumSumAttrs>();
  a->exclusive = c.attr_int("exclusive", 0) != 0;
  a->reverse = c.attr_int("reverse", 0) != 0;
  c.set_output(0, c.add1("CumSum", {x, c.input(1)}, std::move(a)));
}

}  // namespace

const ImporterList& kiln_import_ordering() {
  static const ImporterList l{{
      {"TopK", imp_TopK},
      {"CumSum", imp_CumSum, 11},
  }};
  return l;
}

}  // namespace kiln::onnx
