// Device helpers shared by kiln's reduction-family kernels (.cu files only): accumulator types,
// conversions, NaN tests, warp shuffles of small structs, grid sizing and dtype dispatch.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "reduction_common.h"

namespace kiln::cuda::rk {

// Accumulator of an element type: float for the 16/32-bit floats, double for double, 64-bit
// integers (two's-complement wrap through unsigned math) for integers.
template <class T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};
template <>
struct AccOf<int8_t> {
  using type = long long;
};
template <>
struct AccOf<uint8_t> {
  using type = long long;
};
template <>
struct AccOf<int16_t> {
  using type = long long;
};
template <>
struct AccOf<uint16_t> {
  using type = long long;
};
template <>
struct AccOf<int32_t> {
  using type = long long;
};
template <>
struct AccOf<uint32_t> {
  using type = long long;
};
template <>
struct AccOf<int64_t> {
  using type = long long;
};
template <>
struct AccOf<uint64_t> {
  using type = unsigned long long;
};
template <class T>
using acc_t = typename AccOf<T>::type;

template <class T>
constexpr bool kIsFloat = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                          std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

template <class A, class T>
__device__ __forceinline__ A to_acc(T v) {
  if constexpr (std::is_same_v<T, __half>)
    return static_cast<A>(__half2float(v));
  else if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return static_cast<A>(__bfloat162float(v));
  else
    return static_cast<A>(v);
}

template <class T, class A>
__device__ __forceinline__ T from_acc(A v) {
  if constexpr (std::is_same_v<T, __half>)
    return __float2half_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return __float2bfloat16_rn(static_cast<float>(v));
  else
    return static_cast<T>(v);  // integers: modular, as the reference's static_cast
}

template <class A>
__device__ __forceinline__ bool is_nan(A v) {
  if constexpr (std::is_floating_point_v<A>)
    return v != v;
  else
    return false;
}

template <class A>
__device__ __forceinline__ A acc_exp(A v) {
  if constexpr (std::is_same_v<A, double>)
    return exp(v);
  else
    return expf(v);
}
template <class A>
__device__ __forceinline__ A acc_log(A v) {
  if constexpr (std::is_same_v<A, double>)
    return log(v);
  else
    return logf(v);
}
template <class A>
__device__ __forceinline__ A acc_sqrt(A v) {
  if constexpr (std::is_same_v<A, double>)
    return sqrt(v);
  else
    return sqrtf(v);
}
template <class A>
__device__ __forceinline__ A acc_tanh(A v) {
  if constexpr (std::is_same_v<A, double>)
    return tanh(v);
  else
    return tanhf(v);
}
template <class A>
__device__ __forceinline__ A acc_log1p(A v) {
  if constexpr (std::is_same_v<A, double>)
    return log1p(v);
  else
    return log1pf(v);
}
template <class A>
__device__ __forceinline__ A acc_abs(A v) {
  if constexpr (std::is_same_v<A, double>)
    return fabs(v);
  else
    return fabsf(v);
}
template <class A>
__device__ __forceinline__ A acc_inf() {
  if constexpr (std::is_same_v<A, double>)
    return __longlong_as_double(0x7ff0000000000000LL);
  else
    return __int_as_float(0x7f800000);
}
template <class A>
__device__ __forceinline__ A acc_nan() {
  if constexpr (std::is_same_v<A, double>)
    return __longlong_as_double(0x7ff8000000000000LL);
  else
    return __int_as_float(0x7fc00000);
}

// Shuffles of the plain types a state holds (shfl has no 8/16-bit overloads; none is needed).
template <class V>
__device__ __forceinline__ V shfl_xor(V v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}
template <class V>
__device__ __forceinline__ V shfl_up(V v, int delta) {
  return __shfl_up_sync(0xffffffffu, v, delta);
}
template <class V>
__device__ __forceinline__ V shfl_idx(V v, int src) {
  return __shfl_sync(0xffffffffu, v, src);
}

// A shuffle of any small trivially copyable struct, one 32-bit word at a time.
template <class V>
__device__ __forceinline__ V shfl_xor_any(const V& v, int mask) {
  static_assert(sizeof(V) % 4 == 0, "shuffled structs are made of 32-bit words");
  V r;
  const int* src = reinterpret_cast<const int*>(&v);
  int* dst = reinterpret_cast<int*>(&r);
#pragma unroll
  for (int k = 0; k < static_cast<int>(sizeof(V) / 4); ++k)
    dst[k] = __shfl_xor_sync(0xffffffffu, src[k], mask);
  return r;
}

// Block-wide combination of per-thread values through shared memory (blockDim.x <= 1024, a
// multiple of 32). Every thread gets the result.
template <class V, class F>
__device__ V block_all_reduce(V v, F combine, V* smem /* 32 entries */) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int off = 16; off > 0; off >>= 1) v = combine(v, shfl_xor_any(v, off));
  __syncthreads();  // smem may still be read from the previous call
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  V r = smem[0];
  for (int w = 1; w < nw; ++w) r = combine(r, smem[w]);
  return r;
}

// A load of 16 bytes: elements [0, kN) of an aligned vector.
template <class T>
struct alignas(16) Pack {
  static constexpr int kN = 16 / sizeof(T);
  T v[kN];
};

// Blocks for a grid-stride loop over `work` items of `per_block` each: enough to fill the GPU
// several times over, never more than the grid allows.
inline unsigned grid_for(long long work, long long per_block, long long cap = 1LL << 20) {
  long long b = (work + per_block - 1) / per_block;
  if (b < 1) b = 1;
  if (b > cap) b = cap;
  return static_cast<unsigned>(b);
}

int sm_count();  // of the current device, cached (reduce.cu)

inline int ceil_log2(long long v) {
  int l = 0;
  while ((1LL << l) < v) ++l;
  return l;
}

template <class T>
struct Tag {
  using type = T;
};

// Calls f(Tag<T>{}) for the 16/32/64-bit floating types; false for any other type.
template <class F>
bool dispatch_float(DType t, F&& f) {
  switch (t) {
    case DType::kF32:
      f(Tag<float>{});
      return true;
    case DType::kF16:
      f(Tag<__half>{});
      return true;
    case DType::kBF16:
      f(Tag<__nv_bfloat16>{});
      return true;
    case DType::kF64:
      f(Tag<double>{});
      return true;
    default:
      return false;
  }
}
// The same for the integer types the kernels take (bool excluded).
template <class F>
bool dispatch_int(DType t, F&& f) {
  switch (t) {
    case DType::kI8:
      f(Tag<int8_t>{});
      return true;
    case DType::kU8:
      f(Tag<uint8_t>{});
      return true;
    case DType::kI32:
      f(Tag<int32_t>{});
      return true;
    case DType::kI64:
      f(Tag<int64_t>{});
      return true;
    default:
      return false;
  }
}

// A floating-point parameter of any of the four float types, read as A.
template <class A>
__device__ __forceinline__ A load_float_as(const void* p, DType t, long long i) {
  switch (t) {
    case DType::kF16:
      return static_cast<A>(__half2float(static_cast<const __half*>(p)[i]));
    case DType::kBF16:
      return static_cast<A>(__bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]));
    case DType::kF64:
      return static_cast<A>(static_cast<const double*>(p)[i]);
    default:
      return static_cast<A>(static_cast<const float*>(p)[i]);
  }
}
template <class A>
__device__ __forceinline__ void store_float_as(void* p, DType t, long long i, A v) {
  switch (t) {
    case DType::kF16:
      static_cast<__half*>(p)[i] = __float2half_rn(static_cast<float>(v));
      break;
    case DType::kBF16:
      static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(static_cast<float>(v));
      break;
    case DType::kF64:
      static_cast<double*>(p)[i] = static_cast<double>(v);
      break;
    default:
      static_cast<float*>(p)[i] = static_cast<float>(v);
      break;
  }
}

}  // namespace kiln::cuda::rk
