// ONNX protobuf messages → kiln::onnx::*Proto (model.h), decoded with wire.h. Only the fields
// kiln uses are kept; every other field is skipped whatever its wire type, so files written by
// newer ONNX versions still load. Field numbers follow onnx/onnx.proto3.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "common/file.h"
#include "common/half.h"
#include "onnx/model.h"
#include "onnx/wire.h"

namespace kiln::onnx {

int64_t ModelProto::default_opset() const {
  int64_t v = 0;
  for (const auto& o : opset_import)
    if (o.domain.empty() || o.domain == "ai.onnx") v = std::max(v, o.version);
  return v;
}

namespace {

using wire::Path;
using wire::Reader;
using wire::WireType;

// Sub-graphs nest through attributes (If/Loop/Scan bodies); a hostile file could nest them
// deeply enough to exhaust the stack.
constexpr int kMaxGraphDepth = 64;

struct Ctx {
  const uint8_t* base = nullptr;
  std::shared_ptr<const void> keepalive;
  std::string base_dir;  // empty: parsed from memory, external data cannot be resolved
  std::map<std::string, std::shared_ptr<MappedFile>> external_files;
  int graph_depth = 0;
};

const uint8_t* bytes_of(std::string_view b) { return reinterpret_cast<const uint8_t*>(b.data()); }

Reader sub_reader(const Ctx& c, std::string_view b, const Path& p) {
  return Reader(bytes_of(b), b.size(), c.base, p);
}

[[noreturn]] void invalid(const Path& p, const std::string& what) {
  fail(StatusCode::kInvalidModel, p.str(), ": ", what);
}

// ONNX TensorProto.DataType values kiln's DataType cannot represent yet.
const char* newer_dtype_name(int64_t v) {
  switch (v) {
    case 21:
      return "uint4";
    case 22:
      return "int4";
    case 23:
      return "float4e2m1";
    default:
      return nullptr;
  }
}

// Checks an element-type enum value read from the file (TensorProto.data_type,
// TypeProto.Tensor.elem_type).
DataType to_dtype(int64_t v, const Path& p, const char* field) {
  if (v >= 0 && v <= static_cast<int64_t>(DataType::kFloat8E5M2FNUZ))
    return static_cast<DataType>(v);
  if (const char* n = newer_dtype_name(v))
    fail(StatusCode::kUnsupported, p.str(), ": ", field, " ", v, " (", n, ") is not supported");
  invalid(p, cat("unknown ", field, " value ", v));
}

// ---------------------------------------------------------------------------------------------
// TensorProto

enum class Source { kNone, kRaw, kFloat, kInt32, kString, kInt64, kDouble, kUInt64, kExternal };

const char* source_name(Source s) {
  switch (s) {
    case Source::kNone:
      return "no data";
    case Source::kRaw:
      return "raw_data";
    case Source::kFloat:
      return "float_data";
    case Source::kInt32:
      return "int32_data";
    case Source::kString:
      return "string_data";
    case Source::kInt64:
      return "int64_data";
    case Source::kDouble:
      return "double_data";
    case Source::kUInt64:
      return "uint64_data";
    case Source::kExternal:
      return "external data";
  }
  return "?";
}

// The typed repeated field that holds values of `t` (onnx.proto's comments on each field).
Source typed_source_for(DataType t) {
  switch (t) {
    case DataType::kFloat:
    case DataType::kComplex64:
      return Source::kFloat;
    case DataType::kDouble:
    case DataType::kComplex128:
      return Source::kDouble;
    case DataType::kInt64:
      return Source::kInt64;
    case DataType::kUInt32:
    case DataType::kUInt64:
      return Source::kUInt64;
    case DataType::kString:
      return Source::kString;
    default:
      return Source::kInt32;  // int32 and the narrower types, stored as int32 bits
  }
}

// The fields of one TensorProto as found on the wire, turned into a TensorProto by finish().
struct TensorFields {
  int64_t data_type = 0;
  bool has_data_type = false;
  bool has_raw = false;
  std::string_view raw;
  std::vector<float> floats;
  std::vector<int32_t> int32s;
  std::vector<int64_t> int64s;
  std::vector<double> doubles;
  std::vector<uint64_t> uint64s;
  std::vector<std::pair<std::string, std::string>> external;
  int64_t data_location = 0;
};

// A tensor over `n` bytes at `p`: borrowed (no copy) when aligned for its element type, copied
// otherwise (raw_data sits at any offset in the file).
Tensor tensor_over(DataType dt, const Dims& dims, const uint8_t* p, size_t n,
                   const std::shared_ptr<const void>& keepalive) {
  if (n == 0) return Tensor(dt, dims);
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(dt) == 0)
    return Tensor::borrow(dt, dims, p, keepalive);
  Tensor t(dt, dims);
  std::memcpy(t.raw(), p, n);
  return t;
}

bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Resolves external_data entries to the bytes they name: a memory-mapped file next to the model.
std::string_view external_bytes(Ctx& c, const TensorFields& f, const std::string& where,
                                uint64_t expected, const std::string& what,
                                std::shared_ptr<const void>& keepalive) {
  std::string location;
  bool has_location = false;
  uint64_t offset = 0, length = 0;
  bool has_length = false;
  for (const auto& [k, v] : f.external) {
    if (k == "location") {
      location = v;
      has_location = true;
    } else if (k == "offset" || k == "length") {
      uint64_t x;
      if (!parse_u64(v, x))
        fail(StatusCode::kInvalidModel, where, ": external_data ", k, " '", v,
             "' is not a non-negative integer");
      if (k == "offset") {
        offset = x;
      } else {
        length = x;
        has_length = true;
      }
    }  // "checksum" and unknown keys: ignored
  }
  KILN_EXPECT(has_location && !location.empty(), StatusCode::kInvalidModel, where,
              ": data_location is EXTERNAL but external_data has no 'location'");
  KILN_EXPECT(location[0] != '/' && location[0] != '\\', StatusCode::kInvalidModel, where,
              ": external data location '", location,
              "' is an absolute path; it must be relative to the model's directory");
  // Walk the components so that "a/../b" is fine and "../x" or "a/../../x" is not.
  int depth = 0;
  for (size_t i = 0; i <= location.size();) {
    size_t j = location.find('/', i);
    if (j == std::string::npos) j = location.size();
    std::string_view comp(location.data() + i, j - i);
    if (comp == "..") {
      KILN_EXPECT(--depth >= 0, StatusCode::kInvalidModel, where, ": external data location '",
                  location, "' escapes the model's directory ('..')");
    } else if (!comp.empty() && comp != ".") {
      ++depth;
    }
    i = j + 1;
  }
  KILN_EXPECT(!c.base_dir.empty(), StatusCode::kInvalidModel, where,
              ": the tensor's data is in external file '", location,
              "', but the model was parsed from memory without a base directory");
  // A NUL inside the location would make the name checked above and the file opened differ.
  KILN_EXPECT(location.find('\0') == std::string::npos, StatusCode::kInvalidModel, where,
              ": external data location holds a NUL byte");
  std::string path = join_path(c.base_dir, location);
  // The lexical check above does not see symbolic links: the file's real path must lie inside
  // the model's real directory too (as ONNX Runtime checks).
  {
    std::error_code ec;
    const auto real_dir = std::filesystem::weakly_canonical(c.base_dir, ec);
    const auto real_file = std::filesystem::weakly_canonical(path, ec);
    const std::string d = real_dir.string(), f = real_file.string();
    KILN_EXPECT(!ec && f.size() > d.size() && f.compare(0, d.size(), d) == 0 &&
                    (d.back() == '/' || f[d.size()] == '/'),
                StatusCode::kInvalidModel, where, ": external data location '", location,
                "' leads outside the model's directory (through a symbolic link)");
  }
  auto it = c.external_files.find(path);
  if (it == c.external_files.end()) {
    std::shared_ptr<MappedFile> mf;
    try {
      mf = MappedFile::open(path);
    } catch (const Error& e) {
      fail(e.code(), where, ": external data: ", e.message());
    }
    it = c.external_files.emplace(path, std::move(mf)).first;
  }
  const MappedFile& file = *it->second;
  uint64_t size = file.size();
  KILN_EXPECT(offset <= size, StatusCode::kInvalidModel, where, ": external data offset ", offset,
              " is past the end of '", location, "' (", size, " bytes)");
  if (!has_length) length = size - offset;
  KILN_EXPECT(length <= size - offset, StatusCode::kInvalidModel, where, ": external data offset ",
              offset, " + length ", length, " runs past the end of '", location, "' (", size,
              " bytes)");
  KILN_EXPECT(length == expected, StatusCode::kInvalidModel, where, ": external data has ", length,
              " bytes, expected ", expected, " for ", what);
  keepalive = it->second;
  return {reinterpret_cast<const char*>(file.data()) + offset, static_cast<size_t>(length)};
}

// Validates the collected fields and builds the tensor value.
void finish_tensor(Ctx& c, TensorFields& f, const Path& path, TensorProto& t) {
  std::string where = path.str();
  if (!t.name.empty()) where += " (tensor '" + t.name + "')";
  if (!f.has_data_type || f.data_type == 0)
    fail(StatusCode::kInvalidModel, where, ": data_type is missing (UNDEFINED)");
  DataType dt = to_dtype(f.data_type, path, "data_type");
  t.data_type = dt;

  // Element count, with the overflow checks a hostile file needs before anything is allocated.
  int64_t numel = 1;
  for (int64_t d : t.dims) {
    KILN_EXPECT(d >= 0, StatusCode::kInvalidModel, where, ": negative dimension ", d, " in dims ",
                dims_to_string(t.dims));
    KILN_EXPECT(!__builtin_mul_overflow(numel, d, &numel), StatusCode::kInvalidModel, where,
                ": the product of dims ", dims_to_string(t.dims), " overflows");
  }
  std::string what = cat(dtype_name(dt), dims_to_string(t.dims));
  bool is_complex = dt == DataType::kComplex64 || dt == DataType::kComplex128;
  uint64_t esize = dt == DataType::kComplex64    ? 8
                   : dt == DataType::kComplex128 ? 16
                                                 : dtype_size(dt);
  uint64_t expected_bytes = 0;
  if (esize) {
    KILN_EXPECT(static_cast<uint64_t>(numel) <= static_cast<uint64_t>(INT64_MAX) / esize,
                StatusCode::kInvalidModel, where, ": ", what,
                " is too large (byte size overflows)");
    expected_bytes = static_cast<uint64_t>(numel) * esize;
  }

  // Exactly one place holds the data.
  std::vector<Source> sources;
  if (f.has_raw) sources.push_back(Source::kRaw);
  if (!f.floats.empty()) sources.push_back(Source::kFloat);
  if (!f.int32s.empty()) sources.push_back(Source::kInt32);
  if (!t.string_data.empty()) sources.push_back(Source::kString);
  if (!f.int64s.empty()) sources.push_back(Source::kInt64);
  if (!f.doubles.empty()) sources.push_back(Source::kDouble);
  if (!f.uint64s.empty()) sources.push_back(Source::kUInt64);
  if (f.data_location == 1) {
    sources.push_back(Source::kExternal);
  } else {
    KILN_EXPECT(f.data_location == 0, StatusCode::kInvalidModel, where, ": unknown data_location ",
                f.data_location);
    KILN_EXPECT(f.external.empty(), StatusCode::kInvalidModel, where,
                ": external_data is set but data_location is not EXTERNAL");
  }
  if (sources.size() > 1)
    fail(StatusCode::kInvalidModel, where, ": has both ", source_name(sources[0]), " and ",
         source_name(sources[1]));
  Source src = sources.empty() ? Source::kNone : sources[0];
  if (src != Source::kNone && src != Source::kRaw && src != Source::kExternal &&
      src != typed_source_for(dt))
    fail(StatusCode::kInvalidModel, where, ": ", source_name(src), " cannot hold ", dtype_name(dt),
         " values (they go in ", source_name(typed_source_for(dt)), " or raw_data)");

  if (dt == DataType::kString) {
    KILN_EXPECT(src == Source::kString || (src == Source::kNone && numel == 0),
                StatusCode::kInvalidModel, where,
                ": a string tensor's values must be in string_data",
                src == Source::kNone ? "" : cat(", not ", source_name(src)));
    KILN_EXPECT(t.string_data.size() == static_cast<uint64_t>(numel), StatusCode::kInvalidModel,
                where, ": string_data has ", t.string_data.size(), " strings, expected ", numel,
                " for ", what);
    return;  // value stays undefined: kiln does not compute on strings
  }

  uint64_t n_typed = 0;
  switch (src) {
    case Source::kFloat:
      n_typed = f.floats.size();
      break;
    case Source::kInt32:
      n_typed = f.int32s.size();
      break;
    case Source::kInt64:
      n_typed = f.int64s.size();
      break;
    case Source::kDouble:
      n_typed = f.doubles.size();
      break;
    case Source::kUInt64:
      n_typed = f.uint64s.size();
      break;
    default:
      break;
  }
  uint64_t want_typed = static_cast<uint64_t>(numel) * (is_complex ? 2 : 1);
  switch (src) {
    case Source::kNone:
      KILN_EXPECT(numel == 0, StatusCode::kInvalidModel, where, ": has no data, expected ", numel,
                  " elements for ", what);
      if (!is_complex) t.value = Tensor(dt, t.dims);
      return;
    case Source::kRaw:
      KILN_EXPECT(f.raw.size() == expected_bytes, StatusCode::kInvalidModel, where,
                  ": raw_data has ", f.raw.size(), " bytes, expected ", expected_bytes, " for ",
                  what);
      if (!is_complex)
        t.value = tensor_over(dt, t.dims, bytes_of(f.raw), f.raw.size(), c.keepalive);
      return;
    case Source::kExternal: {
      std::shared_ptr<const void> keep;
      std::string_view b = external_bytes(c, f, where, expected_bytes, what, keep);
      if (!is_complex) t.value = tensor_over(dt, t.dims, bytes_of(b), b.size(), keep);
      return;
    }
    default:
      KILN_EXPECT(n_typed == want_typed, StatusCode::kInvalidModel, where, ": ", source_name(src),
                  " has ", n_typed, " values, expected ", want_typed, " for ", what);
      break;
  }
  if (is_complex) return;  // kiln has no complex tensors; the importer reports them

  Tensor v(dt, t.dims);
  switch (src) {
    case Source::kFloat:
      std::memcpy(v.raw(), f.floats.data(), f.floats.size() * 4);
      break;
    case Source::kDouble:
      std::memcpy(v.raw(), f.doubles.data(), f.doubles.size() * 8);
      break;
    case Source::kInt64:
      std::memcpy(v.raw(), f.int64s.data(), f.int64s.size() * 8);
      break;
    case Source::kUInt64:
      if (dt == DataType::kUInt64) {
        std::memcpy(v.raw(), f.uint64s.data(), f.uint64s.size() * 8);
      } else {
        for (size_t i = 0; i < f.uint64s.size(); ++i)
          v.data<uint32_t>()[i] = static_cast<uint32_t>(f.uint64s[i]);
      }
      break;
    case Source::kInt32:
      for (size_t i = 0; i < f.int32s.size(); ++i) {
        int32_t x = f.int32s[i];
        switch (dtype_size(dt)) {
          case 4:
            v.data<int32_t>()[i] = x;
            break;
          case 2:
            v.data<uint16_t>()[i] = static_cast<uint16_t>(x);
            break;  // incl. float16 bits
          case 1:
            v.data<uint8_t>()[i] = dt == DataType::kBool ? (x != 0) : static_cast<uint8_t>(x);
            break;
          default:
            KILN_CHECK(false, "int32_data for ", dtype_name(dt));
        }
      }
      break;
    default:
      KILN_CHECK(false, "unexpected tensor data source");
  }
  t.value = std::move(v);
}

void parse_string_entry(const Ctx& c, std::string_view b, const Path& path, std::string& key,
                        std::string& value) {
  Reader r = sub_reader(c, b, path);
  while (r.next()) {
    switch (r.field()) {
      case 1:
        key = r.string(Path(path, "key"));
        break;
      case 2:
        value = r.string(Path(path, "value"));
        break;
      default:
        break;
    }
  }
}

std::shared_ptr<TensorProto> parse_tensor(Ctx& c, Reader& r, const Path& path) {
  auto t = std::make_shared<TensorProto>();
  TensorFields f;
  while (r.next()) {
    switch (r.field()) {
      case 1:
        r.repeated_varint(Path(path, "dims"),
                          [&](uint64_t v) { t->dims.push_back(static_cast<int64_t>(v)); });
        break;
      case 2:
        f.data_type = r.int64(Path(path, "data_type"));
        f.has_data_type = true;
        break;
      case 3:
        r.bytes(Path(path, "segment"));
        fail(StatusCode::kUnsupported, path.str(),
             ": segmented tensors are not supported (or this is not a TensorProto: a "
             "SequenceProto's tensors use the same field number)");
      case 4:
        r.repeated_fixed32(Path(path, "float_data"),
                           [&](uint32_t u) { f.floats.push_back(bits_f32(u)); });
        break;
      case 5:
        r.repeated_varint(Path(path, "int32_data"),
                          [&](uint64_t v) { f.int32s.push_back(static_cast<int32_t>(v)); });
        break;
      case 6:
        t->string_data.push_back(r.string(Path(path, "string_data", t->string_data.size())));
        break;
      case 7:
        r.repeated_varint(Path(path, "int64_data"),
                          [&](uint64_t v) { f.int64s.push_back(static_cast<int64_t>(v)); });
        break;
      case 8:
        t->name = r.string(Path(path, "name"));
        break;
      case 9:
        f.raw = r.bytes(Path(path, "raw_data"));
        f.has_raw = true;
        break;
      case 10:
        r.repeated_fixed64(Path(path, "double_data"), [&](uint64_t u) {
          double d;
          std::memcpy(&d, &u, 8);
          f.doubles.push_back(d);
        });
        break;
      case 11:
        r.repeated_varint(Path(path, "uint64_data"), [&](uint64_t v) { f.uint64s.push_back(v); });
        break;
      case 12:
        r.bytes(Path(path, "doc_string"));
        break;
      case 13: {
        Path p(path, "external_data", f.external.size());
        std::string k, v;
        parse_string_entry(c, r.bytes(p), p, k, v);
        f.external.emplace_back(std::move(k), std::move(v));
        break;
      }
      case 14:
        f.data_location = r.int64(Path(path, "data_location"));
        break;
      default:
        break;
    }
  }
  finish_tensor(c, f, path, *t);
  return t;
}

std::shared_ptr<TensorProto> parse_tensor(Ctx& c, std::string_view b, const Path& path) {
  Reader r = sub_reader(c, b, path);
  return parse_tensor(c, r, path);
}

// ---------------------------------------------------------------------------------------------
// Types

void parse_dim(const Ctx& c, std::string_view b, const Path& path, DimProto& d) {
  Reader r = sub_reader(c, b, path);
  while (r.next()) {
    switch (r.field()) {
      case 1: {
        int64_t v = r.int64(Path(path, "dim_value"));
        // Some exporters write -1 for a dynamic dim; that is an unknown dim, not an error.
        d.has_value = v >= 0;
        d.value = v >= 0 ? v : 0;
        d.param.clear();
        break;
      }
      case 2:
        d.param = r.string(Path(path, "dim_param"));
        d.has_value = false;
        d.value = 0;
        break;
      case 3:
        r.bytes(Path(path, "denotation"));
        break;
      default:
        break;
    }
  }
}

void parse_tensor_type(const Ctx& c, std::string_view b, const Path& path, TypeProto& t) {
  Reader r = sub_reader(c, b, path);
  while (r.next()) {
    switch (r.field()) {
      case 1: {
        Path p(path, "elem_type");
        t.elem_type = to_dtype(r.int64(p), p, "elem_type");
        break;
      }
      case 2: {
        Path sp(path, "shape");
        t.has_shape = true;
        t.shape.clear();
        Reader sr = sub_reader(c, r.bytes(sp), sp);
        while (sr.next()) {
          if (sr.field() != 1) continue;
          Path dp(sp, "dim", t.shape.size());
          parse_dim(c, sr.bytes(dp), dp, t.shape.emplace_back());
        }
        break;
      }
      default:
        break;
    }
  }
}

void parse_type(const Ctx& c, std::string_view b, const Path& path, TypeProto& t) {
  Reader r = sub_reader(c, b, path);
  while (r.next()) {
    switch (r.field()) {
      case 1: {
        Path p(path, "tensor_type");
        t.kind = TypeProto::Kind::kTensor;
        parse_tensor_type(c, r.bytes(p), p, t);
        break;
      }
      case 8: {
        Path p(path, "sparse_tensor_type");
        t.kind = TypeProto::Kind::kSparseTensor;
        parse_tensor_type(c, r.bytes(p), p, t);
        break;
      }
      // Element types of sequences, maps and optionals are not decoded: kiln does not run them,
      // and not descending keeps hostile nesting off the stack.
      case 4:
        r.bytes(Path(path, "sequence_type"));
        t.kind = TypeProto::Kind::kSequence;
        break;
      case 5:
        r.bytes(Path(path, "map_type"));
        t.kind = TypeProto::Kind::kMap;
        break;
      case 9:
        r.bytes(Path(path, "optional_type"));
        t.kind = TypeProto::Kind::kOptional;
        break;
      case 6:
        r.bytes(Path(path, "denotation"));
        break;
      default:
        break;
    }
  }
}

void parse_value_info(const Ctx& c, std::string_view b, const Path& path, ValueInfoProto& v) {
  Reader r = sub_reader(c, b, path);
  while (r.next()) {
    switch (r.field()) {
      case 1:
        v.name = r.string(Path(path, "name"));
        break;
      case 2: {
        Path p(path, "type");
        parse_type(c, r.bytes(p), p, v.type);
        break;
      }
      case 3:
        v.doc = r.string(Path(path, "doc_string"));
        break;
      default:
        break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Graphs, nodes, attributes

std::shared_ptr<GraphProto> parse_graph(Ctx& c, std::string_view b, const Path& path);

void parse_attribute(Ctx& c, std::string_view b, const Path& path, AttributeProto& a) {
  using T = AttributeProto::Type;
  Reader r = sub_reader(c, b, path);
  int64_t type = 0;
  bool has_type = false;
  // Which value fields appeared, in AttributeProto::Type order, to infer a missing `type`.
  bool seen[15] = {};
  while (r.next()) {
    switch (r.field()) {
      case 1:
        a.name = r.string(Path(path, "name"));
        break;
      case 2:
        a.f = r.float32(Path(path, "f"));
        seen[int(T::kFloat)] = true;
        break;
      case 3:
        a.i = r.int64(Path(path, "i"));
        seen[int(T::kInt)] = true;
        break;
      case 4:
        a.s = r.string(Path(path, "s"));
        seen[int(T::kString)] = true;
        break;
      case 5: {
        Path p(path, "t");
        a.t = parse_tensor(c, r.bytes(p), p);
        seen[int(T::kTensor)] = true;
        break;
      }
      case 6: {
        Path p(path, "g");
        a.g = parse_graph(c, r.bytes(p), p);
        seen[int(T::kGraph)] = true;
        break;
      }
      case 7:
        r.repeated_fixed32(Path(path, "floats"),
                           [&](uint32_t u) { a.floats.push_back(bits_f32(u)); });
        seen[int(T::kFloats)] = true;
        break;
      case 8:
        r.repeated_varint(Path(path, "ints"),
                          [&](uint64_t v) { a.ints.push_back(static_cast<int64_t>(v)); });
        seen[int(T::kInts)] = true;
        break;
      case 9:
        a.strings.push_back(r.string(Path(path, "strings", a.strings.size())));
        seen[int(T::kStrings)] = true;
        break;
      case 10: {
        Path p(path, "tensors", a.tensors.size());
        a.tensors.push_back(parse_tensor(c, r.bytes(p), p));
        seen[int(T::kTensors)] = true;
        break;
      }
      case 11: {
        Path p(path, "graphs", a.graphs.size());
        a.graphs.push_back(parse_graph(c, r.bytes(p), p));
        seen[int(T::kGraphs)] = true;
        break;
      }
      case 13:
        r.bytes(Path(path, "doc_string"));
        break;
      // Sparse tensors and type protos are kept as their type only: no kiln op takes them.
      case 14:
        r.bytes(Path(path, "tp"));
        seen[int(T::kTypeProto)] = true;
        break;
      case 15:
        r.bytes(Path(path, "type_protos"));
        seen[int(T::kTypeProtos)] = true;
        break;
      case 20:
        type = r.int64(Path(path, "type"));
        has_type = true;
        break;
      case 21:
        a.ref_attr_name = r.string(Path(path, "ref_attr_name"));
        break;
      case 22:
        r.bytes(Path(path, "sparse_tensor"));
        seen[int(T::kSparseTensor)] = true;
        break;
      case 23:
        r.bytes(Path(path, "sparse_tensors"));
        seen[int(T::kSparseTensors)] = true;
        break;
      default:
        break;
    }
  }
  if (has_type && type != 0) {
    if (type < 0 || type > int(T::kTypeProtos))
      invalid(Path(path, "type"), cat("unknown attribute type ", type));
    a.type = static_cast<T>(type);
    return;
  }
  // Files from before IR version 2 leave `type` out: the field that is set says it.
  static constexpr T kInferOrder[] = {
      T::kFloat,        T::kInt,           T::kString,    T::kTensor,    T::kGraph,
      T::kFloats,       T::kInts,          T::kStrings,   T::kTensors,   T::kGraphs,
      T::kSparseTensor, T::kSparseTensors, T::kTypeProto, T::kTypeProtos};
  for (T t : kInferOrder)
    if (seen[int(t)]) {
      a.type = t;
      break;
    }
}

void parse_node(Ctx& c, std::string_view b, const Path& path, NodeProto& n) {
  Reader r = sub_reader(c, b, path);
  while (r.next()) {
    switch (r.field()) {
      case 1:
        n.input.push_back(r.string(Path(path, "input", n.input.size())));
        break;
      case 2:
        n.output.push_back(r.string(Path(path, "output", n.output.size())));
        break;
      case 3:
        n.name = r.string(Path(path, "name"));
        break;
      case 4:
        n.op_type = r.string(Path(path, "op_type"));
        break;
      case 5: {
        Path p(path, "attribute", n.attribute.size());
        parse_attribute(c, r.bytes(p), p, n.attribute.emplace_back());
        break;
      }
      case 6:
        r.bytes(Path(path, "doc_string"));
        break;
      case 7:
        n.domain = r.string(Path(path, "domain"));
        break;
      default:
        break;
    }
  }
}

void parse_graph_into(Ctx& c, Reader& r, const Path& path, GraphProto& g) {
  while (r.next()) {
    switch (r.field()) {
      case 1: {
        Path p(path, "node", g.node.size());
        parse_node(c, r.bytes(p), p, g.node.emplace_back());
        break;
      }
      case 2:
        g.name = r.string(Path(path, "name"));
        break;
      case 5: {
        Path p(path, "initializer", g.initializer.size());
        g.initializer.push_back(parse_tensor(c, r.bytes(p), p));
        break;
      }
      case 10:
        g.doc = r.string(Path(path, "doc_string"));
        break;
      case 11: {
        Path p(path, "input", g.input.size());
        parse_value_info(c, r.bytes(p), p, g.input.emplace_back());
        break;
      }
      case 12: {
        Path p(path, "output", g.output.size());
        parse_value_info(c, r.bytes(p), p, g.output.emplace_back());
        break;
      }
      case 13: {
        Path p(path, "value_info", g.value_info.size());
        parse_value_info(c, r.bytes(p), p, g.value_info.emplace_back());
        break;
      }
      case 15: {
        Path p(path, "sparse_initializer");
        r.bytes(p);
        fail(StatusCode::kUnsupported, p.str(), ": sparse initializers are not supported");
      }
      default:
        break;
    }
  }
}

std::shared_ptr<GraphProto> parse_graph(Ctx& c, std::string_view b, const Path& path) {
  if (c.graph_depth >= kMaxGraphDepth)
    invalid(path, cat("sub-graphs are nested more than ", kMaxGraphDepth, " levels deep"));
  ++c.graph_depth;
  auto g = std::make_shared<GraphProto>();
  Reader r = sub_reader(c, b, path);
  parse_graph_into(c, r, path, *g);
  --c.graph_depth;  // not restored on a throw: the whole parse is abandoned then
  return g;
}

// ---------------------------------------------------------------------------------------------
// Model

void parse_model_fields(Ctx& c, Reader& r, const Path& path, ModelProto& m) {
  bool has_ir_version = false;
  while (r.next()) {
    switch (r.field()) {
      case 1:
        m.ir_version = r.int64(Path(path, "ir_version"));
        has_ir_version = true;
        break;
      case 2:
        m.producer_name = r.string(Path(path, "producer_name"));
        break;
      case 3:
        m.producer_version = r.string(Path(path, "producer_version"));
        break;
      case 4:
        m.domain = r.string(Path(path, "domain"));
        break;
      case 5:
        m.model_version = r.int64(Path(path, "model_version"));
        break;
      case 6:
        m.doc = r.string(Path(path, "doc_string"));
        break;
      case 7: {
        Path p(path, "graph");
        std::string_view b = r.bytes(p);
        // A repeated singular message merges into the first, as protobuf does.
        if (!m.graph) m.graph = std::make_shared<GraphProto>();
        ++c.graph_depth;
        Reader gr = sub_reader(c, b, p);
        parse_graph_into(c, gr, p, *m.graph);
        --c.graph_depth;
        break;
      }
      case 8: {
        Path p(path, "opset_import", m.opset_import.size());
        OperatorSetId& o = m.opset_import.emplace_back();
        Reader orr = sub_reader(c, r.bytes(p), p);
        while (orr.next()) {
          if (orr.field() == 1)
            o.domain = orr.string(Path(p, "domain"));
          else if (orr.field() == 2)
            o.version = orr.int64(Path(p, "version"));
        }
        break;
      }
      case 14: {
        Path p(path, "metadata_props", m.metadata.size());
        std::string k, v;
        parse_string_entry(c, r.bytes(p), p, k, v);
        m.metadata[k] = std::move(v);
        break;
      }
      default:
        break;  // training_info (20), functions (25), configuration...: not used
    }
  }
  KILN_EXPECT(has_ir_version, StatusCode::kInvalidModel, path.str(),
              ": ir_version is missing; this is not an ONNX model");
  KILN_EXPECT(m.graph != nullptr, StatusCode::kInvalidModel, path.str(),
              ": the model has no graph; this is not an ONNX model");
}

// Text in place of a binary protobuf (a .onnx.txt dump, an HTML error page, a Git LFS pointer) is
// a common mistake: say so next to whatever the decoder tripped on.
bool looks_like_text(const uint8_t* data, size_t size) {
  size_t n = std::min<size_t>(size, 512);
  if (n == 0) return false;
  for (size_t i = 0; i < n; ++i) {
    uint8_t b = data[i];
    if (!(b == '\n' || b == '\r' || b == '\t' || (b >= 0x20 && b < 0x7f))) return false;
  }
  return true;
}

template <class Fn>
auto with_text_hint(const uint8_t* data, size_t size, Fn&& fn) {
  try {
    return fn();
  } catch (const Error& e) {
    if (e.code() != StatusCode::kInvalidModel || !looks_like_text(data, size)) throw;
    throw Error(e.code(), e.message() + " (the file looks like text, not a binary ONNX protobuf)",
                e.node());
  }
}

// Prefixes an error with the file it came from.
template <class Fn>
auto with_file(const std::string& path, Fn&& fn) {
  try {
    return fn();
  } catch (const Error& e) {
    throw Error(e.code(), "'" + path + "': " + e.message(), e.node());
  }
}

std::string model_dir(const std::string& path) {
  std::string d = dirname_of(path);
  return d.empty() ? std::string(".") : d;
}

}  // namespace

ModelProto parse_model(const uint8_t* data, size_t size, std::shared_ptr<const void> keepalive,
                       const std::string& base_dir) {
  KILN_EXPECT(size > 0, StatusCode::kInvalidModel, "the model is empty (0 bytes)");
  return with_text_hint(data, size, [&] {
    Ctx c;
    c.base = data;
    c.keepalive = std::move(keepalive);
    c.base_dir = base_dir;
    Path root("ModelProto");
    Reader r(data, size, data, root, /*top_level=*/true);
    ModelProto m;
    parse_model_fields(c, r, root, m);
    return m;
  });
}

TensorProto parse_tensor(const uint8_t* data, size_t size, std::shared_ptr<const void> keepalive,
                         const std::string& base_dir) {
  KILN_EXPECT(size > 0, StatusCode::kInvalidModel, "the tensor file is empty (0 bytes)");
  return with_text_hint(data, size, [&] {
    Ctx c;
    c.base = data;
    c.keepalive = std::move(keepalive);
    c.base_dir = base_dir;
    Path root("TensorProto");
    Reader r(data, size, data, root, /*top_level=*/true);
    return std::move(*parse_tensor(c, r, root));
  });
}

ModelProto read_model(const std::string& path) {
  auto file = MappedFile::open(path);
  return with_file(path,
                   [&] { return parse_model(file->data(), file->size(), file, model_dir(path)); });
}

TensorProto read_tensor(const std::string& path) {
  auto file = MappedFile::open(path);
  return with_file(path,
                   [&] { return parse_tensor(file->data(), file->size(), file, model_dir(path)); });
}

}  // namespace kiln::onnx
