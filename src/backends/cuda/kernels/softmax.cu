// Softmax kernels (see softmax.h). Semantics follow the reference (src/ops/softmax.cc): the
// maximum is NaN-sticky; exp(x - max) is summed over the whole row, so a row whose maximum is not
// finite (NaN, +inf, or all -inf) is NaN throughout; hardmax marks the first maximum (the first
// NaN when there is one). Statistics accumulate in float (double for double).
#include "reduction_common.cuh"
#include "softmax.h"

namespace kiln::cuda::rk {
namespace {

constexpr int kHard = static_cast<int>(SoftmaxMode::kHardmax);
constexpr int kLog = static_cast<int>(SoftmaxMode::kLogSoftmax);

// ---- the pieces every mapping shares --------------------------------------------------------

// NaN-sticky maximum.
template <class A>
__device__ __forceinline__ A max_nan(A m, A v) {
  return (is_nan(v) || v > m) ? v : m;
}

// Hardmax's candidate order: NaN first, then larger, then the smaller index.
template <class A>
__device__ __forceinline__ bool arg_better(A nv, long long ni, A ov, long long oi) {
  if (oi < 0) return true;
  if (ni < 0) return false;
  const bool nn = is_nan(nv), on = is_nan(ov);
  if (nn || on) return nn && on ? ni < oi : nn;
  if (nv == ov) return ni < oi;
  return nv > ov;
}

// Online max and sum of exp(x - max): m NaN-sticky, s relative to m (meaningful while m finite).
template <class A>
struct MaxSum {
  A m, s;
};
template <class A>
__device__ __forceinline__ void ms_update(MaxSum<A>& st, A v) {
  if (is_nan(st.m)) return;
  if (is_nan(v)) {
    st.m = v;
  } else if (v > st.m) {
    st.s = (st.m == -acc_inf<A>() ? A(0) : st.s * acc_exp(st.m - v)) + A(1);
    st.m = v;
  } else if (v != -acc_inf<A>()) {
    st.s += acc_exp(v - st.m);
  }
}
template <class A>
__device__ __forceinline__ void ms_combine(MaxSum<A>& a, const MaxSum<A>& b) {
  if (is_nan(a.m)) return;
  if (is_nan(b.m)) {
    a.m = b.m;
    return;
  }
  const A m = a.m > b.m ? a.m : b.m;
  if (m == -acc_inf<A>()) return;
  a.s = (a.m == -acc_inf<A>() ? A(0) : a.s * acc_exp(a.m - m)) +
        (b.m == -acc_inf<A>() ? A(0) : b.s * acc_exp(b.m - m));
  a.m = m;
}
// The reference sums exp(x - max) over the row: with a maximum that is not finite some term is
// NaN (inf - inf, or -inf - -inf), so the whole row is NaN.
template <class A>
__device__ __forceinline__ void ms_finish(MaxSum<A>& st) {
  if (!isfinite(st.m)) st.s = acc_nan<A>();
}

template <class T, class A>
__device__ __forceinline__ T softmax_value(A v, A m, A s, int mode) {
  return from_acc<T>(mode == kLog ? v - m - acc_log(s) : acc_exp(v - m) / s);
}

// ---- warp per row, row in registers (n <= 32 * NPT) -------------------------------------------

template <class T, int NPT>
__global__ void __launch_bounds__(256)
    softmax_warp_kernel(const T* __restrict__ x, T* __restrict__ y, long long rows, int n,
                        int mode) {
  using A = acc_t<T>;
  const int lane = threadIdx.x & 31;
  const long long first = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const long long step = (static_cast<long long>(gridDim.x) * blockDim.x) >> 5;
  for (long long row = first; row < rows; row += step) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    A v[NPT];
#pragma unroll
    for (int k = 0; k < NPT; ++k) {
      const int j = lane + 32 * k;
      v[k] = j < n ? to_acc<A>(xr[j]) : -acc_inf<A>();
    }
    if (mode == kHard) {
      A bv = A(0);
      long long bi = -1;
#pragma unroll
      for (int k = 0; k < NPT; ++k) {
        const int j = lane + 32 * k;
        if (j < n && arg_better(v[k], static_cast<long long>(j), bv, bi)) {
          bv = v[k];
          bi = j;
        }
      }
      for (int off = 16; off > 0; off >>= 1) {
        const A ov = shfl_xor(bv, off);
        const long long oi = shfl_xor(bi, off);
        if (arg_better(ov, oi, bv, bi)) {
          bv = ov;
          bi = oi;
        }
      }
#pragma unroll
      for (int k = 0; k < NPT; ++k) {
        const int j = lane + 32 * k;
        if (j < n) yr[j] = from_acc<T>(j == bi ? A(1) : A(0));
      }
      continue;
    }
    A m = -acc_inf<A>();
#pragma unroll
    for (int k = 0; k < NPT; ++k)
      if (lane + 32 * k < n) m = max_nan(m, v[k]);
    for (int off = 16; off > 0; off >>= 1) m = max_nan(m, shfl_xor(m, off));
    A s = A(0);
#pragma unroll
    for (int k = 0; k < NPT; ++k)
      if (lane + 32 * k < n) s += acc_exp(v[k] - m);
    for (int off = 16; off > 0; off >>= 1) s += shfl_xor(s, off);
#pragma unroll
    for (int k = 0; k < NPT; ++k) {
      const int j = lane + 32 * k;
      if (j < n) yr[j] = softmax_value<T>(v[k], m, s, mode);
    }
  }
}

// ---- block per row (long rows) ------------------------------------------------------------------

template <class A>
struct ArgPair {
  A v;
  long long i;
};

template <class T>
__global__ void __launch_bounds__(512)
    softmax_block_kernel(const T* __restrict__ x, T* __restrict__ y, long long rows, long long n,
                         int mode) {
  using A = acc_t<T>;
  __shared__ MaxSum<A> sms[32];
  __shared__ ArgPair<A> sap[32];
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    if (mode == kHard) {
      ArgPair<A> b{A(0), -1};
      for (long long j = threadIdx.x; j < n; j += blockDim.x) {
        const A v = to_acc<A>(xr[j]);
        if (arg_better(v, j, b.v, b.i)) b = {v, j};
      }
      b = block_all_reduce(
          b, [](ArgPair<A> a, ArgPair<A> c) { return arg_better(c.v, c.i, a.v, a.i) ? c : a; },
          sap);
      for (long long j = threadIdx.x; j < n; j += blockDim.x)
        yr[j] = from_acc<T>(j == b.i ? A(1) : A(0));
      continue;
    }
    MaxSum<A> st{-acc_inf<A>(), A(0)};
    for (long long j = threadIdx.x; j < n; j += blockDim.x) ms_update(st, to_acc<A>(xr[j]));
    st = block_all_reduce(
        st,
        [](MaxSum<A> a, MaxSum<A> b) {
          ms_combine(a, b);
          return a;
        },
        sms);
    ms_finish(st);
    for (long long j = threadIdx.x; j < n; j += blockDim.x)
      yr[j] = softmax_value<T>(to_acc<A>(xr[j]), st.m, st.s, mode);
  }
}

// ---- thread per column ([outer, n, inner], or tiny rows) ------------------------------------

template <class T>
__global__ void __launch_bounds__(256)
    softmax_column_kernel(const T* __restrict__ x, T* __restrict__ y, long long outer, long long n,
                          long long inner, int mode) {
  using A = acc_t<T>;
  const long long cols = outer * inner;
  for (long long c = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; c < cols;
       c += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long o = c / inner, i = c - o * inner;
    const T* xc = x + o * n * inner + i;
    T* yc = y + o * n * inner + i;
    if (mode == kHard) {
      A bv = A(0);
      long long bi = -1;
      for (long long j = 0; j < n; ++j) {
        const A v = to_acc<A>(xc[j * inner]);
        if (arg_better(v, j, bv, bi)) {
          bv = v;
          bi = j;
        }
      }
      for (long long j = 0; j < n; ++j) yc[j * inner] = from_acc<T>(j == bi ? A(1) : A(0));
      continue;
    }
    MaxSum<A> st{-acc_inf<A>(), A(0)};
    for (long long j = 0; j < n; ++j) ms_update(st, to_acc<A>(xc[j * inner]));
    ms_finish(st);
    for (long long j = 0; j < n; ++j)
      yc[j * inner] = softmax_value<T>(to_acc<A>(xc[j * inner]), st.m, st.s, mode);
  }
}

template <class T, int NPT>
void launch_warp(const SoftmaxProblem& p, cudaStream_t s) {
  softmax_warp_kernel<T, NPT><<<grid_for(p.outer, 8), 256, 0, s>>>(
      static_cast<const T*>(p.x), static_cast<T*>(p.y), p.outer, static_cast<int>(p.n),
      static_cast<int>(p.mode));
}

template <class T>
void launch_typed(const SoftmaxProblem& p, cudaStream_t s) {
  const int mode = static_cast<int>(p.mode);
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  if (p.inner > 1 || p.n <= 4) {
    softmax_column_kernel<T>
        <<<grid_for(p.outer * p.inner, 256), 256, 0, s>>>(x, y, p.outer, p.n, p.inner, mode);
  } else if (p.n <= 32) {
    launch_warp<T, 1>(p, s);
  } else if (p.n <= 64) {
    launch_warp<T, 2>(p, s);
  } else if (p.n <= 128) {
    launch_warp<T, 4>(p, s);
  } else if (p.n <= 256) {
    launch_warp<T, 8>(p, s);
  } else if (p.n <= 512) {
    launch_warp<T, 16>(p, s);
  } else if (p.n <= 1024) {
    launch_warp<T, 32>(p, s);
  } else {
    softmax_block_kernel<T>
        <<<grid_for(p.outer, 1, 1LL << 16), 512, 0, s>>>(x, y, p.outer, p.n, mode);
  }
}

}  // namespace

bool softmax_supported(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 ||
         dtype == DType::kF64;
}

void launch_softmax(const SoftmaxProblem& p, void* stream) {
  if (p.outer * p.n * p.inner == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  dispatch_float(p.dtype, [&](auto tag) { launch_typed<typename decltype(tag)::type>(p, s); });
}

}  // namespace kiln::cuda::rk
