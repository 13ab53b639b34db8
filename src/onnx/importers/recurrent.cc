// ONNX RNN, GRU and LSTM (opsets 7..17), lowered to one Recurrent node. The ONNX inputs keep
// their order; outputs the model omits are still produced (and left unused).
#include "ops/recurrent.h"

#include "onnx/importer.h"

namespace kiln::onnx {

namespace {

void recurrent(ImportContext& c, const char* cell, size_t max_inputs, size_t n_outputs) {
  c.check_input_types();
  if (c.num_inputs() > max_inputs)
    c.invalid(cat("takes at most ", max_inputs, " inputs, got ", c.num_inputs()));
  if (c.num_outputs() > n_outputs)
    c.invalid(cat("has at most ", n_outputs, " outputs, got ", c.num_outputs()));
  Value* x = c.input(0);
  if (!dtype_is_float(x->dtype))
    c.invalid(cat("needs a floating-point X, got ", dtype_name(x->dtype)));
  auto a = std::make_unique<RecurrentAttrs>();
  a->cell = cell;
  a->direction = c.attr_string("direction", "forward");
  if (a->direction != "forward" && a->direction != "reverse" && a->direction != "bidirectional")
    c.invalid(cat("direction must be forward, reverse or bidirectional, got '", a->direction, "'"));
  a->hidden_size = c.attr_int("hidden_size", 0);
  if (c.has_attr("hidden_size") && a->hidden_size <= 0)
    c.invalid(cat("hidden_size must be positive, got ", a->hidden_size));
  if (c.has_attr("activations")) {
    const AttributeProto* at = c.proto().attr("activations");
    std::string joined;
    for (size_t i = 0; i < at->strings.size(); ++i) {
      if (i) joined += ",";
      joined += at->strings[i];
    }
    a->activations = joined;
  }
  a->activation_alpha = c.attr_floats("activation_alpha");
  a->activation_beta = c.attr_floats("activation_beta");
  a->clip = c.attr_float("clip", 0);
  if (std::string(cell) == "gru") a->linear_before_reset = c.attr_int("linear_before_reset", 0);
  if (std::string(cell) == "lstm") a->input_forget = c.attr_int("input_forget", 0);
  a->layout = c.opset() >= 14 ? c.attr_int("layout", 0) : 0;
  if (a->layout != 0 && a->layout != 1) c.invalid(cat("layout must be 0 or 1, got ", a->layout));
  std::vector<Value*> ins;
  for (size_t i = 0; i < c.num_inputs(); ++i) ins.push_back(c.input_or_null(i));
  std::vector<Value*> outs = c.add("Recurrent", ins, std::move(a), n_outputs);
  for (size_t i = 0; i < c.num_outputs(); ++i)
    if (c.wants_output(i)) c.set_output(i, outs[i]);
}

void imp_RNN(ImportContext& c) { recurrent(c, "rnn", 6, 2); }
void imp_GRU(ImportContext& c) { recurrent(c, "gru", 6, 2); }
void imp_LSTM(ImportContext& c) { recurrent(c, "lstm", 8, 3); }

}  // namespace

const ImporterList& kiln_import_recurrent() {
  static const ImporterList l{{
      {"RNN", imp_RNN, 7},
      {"GRU", imp_GRU, 7},
      {"LSTM", imp_LSTM, 7},
  }};
  return l;
}

}  // namespace kiln::onnx
