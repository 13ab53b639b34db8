// Reduce: sum/mean/max/min/prod/l1/l2/log_sum/log_sum_exp/sum_square over a set of axes, and the
// arg variants argmax/argmin over one axis. Every ONNX Reduce* op, ArgMax and ArgMin lower to it.
#include "ops/reduce.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>

#include "ops/op_util.h"

namespace kiln {

namespace {

enum class Kind {
  kSum,
  kMean,
  kMax,
  kMin,
  kProd,
  kL1,
  kL2,
  kLogSum,
  kLogSumExp,
  kSumSquare,
  kArgMax,
  kArgMin
};

struct KindName {
  std::string_view name;
  Kind kind;
};
constexpr KindName kKinds[] = {
    {"sum", Kind::kSum},
    {"mean", Kind::kMean},
    {"max", Kind::kMax},
    {"min", Kind::kMin},
    {"prod", Kind::kProd},
    {"l1", Kind::kL1},
    {"l2", Kind::kL2},
    {"log_sum", Kind::kLogSum},
    {"log_sum_exp", Kind::kLogSumExp},
    {"sum_square", Kind::kSumSquare},
    {"argmax", Kind::kArgMax},
    {"argmin", Kind::kArgMin},
};

std::optional<Kind> parse_kind(std::string_view s) {
  for (const auto& k : kKinds)
    if (k.name == s) return k.kind;
  return std::nullopt;
}

bool is_arg(Kind k) { return k == Kind::kArgMax || k == Kind::kArgMin; }

// Which input axes are reduced. `identity`: empty axes with noop_with_empty_axes.
struct AxisPlan {
  std::vector<bool> reduced;
  bool identity = false;
  int64_t arg_axis = -1;  // the one axis of argmax/argmin (-1 for a scalar input)
};

AxisPlan plan_axes(Kind k, const std::string& kind_name, const Ints& axes, int64_t rank,
                   bool noop) {
  AxisPlan p;
  p.reduced.assign(static_cast<size_t>(rank), false);
  if (is_arg(k) && axes.size() != 1)
    fail(StatusCode::kInvalidModel, kind_name, " reduces exactly one axis, got ", axes.size());
  if (axes.empty()) {
    if (noop)
      p.identity = true;
    else
      p.reduced.assign(static_cast<size_t>(rank), true);
    return p;
  }
  for (int64_t a : axes) {
    int64_t n = normalize_axis(a, rank, "reduce axis");
    if (rank == 0) continue;  // a scalar has nothing to reduce; axis 0/-1 is accepted
    if (p.reduced[n]) fail(StatusCode::kInvalidModel, "reduce axis ", a, " is listed twice");
    p.reduced[n] = true;
    if (is_arg(k)) p.arg_axis = n;
  }
  return p;
}

// ---- typed accumulation -------------------------------------------------------------------
// Accumulators: double for float inputs (and for the kinds that need real math), int64 for
// signed and narrow unsigned integers, uint64 for uint64 so that comparisons stay unsigned.
// Integer sums and products wrap (two's complement), as the integer types themselves do.

template <class A>
A load(const Tensor& t, int64_t i) {
  if constexpr (std::is_same_v<A, double>)
    return t.get_f64(i);
  else
    return static_cast<A>(t.get_i64(i));
}
template <class A>
void store(Tensor& t, int64_t i, A v) {
  if constexpr (std::is_same_v<A, double>)
    t.set_f64(i, v);
  else
    t.set_i64(i, static_cast<int64_t>(v));
}
template <class A>
A add(A a, A b) {
  if constexpr (std::is_same_v<A, double>)
    return a + b;
  else
    return static_cast<A>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
template <class A>
A mul(A a, A b) {
  if constexpr (std::is_same_v<A, double>)
    return a * b;
  else
    return static_cast<A>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}
template <class A>
bool is_nan(A v) {
  if constexpr (std::is_same_v<A, double>)
    return std::isnan(v);
  else
    return false;
}
template <class A>
A abs_of(A v) {
  if constexpr (std::is_unsigned_v<A>)
    return v;
  else
    return v < 0 ? static_cast<A>(A(0) - v) : v;  // |INT64_MIN| wraps, as numpy's does
}

// Identity of max/min for an empty reduction: the type's lowest/highest value.
template <class A>
A lowest_of(DataType t) {
  if constexpr (std::is_same_v<A, double>)
    return -INFINITY;
  else {
    switch (t) {
      case DataType::kInt8:
        return static_cast<A>(std::numeric_limits<int8_t>::min());
      case DataType::kInt16:
        return static_cast<A>(std::numeric_limits<int16_t>::min());
      case DataType::kInt32:
        return static_cast<A>(std::numeric_limits<int32_t>::min());
      case DataType::kInt64:
        return static_cast<A>(std::numeric_limits<int64_t>::min());
      default:
        return 0;  // unsigned and bool
    }
  }
}
template <class A>
A highest_of(DataType t) {
  if constexpr (std::is_same_v<A, double>)
    return INFINITY;
  else {
    switch (t) {
      case DataType::kInt8:
        return static_cast<A>(std::numeric_limits<int8_t>::max());
      case DataType::kUInt8:
        return static_cast<A>(std::numeric_limits<uint8_t>::max());
      case DataType::kBool:
        return 1;
      case DataType::kInt16:
        return static_cast<A>(std::numeric_limits<int16_t>::max());
      case DataType::kUInt16:
        return static_cast<A>(std::numeric_limits<uint16_t>::max());
      case DataType::kInt32:
        return static_cast<A>(std::numeric_limits<int32_t>::max());
      case DataType::kUInt32:
        return static_cast<A>(std::numeric_limits<uint32_t>::max());
      case DataType::kInt64:
        return static_cast<A>(std::numeric_limits<int64_t>::max());
      default:
        return static_cast<A>(std::numeric_limits<uint64_t>::max());
    }
  }
}

template <class A>
void reduce_values(Kind k, const Tensor& x, const std::vector<int64_t>& slot, int64_t count,
                   Tensor& y) {
  const int64_t n_out = y.numel(), n_in = x.numel();
  DataType t = x.dtype();
  A init = A(0);
  if (k == Kind::kProd) init = A(1);
  if (k == Kind::kMax) init = lowest_of<A>(t);
  if (k == Kind::kMin) init = highest_of<A>(t);
  std::vector<A> acc(static_cast<size_t>(n_out), init);

  if constexpr (std::is_same_v<A, double>) {
    if (k == Kind::kLogSumExp) {
      // Shift by the maximum of each slot so exp() cannot overflow.
      std::vector<double> m(static_cast<size_t>(n_out), -INFINITY);
      for (int64_t i = 0; i < n_in; ++i) {
        double v = x.get_f64(i);
        double& r = m[slot[i]];
        if (v > r || std::isnan(v)) r = v;
      }
      for (int64_t i = 0; i < n_in; ++i) {
        double mm = m[slot[i]];
        if (std::isfinite(mm)) acc[slot[i]] += std::exp(x.get_f64(i) - mm);
      }
      for (int64_t o = 0; o < n_out; ++o)
        y.set_f64(o, std::isfinite(m[o]) ? m[o] + std::log(acc[o]) : m[o]);
      return;
    }
  }

  for (int64_t i = 0; i < n_in; ++i) {
    A v = load<A>(x, i);
    A& r = acc[slot[i]];
    switch (k) {
      case Kind::kSum:
      case Kind::kMean:
      case Kind::kLogSum:
        r = add(r, v);
        break;
      case Kind::kL1:
        r = add(r, abs_of(v));
        break;
      case Kind::kL2:
      case Kind::kSumSquare:
        r = add(r, mul(v, v));
        break;
      case Kind::kProd:
        r = mul(r, v);
        break;
      case Kind::kMax:
        if (v > r || is_nan(v)) r = v;
        break;
      case Kind::kMin:
        if (v < r || is_nan(v)) r = v;
        break;
      default:
        KILN_CHECK(false, "unhandled reduce kind");
    }
  }
  for (int64_t o = 0; o < n_out; ++o) {
    A r = acc[o];
    if constexpr (std::is_same_v<A, double>) {
      if (k == Kind::kMean) r = r / static_cast<double>(count);  // empty: NaN, as numpy
      if (k == Kind::kL2) r = std::sqrt(r);
      if (k == Kind::kLogSum) r = std::log(r);
    } else {
      // Integer mean truncates toward zero, like numpy's mean followed by astype.
      if (k == Kind::kMean) r = count ? static_cast<A>(r / static_cast<A>(count)) : A(0);
    }
    store<A>(y, o, r);
  }
}

template <class A>
void arg_values(bool want_max, bool last, const Tensor& x, const std::vector<int64_t>& slot,
                int64_t axis_dim, int64_t axis_stride, Tensor& y) {
  const int64_t n_out = y.numel(), n_in = x.numel();
  std::vector<A> best(static_cast<size_t>(n_out), A(0));
  std::vector<int64_t> idx(static_cast<size_t>(n_out), -1);
  for (int64_t i = 0; i < n_in; ++i) {
    int64_t o = slot[i];
    int64_t pos = (i / axis_stride) % axis_dim;
    A v = load<A>(x, i);
    bool take;
    if (idx[o] < 0) {
      take = true;
    } else if (is_nan(best[o]) || is_nan(v)) {
      // NaN is the extreme of both argmax and argmin (numpy returns the first NaN).
      take = is_nan(v) && (!is_nan(best[o]) || last);
    } else {
      bool better = want_max ? v > best[o] : v < best[o];
      take = better || (last && v == best[o]);
    }
    if (take) {
      best[o] = v;
      idx[o] = pos;
    }
  }
  for (int64_t o = 0; o < n_out; ++o) y.data<int64_t>()[o] = idx[o];
}

Ints axes_of(const ReduceAttrs& a, const Tensor* axes_input) {
  if (!axes_input) return a.axes;
  if (axes_input->rank() > 1)
    fail(StatusCode::kInvalidModel, "the axes input must be 1-D, got shape ",
         dims_to_string(axes_input->dims()));
  return to_int64s(*axes_input);
}

Kind kind_of(const ReduceAttrs& a) {
  auto k = parse_kind(a.kind);
  if (!k) fail(StatusCode::kInvalidModel, "unknown reduce kind '", a.kind, "'");
  return *k;
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<ReduceAttrs>();
  Kind k = kind_of(a);
  DataType t = ctx.dtype(0);
  if (!dtype_is_supported(t)) ctx.error(cat("input type ", dtype_name(t), " is not supported"));
  DataType out_t = is_arg(k) ? DataType::kInt64 : t;
  const Shape& s = ctx.shape(0);
  const Tensor* axes_value = nullptr;
  if (ctx.has_input(1)) {
    DataType at = ctx.dtype(1);
    if (at != DataType::kInt64 && at != DataType::kInt32)
      ctx.error(cat("the axes input must be int64 or int32, got ", dtype_name(at)));
    axes_value = ctx.value(1);
    if (!axes_value) {
      // Axes known only at run time: with keepdims the rank survives, nothing else does.
      if (a.keepdims && s.rank_known)
        ctx.set_output(0, out_t, Shape(std::vector<Dim>(s.rank(), Dim::unknown())));
      else
        ctx.set_output(0, out_t, Shape::unknown_rank());
      return;
    }
  }
  Ints axes = axes_of(a, axes_value);
  if (!s.rank_known) {
    ctx.set_output(0, out_t, Shape::unknown_rank());
    return;
  }
  AxisPlan p = plan_axes(k, a.kind, axes, static_cast<int64_t>(s.rank()), a.noop_with_empty_axes);
  if (p.identity) {
    ctx.set_output(0, out_t, s);
    return;
  }
  Shape out;
  for (size_t i = 0; i < s.rank(); ++i) {
    if (!p.reduced[i]) {
      out.dims.push_back(s[i]);
      continue;
    }
    if (is_arg(k) && s[i].known() && s[i].value == 0)
      ctx.error(cat(a.kind, " over axis ", i, " of size 0 has no answer"));
    if (a.keepdims) out.dims.push_back(Dim(1));
  }
  ctx.set_output(0, out_t, out);
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<ReduceAttrs>();
  Kind k = kind_of(a);
  const Tensor& x = args.in(0);
  Tensor& y = args.out(0);
  Ints axes = axes_of(a, args.has(1) ? &args.in(1) : nullptr);
  int64_t rank = static_cast<int64_t>(x.rank());
  AxisPlan p = plan_axes(k, a.kind, axes, rank, a.noop_with_empty_axes);
  if (p.identity) {
    KILN_CHECK(y.numel() == x.numel() && y.dtype() == x.dtype());
    if (x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
    return;
  }
  std::vector<int64_t> slot = strided_offsets(x.dims(), kept_strides(x.dims(), p.reduced));
  int64_t count = 1;
  for (int64_t i = 0; i < rank; ++i)
    if (p.reduced[i]) count *= x.dim(i);
  DataType t = x.dtype();
  bool floaty = dtype_is_float(t);

  if (is_arg(k)) {
    int64_t axis_dim = 1, axis_stride = 1;
    if (p.arg_axis >= 0) {
      axis_dim = x.dim(p.arg_axis);
      axis_stride = strides_of(x.dims())[p.arg_axis];
      if (axis_dim == 0 && x.numel() == 0 && y.numel() > 0)
        fail(StatusCode::kInvalidArgument, a.kind, " over an axis of size 0 has no answer");
    }
    bool want_max = k == Kind::kArgMax;
    if (floaty)
      arg_values<double>(want_max, a.select_last_index, x, slot, axis_dim, axis_stride, y);
    else if (t == DataType::kUInt64)
      arg_values<uint64_t>(want_max, a.select_last_index, x, slot, axis_dim, axis_stride, y);
    else
      arg_values<int64_t>(want_max, a.select_last_index, x, slot, axis_dim, axis_stride, y);
    return;
  }
  bool real_math = k == Kind::kL2 || k == Kind::kLogSum || k == Kind::kLogSumExp;
  if (floaty || real_math)
    reduce_values<double>(k, x, slot, count, y);
  else if (t == DataType::kUInt64)
    reduce_values<uint64_t>(k, x, slot, count, y);
  else
    reduce_values<int64_t>(k, x, slot, count, y);
}

}  // namespace

bool is_reduce_kind(std::string_view kind) { return parse_kind(kind).has_value(); }
bool is_arg_reduce_kind(std::string_view kind) {
  auto k = parse_kind(kind);
  return k && is_arg(*k);
}

std::vector<int64_t> kept_strides(const Dims& d, const std::vector<bool>& reduced) {
  std::vector<int64_t> s(d.size(), 0);
  int64_t st = 1;
  for (int64_t i = static_cast<int64_t>(d.size()) - 1; i >= 0; --i) {
    if (reduced[i]) continue;
    s[i] = st;
    st *= d[i];
  }
  return s;
}

std::vector<int64_t> strided_offsets(const Dims& d, const std::vector<int64_t>& strides) {
  const int64_t n = dims_volume(d);
  const int64_t r = static_cast<int64_t>(d.size());
  std::vector<int64_t> out(static_cast<size_t>(n));
  std::vector<int64_t> ctr(d.size(), 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = off;
    for (int64_t j = r - 1; j >= 0; --j) {  // odometer step
      off += strides[j];
      if (++ctr[j] < d[j]) break;
      off -= strides[j] * d[j];
      ctr[j] = 0;
    }
  }
  return out;
}

const OpDef& kiln_op_reduce() {
  static const OpDef d{"Reduce", make_attrs_of<ReduceAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
