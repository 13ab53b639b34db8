// Device helpers of the direct kernels (einsum.cu, direct_conv.cu, direct_matmul.cu), which
// compute a product-sum per output element exactly as the reference computes do
// (src/ops/accumulate.h): floating types accumulate in double, integer types and bool in uint64
// (modular, so the low bits are those of two's-complement wrap-around of the narrower type).
// Double products and sums are rounded one operation at a time (no fused multiply-add), so a
// kernel that visits the terms in the reference's order gives the reference's bits.
#pragma once
#include "reduction_common.cuh"

namespace kiln::cuda::rk {

template <class T>
struct ExactAccOf {
  using type = unsigned long long;  // every integer type and bool
};
template <>
struct ExactAccOf<float> {
  using type = double;
};
template <>
struct ExactAccOf<double> {
  using type = double;
};
template <>
struct ExactAccOf<__half> {
  using type = double;
};
template <>
struct ExactAccOf<__nv_bfloat16> {
  using type = double;
};
template <class T>
using exact_acc_t = typename ExactAccOf<T>::type;

// An element as its accumulator: signed integers sign-extend, then wrap (the conversion of a
// negative value to unsigned long long is modular).
template <class T>
__device__ __forceinline__ exact_acc_t<T> load_exact(const T* p, long long i) {
  return to_acc<exact_acc_t<T>>(p[i]);
}

// An accumulator as the element type: floats round (16-bit types through float, as the
// reference does), integers narrow modularly, bool is "non-zero".
template <class T>
__device__ __forceinline__ T store_exact(exact_acc_t<T> v) {
  if constexpr (std::is_same_v<T, bool>)
    return v != 0;
  else
    return from_acc<T>(v);
}

template <class A>
__device__ __forceinline__ A exact_mul(A a, A b) {
  if constexpr (std::is_same_v<A, double>)
    return __dmul_rn(a, b);
  else
    return a * b;
}
template <class A>
__device__ __forceinline__ A exact_add(A a, A b) {
  if constexpr (std::is_same_v<A, double>)
    return __dadd_rn(a, b);
  else
    return a + b;
}

// Calls f(Tag<T>{}) for every element type the direct kernels take (bool as `bool`, one byte
// holding 0 or 1); false for any other type.
template <class F>
bool dispatch_all(DType t, F&& f) {
  if (dispatch_float(t, f) || dispatch_int(t, f)) return true;
  switch (t) {
    case DType::kI16:
      f(Tag<int16_t>{});
      return true;
    case DType::kU16:
      f(Tag<uint16_t>{});
      return true;
    case DType::kU32:
      f(Tag<uint32_t>{});
      return true;
    case DType::kU64:
      f(Tag<uint64_t>{});
      return true;
    case DType::kBool:
      f(Tag<bool>{});
      return true;
    default:
      return false;
  }
}

inline bool is_direct_dtype(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kF64:
    case DType::kI8:
    case DType::kU8:
    case DType::kI16:
    case DType::kU16:
    case DType::kI32:
    case DType::kU32:
    case DType::kI64:
    case DType::kU64:
    case DType::kBool:
      return true;
    default:
      return false;
  }
}

}  // namespace kiln::cuda::rk
