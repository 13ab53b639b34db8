// GridSample and RoiAlign kernels (see vision.h): one thread per output element, consecutive
// threads along the innermost output dim.
//
// Coordinates are computed in double exactly as the references compute them: explicit
// round-to-nearest operations where the reference multiplies and adds (nvcc would otherwise fuse
// them into one rounding, which can move a floor or a nearest-mode tie), std::min / std::max
// semantics where NaN matters (clip(NaN) is the last index in the reference), and the
// reference's bounds tests. The interpolated sums run in Acc: double for float32 / float64 data,
// float for float16 / bfloat16 data.
#include <type_traits>

#include "reduction_common.cuh"
#include "vision.h"

namespace kiln::cuda::rk {
namespace {

constexpr int kThreads = 256;

template <class T>
using Acc = std::conditional_t<std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>, float,
                               double>;

// std::min / std::max of the reference: the first argument unless the comparison says otherwise,
// so a NaN in either place gives what the host gives.
__device__ __forceinline__ double std_min(double a, double b) { return b < a ? b : a; }
__device__ __forceinline__ double std_max(double a, double b) { return a < b ? b : a; }

// ---- GridSample ----------------------------------------------------------------------------

struct GridSampleArgs {
  long long n, c, h, w, ho, wo, total;
  GridSampleMode mode;
  GridSamplePad pad;
  bool align;
  DType grid_dtype;
};

__device__ __forceinline__ double unnormalize(double c, long long size, bool align) {
  const double c1 = __dadd_rn(c, 1.0);
  return align ? __dmul_rn(__ddiv_rn(c1, 2.0), static_cast<double>(size - 1))
               : __ddiv_rn(__dsub_rn(__dmul_rn(c1, static_cast<double>(size)), 1.0), 2.0);
}

__device__ __forceinline__ double clip(double c, long long size) {
  return std_min(static_cast<double>(size - 1), std_max(c, 0.0));
}

// Reflects c into [twice_low / 2, twice_high / 2]. The reference counts the flips with a cast to
// int64 that x86-64 turns into INT64_MIN (even) for NaN and quotients beyond 2^63; the device
// cast saturates instead, so those count as even here explicitly.
__device__ double reflect(double c, long long twice_low, long long twice_high) {
  if (twice_low == twice_high) return 0;
  const double mn = static_cast<double>(twice_low) / 2;
  const double span = static_cast<double>(twice_high - twice_low) / 2;
  c = fabs(c - mn);
  const double extra = fmod(c, span);
  const double q = floor(c / span);
  const bool even = !(fabs(q) < 9223372036854775808.0) || static_cast<long long>(q) % 2 == 0;
  return even ? extra + mn : span - extra + mn;
}

__device__ double apply_padding(double c, long long size, GridSamplePad p, bool align) {
  if (p == GridSamplePad::kBorder) return clip(c, size);
  if (p == GridSamplePad::kReflection) {
    c = align ? reflect(c, 0, 2 * (size - 1)) : reflect(c, -1, 2 * size - 1);
    return clip(c, size);
  }
  return c;
}

// Integer index of a coordinate, clamped into [-2, size + 1] first (every tap beyond is outside).
__device__ __forceinline__ long long to_index(double v, long long size) {
  if (isnan(v)) return -2;
  v = std_min(std_max(v, -2.0), static_cast<double>(size) + 1);
  return static_cast<long long>(v);
}

// The cubic convolution weights (A = -0.75) of the taps at offsets -1, 0, 1, 2 from floor(x).
__device__ void cubic_coeffs(double t, double* c) {
  constexpr double A = -0.75;
  auto conv1 = [](double x) {  // ((A + 2) x - (A + 3)) x x + 1
    return __dadd_rn(__dmul_rn(__dmul_rn(__dsub_rn(__dmul_rn(A + 2, x), A + 3), x), x), 1.0);
  };
  auto conv2 = [](double x) {  // ((A x - 5A) x + 8A) x - 4A
    return __dsub_rn(
        __dmul_rn(__dadd_rn(__dmul_rn(__dsub_rn(__dmul_rn(A, x), 5 * A), x), 8 * A), x), 4 * A);
  };
  c[0] = conv2(__dadd_rn(t, 1.0));
  c[1] = conv1(t);
  c[2] = conv1(__dsub_rn(1.0, t));
  c[3] = conv2(__dsub_rn(2.0, t));
}

template <class T>
__device__ __forceinline__ Acc<T> pixel(const T* __restrict__ plane, long long h, long long w,
                                        long long iy, long long ix) {
  return (iy >= 0 && iy < h && ix >= 0 && ix < w) ? to_acc<Acc<T>>(plane[iy * w + ix]) : Acc<T>(0);
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    grid_sample_kernel(const T* __restrict__ x, const void* __restrict__ grid, T* __restrict__ y,
                       GridSampleArgs a) {
  using A = Acc<T>;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < a.total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long ow = e % a.wo;
    long long rest = e / a.wo;
    const long long oh = rest % a.ho;
    rest /= a.ho;
    const long long ch = rest % a.c;
    const long long b = rest / a.c;
    const long long gi = ((b * a.ho + oh) * a.wo + ow) * 2;
    const double gx = load_float_as<double>(grid, a.grid_dtype, gi);
    const double gy = load_float_as<double>(grid, a.grid_dtype, gi + 1);
    double ix = unnormalize(gx, a.w, a.align), iy = unnormalize(gy, a.h, a.align);
    if (a.mode != GridSampleMode::kBicubic) {
      ix = apply_padding(ix, a.w, a.pad, a.align);
      iy = apply_padding(iy, a.h, a.pad, a.align);
    }
    const T* plane = x + (b * a.c + ch) * a.h * a.w;
    A v = 0;
    if (isnan(ix) || isnan(iy)) {
      v = 0;  // a NaN location samples nothing
    } else if (a.mode == GridSampleMode::kNearest) {
      v = pixel(plane, a.h, a.w, to_index(rint(iy), a.h), to_index(rint(ix), a.w));
    } else if (a.mode == GridSampleMode::kBilinear) {
      const double x0 = floor(ix), y0 = floor(iy);
      const double tx = ix - x0, ty = iy - y0;
      const long long i0 = to_index(x0, a.w), j0 = to_index(y0, a.h);
      const A wx0 = static_cast<A>(1 - tx), wx1 = static_cast<A>(tx);
      const A wy0 = static_cast<A>(1 - ty), wy1 = static_cast<A>(ty);
      v = pixel(plane, a.h, a.w, j0, i0) * wx0 * wy0 +
          pixel(plane, a.h, a.w, j0, i0 + 1) * wx1 * wy0 +
          pixel(plane, a.h, a.w, j0 + 1, i0) * wx0 * wy1 +
          pixel(plane, a.h, a.w, j0 + 1, i0 + 1) * wx1 * wy1;
    } else {
      // Bicubic pads each tap's coordinate, not the source coordinate.
      const double x0 = floor(ix), y0 = floor(iy);
      double cx[4], cy[4];
      cubic_coeffs(ix - x0, cx);
      cubic_coeffs(iy - y0, cy);
      for (int r = 0; r < 4; ++r) {
        const double fy = apply_padding(y0 - 1 + r, a.h, a.pad, a.align);
        const long long ty = to_index(fy, a.h);
        A row = 0;
        for (int k = 0; k < 4; ++k) {
          const double fx = apply_padding(x0 - 1 + k, a.w, a.pad, a.align);
          row += static_cast<A>(cx[k]) * pixel(plane, a.h, a.w, ty, to_index(fx, a.w));
        }
        v += static_cast<A>(cy[r]) * row;
      }
    }
    y[e] = from_acc<T>(v);
  }
}

// ---- RoiAlign ------------------------------------------------------------------------------

struct RoiAlignArgs {
  long long n, c, h, w, r, ph, pw, total;
  long long sampling_ratio;
  double spatial_scale;
  bool half_pixel, avg, batch64;
};

// Samples per bin side; -1 where the reference refuses (NaN, or more than 65536).
__device__ __forceinline__ long long samples_per_side(const RoiAlignArgs& a, double extent,
                                                      long long bins) {
  if (a.sampling_ratio > 0) return a.sampling_ratio;
  const double g = ceil(extent / static_cast<double>(bins));
  if (!(g <= 65536.0) && !(g < 0)) return -1;
  return g > 0 ? static_cast<long long>(g) : 0;
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    roi_align_kernel(const T* __restrict__ x, const T* __restrict__ rois,
                     const void* __restrict__ batch_indices, T* __restrict__ y, RoiAlignArgs a) {
  using A = Acc<T>;
  const long long H = a.h, W = a.w;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < a.total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long pw = e % a.pw;
    long long rest = e / a.pw;
    const long long ph = rest % a.ph;
    rest /= a.ph;
    const long long ch = rest % a.c;
    const long long r = rest / a.c;
    const long long b = a.batch64 ? static_cast<const long long*>(batch_indices)[r]
                                  : static_cast<const int*>(batch_indices)[r];
    if (b < 0 || b >= a.n) {  // the reference rejects it; kiln's gathers give zeros
      y[e] = from_acc<T>(A(0));
      continue;
    }
    const double offset = a.half_pixel ? 0.5 : 0.0;
    const double x1 =
        __dsub_rn(__dmul_rn(to_acc<double>(rois[r * 4 + 0]), a.spatial_scale), offset);
    const double y1 =
        __dsub_rn(__dmul_rn(to_acc<double>(rois[r * 4 + 1]), a.spatial_scale), offset);
    const double x2 =
        __dsub_rn(__dmul_rn(to_acc<double>(rois[r * 4 + 2]), a.spatial_scale), offset);
    const double y2 =
        __dsub_rn(__dmul_rn(to_acc<double>(rois[r * 4 + 3]), a.spatial_scale), offset);
    double rw = x2 - x1, rh = y2 - y1;
    if (!a.half_pixel) {  // malformed rois become 1x1
      rw = std_max(rw, 1.0);
      rh = std_max(rh, 1.0);
    }
    const double bh = rh / static_cast<double>(a.ph), bw = rw / static_cast<double>(a.pw);
    const long long gh = samples_per_side(a, rh, a.ph), gw = samples_per_side(a, rw, a.pw);
    if (gh < 0 || gw < 0) {  // the reference refuses the roi
      y[e] = from_acc<T>(acc_nan<A>());
      continue;
    }
    const double count = static_cast<double>(gh * gw > 1 ? gh * gw : 1);
    const T* plane = x + (b * a.c + ch) * H * W;
    const double ybase = __dadd_rn(y1, __dmul_rn(static_cast<double>(ph), bh));
    const double xbase = __dadd_rn(x1, __dmul_rn(static_cast<double>(pw), bw));
    A v = 0;
    bool first = true;
    for (long long iy = 0; iy < gh; ++iy) {
      const double yy = __dadd_rn(
          ybase, __ddiv_rn(__dmul_rn(static_cast<double>(iy) + 0.5, bh), static_cast<double>(gh)));
      for (long long ix = 0; ix < gw; ++ix) {
        const double xx = __dadd_rn(xbase, __ddiv_rn(__dmul_rn(static_cast<double>(ix) + 0.5, bw),
                                                     static_cast<double>(gw)));
        // The bilinear taps of the sample; outside the image (or NaN) they stay at position 0
        // with weight 0, as in the reference, whose 0 * X[0] the sums below repeat.
        long long pos[4] = {0, 0, 0, 0};
        double wt[4] = {0, 0, 0, 0};
        double sy = yy, sx = xx;
        if (sy >= -1.0 && sy <= static_cast<double>(H) && sx >= -1.0 &&
            sx <= static_cast<double>(W)) {
          sy = std_max(sy, 0.0);
          sx = std_max(sx, 0.0);
          long long ylo = static_cast<long long>(sy), xlo = static_cast<long long>(sx);
          long long yhi, xhi;
          if (ylo >= H - 1) {
            yhi = ylo = H - 1;
            sy = static_cast<double>(ylo);
          } else {
            yhi = ylo + 1;
          }
          if (xlo >= W - 1) {
            xhi = xlo = W - 1;
            sx = static_cast<double>(xlo);
          } else {
            xhi = xlo + 1;
          }
          const double ly = sy - static_cast<double>(ylo), lx = sx - static_cast<double>(xlo);
          const double hy = 1 - ly, hx = 1 - lx;
          pos[0] = ylo * W + xlo;
          pos[1] = ylo * W + xhi;
          pos[2] = yhi * W + xlo;
          pos[3] = yhi * W + xhi;
          wt[0] = hy * hx;
          wt[1] = hy * lx;
          wt[2] = ly * hx;
          wt[3] = ly * lx;
        }
        if (a.avg) {
          for (int j = 0; j < 4; ++j) v += static_cast<A>(wt[j]) * to_acc<A>(plane[pos[j]]);
        } else {
          // onnxruntime's max: the largest weighted corner, not the largest interpolated value.
          A m = static_cast<A>(wt[0]) * to_acc<A>(plane[pos[0]]);
          for (int j = 1; j < 4; ++j) {
            const A t = static_cast<A>(wt[j]) * to_acc<A>(plane[pos[j]]);
            m = m < t ? t : m;
          }
          v = first ? m : (v < m ? m : v);
        }
        first = false;
      }
    }
    if (a.avg) v /= static_cast<A>(count);
    y[e] = from_acc<T>(v);
  }
}

bool is_float_type(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64;
}

}  // namespace

bool grid_sample_supported(DType x, DType grid) { return is_float_type(x) && is_float_type(grid); }

void launch_grid_sample(const GridSampleProblem& p, void* stream) {
  GridSampleArgs a{};
  a.n = p.n;
  a.c = p.c;
  a.h = p.h;
  a.w = p.w;
  a.ho = p.ho;
  a.wo = p.wo;
  a.total = p.n * p.c * p.ho * p.wo;
  a.mode = p.mode;
  a.pad = p.pad;
  a.align = p.align_corners;
  a.grid_dtype = p.grid_dtype;
  if (a.total <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  dispatch_float(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    grid_sample_kernel<T><<<grid_for(a.total, kThreads), kThreads, 0, s>>>(
        static_cast<const T*>(p.x), p.grid, static_cast<T*>(p.y), a);
  });
}

bool roi_align_supported(DType dtype, DType batch_dtype) {
  return is_float_type(dtype) && (batch_dtype == DType::kI64 || batch_dtype == DType::kI32);
}

void launch_roi_align(const RoiAlignProblem& p, void* stream) {
  RoiAlignArgs a{};
  a.n = p.n;
  a.c = p.c;
  a.h = p.h;
  a.w = p.w;
  a.r = p.r;
  a.ph = p.ph;
  a.pw = p.pw;
  a.total = p.r * p.c * p.ph * p.pw;
  a.sampling_ratio = p.sampling_ratio;
  a.spatial_scale = p.spatial_scale;
  a.half_pixel = p.half_pixel;
  a.avg = p.avg;
  a.batch64 = p.batch_dtype == DType::kI64;
  if (a.total <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  dispatch_float(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    roi_align_kernel<T><<<grid_for(a.total, kThreads), kThreads, 0, s>>>(
        static_cast<const T*>(p.x), static_cast<const T*>(p.rois), p.batch_indices,
        static_cast<T*>(p.y), a);
  });
}

}  // namespace kiln::cuda::rk
