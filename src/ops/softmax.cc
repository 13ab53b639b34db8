// Softmax / LogSoftmax / Hardmax over one axis (or, in legacy_2d mode, over a trailing block).
#include "ops/softmax.h"

#include <cmath>

#include "ops/op_util.h"

namespace kiln {

namespace {

enum class Mode { kSoftmax, kLogSoftmax, kHardmax };

Mode mode_of(const SoftmaxAttrs& a) {
  if (a.mode == "softmax") return Mode::kSoftmax;
  if (a.mode == "log_softmax") return Mode::kLogSoftmax;
  if (a.mode == "hardmax") return Mode::kHardmax;
  fail(StatusCode::kInvalidModel, "unknown softmax mode '", a.mode,
       "' (softmax, log_softmax or hardmax)");
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<SoftmaxAttrs>();
  mode_of(a);
  DataType t = ctx.dtype(0);
  if (!dtype_is_float(t))
    ctx.error(cat("Softmax needs a floating-point input, got ", dtype_name(t)));
  const Shape& s = ctx.shape(0);
  if (s.rank_known) normalize_axis(a.axis, static_cast<int64_t>(s.rank()), "softmax axis");
  ctx.set_output(0, t, s);
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<SoftmaxAttrs>();
  Mode mode = mode_of(a);
  const Tensor& x = args.in(0);
  Tensor& y = args.out(0);
  const Dims& d = x.dims();
  int64_t rank = static_cast<int64_t>(d.size());
  int64_t axis = normalize_axis(a.axis, rank, "softmax axis");
  // Rows of n elements `inner` apart; outer * inner rows.
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t i = 0; i < rank; ++i) {
    if (i < axis)
      outer *= d[i];
    else if (i == axis || a.legacy_2d)
      n *= d[i];
    else
      inner *= d[i];
  }
  std::vector<double> row(static_cast<size_t>(n));
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in = 0; in < inner; ++in) {
      int64_t base = o * n * inner + in;
      double m = -INFINITY;
      int64_t arg = -1;
      for (int64_t j = 0; j < n; ++j) {
        row[j] = x.get_f64(base + j * inner);
        if (arg < 0 || row[j] > m || (std::isnan(row[j]) && !std::isnan(m))) {
          m = row[j];
          arg = j;
        }
      }
      if (mode == Mode::kHardmax) {
        for (int64_t j = 0; j < n; ++j) y.set_f64(base + j * inner, j == arg ? 1.0 : 0.0);
        continue;
      }
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += std::exp(row[j] - m);
      double log_sum = std::log(sum);
      for (int64_t j = 0; j < n; ++j) {
        double v = mode == Mode::kSoftmax ? std::exp(row[j] - m) / sum : row[j] - m - log_sum;
        y.set_f64(base + j * inner, v);
      }
    }
  }
}

}  // namespace

const OpDef& kiln_op_softmax() {
  static const OpDef d{"Softmax", make_attrs_of<SoftmaxAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
