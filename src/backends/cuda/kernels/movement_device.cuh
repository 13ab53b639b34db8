// Device-side helpers shared by the movement, indexing, resize, shape-op and quantize kernels:
// storage units by byte width, fast 32-bit division by run-time constants, and launch sizing.
// CUDA-only (included by .cu files, never by host C++).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "backends/cuda/kernels/movement.h"

namespace kiln::cuda::mv {

// The type that moves `N` bytes in one load/store (N = 1, 2, 4, 8, 16).
template <int N>
struct Unit;
template <>
struct Unit<1> {
  using T = uint8_t;
};
template <>
struct Unit<2> {
  using T = uint16_t;
};
template <>
struct Unit<4> {
  using T = uint32_t;
};
template <>
struct Unit<8> {
  using T = unsigned long long;
};
template <>
struct Unit<16> {
  using T = uint4;
};

// Division by a run-time constant d in [1, 2^31] for dividends n < 2^31 (Granlund-Montgomery
// round-up method, as PyTorch's IntDivider): one mul.hi, one add and one shift instead of a ~20
// instruction integer division per dim per element.
struct FastDiv {
  uint32_t d = 1, m = 1, s = 0;
  FastDiv() = default;
  __host__ explicit FastDiv(uint32_t div) : d(div) {
    s = 0;
    while (s < 31 && (uint32_t{1} << s) < d) ++s;
    uint64_t one = 1;
    m = static_cast<uint32_t>(((one << 32) * ((one << s) - d)) / d + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, m) + n) >> s; }
};

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items of kThreads threads each: enough to fill an H100 a
// few times over, never past the grid limit.
inline unsigned grid_for(int64_t n, int64_t per_thread = 1) {
  int64_t threads = (n + per_thread - 1) / per_thread;
  int64_t b = (threads + kThreads - 1) / kThreads;
  if (b < 1) b = 1;
  if (b > 8192) b = 8192;
  return static_cast<unsigned>(b);
}

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

inline bool aligned(const void* p, int bytes) {
  return reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(bytes) == 0;
}

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// ---- typed elements ----

// The device storage type of each ElemType (bool is one byte, like uint8).
template <class T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<T>{}) with T the storage type of t.
template <class F>
void dispatch_elem(ElemType t, F&& f) {
  switch (t) {
    case ElemType::kFloat:
      return f(TypeTag<float>{});
    case ElemType::kFloat16:
      return f(TypeTag<__half>{});
    case ElemType::kBFloat16:
      return f(TypeTag<__nv_bfloat16>{});
    case ElemType::kDouble:
      return f(TypeTag<double>{});
    case ElemType::kInt8:
      return f(TypeTag<int8_t>{});
    case ElemType::kUInt8:
    case ElemType::kBool:
      return f(TypeTag<uint8_t>{});
    case ElemType::kInt16:
      return f(TypeTag<int16_t>{});
    case ElemType::kUInt16:
      return f(TypeTag<uint16_t>{});
    case ElemType::kInt32:
      return f(TypeTag<int32_t>{});
    case ElemType::kUInt32:
      return f(TypeTag<uint32_t>{});
    case ElemType::kInt64:
      return f(TypeTag<int64_t>{});
    case ElemType::kUInt64:
      return f(TypeTag<uint64_t>{});
  }
}

template <class T>
constexpr bool is_float_type() {
  return std::is_same<T, float>::value || std::is_same<T, double>::value ||
         std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value;
}

// Element -> double, as Tensor::get_f64 reads it (bool storage reads as its byte).
template <class T>
__device__ __forceinline__ double to_f64(T v) {
  if constexpr (std::is_same<T, __half>::value)
    return static_cast<double>(__half2float(v));
  else if constexpr (std::is_same<T, __nv_bfloat16>::value)
    return static_cast<double>(__bfloat162float(v));
  else
    return static_cast<double>(v);
}

// double -> element, as Tensor::set_f64 writes it for float types: through float for the 16-bit
// ones (round to nearest even at each step).
template <class T>
__device__ __forceinline__ T from_f64(double v) {
  if constexpr (std::is_same<T, __half>::value)
    return __float2half_rn(static_cast<float>(v));
  else if constexpr (std::is_same<T, __nv_bfloat16>::value)
    return __float2bfloat16_rn(static_cast<float>(v));
  else
    return static_cast<T>(v);
}

}  // namespace kiln::cuda::mv
