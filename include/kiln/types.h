// kiln public API: element types and host tensors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln {

// Values match ONNX TensorProto.DataType so that files and plans share one numbering.
enum class DataType : int32_t {
  kUndefined = 0,
  kFloat = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBFloat16 = 16,
  kFloat8E4M3FN = 17,
  kFloat8E4M3FNUZ = 18,
  kFloat8E5M2 = 19,
  kFloat8E5M2FNUZ = 20,
};

const char* dtype_name(DataType t);   // "float32", "int64", ...
size_t dtype_size(DataType t);        // bytes per element; 0 for undefined/string/complex
bool dtype_is_float(DataType t);      // float16/bfloat16/float/double/fp8
bool dtype_is_signed_int(DataType t);
bool dtype_is_unsigned_int(DataType t);  // bool counts as unsigned
bool dtype_is_supported(DataType t);  // kiln computes on it (not string/complex)

using Dims = std::vector<int64_t>;
std::string dims_to_string(const Dims& d);  // "[1,3,224,224]"
int64_t dims_volume(const Dims& d);

// A dense, row-major host tensor. Copies share storage (like a view); use clone() for a deep copy.
// Storage may be owned, or borrowed from a memory-mapped file kept alive by `keepalive`.
class Tensor {
 public:
  Tensor() = default;
  Tensor(DataType dtype, Dims dims);  // zero-initialised, owned
  static Tensor borrow(DataType dtype, Dims dims, const void* data,
                       std::shared_ptr<const void> keepalive);
  template <class T>
  static Tensor from_vector(DataType dtype, Dims dims, const std::vector<T>& v) {
    Tensor t(dtype, std::move(dims));
    std::copy(v.begin(), v.end(), t.data<T>());
    return t;
  }

  DataType dtype() const { return dtype_; }
  const Dims& dims() const { return dims_; }
  int64_t dim(size_t i) const { return dims_[i]; }
  size_t rank() const { return dims_.size(); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool defined() const { return dtype_ != DataType::kUndefined; }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <class T> T* data() { return static_cast<T*>(data_); }
  template <class T> const T* data() const { return static_cast<const T*>(data_); }

  Tensor clone() const;
  // Same storage, new dims with the same element count.
  Tensor reshaped(Dims dims) const;
  // Element i converted to double / int64 (any supported dtype).
  double get_f64(int64_t i) const;
  int64_t get_i64(int64_t i) const;
  void set_f64(int64_t i, double v);
  void set_i64(int64_t i, int64_t v);

 private:
  DataType dtype_ = DataType::kUndefined;
  Dims dims_;
  int64_t numel_ = 0;
  void* data_ = nullptr;
  std::shared_ptr<const void> storage_;
};

}  // namespace kiln
