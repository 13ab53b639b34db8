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
  auto go = [&](auto tag) { launch_typed<typename decltype(tag)::type>(p, g, n_in, n_out, s); };
  if (!dispatch_float(p.dtype, go)) dispatch_int(p.dtype, go);
}

}  // namespace kiln::cuda::rk
