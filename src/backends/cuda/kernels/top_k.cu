// TopK kernels (see top_k.h). The order is the reference's (src/ops/top_k.cc): by value, NaN
// larger than every number, equal values (including -0 and +0) by increasing index.
#include <climits>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include "reduction_common.cuh"
#include "top_k.h"

namespace kiln::cuda::rk {
namespace {

template <class T>
struct KeyOf {
  using type = uint32_t;
};
template <>
struct KeyOf<double> {
  using type = unsigned long long;
};
template <>
struct KeyOf<int64_t> {
  using type = unsigned long long;
};
template <class T>
using sort_key_t = typename KeyOf<T>::type;

__device__ __forceinline__ uint32_t float_key(float f) {
  if (f != f) return 0xffffffffu;  // every NaN above +inf
  if (f == 0.0f) f = 0.0f;         // -0 ties with +0
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ unsigned long long double_key(double f) {
  if (f != f) return ~0ULL;
  if (f == 0.0) f = 0.0;
  const unsigned long long u = static_cast<unsigned long long>(__double_as_longlong(f));
  return (u & 0x8000000000000000ULL) ? ~u : (u | 0x8000000000000000ULL);
}

// Ascending order of the key = output order.
template <class T>
__device__ __forceinline__ sort_key_t<T> sort_key(T v, bool largest) {
  sort_key_t<T> k;
  if constexpr (std::is_same_v<T, double>)
    k = double_key(v);
  else if constexpr (kIsFloat<T>)
    k = float_key(to_acc<float>(v));
  else if constexpr (std::is_same_v<T, int64_t>)
    k = static_cast<unsigned long long>(v) ^ 0x8000000000000000ULL;
  else if constexpr (std::is_signed_v<T>)
    k = static_cast<uint32_t>(static_cast<int32_t>(v)) ^ 0x80000000u;
  else
    k = static_cast<uint32_t>(v);
  return largest ? static_cast<sort_key_t<T>>(~k) : k;
}

constexpr int kSmemSort = 2048;  // longest row sorted in shared memory

// A block per row: (key, index) pairs sorted in shared memory, padding sorted last.
template <class T>
__global__ void __launch_bounds__(1024)
    top_k_bitonic_kernel(const T* __restrict__ x, T* __restrict__ values,
                         long long* __restrict__ indices, long long rows, long long n,
                         long long inner, long long k, int size, bool largest) {
  __shared__ unsigned long long skey[kSmemSort];
  __shared__ uint32_t sidx[kSmemSort];
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    const long long o = row / inner, i = row - o * inner;
    const T* xr = x + o * n * inner + i;
    for (int t = threadIdx.x; t < size; t += blockDim.x) {
      if (t < n) {
        skey[t] = static_cast<unsigned long long>(sort_key(xr[t * inner], largest));
        sidx[t] = static_cast<uint32_t>(t);
      } else {
        skey[t] = ~0ULL;
        sidx[t] = 0xffffffffu;
      }
    }
    __syncthreads();
    for (int kk = 2; kk <= size; kk <<= 1) {
      for (int j = kk >> 1; j > 0; j >>= 1) {
        for (int t = threadIdx.x; t < size / 2; t += blockDim.x) {
          const int a = 2 * t - (t & (j - 1));
          const int b = a + j;
          const bool up = (a & kk) == 0;
          const unsigned long long ka = skey[a], kb = skey[b];
          const uint32_t ia = sidx[a], ib = sidx[b];
          const bool a_after_b = ka > kb || (ka == kb && ia > ib);
          if (a_after_b == up) {
            skey[a] = kb;
            skey[b] = ka;
            sidx[a] = ib;
            sidx[b] = ia;
          }
        }
        __syncthreads();
      }
    }
    const long long base = o * k * inner + i;
    for (long long t = threadIdx.x; t < k; t += blockDim.x) {
      const long long j = sidx[t];
      values[t * inner + base] = xr[j * inner];
      indices[t * inner + base] = j;
    }
    __syncthreads();  // the next row overwrites the shared arrays
  }
}

// Radix-sort path: keys and positions of every element, segment (row) by segment.
template <class T>
__global__ void __launch_bounds__(256)
    top_k_keys_kernel(const T* __restrict__ x, sort_key_t<T>* __restrict__ keys,
                      int* __restrict__ pos, long long total, long long n, long long inner,
                      bool largest) {
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long seg = e / n, j = e - seg * n;
    const long long o = seg / inner, i = seg - o * inner;
    keys[e] = sort_key(x[(o * n + j) * inner + i], largest);
    pos[e] = static_cast<int>(j);
  }
}

__global__ void top_k_offsets_kernel(int* __restrict__ offsets, long long segments, long long n) {
  for (long long s = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; s <= segments;
       s += static_cast<long long>(gridDim.x) * blockDim.x)
    offsets[s] = static_cast<int>(s * n);
}

template <class T>
__global__ void __launch_bounds__(256)
    top_k_gather_kernel(const T* __restrict__ x, const int* __restrict__ sorted_pos,
                        T* __restrict__ values, long long* __restrict__ indices, long long segments,
                        long long n, long long inner, long long k) {
  const long long total = segments * k;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long seg = e / k, t = e - seg * k;
    const long long o = seg / inner, i = seg - o * inner;
    const long long j = sorted_pos[seg * n + t];
    values[(o * k + t) * inner + i] = x[(o * n + j) * inner + i];
    indices[(o * k + t) * inner + i] = j;
  }
}

size_t align256(size_t v) { return (v + 255) / 256 * 256; }

bool is_wide(DType t) { return t == DType::kF64 || t == DType::kI64; }

// Workspace layout of the radix path: keys in/out, positions in/out, offsets, CUB's scratch.
struct Layout {
  size_t keys_in = 0, keys_out = 0, pos_in = 0, pos_out = 0, offsets = 0, temp = 0;
  size_t temp_bytes = 0, total = 0;
};

template <class K>
size_t cub_temp_bytes(long long total, long long segments) {
  size_t bytes = 0;
  cudaError_t e;
  if (segments == 1)
    e = cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const K*>(nullptr),
                                        static_cast<K*>(nullptr), static_cast<const int*>(nullptr),
                                        static_cast<int*>(nullptr), static_cast<int>(total), 0,
                                        static_cast<int>(sizeof(K) * 8));
  else
    e = cub::DeviceSegmentedRadixSort::SortPairs(
        nullptr, bytes, static_cast<const K*>(nullptr), static_cast<K*>(nullptr),
        static_cast<const int*>(nullptr), static_cast<int*>(nullptr), static_cast<int>(total),
        static_cast<int>(segments), static_cast<const int*>(nullptr),
        static_cast<const int*>(nullptr), 0, static_cast<int>(sizeof(K) * 8));
  return e == cudaSuccess ? bytes : 0;
}

bool uses_radix(const TopKProblem& p) { return p.k > 0 && p.n > kSmemSort; }

bool fits_int(const TopKProblem& p) {
  const long long segments = p.outer * p.inner;
  return segments * p.n < INT_MAX && segments < INT_MAX;
}

Layout layout_of(const TopKProblem& p) {
  Layout l;
  const long long segments = p.outer * p.inner;
  const long long total = segments * p.n;
  const size_t ks = is_wide(p.dtype) ? 8 : 4;
  l.keys_in = 0;
  l.keys_out = align256(total * ks);
  l.pos_in = l.keys_out + align256(total * ks);
  l.pos_out = l.pos_in + align256(total * 4);
  l.offsets = l.pos_out + align256(total * 4);
  l.temp = l.offsets + align256((segments + 1) * 4);
  l.temp_bytes = is_wide(p.dtype) ? cub_temp_bytes<unsigned long long>(total, segments)
                                  : cub_temp_bytes<uint32_t>(total, segments);
  l.total = l.temp + align256(l.temp_bytes);
  return l;
}

template <class T>
int launch_radix(const TopKProblem& p, char* ws, const Layout& l, cudaStream_t s) {
  using K = sort_key_t<T>;
  const long long segments = p.outer * p.inner;
  const long long total = segments * p.n;
  K* keys_in = reinterpret_cast<K*>(ws + l.keys_in);
  K* keys_out = reinterpret_cast<K*>(ws + l.keys_out);
  int* pos_in = reinterpret_cast<int*>(ws + l.pos_in);
  int* pos_out = reinterpret_cast<int*>(ws + l.pos_out);
  int* offsets = reinterpret_cast<int*>(ws + l.offsets);
  top_k_keys_kernel<T><<<grid_for(total, 256), 256, 0, s>>>(static_cast<const T*>(p.x), keys_in,
                                                            pos_in, total, p.n, p.inner, p.largest);
  size_t temp_bytes = l.temp_bytes;
  cudaError_t e;
  if (segments == 1) {
    e = cub::DeviceRadixSort::SortPairs(ws + l.temp, temp_bytes, keys_in, keys_out, pos_in, pos_out,
                                        static_cast<int>(total), 0, static_cast<int>(sizeof(K) * 8),
                                        s);
  } else {
    top_k_offsets_kernel<<<grid_for(segments + 1, 256), 256, 0, s>>>(offsets, segments, p.n);
    e = cub::DeviceSegmentedRadixSort::SortPairs(
        ws + l.temp, temp_bytes, keys_in, keys_out, pos_in, pos_out, static_cast<int>(total),
        static_cast<int>(segments), static_cast<const int*>(offsets),
        static_cast<const int*>(offsets + 1), 0, static_cast<int>(sizeof(K) * 8), s);
  }
  if (e != cudaSuccess) return static_cast<int>(e);
  top_k_gather_kernel<T><<<grid_for(segments * p.k, 256), 256, 0, s>>>(
      static_cast<const T*>(p.x), pos_out, static_cast<T*>(p.values),
      reinterpret_cast<long long*>(p.indices), segments, p.n, p.inner, p.k);
  return 0;
}

template <class T>
int launch_typed(const TopKProblem& p, void* ws, size_t ws_bytes, cudaStream_t s) {
  const long long rows = p.outer * p.inner;
  if (!uses_radix(p)) {
    int size = 1;
    while (size < p.n) size <<= 1;
    const int threads = size / 2 < 32 ? 32 : (size / 2 > 1024 ? 1024 : size / 2);
    top_k_bitonic_kernel<T><<<grid_for(rows, 1), threads, 0, s>>>(
        static_cast<const T*>(p.x), static_cast<T*>(p.values),
        reinterpret_cast<long long*>(p.indices), rows, p.n, p.inner, p.k, size, p.largest);
    return 0;
  }
  if (!fits_int(p)) return -1;
  const Layout l = layout_of(p);
  if (l.temp_bytes == 0 || ws_bytes < l.total || !ws)
    return static_cast<int>(cudaErrorInvalidValue);
  return launch_radix<T>(p, static_cast<char*>(ws), l, s);
}

}  // namespace

bool top_k_supported(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kF64:
    case DType::kI8:
    case DType::kU8:
    case DType::kI32:
    case DType::kI64:
      return true;
    default:
      return false;
  }
}

size_t top_k_workspace_size(const TopKProblem& p) {
  if (!uses_radix(p) || !fits_int(p)) return 0;
  return layout_of(p).total;
}

int launch_top_k(const TopKProblem& p, void* workspace, size_t workspace_bytes, void* stream) {
  if (p.k == 0 || p.outer * p.inner == 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  int rc = 0;
  auto go = [&](auto tag) {
    rc = launch_typed<typename decltype(tag)::type>(p, workspace, workspace_bytes, s);
  };
  if (!dispatch_float(p.dtype, go)) dispatch_int(p.dtype, go);
  return rc;
}

}  // namespace kiln::cuda::rk
