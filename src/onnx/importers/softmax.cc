// ONNX Softmax, LogSoftmax and Hardmax, lowered to one Softmax node. Before opset 13 these ops
// coerce the input to 2-D at `axis` (default 1) and normalise over everything from `axis` on: the
// node's legacy_2d flag, dropped when `axis` is the last axis and both meanings agree.
#include "ops/softmax.h"

#include "onnx/importer.h"

namespace kiln::onnx {

namespace {

void softmax_op(ImportContext& c, const char* mode) {
  Value* x = c.input(0);
  if (!dtype_is_float(x->dtype))
    c.invalid(cat("needs a floating-point input, got ", dtype_name(x->dtype)));
  auto a = std::make_unique<SoftmaxAttrs>();
  a->mode = mode;
  if (c.opset() < 13) {
    a->axis = c.attr_int("axis", 1);
    a->legacy_2d = true;
    if (x->shape.rank_known) {
      int64_t r = static_cast<int64_t>(x->shape.rank());
      int64_t axis = normalize_axis(a->axis, r, "axis");
      if (axis == r - 1) a->legacy_2d = false;
    }
  } else {
    a->axis = c.attr_int("axis", -1);
  }
  c.set_output(0, c.add1("Softmax", {x}, std::move(a)));
}

void imp_Softmax(ImportContext& c) { softmax_op(c, "softmax"); }
void imp_LogSoftmax(ImportContext& c) { softmax_op(c, "log_softmax"); }
void imp_Hardmax(ImportContext& c) { softmax_op(c, "hardmax"); }

}  // namespace

const ImporterList& kiln_import_softmax() {
  static const ImporterList l{{
      {"Softmax", imp_Softmax},
      {"LogSoftmax", imp_LogSoftmax},
      {"Hardmax", imp_Hardmax},
  }};
  return l;
}

}  // namespace kiln::onnx
