// WindowFunction: generalised cosine windows w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N)
// with N = size (periodic) or size - 1 (symmetric).
#include "ops/window_function.h"

#include <cmath>

#include "ops/op_util.h"

namespace kiln {

namespace {

bool coefficients(const std::string& kind, double& a0, double& a1, double& a2) {
  a2 = 0;
  if (kind == "hann") {
    a0 = 0.5;
    a1 = 0.5;
    return true;
  }
  if (kind == "hamming") {
    a0 = 25.0 / 46;
    a1 = 21.0 / 46;
    return true;
  }
  if (kind == "blackman") {
    a0 = 0.42;
    a1 = 0.5;
    a2 = 0.08;
    return true;
  }
  return false;
}

bool is_window_dtype(DataType t) { return dtype_is_supported(t) && t != DataType::kBool; }

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<WindowFunctionAttrs>();
  double a0, a1, a2;
  if (!coefficients(a.kind, a0, a1, a2))
    ctx.error(cat("unknown window '", a.kind, "' (expected hann, hamming or blackman)"));
  if (!is_window_dtype(a.output_dtype))
    ctx.error(cat("unsupported output type ", dtype_name(a.output_dtype)));
  DataType st = ctx.dtype(0);
  if (st != DataType::kInt32 && st != DataType::kInt64)
    ctx.error(cat("size must be int32 or int64, got ", dtype_name(st)));
  const Shape& s = ctx.shape(0);
  if (s.rank_known && s.volume() && *s.volume() != 1)
    ctx.error(cat("size must be a scalar, got shape ", s.str()));
  Dim n = Dim::unknown();
  if (const Tensor* v = ctx.value(0)) {
    if (v->numel() != 1) ctx.error("size must be a scalar");
    if (v->get_i64(0) < 0) ctx.error(cat("size must be >= 0, got ", v->get_i64(0)));
    if (v->get_i64(0) > (int64_t{1} << 31))
      ctx.error(cat("window size ", v->get_i64(0), " is implausibly large"));
    n = Dim(v->get_i64(0));
  }
  ctx.set_output(0, a.output_dtype, Shape({n}));
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<WindowFunctionAttrs>();
  const Tensor& size = args.in(0);
  if (size.numel() != 1)
    fail(StatusCode::kInvalidArgument, "WindowFunction: size must be a scalar");
  Tensor w = make_window(a.kind, size.get_i64(0), a.periodic, a.output_dtype);
  Tensor& y = args.out(0);
  if (y.numel() != w.numel())
    fail(StatusCode::kInternal, "WindowFunction: output was allocated with ", y.numel(),
         " elements for a window of ", w.numel());
  if (w.nbytes()) std::memcpy(y.raw(), w.raw(), w.nbytes());
}

}  // namespace

Tensor make_window(const std::string& kind, int64_t size, bool periodic, DataType dtype) {
  double a0, a1, a2;
  if (!coefficients(kind, a0, a1, a2))
    fail(StatusCode::kInvalidModel, "unknown window '", kind, "'");
  if (size < 0) fail(StatusCode::kInvalidModel, "window size must be >= 0, got ", size);
  if (size > (int64_t{1} << 31))
    fail(StatusCode::kInvalidModel, "window size ", size, " is implausibly large");
  if (!is_window_dtype(dtype))
    fail(StatusCode::kInvalidModel, "unsupported window type ", dtype_name(dtype));
  Tensor t(dtype, {size});
  double N = static_cast<double>(periodic ? size : size - 1);
  for (int64_t n = 0; n < size; ++n) {
    // A symmetric window of one element would divide by zero; it is 1, as numpy's windows are.
    if (N == 0) {
      t.set_f64(n, 1.0);
      continue;
    }
    double x = 2 * M_PI * static_cast<double>(n) / N;
    t.set_f64(n, a0 - a1 * std::cos(x) + a2 * std::cos(2 * x));
  }
  return t;
}

const OpDef& kiln_op_window_function() {
  static const OpDef d{"WindowFunction", make_attrs_of<WindowFunctionAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
