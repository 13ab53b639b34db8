// A small decoder of the protobuf wire format, enough for the ONNX messages (reader.cc). It reads
// straight from a byte range (a memory-mapped file) and never copies payloads. Every error is a
// kiln::Error(kInvalidModel) naming the field path ("ModelProto.graph.node[3].attribute[1]") and
// the byte offset, so that a malformed file is reported, never crashes or loops.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace kiln::onnx::wire {

enum class WireType : uint8_t {
  kVarint = 0,
  kFixed64 = 1,
  kLen = 2,
  kGroupStart = 3,
  kGroupEnd = 4,
  kFixed32 = 5,
};
const char* wire_type_name(WireType t);

// Where a message or field sits, built on the stack as the parser descends so that the text is
// only formatted when an error is reported. `name` null means an unknown field, printed by number.
struct Path {
  static constexpr size_t kNoIndex = static_cast<size_t>(-1);
  const Path* parent = nullptr;
  const char* name = nullptr;
  size_t index = kNoIndex;  // for repeated fields: "node[3]"
  uint32_t number = 0;      // for unknown fields: "field 17"

  Path(const char* root) : name(root) {}  // NOLINT: a root path from its message name
  Path(const Path& parent_path, const char* field, size_t i = kNoIndex)
      : parent(&parent_path), name(field), index(i) {}
  static Path unknown(const Path& parent_path, uint32_t field_number) {
    Path p(parent_path, nullptr);
    p.number = field_number;
    return p;
  }
  std::string str() const;
};

// Decodes one message: [data, data + size). Typical use:
//   Reader r(data, size, base, path);
//   while (r.next()) switch (r.field()) { case 1: x = r.varint(Path(path, "x")); break; ... }
// A field the caller does not read is skipped by the following next(), whatever its wire type.
class Reader {
 public:
  // `base` is the start of the whole buffer, so that errors give offsets into the file.
  // `top_level`: the message is the whole buffer (a length overrun then means a truncated file).
  Reader(const uint8_t* data, size_t size, const uint8_t* base, const Path& path,
         bool top_level = false)
      : pos_(data), end_(data + size), base_(base), path_(path), top_level_(top_level) {}

  // Moves to the next field (skipping the current one when it was not read). False at the end.
  bool next();
  uint32_t field() const { return number_; }
  WireType wire_type() const { return type_; }

  // Readers of the current field's value; each checks the wire type. `p` names the field.
  uint64_t varint(const Path& p);
  int64_t int64(const Path& p) { return static_cast<int64_t>(varint(p)); }
  uint32_t fixed32(const Path& p);
  uint64_t fixed64(const Path& p);
  float float32(const Path& p) {
    uint32_t u = fixed32(p);
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  std::string_view bytes(const Path& p);  // length-delimited payload (strings, sub-messages)
  std::string string(const Path& p) { return std::string(bytes(p)); }

  // Repeated scalars, accepted packed (one length-delimited run) or not (one value per field).
  // fn is called with each value.
  template <class Fn>
  void repeated_varint(const Path& p, Fn&& fn);
  template <class Fn>
  void repeated_fixed32(const Path& p, Fn&& fn);
  template <class Fn>
  void repeated_fixed64(const Path& p, Fn&& fn);

  // Offset of the current read position in the whole buffer.
  size_t offset() const { return static_cast<size_t>(pos_ - base_); }
  const uint8_t* base() const { return base_; }
  const Path& path() const { return path_; }

  [[noreturn]] void error(const Path& p, const std::string& what) const;

 private:
  void skip();
  void expect(const Path& p, WireType want);
  uint64_t read_varint(const Path& p, const uint8_t*& pos, const uint8_t* end);

  const uint8_t* pos_;
  const uint8_t* end_;
  const uint8_t* base_;
  const Path& path_;
  bool top_level_;
  uint32_t number_ = 0;
  WireType type_ = WireType::kVarint;
  bool pending_ = false;  // the current field's value has not been read yet
};

template <class Fn>
void Reader::repeated_varint(const Path& p, Fn&& fn) {
  if (type_ != WireType::kLen) {
    fn(varint(p));
    return;
  }
  std::string_view b = bytes(p);
  const uint8_t* q = reinterpret_cast<const uint8_t*>(b.data());
  const uint8_t* e = q + b.size();
  while (q < e) fn(read_varint(p, q, e));
}

template <class Fn>
void Reader::repeated_fixed32(const Path& p, Fn&& fn) {
  if (type_ != WireType::kLen) {
    fn(fixed32(p));
    return;
  }
  std::string_view b = bytes(p);
  if (b.size() % 4 != 0)
    error(p, "packed run of " + std::to_string(b.size()) + " bytes is not a multiple of 4");
  for (size_t i = 0; i < b.size(); i += 4) {
    uint32_t u;
    std::memcpy(&u, b.data() + i, 4);
    fn(u);
  }
}

template <class Fn>
void Reader::repeated_fixed64(const Path& p, Fn&& fn) {
  if (type_ != WireType::kLen) {
    fn(fixed64(p));
    return;
  }
  std::string_view b = bytes(p);
  if (b.size() % 8 != 0)
    error(p, "packed run of " + std::to_string(b.size()) + " bytes is not a multiple of 8");
  for (size_t i = 0; i < b.size(); i += 8) {
    uint64_t u;
    std::memcpy(&u, b.data() + i, 8);
    fn(u);
  }
}

}  // namespace kiln::onnx::wire
