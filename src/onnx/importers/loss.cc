// ONNX loss functions: NegativeLogLikelihoodLoss lowers to NllLoss; SoftmaxCrossEntropyLoss to a
// Softmax (log_softmax over axis 1) feeding NllLoss, whose log-probabilities are the optional
// second output.
#include "onnx/importer.h"
#include "ops/nll_loss.h"
#include "ops/softmax.h"

namespace kiln::onnx {

namespace {

std::unique_ptr<NllLossAttrs> loss_attrs(ImportContext& c) {
  auto a = std::make_unique<NllLossAttrs>();
  a->reduction = c.attr_string("reduction", "mean");
  if (a->reduction != "none" && a->reduction != "sum" && a->reduction != "mean")
    c.invalid(cat("reduction must be none, sum or mean, got '", a->reduction, "'"));
  a->has_ignore_index = c.has_attr("ignore_index");
  a->ignore_index = c.attr_int("ignore_index", 0);
  return a;
}

void check_types(ImportContext& c) {
  if (!dtype_is_float(c.input(0)->dtype))
    c.invalid(cat("input 0 must be floating-point, got ", dtype_name(c.input(0)->dtype)));
  DataType tt = c.input(1)->dtype;
  if (tt != DataType::kInt32 && tt != DataType::kInt64)
    c.invalid(cat("the target must be int32 or int64, got ", dtype_name(tt)));
}

void imp_NegativeLogLikelihoodLoss(ImportContext& c) {
  check_types(c);
  c.set_output(0, c.add1("NllLoss", {c.input(0), c.input(1), c.input_or_null(2)}, loss_attrs(c)));
}

void imp_SoftmaxCrossEntropyLoss(ImportContext& c) {
  check_types(c);
  auto sa = std::make_unique<SoftmaxAttrs>();
  sa->mode = "log_softmax";
  sa->axis = 1;
  Value* log_prob = c.add1("Softmax", {c.input(0)}, std::move(sa));
  c.set_output(0, c.add1("NllLoss", {log_prob, c.input(1), c.input_or_null(2)}, loss_attrs(c)));
  c.set_output(1, log_prob);
}

}  // namespace

const ImporterList& kiln_import_loss() {
  static const ImporterList l{{
      {"NegativeLogLikelihoodLoss", imp_NegativeLogLikelihoodLoss, 12},
      {"SoftmaxCrossEntropyLoss", imp_SoftmaxCrossEntropyLoss, 12},
  }};
  return l;
}

}  // namespace kiln::onnx
