// Resize: one thread per output element. Each resized dim contributes its taps (1 for nearest,
// up to 2 for linear, up to 4 for cubic), computed the way ops/resize.cc computes them; the
// output is the sum over the tap product (the separable reference passes, multiplied out).
// Consecutive threads walk the innermost output dim, so reads and writes stay coalesced.
#include <cmath>

#include "backends/cuda/kernels/movement_device.cuh"
#include "backends/cuda/kernels/resize.h"

namespace kiln::cuda::mv {

namespace {

// Innermost-first copy of ResizeArgs, with input strides and fast dividers.
struct ResizeKernelArgs {
  int rank;
  int64_t in[kMaxDims], out[kMaxDims], st[kMaxDims];
  FastDiv fdiv[kMaxDims];
  double scale[kMaxDims], len_resized[kMaxDims], roi0[kMaxDims], roi1[kMaxDims];
  bool identity[kMaxDims];
  int64_t n;
  ResizeMode mode;
  ResizeCoord coord;
  NearestMode nearest;
  double cubic_a;
  bool exclude_outside;
  double extrapolation;
};

// The source coordinate of output coordinate x, as ops/resize.cc's source_coord. Explicit
// round-to-nearest operations keep nvcc from fusing a multiply and an add, which would round
// differently from the host and move a nearest-mode tie.
__device__ double source_coord(ResizeCoord c, int64_t x, double scale, double len_resized,
                               int64_t len_in, double r0, double r1) {
  const double xd = static_cast<double>(x);
  const double in1 = static_cast<double>(len_in - 1);
  switch (c) {
    case ResizeCoord::kHalfPixel:
      return __dsub_rn(__ddiv_rn(__dadd_rn(xd, 0.5), scale), 0.5);
    case ResizeCoord::kPytorchHalfPixel:
      return len_resized > 1 ? __dsub_rn(__ddiv_rn(__dadd_rn(xd, 0.5), scale), 0.5) : 0.0;
    case ResizeCoord::kAlignCorners:
      return len_resized == 1 ? 0.0 : __ddiv_rn(__dmul_rn(xd, in1), __dsub_rn(len_resized, 1.0));
    case ResizeCoord::kAsymmetric:
      return __ddiv_rn(xd, scale);
    case ResizeCoord::kTfHalfPixelForNN:
      return __ddiv_rn(__dadd_rn(xd, 0.5), scale);
    case ResizeCoord::kTfCropAndResize: {
      double span = __dsub_rn(r1, r0);
      double v = len_resized == 1
                     ? __ddiv_rn(__dmul_rn(span, in1), 2.0)
                     : __ddiv_rn(__dmul_rn(__dmul_rn(xd, span), in1), __dsub_rn(len_resized, 1.0));
      return __dadd_rn(v, __dmul_rn(r0, in1));
    }
  }
  return 0;
}

__device__ __forceinline__ int64_t clamp_index(int64_t i, int64_t len) {
  return i < 0 ? 0 : (i >= len ? len - 1 : i);
}

// Taps of output coordinate o along one dim; false when it lies outside the crop box
// (tf_crop_and_resize: the output element is the extrapolation value).
__device__ bool taps(const ResizeKernelArgs& a, int k, int64_t o, int64_t* idx, double* w, int& n) {
  const int64_t len_in = a.in[k];
  double x = source_coord(a.coord, o, a.scale[k], a.len_resized[k], len_in, a.roi0[k], a.roi1[k]);
  if (a.coord == ResizeCoord::kTfCropAndResize && !(x >= 0 && x <= static_cast<double>(len_in - 1)))
    return false;
  x = isnan(x) ? 0.0 : fmin(fmax(x, -4.0), static_cast<double>(len_in) + 4);
  const double fl = floor(x);
  const double r = x - fl;
  const int64_t x0 = static_cast<int64_t>(fl);
  n = 0;
  if (a.mode == ResizeMode::kNearest) {
    int64_t i = x0;
    if (r != 0) {
      bool up = a.nearest == NearestMode::kRoundPreferFloor  ? r > 0.5
                : a.nearest == NearestMode::kRoundPreferCeil ? r >= 0.5
                                                             : a.nearest == NearestMode::kCeil;
      if (up) ++i;
    }
    idx[0] = clamp_index(i, len_in);
    w[0] = 1.0;
    n = 1;
  } else if (a.mode == ResizeMode::kLinear) {
    if (r == 0) {
      idx[0] = clamp_index(x0, len_in);
      w[0] = 1.0;
      n = 1;
    } else {
      idx[0] = clamp_index(x0, len_in);
      w[0] = 1 - r;
      idx[1] = clamp_index(x0 + 1, len_in);
      w[1] = r;
      n = 2;
    }
  } else {
    const double A = a.cubic_a, s = 1 - r;
    double c[4] = {((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
                   ((A + 2) * r - (A + 3)) * r * r + 1, ((A + 2) * s - (A + 3)) * s * s + 1,
                   ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A};
    if (a.exclude_outside) {
      double sum = 0;
      for (int t = 0; t < 4; ++t) {
        int64_t i = x0 - 1 + t;
        if (i < 0 || i >= len_in) c[t] = 0;
        sum += c[t];
      }
      if (sum != 0)
        for (int t = 0; t < 4; ++t) c[t] /= sum;
    }
    for (int t = 0; t < 4; ++t) {
      if (c[t] == 0) continue;
      idx[n] = clamp_index(x0 - 1 + t, len_in);
      w[n] = c[t];
      ++n;
    }
  }
  return true;
}

// Stores a double as ops/resize.cc's store(): floats as Tensor::set_f64, integers rounded half
// to even and saturated, NaN as 0, bool as 0/1.
template <class T>
__device__ T store_value(double v, bool is_bool) {
  if constexpr (is_float_type<T>()) {
    return from_f64<T>(v);
  } else {
    double lo, hi;
    if (is_bool) {
      lo = 0;
      hi = 1;
    } else if constexpr (std::is_same<T, int8_t>::value) {
      lo = -128;
      hi = 127;
    } else if constexpr (std::is_same<T, uint8_t>::value) {
      lo = 0;
      hi = 255;
    } else if constexpr (std::is_same<T, int16_t>::value) {
      lo = -32768;
      hi = 32767;
    } else if constexpr (std::is_same<T, uint16_t>::value) {
      lo = 0;
      hi = 65535;
    } else if constexpr (std::is_same<T, int32_t>::value) {
      lo = -2147483648.0;
      hi = 2147483647.0;
    } else if constexpr (std::is_same<T, uint32_t>::value) {
      lo = 0;
      hi = 4294967295.0;
    } else if constexpr (std::is_same<T, int64_t>::value) {
      lo = -9223372036854775808.0;
      hi = 9223372036854774784.0;
    } else {
      lo = 0;
      hi = 18446744073709549568.0;
    }
    if (isnan(v)) v = 0;
    v = fmin(fmax(rint(v), lo), hi);
    return static_cast<T>(v);
  }
}

template <class T>
using Acc = typename std::conditional<
    std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value, float, double>::type;

template <class T>
__device__ __forceinline__ Acc<T> load_acc(T v) {
  if constexpr (std::is_same<T, __half>::value)
    return __half2float(v);
  else if constexpr (std::is_same<T, __nv_bfloat16>::value)
    return __bfloat162float(v);
  else
    return static_cast<double>(v);
}

template <class T, bool k32>
__global__ void __launch_bounds__(kThreads)
    resize_kernel(const T* __restrict__ x, T* __restrict__ y, ResizeKernelArgs a, bool is_bool) {
  for (int64_t i = global_thread(); i < a.n; i += grid_threads()) {
    int64_t coord[kMaxDims];
    int64_t rem = i;
#pragma unroll
    for (int k = 0; k < kMaxDims; ++k) {
      if (k == a.rank) break;
      if constexpr (k32) {
        uint32_t q = a.fdiv[k].div(static_cast<uint32_t>(rem));
        coord[k] = rem - static_cast<int64_t>(q) * a.out[k];
        rem = q;
      } else {
        int64_t q = rem / a.out[k];
        coord[k] = rem - q * a.out[k];
        rem = q;
      }
    }
    int64_t base = 0;
    int64_t idx[kMaxDims][4];
    double w[kMaxDims][4];
    int64_t st[kMaxDims];
    int cnt[kMaxDims];
    int nd = 0;
    bool outside = false;
    for (int k = 0; k < a.rank; ++k) {
      if (a.identity[k]) {
        base += coord[k] * a.st[k];
        continue;
      }
      int n;
      if (!taps(a, k, coord[k], idx[nd], w[nd], n)) {
        outside = true;
        break;
      }
      if (n == 1 && w[nd][0] == 1.0) {  // nearest, or linear on a grid point: no weights
        base += idx[nd][0] * a.st[k];
        continue;
      }
      cnt[nd] = n;
      st[nd] = a.st[k];
      ++nd;
    }
    if (outside) {
      y[i] = store_value<T>(a.extrapolation, is_bool);
      continue;
    }
    if (nd == 0) {  // a pure gather: copy the element exactly (int64, bool, NaN payloads)
      y[i] = x[base];
      continue;
    }
    int total = 1;
    for (int d = 0; d < nd; ++d) total *= cnt[d];
    Acc<T> acc = 0;
    for (int t = 0; t < total; ++t) {
      int rest = t;
      int64_t off = base;
      double wt = 1.0;
      for (int d = 0; d < nd; ++d) {
        int j = rest % cnt[d];
        rest /= cnt[d];
        off += idx[d][j] * st[d];
        wt *= w[d][j];
      }
      acc += static_cast<Acc<T>>(wt) * load_acc(x[off]);
    }
    y[i] = store_value<T>(static_cast<double>(acc), is_bool);
  }
}

}  // namespace

void resize(const void* x, void* y, ElemType t, const ResizeArgs& ra, void* stream) {
  ResizeKernelArgs a{};
  a.rank = ra.rank;
  a.n = 1;
  int64_t st = 1;
  for (int k = 0; k < ra.rank; ++k) {
    int j = ra.rank - 1 - k;
    a.in[k] = ra.in_dims[j];
    a.out[k] = ra.out_dims[j];
    a.st[k] = st;
    st *= ra.in_dims[j];
    a.scale[k] = ra.scale[j];
    a.len_resized[k] = ra.len_resized[j];
    a.roi0[k] = ra.roi_start[j];
    a.roi1[k] = ra.roi_end[j];
    a.identity[k] = ra.identity[j];
    a.n *= ra.out_dims[j];
  }
  if (a.n == 0) return;
  bool k32 = a.n < (int64_t{1} << 31);
  if (k32)
    for (int k = 0; k < ra.rank; ++k) a.fdiv[k] = FastDiv(static_cast<uint32_t>(a.out[k]));
  a.mode = ra.mode;
  a.coord = ra.coord;
  a.nearest = ra.nearest;
  a.cubic_a = ra.cubic_a;
  a.exclude_outside = ra.exclude_outside;
  a.extrapolation = ra.extrapolation;
  cudaStream_t s = as_stream(stream);
  unsigned g = grid_for(a.n);
  bool is_bool = t == ElemType::kBool;
  dispatch_elem(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (k32)
      resize_kernel<T, true>
          <<<g, kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y), a, is_bool);
    else
      resize_kernel<T, false>
          <<<g, kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y), a, is_bool);
  });
}

}  // namespace kiln::cuda::mv
