// CumSum kernels (see cum_sum.h). Position p of a row is element n-1-p when reversed; the
// exclusive sum at p is the sum of positions before p, as in the reference (src/ops/cum_sum.cc).
#include "cum_sum.h"
#include "reduction_common.cuh"

namespace kiln::cuda::rk {
namespace {

template <class T>
struct ScanOf {
  using type = unsigned long long;
};  // integers: modular
template <>
struct ScanOf<float> {
  using type = double;
};
template <>
struct ScanOf<double> {
  using type = double;
};
template <>
struct ScanOf<__half> {
  using type = float;
};
template <>
struct ScanOf<__nv_bfloat16> {
  using type = float;
};
template <class T>
using scan_t = typename ScanOf<T>::type;

template <class T>
__device__ __forceinline__ scan_t<T> load_s(const T& v) {
  using S = scan_t<T>;
  if constexpr (kIsFloat<T>)
    return to_acc<S>(v);
  else if constexpr (std::is_signed_v<T>)
    return static_cast<S>(static_cast<long long>(v));  // sign-extend, then wrap
  else
    return static_cast<S>(v);
}
template <class T>
__device__ __forceinline__ T store_s(scan_t<T> v) {
  return from_acc<T>(v);  // integers narrow modularly, as the reference's static_cast
}

// A warp per row: tiles of 32 positions, an inclusive shuffle scan per tile.
template <class T>
__global__ void __launch_bounds__(256)
    cum_sum_warp_kernel(const T* __restrict__ x, T* __restrict__ y, long long rows, long long n,
                        bool exclusive, bool reverse) {
  using S = scan_t<T>;
  const int lane = threadIdx.x & 31;
  const long long first = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const long long step = (static_cast<long long>(gridDim.x) * blockDim.x) >> 5;
  for (long long row = first; row < rows; row += step) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    S carry = S(0);
    for (long long t0 = 0; t0 < n; t0 += 32) {
      const long long pos = t0 + lane;
      const bool in = pos < n;
      const long long j = reverse ? n - 1 - pos : pos;
      const S v = in ? load_s(xr[j]) : S(0);
      S inc = v;
#pragma unroll
      for (int off = 1; off < 32; off <<= 1) {
        const S u = shfl_up(inc, off);
        if (lane >= off) inc += u;
      }
      S exc = shfl_up(inc, 1);
      if (lane == 0) exc = S(0);
      if (in) yr[j] = store_s<T>(carry + (exclusive ? exc : inc));
      carry += shfl_idx(inc, 31);
    }
  }
}

// A block per row (few long rows): tiles of blockDim.x positions.
template <class T>
__global__ void __launch_bounds__(1024)
    cum_sum_block_kernel(const T* __restrict__ x, T* __restrict__ y, long long rows, long long n,
                         bool exclusive, bool reverse) {
  using S = scan_t<T>;
  __shared__ S warp_sum[32];
  __shared__ S warp_pre[32];
  __shared__ S tile_total;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    S carry = S(0);
    for (long long t0 = 0; t0 < n; t0 += blockDim.x) {
      const long long pos = t0 + threadIdx.x;
      const bool in = pos < n;
      const long long j = reverse ? n - 1 - pos : pos;
      const S v = in ? load_s(xr[j]) : S(0);
      S inc = v;
#pragma unroll
      for (int off = 1; off < 32; off <<= 1) {
        const S u = shfl_up(inc, off);
        if (lane >= off) inc += u;
      }
      S exc = shfl_up(inc, 1);
      if (lane == 0) exc = S(0);
      if (lane == 31) warp_sum[warp] = inc;
      __syncthreads();
      if (warp == 0) {
        const S t = lane < nw ? warp_sum[lane] : S(0);
        S ti = t;
#pragma unroll
        for (int off = 1; off < 32; off <<= 1) {
          const S u = shfl_up(ti, off);
          if (lane >= off) ti += u;
        }
        warp_pre[lane] = ti - t;  // exact for integers; for floats only the order of adds differs
        if (lane == 31) tile_total = ti;
      }
      __syncthreads();
      const S base = carry + warp_pre[warp];
      if (in) yr[j] = store_s<T>(base + (exclusive ? exc : inc));
      carry += tile_total;
    }
  }
}

// A thread per (outer, inner) column.
template <class T>
__global__ void __launch_bounds__(256)
    cum_sum_column_kernel(const T* __restrict__ x, T* __restrict__ y, long long outer, long long n,
                          long long inner, bool exclusive, bool reverse) {
  using S = scan_t<T>;
  const long long cols = outer * inner;
  for (long long c = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; c < cols;
       c += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long o = c / inner, i = c - o * inner;
    const T* xc = x + o * n * inner + i;
    T* yc = y + o * n * inner + i;
    S sum = S(0);
    for (long long pos = 0; pos < n; ++pos) {
      const long long j = reverse ? n - 1 - pos : pos;
      const S v = load_s(xc[j * inner]);
      if (!exclusive) sum += v;
      yc[j * inner] = store_s<T>(sum);
      if (exclusive) sum += v;
    }
  }
}

template <class T>
void launch_typed(const CumSumProblem& p, cudaStream_t s) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  if (p.inner > 1) {
    cum_sum_column_kernel<T><<<grid_for(p.outer * p.inner, 256), 256, 0, s>>>(
        x, y, p.outer, p.n, p.inner, p.exclusive, p.reverse);
  } else if (p.outer < 8LL * sm_count() && p.n > 4096) {
    cum_sum_block_kernel<T>
        <<<grid_for(p.outer, 1), 1024, 0, s>>>(x, y, p.outer, p.n, p.exclusive, p.reverse);
  } else {
    cum_sum_warp_kernel<T>
        <<<grid_for(p.outer, 8), 256, 0, s>>>(x, y, p.outer, p.n, p.exclusive, p.reverse);
  }
}

}  // namespace

bool cum_sum_supported(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kF64:
    case DType::kI32:
    case DType::kI64:
    case DType::kU32:
    case DType::kU64:
      return true;
    default:
      return false;
  }
}

void launch_cum_sum(const CumSumProblem& p, void* stream) {
  if (p.outer * p.n * p.inner == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  auto go = [&](auto tag) { launch_typed<typename decltype(tag)::type>(p, s); };
  if (dispatch_float(p.dtype, go)) return;
  switch (p.dtype) {
    case DType::kI32:
      go(Tag<int32_t>{});
      break;
    case DType::kI64:
      go(Tag<int64_t>{});
      break;
    case DType::kU32:
      go(Tag<uint32_t>{});
      break;
    case DType::kU64:
      go(Tag<uint64_t>{});
      break;
    default:
      break;
  }
}

}  // namespace kiln::cuda::rk
