#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "common/half.h"
#include "kiln/types.h"

namespace kiln {

const char* dtype_name(DataType t) {
  switch (t) {
    case DataType::kUndefined: return "undefined";
    case DataType::kFloat: return "float32";
    case DataType::kUInt8: return "uint8";
    case DataType::kInt8: return "int8";
    case DataType::kUInt16: return "uint16";
    case DataType::kInt16: return "int16";
    case DataType::kInt32: return "int32";
    case DataType::kInt64: return "int64";
    case DataType::kString: return "string";
    case DataType::kBool: return "bool";
    case DataType::kFloat16: return "float16";
    case DataType::kDouble: return "float64";
    case DataType::kUInt32: return "uint32";
    case DataType::kUInt64: return "uint64";
    case DataType::kComplex64: return "complex64";
    case DataType::kComplex128: return "complex128";
    case DataType::kBFloat16: return "bfloat16";
    case DataType::kFloat8E4M3FN: return "float8e4m3fn";
    case DataType::kFloat8E4M3FNUZ: return "float8e4m3fnuz";
    case DataType::kFloat8E5M2: return "float8e5m2";
    case DataType::kFloat8E5M2FNUZ: return "float8e5m2fnuz";
  }
  return "invalid";
}

size_t dtype_size(DataType t) {
  switch (t) {
    case DataType::kFloat: case DataType::kInt32: case DataType::kUInt32: return 4;
    case DataType::kUInt8: case DataType::kInt8: case DataType::kBool: return 1;
    case DataType::kFloat8E4M3FN: case DataType::kFloat8E4M3FNUZ:
    case DataType::kFloat8E5M2: case DataType::kFloat8E5M2FNUZ: return 1;
    case DataType::kUInt16: case DataType::kInt16: case DataType::kFloat16:
    case DataType::kBFloat16: return 2;
    case DataType::kInt64: case DataType::kDouble: case DataType::kUInt64: return 8;
    default: return 0;
  }
}

bool dtype_is_float(DataType t) {
  switch (t) {
    case DataType::kFloat: case DataType::kFloat16: case DataType::kBFloat16:
    case DataType::kDouble: return true;
    default: return false;
  }
}
bool dtype_is_signed_int(DataType t) {
  return t == DataType::kInt8 || t == DataType::kInt16 || t == DataType::kInt32 ||
         t == DataType::kInt64;
}
bool dtype_is_unsigned_int(DataType t) {
  return t == DataType::kUInt8 || t == DataType::kUInt16 || t == DataType::kUInt32 ||
         t == DataType::kUInt64 || t == DataType::kBool;
}
bool dtype_is_supported(DataType t) {
  return dtype_is_float(t) || dtype_is_signed_int(t) || dtype_is_unsigned_int(t);
}

std::string dims_to_string(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(d[i]);
  }
  return s + "]";
}

int64_t dims_volume(const Dims& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

namespace {
struct FreeDeleter {
  void operator()(const void* p) const { std::free(const_cast<void*>(p)); }
};
}  // namespace

Tensor::Tensor(DataType dtype, Dims dims) : dtype_(dtype), dims_(std::move(dims)) {
  for (int64_t d : dims_)
    KILN_EXPECT(d >= 0, StatusCode::kInvalidArgument, "negative dimension in tensor shape ",
                dims_to_string(dims_));
  // Checked volume: a hostile model can ask for dims whose product overflows int64, which would
  // otherwise allocate a small buffer for a huge tensor.
  numel_ = 1;
  for (int64_t d : dims_) {
    KILN_EXPECT(d == 0 || numel_ <= (int64_t(1) << 50) / d, StatusCode::kInvalidArgument,
                "tensor shape ", dims_to_string(dims_), " is too large to allocate");
    numel_ *= d;
  }
  size_t es = dtype_size(dtype);
  KILN_EXPECT(es > 0 || numel_ == 0, StatusCode::kUnsupported, "cannot hold tensors of type ",
              dtype_name(dtype));
  size_t bytes = static_cast<size_t>(numel_) * es;
  // 64-byte alignment so that vectorised CPU kernels and device copies are happy.
  size_t alloc = (bytes + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  void* p = std::aligned_alloc(64, alloc);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, alloc);
  data_ = p;
  storage_ = std::shared_ptr<const void>(p, FreeDeleter());
}

Tensor Tensor::borrow(DataType dtype, Dims dims, const void* data,
                      std::shared_ptr<const void> keepalive) {
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.numel_ = dims_volume(t.dims_);
  t.data_ = const_cast<void*>(data);
  t.storage_ = std::move(keepalive);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, dims_);
  if (nbytes()) std::memcpy(t.data_, data_, nbytes());
  return t;
}

Tensor Tensor::reshaped(Dims dims) const {
  KILN_CHECK(dims_volume(dims) == numel_, "reshape ", dims_to_string(dims_), " to ",
             dims_to_string(dims));
  Tensor t = *this;
  t.dims_ = std::move(dims);
  return t;
}

double Tensor::get_f64(int64_t i) const {
  switch (dtype_) {
    case DataType::kFloat: return data<float>()[i];
    case DataType::kDouble: return data<double>()[i];
    case DataType::kFloat16: return half_bits_to_float(data<uint16_t>()[i]);
    case DataType::kBFloat16: return bf16_bits_to_float(data<uint16_t>()[i]);
    case DataType::kFloat8E4M3FN: return e4m3fn_bits_to_float(data<uint8_t>()[i]);
    case DataType::kUInt64: return static_cast<double>(data<uint64_t>()[i]);
    default: return static_cast<double>(get_i64(i));
  }
}

int64_t Tensor::get_i64(int64_t i) const {
  switch (dtype_) {
    case DataType::kInt8: return data<int8_t>()[i];
    case DataType::kUInt8: return data<uint8_t>()[i];
    case DataType::kBool: return data<uint8_t>()[i] != 0;
    case DataType::kInt16: return data<int16_t>()[i];
    case DataType::kUInt16: return data<uint16_t>()[i];
    case DataType::kInt32: return data<int32_t>()[i];
    case DataType::kUInt32: return data<uint32_t>()[i];
    case DataType::kInt64: return data<int64_t>()[i];
    case DataType::kUInt64: return static_cast<int64_t>(data<uint64_t>()[i]);
    case DataType::kFloat: case DataType::kDouble: case DataType::kFloat16:
    case DataType::kBFloat16: case DataType::kFloat8E4M3FN:
      return static_cast<int64_t>(get_f64(i));
    default: fail(StatusCode::kUnsupported, "cannot read elements of type ", dtype_name(dtype_));
  }
}

void Tensor::set_f64(int64_t i, double v) {
  switch (dtype_) {
    case DataType::kFloat: data<float>()[i] = static_cast<float>(v); return;
    case DataType::kDouble: data<double>()[i] = v; return;
    case DataType::kFloat16: data<uint16_t>()[i] = float_to_half_bits(static_cast<float>(v)); return;
    case DataType::kBFloat16: data<uint16_t>()[i] = float_to_bf16_bits(static_cast<float>(v)); return;
    case DataType::kFloat8E4M3FN: data<uint8_t>()[i] = float_to_e4m3fn_bits(v); return;
    case DataType::kBool: data<uint8_t>()[i] = v != 0; return;
    case DataType::kUInt64: data<uint64_t>()[i] = static_cast<uint64_t>(v); return;
    default: set_i64(i, static_cast<int64_t>(v)); return;
  }
}

void Tensor::set_i64(int64_t i, int64_t v) {
  switch (dtype_) {
    case DataType::kInt8: data<int8_t>()[i] = static_cast<int8_t>(v); return;
    case DataType::kUInt8: data<uint8_t>()[i] = static_cast<uint8_t>(v); return;
    case DataType::kBool: data<uint8_t>()[i] = v != 0; return;
    case DataType::kInt16: data<int16_t>()[i] = static_cast<int16_t>(v); return;
    case DataType::kUInt16: data<uint16_t>()[i] = static_cast<uint16_t>(v); return;
    case DataType::kInt32: data<int32_t>()[i] = static_cast<int32_t>(v); return;
    case DataType::kUInt32: data<uint32_t>()[i] = static_cast<uint32_t>(v); return;
    case DataType::kInt64: data<int64_t>()[i] = v; return;
    case DataType::kUInt64: data<uint64_t>()[i] = static_cast<uint64_t>(v); return;
    case DataType::kFloat: case DataType::kDouble: case DataType::kFloat16:
    case DataType::kBFloat16: case DataType::kFloat8E4M3FN:
      set_f64(i, static_cast<double>(v));
      return;
    default: fail(StatusCode::kUnsupported, "cannot write elements of type ", dtype_name(dtype_));
  }
}

}  // namespace kiln
