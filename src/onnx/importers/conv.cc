// Convolutions: Conv, ConvTranspose, ConvInteger and QLinearConv, all lowered to the canonical
// Conv. auto_pad and ConvTranspose's output_shape become explicit pads here when the input's
// spatial dims are known; with symbolic dims they stay on the node and Conv resolves them.
//
// The integer forms compute exactly in float64: inputs minus zero points are small integers, so
// a float64 convolution of them is exact (sums stay far below 2^53) and is cast to int32
// (ConvInteger) or rescaled and requantized (QLinearConv).
#include "ops/conv.h"

#include "onnx/importer.h"
#include "onnx/importers/integer_lowering.h"
#include "ops/op.h"
#include "ops/window.h"

namespace kiln::onnx {

namespace {

// A model naming more outputs than the op has is invalid (it would leave outputs unbound).
void expect_outputs(ImportContext& c, size_t n) {
  if (c.num_outputs() > n)
    c.invalid(cat(c.proto().op_type, " has ", n, " output(s), the node names ", c.num_outputs()));
}

// Number of spatial axes, from W, X or kernel_shape (whichever is known), or -1 when none is.
int64_t spatial_rank(ImportContext& c, Value* x, Value* w) {
  for (Value* v : {w, x})
    if (v->shape.rank_known) {
      if (v->shape.rank() < 3)
        c.invalid(cat("X and W need rank >= 3 (N or M, C, spatial...), got ", v->shape.str()));
      return static_cast<int64_t>(v->shape.rank()) - 2;
    }
  if (c.has_attr("kernel_shape")) return static_cast<int64_t>(c.attr_ints("kernel_shape").size());
  return -1;
}

// Reads the ONNX attributes into ConvAttrs, checking kernel_shape against W, and resolves
// auto_pad / output_shape into pads when the spatial input dims are known.
std::unique_ptr<ConvAttrs> conv_attrs(ImportContext& c, Value* x, Value* w, bool transposed) {
  auto a = std::make_unique<ConvAttrs>();
  a->transposed = transposed;
  a->strides = c.attr_ints("strides");
  a->dilations = c.attr_ints("dilations");
  a->pads = c.attr_ints("pads");
  a->group = c.attr_int("group", 1);
  a->auto_pad = c.attr_string("auto_pad", "NOTSET");
  if (a->auto_pad.empty()) a->auto_pad = "NOTSET";
  if (!is_valid_auto_pad(a->auto_pad))
    c.invalid(
        cat("auto_pad '", a->auto_pad, "' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER"));
  if (transposed) {
    a->output_padding = c.attr_ints("output_padding");
    a->output_shape = c.attr_ints("output_shape");
  }
  int64_t nsp = spatial_rank(c, x, w);
  if (nsp < 1) return a;  // nothing known yet; Conv checks at run time
  // output_shape may name all dims (N, C, spatial...) or only the spatial ones.
  if (a->output_shape.size() == static_cast<size_t>(nsp) + 2)
    a->output_shape.erase(a->output_shape.begin(), a->output_shape.begin() + 2);
  Ints kernel(nsp, -1);
  if (w->shape.rank_known && w->shape.rank() == static_cast<size_t>(nsp) + 2)
    for (int64_t i = 0; i < nsp; ++i)
      if (w->shape[2 + i].known()) kernel[i] = w->shape[2 + i].value;
  if (c.has_attr("kernel_shape")) {
    Ints ks = c.attr_ints("kernel_shape");
    if (ks.size() != static_cast<size_t>(nsp))
      c.invalid(cat("kernel_shape has ", ks.size(), " values but W ", w->shape.str(), " has ", nsp,
                    " spatial axes"));
    for (int64_t i = 0; i < nsp; ++i) {
      if (kernel[i] >= 0 && kernel[i] != ks[i])
        c.invalid(cat("kernel_shape ", dims_to_string(ks), " does not match W ", w->shape.str()));
      kernel[i] = ks[i];
    }
  }
  bool needs_resolution = a->auto_pad != "NOTSET" || !a->output_shape.empty();
  if (!needs_resolution || !x->shape.rank_known || x->shape.rank() != static_cast<size_t>(nsp) + 2)
    return a;
  Ints in(nsp);
  for (int64_t i = 0; i < nsp; ++i) {
    if (!x->shape[2 + i].known() || kernel[i] < 0) return a;  // resolved by Conv at run time
    in[i] = x->shape[2 + i].value;
  }
  try {
    ConvGeometry g = conv_geometry(*a, in, kernel);
    a->pads = g.pad_begin;
    a->pads.insert(a->pads.end(), g.pad_end.begin(), g.pad_end.end());
    if (transposed) a->output_padding = g.output_padding;
  } catch (const Error& e) {
    c.invalid(e.message());
  }
  a->auto_pad = "NOTSET";
  a->output_shape.clear();
  return a;
}

// Conv and ConvTranspose: X, W and the optional bias B, all of one float type.
void float_conv(ImportContext& c, bool transposed) {
  expect_outputs(c, 1);
  Value* x = c.input(0);
  Value* w = c.input(1);
  check_float(c, x, "X");
  auto a = conv_attrs(c, x, w, transposed);
  std::vector<Value*> ins = {x, w};
  if (c.has_input(2)) ins.push_back(c.input(2));
  c.set_output(0, c.add1("Conv", ins, std::move(a)));
}
void imp_Conv(ImportContext& c) { float_conv(c, false); }
void imp_ConvTranspose(ImportContext& c) { float_conv(c, true); }

void imp_ConvInteger(ImportContext& c) {
  expect_outputs(c, 1);
  Value* x = c.input(0);
  Value* w = c.input(1);
  for (Value* v : {x, w})
    if (v->dtype != DataType::kUInt8 && v->dtype != DataType::kInt8)
      c.invalid(cat("inputs must be int8 or uint8, got ", dtype_name(v->dtype)));
  auto a = conv_attrs(c, x, w, false);
  Value* xf = centered_f64(c, x, c.input_or_null(2), 1);
  Value* wf = centered_f64(c, w, c.input_or_null(3), 0);  // per output channel
  Value* y = c.add1("Conv", {xf, wf}, std::move(a));
  c.set_output(0, c.cast(y, DataType::kInt32));
}

// QLinearConv: dequantize X and W (W per output channel), convolve in float64 with the int32 bias
// dequantized by x_scale * w_scale, and requantize with round-half-even and saturation.
void imp_QLinearConv(ImportContext& c) {
  expect_outputs(c, 1);
  Value* x = c.input(0);
  Value* w = c.input(3);
  Value* y_zp = c.input_or_null(7);
  DataType out = y_zp ? y_zp->dtype : DataType::kUInt8;
  auto a = conv_attrs(c, x, w, false);
  Value* xf = dequantize_f64(c, x, c.input(1), c.input_or_null(2), 1);
  Value* wf = dequantize_f64(c, w, c.input(4), c.input_or_null(5), 0);
  std::vector<Value*> ins = {xf, wf};
  if (c.has_input(8)) {
    Value* b = c.input(8);
    if (b->dtype != DataType::kInt32) c.invalid(cat("B must be int32, got ", dtype_name(b->dtype)));
    Value* bscale = c.binary(expr::Op::kMul, c.cast(c.input(1), F64), c.cast(c.input(4), F64));
    auto da = std::make_unique<DequantizeLinearAttrs>();
    da->axis = 0;
    ins.push_back(c.add1("DequantizeLinear", {b, bscale}, std::move(da)));
  }
  Value* y = c.add1("Conv", ins, std::move(a));
  c.set_output(0, requantize(c, y, c.input(6), y_zp, out));
}

}  // namespace

const ImporterList& kiln_import_conv() {
  static const ImporterList l{{
      {"Conv", imp_Conv},
      {"ConvTranspose", imp_ConvTranspose},
      {"ConvInteger", imp_ConvInteger, 10},
      {"QLinearConv", imp_QLinearConv, 10},
  }};
  return l;
}

}  // namespace kiln::onnx
