// Helpers shared by the data-movement and shape ops (reshape, transpose, slice, pad, gather...):
// run-time-aware input shapes, output allocation, and a strided copy that moves elements by size
// (movement never needs to know what the bits mean).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "ops/op_util.h"

namespace kiln {

// Reports a problem (by throwing); lets one helper serve infer() (ctx.error) and compute() (fail).
using ErrorFn = std::function<void(const std::string&)>;

// Input i's shape: the known tensor's dims when its value is known (constants at build time, every
// input at run time), else the static, possibly symbolic, shape.
inline Shape known_shape(const InferContext& ctx, size_t i) {
  if (const Tensor* t = ctx.value(i)) return Shape::from(t->dims());
  return ctx.shape(i);
}

// Output i of a compute. The runtime allocates outputs whose shape infer() fixed; data-dependent
// ops (and callers that did not) get a fresh tensor here.
inline Tensor& output_tensor(const ComputeArgs& a, size_t i, DataType dt, const Dims& dims) {
  Tensor& o = a.out(i);
  if (!o.defined()) {
    o = Tensor(dt, dims);
  } else {
    KILN_CHECK(o.dims() == dims && o.dtype() == dt, "output ", i, " of ", a.node.label(),
               " was allocated as ", dtype_name(o.dtype()), dims_to_string(o.dims()), " but is ",
               dtype_name(dt), dims_to_string(dims));
  }
  return o;
}

// Requires an integer index/shape operand.
inline void expect_int_input(const InferContext& ctx, size_t i, const char* what) {
  DataType t = ctx.dtype(i);
  if (t != DataType::kInt64 && t != DataType::kInt32)
    ctx.error(cat(what, " (input ", i, ") must be int32 or int64, not ", dtype_name(t)));
}

namespace detail {
template <class E>
void strided_copy_t(const E* src, int64_t base, const Dims& dims, const std::vector<int64_t>& st,
                    E* dst) {
  size_t r = dims.size();
  int64_t total = dims_volume(dims);
  if (total == 0) return;
  if (r == 0) {
    dst[0] = src[base];
    return;
  }
  int64_t inner = dims[r - 1], is = st[r - 1];
  std::vector<int64_t> idx(r, 0);
  int64_t off = base;
  for (int64_t o = 0; o < total; o += inner) {
    const E* s = src + off;
    if (is == 1) {
      std::memcpy(dst + o, s, static_cast<size_t>(inner) * sizeof(E));
    } else {
      for (int64_t j = 0; j < inner; ++j) dst[o + j] = s[j * is];
    }
    for (int64_t k = static_cast<int64_t>(r) - 2; k >= 0; --k) {
      off += st[k];
      if (++idx[k] < dims[k]) break;
      off -= st[k] * dims[k];
      idx[k] = 0;
    }
  }
}
}  // namespace detail

// out (row-major, `dims`) = the strided view of `in` starting at element `base` with element
// strides `strides` (zero for broadcast, negative for reversed). `out` must hold dims_volume(dims)
// elements of in's dtype starting at element `out_offset`.
inline void strided_copy(const Tensor& in, int64_t base, const Dims& dims,
                         const std::vector<int64_t>& strides, Tensor& out, int64_t out_offset = 0) {
  KILN_CHECK(dims.size() == strides.size());
  size_t es = dtype_size(in.dtype());
  char* dst = static_cast<char*>(out.raw()) + out_offset * static_cast<int64_t>(es);
  switch (es) {
    case 1:
      detail::strided_copy_t(in.data<uint8_t>(), base, dims, strides,
                             reinterpret_cast<uint8_t*>(dst));
      break;
    case 2:
      detail::strided_copy_t(in.data<uint16_t>(), base, dims, strides,
                             reinterpret_cast<uint16_t*>(dst));
      break;
    case 4:
      detail::strided_copy_t(in.data<uint32_t>(), base, dims, strides,
                             reinterpret_cast<uint32_t*>(dst));
      break;
    case 8:
      detail::strided_copy_t(in.data<uint64_t>(), base, dims, strides,
                             reinterpret_cast<uint64_t*>(dst));
      break;
    default:
      fail(StatusCode::kUnsupported, "cannot move elements of type ", dtype_name(in.dtype()));
  }
}

// ONNX Slice semantics for one axis: negative start/end count from the end, then both are clamped
// ([0, dim] for positive steps, [-1, dim-1] for negative ones). `count` is the output extent.
struct SliceRange {
  int64_t start = 0, step = 1, count = 0;
};
inline SliceRange slice_range(int64_t dim, int64_t start, int64_t end, int64_t step) {
  SliceRange r;
  r.step = step;
  if (start < 0) start += dim;  // no overflow: dim >= 0
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    r.count = end > start ? (end - start - 1) / step + 1 : 0;
  } else {
    int64_t neg =
        step == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -step;
    start = std::clamp<int64_t>(start, -1, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    r.count = start > end ? (start - end - 1) / neg + 1 : 0;
  }
  r.start = start;
  return r;
}

// Treats a 0-D or 1-element tensor as a scalar.
inline int64_t scalar_i64(const Tensor& t, const char* what) {
  KILN_EXPECT(t.numel() == 1, StatusCode::kInvalidArgument, what,
              " must hold exactly one element, not ", t.numel());
  return t.get_i64(0);
}

// Normalises index v (negative counts from the end) against an axis of size dim, or throws a
// kInvalidArgument error naming the index, the axis and the data shape (the caller, the runtime
// or the fold pass, adds the node).
inline int64_t checked_index(int64_t v, int64_t dim, int64_t axis, const Dims& data_dims) {
  if (v < -dim || v >= dim)
    fail(StatusCode::kInvalidArgument, "index ", v, " is out of range for axis ", axis, " of size ",
         dim, " (data shape ", dims_to_string(data_dims), ")");
  return v < 0 ? v + dim : v;
}

// Scatter reductions: dst[i] = reduce(dst[i], src[j]) for reduction none/add/mul/max/min. Float
// math happens in double and rounds to the dtype at every step (as a sequential reference does);
// integers wrap like the hardware does, and 64-bit ones stay exact.
enum class ScatterReduce { kNone, kAdd, kMul, kMax, kMin };

inline ScatterReduce parse_scatter_reduction(const std::string& s, const InferContext* ctx) {
  if (s == "none" || s.empty()) return ScatterReduce::kNone;
  if (s == "add") return ScatterReduce::kAdd;
  if (s == "mul") return ScatterReduce::kMul;
  if (s == "max") return ScatterReduce::kMax;
  if (s == "min") return ScatterReduce::kMin;
  std::string m = cat("unknown reduction '", s, "' (expected none, add, mul, max or min)");
  if (ctx) ctx->error(m);
  fail(StatusCode::kInvalidModel, m);
}

inline void scatter_reduce(ScatterReduce r, const Tensor& src, int64_t j, Tensor& dst, int64_t i) {
  if (r == ScatterReduce::kNone) return copy_element(src, j, dst, i);
  DataType t = dst.dtype();
  if (dtype_is_float(t)) {
    double a = dst.get_f64(i), b = src.get_f64(j);
    double v = r == ScatterReduce::kAdd   ? a + b
               : r == ScatterReduce::kMul ? a * b
               : r == ScatterReduce::kMax ? (b > a || std::isnan(b) ? b : a)
                                          : (b < a || std::isnan(b) ? b : a);
    return dst.set_f64(i, v);
  }
  if (t == DataType::kUInt64) {
    uint64_t a = dst.data<uint64_t>()[i], b = src.data<uint64_t>()[j];
    dst.data<uint64_t>()[i] = r == ScatterReduce::kAdd   ? a + b
                              : r == ScatterReduce::kMul ? a * b
                              : r == ScatterReduce::kMax ? std::max(a, b)
                                                         : std::min(a, b);
    return;
  }
  int64_t a = dst.get_i64(i), b = src.get_i64(j);
  auto ua = static_cast<uint64_t>(a), ub = static_cast<uint64_t>(b);
  int64_t v = r == ScatterReduce::kAdd   ? static_cast<int64_t>(ua + ub)
              : r == ScatterReduce::kMul ? static_cast<int64_t>(ua * ub)
              : r == ScatterReduce::kMax ? std::max(a, b)
                                         : std::min(a, b);
  if (t == DataType::kBool && r == ScatterReduce::kAdd) v = a || b;
  dst.set_i64(i, v);
}

}  // namespace kiln
