// Range: arithmetic sequences. Integer types are computed exactly in int64.
#include "ops/range.h"

#include <cmath>

#include "ops/movement_util.h"

namespace kiln {

namespace {

constexpr int64_t kMaxRange = int64_t{1} << 40;  // a longer result is surely a mistake

template <class Err>
int64_t range_length(const Tensor& s, const Tensor& l, const Tensor& d, Err&& error) {
  if (s.numel() != 1 || l.numel() != 1 || d.numel() != 1)
    error("start, limit and delta must be scalars");
  double n;
  if (dtype_is_float(s.dtype())) {
    double dv = d.get_f64(0);
    if (dv == 0) error("delta must not be 0");
    n = std::ceil((l.get_f64(0) - s.get_f64(0)) / dv);
    if (std::isnan(n)) error("start, limit or delta is not finite");
  } else {
    int64_t sv = s.get_i64(0), lv = l.get_i64(0), dv = d.get_i64(0);
    if (dv == 0) error("delta must not be 0");
    // Exact ceiling division in 128 bits so that extreme int64 bounds cannot overflow.
    __int128 diff = static_cast<__int128>(lv) - sv, q = diff / dv;
    if ((diff % dv != 0) && ((diff < 0) == (dv < 0))) ++q;
    n = static_cast<double>(q);
  }
  if (n > kMaxRange) error(cat("the range would have ", n, " elements"));
  return n > 0 ? static_cast<int64_t>(n) : 0;
}

void infer(InferContext& ctx) {
  DataType dt = ctx.dtype(0);
  if (!dtype_is_supported(dt) || dt == DataType::kBool)
    ctx.error(cat("cannot make a range of ", dtype_name(dt)));
  for (size_t i = 1; i < 3; ++i)
    if (ctx.dtype(i) != dt)
      ctx.error(
          cat("input ", i, " is ", dtype_name(ctx.dtype(i)), " but start is ", dtype_name(dt)));
  const Tensor *s = ctx.value(0), *l = ctx.value(1), *d = ctx.value(2);
  if (!s || !l || !d) return ctx.set_output(0, dt, Shape({Dim::unknown()}));
  ctx.set_output(
      0, dt, Shape({Dim(range_length(*s, *l, *d, [&](const std::string& m) { ctx.error(m); }))}));
}

void compute(const ComputeArgs& a) {
  const Tensor &s = a.in(0), &l = a.in(1), &d = a.in(2);
  int64_t n =
      range_length(s, l, d, [&](const std::string& m) { fail(StatusCode::kInvalidArgument, m); });
  Tensor& y = output_tensor(a, 0, s.dtype(), {n});
  if (dtype_is_float(s.dtype())) {
    double sv = s.get_f64(0), dv = d.get_f64(0);
    for (int64_t i = 0; i < n; ++i) y.set_f64(i, sv + static_cast<double>(i) * dv);
  } else {
    int64_t sv = s.get_i64(0), dv = d.get_i64(0);
    for (int64_t i = 0; i < n; ++i) y.set_i64(i, sv + i * dv);
  }
}

}  // namespace

const OpDef& kiln_op_range() {
  static const OpDef d{"Range", make_attrs_of<RangeAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
