// MelWeightMatrix. The ONNX definition is its reference code (onnx/backend/test/case/node/
// melweightmatrix.py), reproduced step by step, including its choices: mel points spaced by
// (high - low) / (num_mel_bins + 2), the mel scale in float32, and bins from numpy's floor
// division of (dft_length + 1) * hertz by the sample rate.
#include "ops/mel_weight_matrix.h"

#include <cmath>

#include "ops/op_util.h"

namespace kiln {

namespace {

// numpy's float floor_divide (npy_divmod), which rounds the quotient of the exact remainder.
double np_floor_divide(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0) return std::copysign(0.0, a / b);
  double fl = std::floor(div);
  if (div - fl > 0.5) fl += 1.0;
  return fl;
}

bool is_int_type(DataType t) { return t == DataType::kInt32 || t == DataType::kInt64; }

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<MelWeightMatrixAttrs>();
  if (!dtype_is_supported(a.output_dtype) || a.output_dtype == DataType::kBool)
    ctx.error(cat("unsupported output type ", dtype_name(a.output_dtype)));
  static const char* names[] = {"num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz",
                                "upper_edge_hertz"};
  for (size_t i = 0; i < 5; ++i) {
    DataType t = ctx.dtype(i);
    if (i < 3 ? !is_int_type(t) : !dtype_is_float(t))
      ctx.error(cat(names[i], " has type ", dtype_name(t), "; expected ",
                    i < 3 ? "int32 or int64" : "a float type"));
    auto v = ctx.shape(i).volume();
    if (ctx.shape(i).rank_known && v && *v != 1) ctx.error(cat(names[i], " must be a scalar"));
  }
  Dim rows = Dim::unknown(), cols = Dim::unknown();
  if (const Tensor* v = ctx.value(1)) rows = Dim(std::max<int64_t>(v->get_i64(0), 0) / 2 + 1);
  if (const Tensor* v = ctx.value(0)) cols = Dim(std::max<int64_t>(v->get_i64(0), 0));
  ctx.set_output(0, a.output_dtype, Shape({rows, cols}));
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<MelWeightMatrixAttrs>();
  for (size_t i = 0; i < 5; ++i)
    if (args.in(i).numel() != 1)
      fail(StatusCode::kInvalidArgument, "MelWeightMatrix: input ", i, " must be a scalar");
  Tensor m =
      make_mel_weight_matrix(args.in(0).get_i64(0), args.in(1).get_i64(0), args.in(2).get_i64(0),
                             args.in(3).get_f64(0), args.in(4).get_f64(0), a.output_dtype);
  Tensor& y = args.out(0);
  if (y.dims() != m.dims()) fail(StatusCode::kInternal, "MelWeightMatrix: output shape");
  if (m.nbytes()) std::memcpy(y.raw(), m.raw(), m.nbytes());
}

}  // namespace

Tensor make_mel_weight_matrix(int64_t num_mel_bins, int64_t dft_length, int64_t sample_rate,
                              double lower_edge_hertz, double upper_edge_hertz, DataType dtype) {
  if (num_mel_bins < 1 || dft_length < 1 || sample_rate < 1)
    fail(StatusCode::kInvalidModel, "MelWeightMatrix: num_mel_bins (", num_mel_bins,
         "), dft_length (", dft_length, ") and sample_rate (", sample_rate, ") must be positive");
  if (num_mel_bins > (1 << 20) || dft_length > (int64_t{1} << 28) ||
      (dft_length / 2 + 1) * num_mel_bins > (int64_t{1} << 30))
    fail(StatusCode::kInvalidModel, "MelWeightMatrix: ", dft_length / 2 + 1, " x ", num_mel_bins,
         " is implausibly large");
  if (!(lower_edge_hertz >= 0) || !(upper_edge_hertz > lower_edge_hertz) ||
      !std::isfinite(upper_edge_hertz))
    fail(StatusCode::kInvalidModel, "MelWeightMatrix: need 0 <= lower_edge_hertz (",
         lower_edge_hertz, ") < upper_edge_hertz (", upper_edge_hertz, ")");
  const int64_t rows = dft_length / 2 + 1;
  auto to_mel = [](float hz) { return 2595.0f * std::log10(1.0f + hz / 700.0f); };
  float low_mel = to_mel(static_cast<float>(lower_edge_hertz));
  float high_mel = to_mel(static_cast<float>(upper_edge_hertz));
  float mel_step = (high_mel - low_mel) / static_cast<float>(num_mel_bins + 2);
  std::vector<int64_t> bins(static_cast<size_t>(num_mel_bins + 2));
  for (int64_t i = 0; i < num_mel_bins + 2; ++i) {
    double mel = static_cast<double>(i) * static_cast<double>(mel_step) + low_mel;
    double hz = 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
    double b =
        np_floor_divide(static_cast<double>(dft_length + 1) * hz, static_cast<double>(sample_rate));
    // Bins beyond the matrix only matter through slopes; clamping keeps the cast defined.
    bins[i] = static_cast<int64_t>(std::min(std::max(b, -1e12), 1e12));
  }
  Tensor out(dtype, {rows, num_mel_bins});
  auto set = [&](int64_t j, int64_t i, double v) {
    if (j >= 0 && j < rows) out.set_f64(j * num_mel_bins + i, v);  // filters past Nyquist drop
  };
  for (int64_t i = 0; i < num_mel_bins; ++i) {
    int64_t lo = bins[i], center = bins[i + 1], hi = bins[i + 2];
    int64_t up = center - lo;
    if (up == 0) {
      set(center, i, 1.0);
    } else {
      for (int64_t j = std::max<int64_t>(lo, 0); j <= std::min(center, rows - 1); ++j)
        set(j, i, static_cast<double>(j - lo) / static_cast<double>(up));
    }
    int64_t down = hi - center;
    if (down > 0)
      for (int64_t j = std::max<int64_t>(center, 0); j < std::min(hi, rows); ++j)
        set(j, i, static_cast<double>(hi - j) / static_cast<double>(down));
  }
  return out;
}

const OpDef& kiln_op_mel_weight_matrix() {
  static const OpDef d{"MelWeightMatrix", make_attrs_of<MelWeightMatrixAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
