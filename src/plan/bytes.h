// Little-endian byte writer and a bounds-checked reader for the plan format. The reader treats
// its input as untrusted: every read is checked, and a failure names what was being read.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/error.h"

namespace kiln {

class ByteWriter {
 public:
  std::string buf;
  template <class T> void pod(const T& v) { buf.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void u8(uint8_t v) { pod(v); }
  void u32(uint32_t v) { pod(v); }
  void i32(int32_t v) { pod(v); }
  void u64(uint64_t v) { pod(v); }
  void i64(int64_t v) { pod(v); }
  void f64(double v) { pod(v); }
  void str(std::string_view s) { u64(s.size()); buf.append(s.data(), s.size()); }
  void bytes(const void* p, size_t n) { buf.append(static_cast<const char*>(p), n); }
  void align(size_t a) { while (buf.size() % a) buf.push_back('\0'); }
};

class ByteReader {
 public:
  ByteReader(const uint8_t* p, size_t n, std::string what) : p_(p), n_(n), what_(std::move(what)) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return n_ - pos_; }
  bool done() const { return pos_ == n_; }

  void need(size_t k, const char* field) {
    if (k > n_ - pos_)
      fail(StatusCode::kCorruptPlan, "plan ", what_, ": ", field, " needs ", k,
           " bytes but only ", n_ - pos_, " remain (truncated or corrupt)");
  }
  template <class T> T pod(const char* field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  uint8_t u8(const char* f) { return pod<uint8_t>(f); }
  uint32_t u32(const char* f) { return pod<uint32_t>(f); }
  int32_t i32(const char* f) { return pod<int32_t>(f); }
  uint64_t u64(const char* f) { return pod<uint64_t>(f); }
  int64_t i64(const char* f) { return pod<int64_t>(f); }
  double f64(const char* f) { return pod<double>(f); }
  // A count of items each at least `min_item_bytes` long: bounded by the bytes that remain.
  uint64_t count(const char* f, size_t min_item_bytes = 1) {
    uint64_t c = u64(f);
    if (min_item_bytes && c > remaining() / min_item_bytes)
      fail(StatusCode::kCorruptPlan, "plan ", what_, ": ", f, " count ", c, " exceeds the data");
    return c;
  }
  std::string str(const char* f) {
    uint64_t len = u64(f);
    need(len, f);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }
  const uint8_t* bytes(size_t n, const char* f) {
    need(n, f);
    const uint8_t* r = p_ + pos_;
    pos_ += n;
    return r;
  }
  [[noreturn]] void corrupt(const std::string& msg) const {
    fail(StatusCode::kCorruptPlan, "plan ", what_, ": ", msg);
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  std::string what_;
};

}  // namespace kiln
