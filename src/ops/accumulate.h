// Moving tensors into and out of accumulator arrays, for the reference computes that accumulate
// (Conv, MatMul, Pool, Einsum). Float dtypes accumulate in double. Integer dtypes accumulate in
// uint64_t, whose modular arithmetic gives the same low bits as two's-complement wrap-around of the
// narrower type without signed-overflow UB; int64 values stay exact because they never pass
// through double.
#pragma once
#include <cstdint>
#include <type_traits>
#include <vector>

#include "ops/op_util.h"

namespace kiln {

template <class Acc, class T>
inline Acc to_acc(T v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return static_cast<Acc>(to_float(v));
  } else if constexpr (std::is_same_v<Acc, uint64_t> && std::is_signed_v<T>) {
    return static_cast<uint64_t>(static_cast<int64_t>(v));  // sign-extend, then wrap
  } else {
    return static_cast<Acc>(v);
  }
}

template <class T, class Acc>
inline T from_acc(Acc v) {
  if constexpr (std::is_same_v<T, Half>) {
    return Half{float_to_half_bits(static_cast<float>(v))};
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    return BFloat16{float_to_bf16_bits(static_cast<float>(v))};
  } else {
    return static_cast<T>(v);  // integers: modular (C++20), floats: round to nearest
  }
}

// Elements [offset, offset + count) of t as accumulator values, into dst.
template <class Acc>
void load_acc(const Tensor& t, int64_t offset, int64_t count, Acc* dst) {
  dispatch_dtype(t.dtype(), [&]<class T>() {
    const T* p = t.data<T>() + offset;
    for (int64_t i = 0; i < count; ++i) dst[i] = to_acc<Acc>(p[i]);
  });
}

// The whole tensor as accumulator values.
template <class Acc>
std::vector<Acc> load_acc(const Tensor& t) {
  std::vector<Acc> v(static_cast<size_t>(t.numel()));
  load_acc(t, 0, t.numel(), v.data());
  return v;
}

// Writes `count` accumulator values into elements [offset, offset + count) of t, converting to
// its dtype.
template <class Acc>
void store_acc(const Acc* src, Tensor& t, int64_t offset, int64_t count) {
  bool is_bool = t.dtype() == DataType::kBool;
  dispatch_dtype(t.dtype(), [&]<class T>() {
    T* p = t.data<T>() + offset;
    for (int64_t i = 0; i < count; ++i) {
      if constexpr (std::is_same_v<T, uint8_t>) {
        if (is_bool) {
          p[i] = src[i] != Acc(0);
          continue;
        }
      }
      p[i] = from_acc<T>(src[i]);
    }
  });
}
template <class Acc>
void store_acc(const Acc* src, Tensor& t) {
  store_acc(src, t, 0, t.numel());
}

// Calls f.template operator()<Acc>() with the accumulator type for dtype `t`.
template <class F>
decltype(auto) dispatch_acc(DataType t, F&& f) {
  if (dtype_is_float(t)) return f.template operator()<double>();
  if (dtype_is_signed_int(t) || dtype_is_unsigned_int(t)) return f.template operator()<uint64_t>();
  fail(StatusCode::kUnsupported, "element type ", dtype_name(t), " is not supported");
}

}  // namespace kiln
