// ONNX normalizations: BatchNormalization (inference), InstanceNormalization, LayerNormalization,
// GroupNormalization and LRN lower to one Normalization node; MeanVarianceNormalization lowers to
// two Reduce(mean) nodes and a Pointwise program, as its ONNX function body does.
#include "ops/normalization.h"

#include "onnx/importer.h"
#include "ops/reduce.h"

namespace kiln::onnx {

namespace {

using expr::Op;

void check_float(ImportContext& c, size_t i) {
  if (!c.has_input(i)) return;
  DataType t = c.input(i)->dtype;
  if (!dtype_is_float(t))
    c.invalid(cat("input ", i, " must be floating-point, got ", dtype_name(t)));
}

// Adds the node with as many outputs as the model asks for and binds them.
void emit(ImportContext& c, std::unique_ptr<NormalizationAttrs> a, std::vector<Value*> ins,
          size_t max_outputs) {
  for (size_t i = 0; i < ins.size(); ++i) check_float(c, i);
  size_t n_out = 1;
  for (size_t i = 1; i < max_outputs; ++i)
    if (c.wants_output(i)) n_out = i + 1;
  auto outs = c.add("Normalization", std::move(ins), std::move(a), n_out);
  for (size_t i = 0; i < n_out; ++i) c.set_output(i, outs[i]);
}

void imp_BatchNormalization(ImportContext& c) {
  if (c.opset() >= 14 && c.attr_int("training_mode", 0) != 0)
    c.deliberately_unsupported(
        "BatchNormalization with training_mode=1 updates statistics; kiln runs inference only");
  if (c.opset() < 7 && c.attr_int("is_test", 0) == 0 && c.num_outputs() > 1)
    c.unsupported("BatchNormalization in training mode (is_test=0); kiln runs inference only");
  for (size_t i = 1; i < c.num_outputs(); ++i)
    if (c.wants_output(i))
      c.unsupported(cat("BatchNormalization output ", i, " exists only in training mode"));
  for (size_t i = 0; i < 5; ++i)
    if (!c.has_input(i)) c.invalid(cat("input ", i, " is required"));
  auto a = std::make_unique<NormalizationAttrs>();
  a->kind = "batch";
  a->epsilon = c.attr_float("epsilon", 1e-5);
  // spatial=0 (before opset 9) gives the parameters shape [C, D1, ...]; the node aligns
  // parameters with X from axis 1 either way.
  emit(c, std::move(a), {c.input(0), c.input(1), c.input(2), c.input(3), c.input(4)}, 1);
}

void imp_InstanceNormalization(ImportContext& c) {
  auto a = std::make_unique<NormalizationAttrs>();
  a->kind = "instance";
  a->epsilon = c.attr_float("epsilon", 1e-5);
  emit(c, std::move(a), {c.input(0), c.input(1), c.input(2)}, 1);
}

void imp_LayerNormalization(ImportContext& c) {
  auto a = std::make_unique<NormalizationAttrs>();
  a->kind = "layer";
  a->axis = c.attr_int("axis", -1);
  a->epsilon = c.attr_float("epsilon", 1e-5);
  a->stash_type = static_cast<DataType>(c.attr_int("stash_type", 1));
  if (!dtype_is_float(a->stash_type))
    c.invalid(cat("stash_type must be a floating-point type, got ", dtype_name(a->stash_type)));
  emit(c, std::move(a), {c.input(0), c.input(1), c.input_or_null(2)}, 3);
}

void imp_GroupNormalization(ImportContext& c) {
  if (!c.has_attr("num_groups")) c.invalid("num_groups is required");
  auto a = std::make_unique<NormalizationAttrs>();
  a->kind = "group";
  a->num_groups = c.attr_int("num_groups", 1);
  a->epsilon = c.attr_float("epsilon", 1e-5);
  // Opset 18 has one scale/bias per group, opset 21 one per channel; the node takes both.
  emit(c, std::move(a), {c.input(0), c.input(1), c.input(2)}, 1);
}

void imp_LRN(ImportContext& c) {
  if (!c.has_attr("size")) c.invalid("size is required");
  auto a = std::make_unique<NormalizationAttrs>();
  a->kind = "lrn";
  a->size = c.attr_int("size", 1);
  a->alpha = c.attr_float("alpha", 1e-4);
  a->beta = c.attr_float("beta", 0.75);
  a->lrn_bias = c.attr_float("bias", 1.0);
  emit(c, std::move(a), {c.input(0)}, 1);
}

// (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9) over `axes`.
void imp_MeanVarianceNormalization(ImportContext& c) {
  check_float(c, 0);
  Value* x = c.input(0);
  DataType t = x->dtype;
  Ints axes = c.attr_ints("axes", {0, 2, 3});
  auto mean_of = [&](Value* v) {
    auto a = std::make_unique<ReduceAttrs>();
    a->kind = "mean";
    a->axes = axes;
    a->keepdims = true;
    return c.add1("Reduce", {v}, std::move(a));
  };
  Value* mean = mean_of(x);
  Value* mean_sq = mean_of(c.binary(Op::kMul, x, x));
  expr::Program p;
  p.input_types = {t, t, t};
  int32_t xi = p.input(0), m = p.input(1), e2 = p.input(2);
  int32_t var = p.binary(Op::kSub, e2, p.binary(Op::kMul, m, m));
  int32_t den = p.binary(Op::kAdd, p.unary(Op::kSqrt, var), p.constant(t, 1e-9));
  p.outputs = {p.binary(Op::kDiv, p.binary(Op::kSub, xi, m), den)};
  c.set_output(0, c.pointwise(p, {x, mean, mean_sq}));
}

}  // namespace

const ImporterList& kiln_import_normalization() {
  static const ImporterList l{{
      {"BatchNormalization", imp_BatchNormalization, 6},
      {"InstanceNormalization", imp_InstanceNormalization},
      {"LayerNormalization", imp_LayerNormalization, 17},
      {"GroupNormalization", imp_GroupNormalization, 18, 21},
      {"LRN", imp_LRN},
      {"MeanVarianceNormalization", imp_MeanVarianceNormalization, 9},
  }};
  return l;
}

}  // namespace kiln::onnx
