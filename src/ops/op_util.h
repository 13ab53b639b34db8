// Helpers shared by the reference implementations of the canonical ops.
#pragma once
#include <cstdint>
#include <type_traits>
#include <vector>

#include "common/error.h"
#include "common/half.h"
#include "ops/op.h"

namespace kiln {

// Row-major strides of dims.
std::vector<int64_t> strides_of(const Dims& d);

// Reads an integer tensor (any integer dtype) as int64 values.
std::vector<int64_t> to_int64s(const Tensor& t);
std::vector<double> to_doubles(const Tensor& t);

// Calls f.template operator()<T>() with T the C++ storage type of dtype: float, double, Half,
// BFloat16, int8_t..uint64_t, bool as uint8_t.
template <class F>
decltype(auto) dispatch_dtype(DataType t, F&& f) {
  switch (t) {
    case DataType::kFloat: return f.template operator()<float>();
    case DataType::kDouble: return f.template operator()<double>();
    case DataType::kFloat16: return f.template operator()<Half>();
    case DataType::kBFloat16: return f.template operator()<BFloat16>();
    case DataType::kInt8: return f.template operator()<int8_t>();
    case DataType::kUInt8: case DataType::kBool: return f.template operator()<uint8_t>();
    case DataType::kInt16: return f.template operator()<int16_t>();
    case DataType::kUInt16: return f.template operator()<uint16_t>();
    case DataType::kInt32: return f.template operator()<int32_t>();
    case DataType::kUInt32: return f.template operator()<uint32_t>();
    case DataType::kInt64: return f.template operator()<int64_t>();
    case DataType::kUInt64: return f.template operator()<uint64_t>();
    default: fail(StatusCode::kUnsupported, "element type ", dtype_name(t), " is not supported");
  }
}

// Copies element `src_i` of src to element `dst_i` of dst; both of one dtype (any width).
inline void copy_element(const Tensor& src, int64_t src_i, Tensor& dst, int64_t dst_i) {
  size_t es = dtype_size(src.dtype());
  std::memcpy(static_cast<char*>(dst.raw()) + dst_i * es,
              static_cast<const char*>(src.raw()) + src_i * es, es);
}

// Requires that input i's value is known at build time (e.g. a shape operand) or returns null
// after marking all outputs as unknown-shaped: used by infer() of ops whose output shape depends
// on a tensor's contents.
const Tensor* value_or_unknown(InferContext& ctx, size_t i, DataType out_dtype,
                               size_t out_index = 0);

// The value to order elements by: float16/bfloat16 as float, every other type as itself (so 64-bit
// integers stay exact).
template <class T>
auto sort_key(T v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>)
    return to_float(v);
  else
    return v;
}

}  // namespace kiln
