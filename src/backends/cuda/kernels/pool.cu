// Windowed pooling kernels (see pool.h). Semantics follow the reference (src/ops/pool.cc):
// max takes the first maximum in row-major window order and stops at the first NaN; a window
// with no tap inside the input gives the accumulator's lowest value (-inf, or the int64/uint64
// lowest narrowed to the type); avg divides by the taps inside the input, or with
// count_include_pad by the taps inside the padded input; lp is (sum |x|^p)^(1/p).
#include <climits>

#include "pool.h"
#include "reduction_common.cuh"

namespace kiln::cuda::rk {
namespace {

struct PoolGeo {
  int cl, kind, include_pad, storage;
  double p, inv_p;
  long long C, in_vol, kvol;
  long long in[kPoolMaxSpatial], out[kPoolMaxSpatial], kernel[kPoolMaxSpatial];
  long long stride[kPoolMaxSpatial], dil[kPoolMaxSpatial], pb[kPoolMaxSpatial], pe[kPoolMaxSpatial];
  long long sstr[kPoolMaxSpatial], colstr[kPoolMaxSpatial];
};

template <class A>
__device__ __forceinline__ A pow_of(A b, double e) {
  if constexpr (std::is_same_v<A, double>)
    return pow(b, e);
  else
    return powf(b, static_cast<float>(e));
}

// I: the index type (int when every index fits, else long long); NSP: spatial axes.
template <class T, class I, int NSP>
__global__ void __launch_bounds__(256)
    pool_kernel(const T* __restrict__ x, T* __restrict__ y, long long* __restrict__ ind, PoolGeo g,
                I n_out) {
  using A = acc_t<T>;
  const I C = static_cast<I>(g.C);
  for (I o = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; o < n_out;
       o += static_cast<I>(gridDim.x) * blockDim.x) {
    I t = o, c = 0;
    I oc[NSP];
    if (g.cl) {
      c = t % C;
      t /= C;
    }
#pragma unroll
    for (int j = NSP - 1; j >= 0; --j) {
      const I od = static_cast<I>(g.out[j]);
      oc[j] = t % od;
      t /= od;
    }
    if (!g.cl) {
      c = t % C;
      t /= C;
    }
    const I nb = t;
    const I in_vol = static_cast<I>(g.in_vol);
    const I base = g.cl ? nb * in_vol * C + c : (nb * C + c) * in_vol;
    I start[NSP];
#pragma unroll
    for (int j = 0; j < NSP; ++j)
      start[j] = oc[j] * static_cast<I>(g.stride[j]) - static_cast<I>(g.pb[j]);

    bool is_max = true;
    if constexpr (kIsFloat<T>) is_max = g.kind == static_cast<int>(PoolKind::kMax);
    A best, sum = A(0);
    if constexpr (std::is_floating_point_v<A>)
      best = -acc_inf<A>();
    else
      best = std::is_signed_v<T> ? static_cast<A>(LLONG_MIN) : A(0);
    I arg = -1, colarg = 0;
    bool nan = false;
    int kc[NSP];
#pragma unroll
    for (int j = 0; j < NSP; ++j) kc[j] = 0;
    for (long long kk = 0; kk < g.kvol; ++kk) {
      bool ok = true;
      I off = 0, sp = 0, col = 0;
#pragma unroll
      for (int j = 0; j < NSP; ++j) {
        const I xi = start[j] + static_cast<I>(kc[j]) * static_cast<I>(g.dil[j]);
        ok = ok && xi >= 0 && xi < static_cast<I>(g.in[j]);
        off += xi * static_cast<I>(g.sstr[j]);
        sp = sp * static_cast<I>(g.in[j]) + xi;
        col += xi * static_cast<I>(g.colstr[j]);
      }
      if (ok) {
        const A v = to_acc<A>(x[base + off]);
        if (!is_max) {
          if constexpr (kIsFloat<T>)
            sum += g.kind == static_cast<int>(PoolKind::kAvg) ? v : pow_of(v < A(0) ? -v : v, g.p);
        } else if (!nan) {
          if (is_nan(v)) {
            best = v;
            arg = sp;
            colarg = col;
            nan = true;
          } else if (arg < 0 || v > best) {
            best = v;
            arg = sp;
            colarg = col;
          }
        }
      }
#pragma unroll
      for (int j = NSP - 1; j >= 0; --j) {
        if (++kc[j] < g.kernel[j]) break;
        kc[j] = 0;
      }
    }
    if (is_max) {
      y[o] = from_acc<T>(best);
      if (ind)
        ind[o] = arg < 0 ? -1LL
                         : static_cast<long long>(nb * C + c) * g.in_vol +
                               static_cast<long long>(g.storage ? colarg : arg);
      continue;
    }
    if constexpr (kIsFloat<T>) {
      if (g.kind == static_cast<int>(PoolKind::kAvg)) {
        long long valid = 1, padded = 1;
#pragma unroll
        for (int j = 0; j < NSP; ++j) {
          long long nv = 0, np = 0;
          for (long long k = 0; k < g.kernel[j]; ++k) {
            const long long xi = static_cast<long long>(start[j]) + k * g.dil[j];
            nv += xi >= 0 && xi < g.in[j];
            np += xi >= -g.pb[j] && xi < g.in[j] + g.pe[j];
          }
          valid *= nv;
          padded *= np;
        }
        y[o] = from_acc<T>(sum / static_cast<A>(g.include_pad ? padded : valid));
      } else {
        y[o] = from_acc<T>(pow_of(sum, g.inv_p));
      }
    }
  }
}

template <class T, class I, int NSP>
void launch_nsp(const PoolProblem& p, const PoolGeo& g, long long n_out, cudaStream_t s) {
  pool_kernel<T, I, NSP><<<grid_for(n_out, 256), 256, 0, s>>>(
      static_cast<const T*>(p.x), static_cast<T*>(p.y), reinterpret_cast<long long*>(p.indices), g,
      static_cast<I>(n_out));
}

template <class T>
void launch_typed(const PoolProblem& p, const PoolGeo& g, long long n_in, long long n_out,
                  cudaStream_t s) {
  // 32-bit index math when every index (and every out-of-window tap offset) stays far from
  // overflow: it is the common case and much cheaper than 64-bit division.
  const bool small = n_in < (1LL << 30) && n_out < (1LL << 30);
  switch (p.nsp) {
    case 1:
      launch_nsp<T, long long, 1>(p, g, n_out, s);
      break;
    case 2:
      if (small)
        launch_nsp<T, int, 2>(p, g, n_out, s);
      else
        launch_nsp<T, long long, 2>(p, g, n_out, s);
      break;
    case 3:
      launch_nsp<T, long long, 3>(p, g, n_out, s);
      break;
    default:
      break;
  }
}

// Channels-last 2-D max/avg pooling without indices, 16 bytes of channels per thread: one
// thread per (output pixel, 8 float16 / 4 float32 channels), taps in row-major order. The
// generic kernel above (one element per thread, a dynamic tap loop with index arithmetic per
// tap) ran ResNet-50's 3x3/2 stem max pool at 0.58 ms for a batch of 128 on the H100, about a
// tenth of the memory bandwidth. Same semantics as the generic kernel for values: max keeps the
// first NaN it meets (and -inf for a window with no tap inside), avg divides by the valid or
// padded tap count.
template <class T, class I>
__global__ void __launch_bounds__(256)
    pool2d_cl_vec_kernel(const T* __restrict__ x, T* __restrict__ y, PoolGeo g, I n_vec) {
  constexpr int V = 16 / sizeof(T);
  const I cv = static_cast<I>(g.C / V);
  const I ow_n = static_cast<I>(g.out[1]), oh_n = static_cast<I>(g.out[0]);
  const I ih_n = static_cast<I>(g.in[0]), iw_n = static_cast<I>(g.in[1]);
  const bool is_max = g.kind == static_cast<int>(PoolKind::kMax);
  for (I o = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; o < n_vec;
       o += static_cast<I>(gridDim.x) * blockDim.x) {
    I t = o;
    const I c = t % cv;
    t /= cv;
    const I ow = t % ow_n;
    t /= ow_n;
    const I oh = t % oh_n;
    const I nb = t / oh_n;
    const I h0 = oh * static_cast<I>(g.stride[0]) - static_cast<I>(g.pb[0]);
    const I w0 = ow * static_cast<I>(g.stride[1]) - static_cast<I>(g.pb[1]);
    const T* xb = x + (nb * ih_n * iw_n) * static_cast<I>(g.C) + c * V;
    float acc[V];
    bool nan[V];
#pragma unroll
    for (int v = 0; v < V; ++v) {
      acc[v] = is_max ? -INFINITY : 0.f;
      nan[v] = false;
    }
    int valid = 0;
    for (int kh = 0; kh < g.kernel[0]; ++kh) {
      const I ih = h0 + kh * static_cast<I>(g.dil[0]);
      if (ih < 0 || ih >= ih_n) continue;
      for (int kw = 0; kw < g.kernel[1]; ++kw) {
        const I iw = w0 + kw * static_cast<I>(g.dil[1]);
        if (iw < 0 || iw >= iw_n) continue;
        ++valid;
        alignas(16) T in[V];
        *reinterpret_cast<uint4*>(in) =
            __ldg(reinterpret_cast<const uint4*>(xb + (ih * iw_n + iw) * static_cast<I>(g.C)));
#pragma unroll
        for (int v = 0; v < V; ++v) {
          const float f = to_acc<float>(in[v]);
          if (!is_max) {
            acc[v] += f;
          } else if (!nan[v] && (f > acc[v] || f != f)) {
            acc[v] = f;
            nan[v] = f != f;
          }
        }
      }
    }
    float div = 1.f;
    if (!is_max) {
      long long padded = 1;
      for (int j = 0; j < 2; ++j) {
        long long np = 0;
        const long long s0 = (j == 0 ? static_cast<long long>(h0) : static_cast<long long>(w0));
        for (long long k = 0; k < g.kernel[j]; ++k) {
          const long long xi = s0 + k * g.dil[j];
          np += xi >= -g.pb[j] && xi < g.in[j] + g.pe[j];
        }
        padded *= np;
      }
      div = static_cast<float>(g.include_pad ? padded : valid);
    }
    alignas(16) T out[V];
#pragma unroll
    for (int v = 0; v < V; ++v) out[v] = from_acc<T>(is_max ? acc[v] : acc[v] / div);
    *reinterpret_cast<uint4*>(y + o * V) = *reinterpret_cast<const uint4*>(out);
  }
}

// Whether the vector kernel takes the problem, and its launch when it does.
template <class T>
bool launch_pool2d_cl_vec(const PoolProblem& p, const PoolGeo& g, long long n_out,
                          cudaStream_t s) {
  if constexpr (!(std::is_same_v<T, float> || std::is_same_v<T, __half> ||
                  std::is_same_v<T, __nv_bfloat16>)) {
    return false;
  } else {
    constexpr int V = 16 / sizeof(T);
    if (p.nsp != 2 || !p.channels_last || p.indices || p.c % V != 0) return false;
    if (p.kind != PoolKind::kMax && p.kind != PoolKind::kAvg) return false;
    if ((reinterpret_cast<uintptr_t>(p.x) | reinterpret_cast<uintptr_t>(p.y)) % 16 != 0)
      return false;
    const long long n_in = p.n * p.c * p.in[0] * p.in[1];
    const long long n_vec = n_out / V;
    if (n_in < (1LL << 31) && n_out < (1LL << 31))
      pool2d_cl_vec_kernel<T, int><<<grid_for(n_vec, 256), 256, 0, s>>>(
          static_cast<const T*>(p.x), static_cast<T*>(p.y), g, static_cast<int>(n_vec));
    else
      pool2d_cl_vec_kernel<T, long long><<<grid_for(n_vec, 256), 256, 0, s>>>(
          static_cast<const T*>(p.x), static_cast<T*>(p.y), g, n_vec);
    return true;
  }
}

}  // namespace

bool pool_supported(DType dtype, PoolKind kind) {
  if (dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF64)
    return true;
  return kind == PoolKind::kMax && (dtype == DType::kI8 || dtype == DType::kU8 ||
                                    dtype == DType::kI32 || dtype == DType::kI64);
}

void launch_pool(const PoolProblem& p, void* stream) {
  if (p.nsp < 1 || p.nsp > kPoolMaxSpatial) return;
  PoolGeo g{};
  g.cl = p.channels_last;
  g.kind = static_cast<int>(p.kind);
  g.include_pad = p.count_include_pad;
  g.storage = p.storage_order;
  g.p = p.p;
  g.inv_p = 1.0 / p.p;
  g.C = p.c;
  g.in_vol = 1;
  g.kvol = 1;
  long long out_vol = 1;
  for (int j = 0; j < p.nsp; ++j) {
    g.in[j] = p.in[j];
    g.out[j] = p.out[j];
    g.kernel[j] = p.kernel[j];
    g.stride[j] = p.stride[j];
    g.dil[j] = p.dilation[j];
    g.pb[j] = p.pad_begin[j];
    g.pe[j] = p.pad_end[j];
    g.in_vol *= p.in[j];
    g.kvol *= p.kernel[j];
    out_vol *= p.out[j];
  }
  // Strides of the spatial axes in X (times C when channels-last), and column-major positions.
  long long st = p.channels_last ? p.c : 1, col = 1;
  for (int j = p.nsp - 1; j >= 0; --j) {
    g.sstr[j] = st;
    st *= p.in[j];
  }
  for (int j = 0; j < p.nsp; ++j) {
    g.colstr[j] = col;
    col *= p.in[j];
  }
  const long long n_out = p.n * p.c * out_vol;
  const long long n_in = p.n * p.c * g.in_vol;
  if (n_out == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  auto go = [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (!launch_pool2d_cl_vec<T>(p, g, n_out, s)) launch_typed<T>(p, g, n_in, n_out, s);
  };
  if (!dispatch_float(p.dtype, go)) dispatch_int(p.dtype, go);
}

}  // namespace kiln::cuda::rk
