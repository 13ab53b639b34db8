#include "onnx/wire.h"

#include <bit>

#include "common/error.h"

namespace kiln::onnx::wire {

// Payloads are reinterpreted in place (fixed32/fixed64, raw tensor data).
static_assert(std::endian::native == std::endian::little, "kiln reads ONNX on little-endian hosts");

const char* wire_type_name(WireType t) {
  switch (t) {
    case WireType::kVarint:
      return "varint";
    case WireType::kFixed64:
      return "64-bit";
    case WireType::kLen:
      return "length-delimited";
    case WireType::kGroupStart:
      return "start-group";
    case WireType::kGroupEnd:
      return "end-group";
    case WireType::kFixed32:
      return "32-bit";
  }
  return "invalid";
}

std::string Path::str() const {
  std::string s;
  if (parent) {
    s = parent->str();
    s += '.';
  }
  if (name) {
    s += name;
  } else {
    s += "field ";
    s += std::to_string(number);
  }
  if (index != kNoIndex) {
    s += '[';
    s += std::to_string(index);
    s += ']';
  }
  return s;
}

void Reader::error(const Path& p, const std::string& what) const {
  fail(StatusCode::kInvalidModel, p.str(), ": ", what, " (at byte ", offset(), ")");
}

uint64_t Reader::read_varint(const Path& p, const uint8_t*& pos, const uint8_t* end) {
  uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    if (pos >= end) {
      pos_ = pos;  // so that the reported offset is where the bytes ran out
      error(p, top_level_ && end == end_ ? "truncated varint (the file ends inside it)"
                                         : "truncated varint (runs past the end of its message)");
    }
    uint8_t b = *pos++;
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) return v;
  }
  error(p, "varint longer than 10 bytes");
}

bool Reader::next() {
  if (pending_) skip();
  if (pos_ >= end_) return false;
  uint64_t tag = read_varint(path_, pos_, end_);
  uint64_t number = tag >> 3;
  auto type = static_cast<uint8_t>(tag & 7);
  if (number == 0 || number > 0x1fffffff)
    error(path_, cat("invalid field number ", number, " in tag ", tag));
  number_ = static_cast<uint32_t>(number);
  Path field = Path::unknown(path_, number_);
  if (type == 3 || type == 4)
    error(field, cat("wire type ", int(type), " (groups) is not supported in ONNX files"));
  if (type > 5) error(field, cat("invalid wire type ", int(type)));
  type_ = static_cast<WireType>(type);
  pending_ = true;
  return true;
}

void Reader::expect(const Path& p, WireType want) {
  if (type_ != want)
    error(p, cat("wrong wire type ", int(type_), " (", wire_type_name(type_), "), expected ",
                 int(want), " (", wire_type_name(want), ")"));
  pending_ = false;
}

uint64_t Reader::varint(const Path& p) {
  expect(p, WireType::kVarint);
  return read_varint(p, pos_, end_);
}

uint32_t Reader::fixed32(const Path& p) {
  expect(p, WireType::kFixed32);
  if (end_ - pos_ < 4) error(p, "truncated 32-bit value (runs past the end of its message)");
  uint32_t u;
  std::memcpy(&u, pos_, 4);
  pos_ += 4;
  return u;
}

uint64_t Reader::fixed64(const Path& p) {
  expect(p, WireType::kFixed64);
  if (end_ - pos_ < 8) error(p, "truncated 64-bit value (runs past the end of its message)");
  uint64_t u;
  std::memcpy(&u, pos_, 8);
  pos_ += 8;
  return u;
}

std::string_view Reader::bytes(const Path& p) {
  expect(p, WireType::kLen);
  uint64_t len = read_varint(p, pos_, end_);
  auto left = static_cast<uint64_t>(end_ - pos_);
  if (len > left)
    error(p, cat("length ", len, " runs past the end of ",
                 top_level_ ? "the file (truncated?)" : "the enclosing message", " (", left,
                 " bytes left)"));
  std::string_view v(reinterpret_cast<const char*>(pos_), static_cast<size_t>(len));
  pos_ += len;
  return v;
}

void Reader::skip() {
  Path p = Path::unknown(path_, number_);
  switch (type_) {
    case WireType::kVarint:
      varint(p);
      break;
    case WireType::kFixed64:
      fixed64(p);
      break;
    case WireType::kLen:
      bytes(p);
      break;
    case WireType::kFixed32:
      fixed32(p);
      break;
    default:
      error(p, "cannot skip a group");  // next() already rejected these
  }
}

}  // namespace kiln::onnx::wire
