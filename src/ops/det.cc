// Det: determinants of the trailing [M,M] matrices of a [..., M, M] tensor, by LU decomposition
// with partial pivoting in double.
#include <cmath>

#include "ops/op_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  DataType t = ctx.dtype(0);
  if (!dtype_is_float(t)) ctx.error(cat("X must be a float tensor, got ", dtype_name(t)));
  const Shape& s = ctx.shape(0);
  if (!s.rank_known) return ctx.set_output(0, t, Shape::unknown_rank());
  if (s.rank() < 2) ctx.error(cat("X must have rank >= 2, got ", s.rank()));
  const Dim& m = s[s.rank() - 2];
  const Dim& n = s[s.rank() - 1];
  if (m.known() && n.known() && m.value != n.value)
    ctx.error(cat("matrices must be square, got ", m.value, "x", n.value));
  ctx.set_output(0, t, Shape(std::vector<Dim>(s.dims.begin(), s.dims.end() - 2)));
}

double determinant(std::vector<double>& a, int64_t n) {
  double det = 1;
  for (int64_t k = 0; k < n; ++k) {
    int64_t p = k;
    for (int64_t i = k + 1; i < n; ++i)
      if (std::fabs(a[i * n + k]) > std::fabs(a[p * n + k])) p = i;
    if (a[p * n + k] == 0) return 0;  // singular (NaN columns fall through and propagate)
    if (p != k) {
      for (int64_t j = 0; j < n; ++j) std::swap(a[k * n + j], a[p * n + j]);
      det = -det;
    }
    double pivot = a[k * n + k];
    det *= pivot;
    for (int64_t i = k + 1; i < n; ++i) {
      double f = a[i * n + k] / pivot;
      if (f == 0) continue;
      for (int64_t j = k + 1; j < n; ++j) a[i * n + j] -= f * a[k * n + j];
    }
  }
  return det;
}

void compute(const ComputeArgs& args) {
  const Tensor& x = args.in(0);
  Tensor& y = args.out(0);
  size_t r = x.rank();
  int64_t n = x.dim(r - 1);
  if (x.dim(r - 2) != n)
    fail(StatusCode::kInvalidArgument, "Det: matrices must be square, got ",
         dims_to_string(x.dims()));
  std::vector<double> a(static_cast<size_t>(n * n));
  for (int64_t b = 0; b < y.numel(); ++b) {
    for (int64_t i = 0; i < n * n; ++i) a[i] = x.get_f64(b * n * n + i);
    y.set_f64(b, determinant(a, n));
  }
}

}  // namespace

const OpDef& kiln_op_det() {
  static const OpDef d{"Det", make_attrs_of<NoAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
