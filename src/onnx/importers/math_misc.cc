// Det (11), the window functions, DFT, STFT and MelWeightMatrix (17). Windows and mel matrices
// whose inputs are constants become constants; otherwise they lower to their canonical ops.
#include "onnx/importer.h"
#include "ops/dft.h"
#include "ops/mel_weight_matrix.h"
#include "ops/stft.h"
#include "ops/window_function.h"

namespace kiln::onnx {

namespace {

DataType output_datatype(ImportContext& c) {
  auto t = static_cast<DataType>(c.attr_int("output_datatype", 1));
  if (!dtype_is_supported(t) || t == DataType::kBool)
    c.unsupported(cat("output_datatype ", dtype_name(t), " is not supported"));
  return t;
}

void imp_Det(ImportContext& c) {
  c.check_input_types();
  c.set_output(0, c.add1("Det", {c.input(0)}));
}

void window(ImportContext& c, const char* kind) {
  c.check_input_types();
  auto a = std::make_unique<WindowFunctionAttrs>();
  a->kind = kind;
  a->periodic = c.attr_int("periodic", 1) != 0;
  a->output_dtype = output_datatype(c);
  Value* size = c.input(0);
  if (size->dtype != DataType::kInt32 && size->dtype != DataType::kInt64)
    c.invalid(cat("size must be int32 or int64, got ", dtype_name(size->dtype)));
  if (const Tensor* t = c.constant_input(0)) {
    if (t->numel() != 1) c.invalid("size must be a scalar");
    c.set_output(0, c.constant(make_window(a->kind, t->get_i64(0), a->periodic, a->output_dtype)));
    return;
  }
  c.set_output(0, c.add1("WindowFunction", {size}, std::move(a)));
}
void imp_HannWindow(ImportContext& c) { window(c, "hann"); }
void imp_HammingWindow(ImportContext& c) { window(c, "hamming"); }
void imp_BlackmanWindow(ImportContext& c) { window(c, "blackman"); }

void imp_DFT(ImportContext& c) {
  c.check_input_types();
  auto a = std::make_unique<DftAttrs>();
  a->axis = c.attr_int("axis", 1);
  a->inverse = c.attr_int("inverse", 0) != 0;
  a->onesided = c.attr_int("onesided", 0) != 0;
  std::vector<Value*> ins = {c.input(0)};
  if (c.has_input(1)) ins.push_back(c.input(1));
  c.set_output(0, c.add1("DFT", ins, std::move(a)));
}

void imp_STFT(ImportContext& c) {
  c.check_input_types();
  auto a = std::make_unique<StftAttrs>();
  a->onesided = c.attr_int("onesided", 1) != 0;
  std::vector<Value*> ins = {c.input(0), c.input(1), c.input_or_null(2)};
  if (c.has_input(3)) ins.push_back(c.input(3));
  c.set_output(0, c.add1("STFT", ins, std::move(a)));
}

void imp_MelWeightMatrix(ImportContext& c) {
  c.check_input_types();
  auto a = std::make_unique<MelWeightMatrixAttrs>();
  a->output_dtype = output_datatype(c);
  std::vector<Value*> ins;
  bool all_constant = true;
  for (size_t i = 0; i < 5; ++i) {
    ins.push_back(c.input(i));
    all_constant = all_constant && c.constant_input(i) && c.constant_input(i)->numel() == 1;
  }
  if (all_constant) {
    auto k = [&](size_t i) { return c.constant_input(i); };
    if (!dtype_is_float(k(3)->dtype()) || !dtype_is_float(k(4)->dtype()) ||
        dtype_is_float(k(0)->dtype()) || dtype_is_float(k(1)->dtype()) ||
        dtype_is_float(k(2)->dtype()))
      c.invalid("num_mel_bins, dft_length and sample_rate must be integers; the edges floats");
    c.set_output(
        0, c.constant(make_mel_weight_matrix(k(0)->get_i64(0), k(1)->get_i64(0), k(2)->get_i64(0),
                                             k(3)->get_f64(0), k(4)->get_f64(0), a->output_dtype)));
    return;
  }
  c.set_output(0, c.add1("MelWeightMatrix", ins, std::move(a)));
}

}  // namespace

const ImporterList& kiln_import_math_misc() {
  static const ImporterList l{{
      {"Det", imp_Det, 11},
      {"HannWindow", imp_HannWindow, 17},
      {"HammingWindow", imp_HammingWindow, 17},
      {"BlackmanWindow", imp_BlackmanWindow, 17},
      {"DFT", imp_DFT, 17, 19},  // 20: dft_length and axis as inputs
      {"STFT", imp_STFT, 17},
      {"MelWeightMatrix", imp_MelWeightMatrix, 17},
  }};
  return l;
}

}  // namespace kiln::onnx
