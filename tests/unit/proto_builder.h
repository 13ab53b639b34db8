// A tiny protobuf *encoder* for tests: builds ONNX models (or deliberately broken ones) as bytes,
// so that the reader and the importer can be tested without files or libprotobuf.
//
//   using namespace kiln::test::proto;
//   auto g = graph("g", {node("Relu", {"x"}, {"y"})},
//                  {value_info("x", DataType::kFloat, {"N", 3})},
//                  {value_info("y", DataType::kFloat, {"N", 3})});
//   kiln::onnx::ModelProto m = parse_bytes(model(g, 13).str());
//
// Field numbers follow onnx/onnx.proto3.
#pragma once
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/types.h"
#include "onnx/model.h"

namespace kiln::test {

class ProtoWriter {
 public:
  enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

  // Low level: a tag, a bare varint, bytes as they are (for hand-made malformed input).
  ProtoWriter& tag(uint32_t field, uint32_t wire_type) {
    return raw_varint((uint64_t{field} << 3) | wire_type);
  }
  ProtoWriter& raw_varint(uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
    return *this;
  }
  ProtoWriter& raw(std::string_view b) {
    buf_.append(b);
    return *this;
  }

  // Fields.
  ProtoWriter& varint(uint32_t field, uint64_t v) { return tag(field, kVarint).raw_varint(v); }
  ProtoWriter& int64(uint32_t field, int64_t v) { return varint(field, static_cast<uint64_t>(v)); }
  ProtoWriter& fixed32(uint32_t field, uint32_t v) {
    tag(field, kFixed32);
    return raw(std::string_view(reinterpret_cast<const char*>(&v), 4));
  }
  ProtoWriter& float32(uint32_t field, float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    return fixed32(field, u);
  }
  ProtoWriter& fixed64(uint32_t field, uint64_t v) {
    tag(field, kFixed64);
    return raw(std::string_view(reinterpret_cast<const char*>(&v), 8));
  }
  ProtoWriter& float64(uint32_t field, double v) {
    uint64_t u;
    std::memcpy(&u, &v, 8);
    return fixed64(field, u);
  }
  ProtoWriter& bytes(uint32_t field, std::string_view b) {
    tag(field, kLen).raw_varint(b.size());
    return raw(b);
  }
  ProtoWriter& message(uint32_t field, const ProtoWriter& m) { return bytes(field, m.str()); }

  // Packed repeated scalars: one length-delimited run.
  ProtoWriter& packed_varints(uint32_t field, const std::vector<int64_t>& v) {
    ProtoWriter run;
    for (int64_t x : v) run.raw_varint(static_cast<uint64_t>(x));
    return bytes(field, run.str());
  }
  ProtoWriter& packed_uvarints(uint32_t field, const std::vector<uint64_t>& v) {
    ProtoWriter run;
    for (uint64_t x : v) run.raw_varint(x);
    return bytes(field, run.str());
  }
  ProtoWriter& packed_floats(uint32_t field, const std::vector<float>& v) {
    return bytes(field, std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  }
  ProtoWriter& packed_doubles(uint32_t field, const std::vector<double>& v) {
    return bytes(field, std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * 8));
  }

  const std::string& str() const { return buf_; }
  size_t size() const { return buf_.size(); }

 private:
  std::string buf_;
};

// Builders of ONNX messages. Each returns the message's bytes as a ProtoWriter, to which a test can
// append more fields (including wrong ones) before nesting it.
namespace proto {

// The bytes of a vector of plain values, for raw_data.
template <class T>
std::string raw_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// TensorProto with name, dims and data_type, and no data yet.
inline ProtoWriter tensor(const std::string& name, DataType dt, const Dims& dims) {
  ProtoWriter w;
  for (int64_t d : dims) w.int64(1, d);
  w.int64(2, static_cast<int64_t>(dt));
  if (!name.empty()) w.bytes(8, name);
  return w;
}
inline ProtoWriter tensor_raw(const std::string& name, DataType dt, const Dims& dims,
                              const std::string& raw) {
  return tensor(name, dt, dims).bytes(9, raw);
}
inline ProtoWriter tensor_f32(const std::string& name, const Dims& dims,
                              const std::vector<float>& v) {
  return tensor_raw(name, DataType::kFloat, dims, raw_bytes(v));
}
inline ProtoWriter tensor_i64(const std::string& name, const Dims& dims,
                              const std::vector<int64_t>& v) {
  return tensor_raw(name, DataType::kInt64, dims, raw_bytes(v));
}
// Typed fields, packed.
inline ProtoWriter tensor_float_data(const std::string& name, const Dims& dims,
                                     const std::vector<float>& v) {
  return tensor(name, DataType::kFloat, dims).packed_floats(4, v);
}
inline ProtoWriter tensor_int32_data(const std::string& name, DataType dt, const Dims& dims,
                                     const std::vector<int64_t>& v) {
  return tensor(name, dt, dims).packed_varints(5, v);
}
inline ProtoWriter tensor_int64_data(const std::string& name, const Dims& dims,
                                     const std::vector<int64_t>& v) {
  return tensor(name, DataType::kInt64, dims).packed_varints(7, v);
}

// One dimension of a shape: a number, or a symbolic name; Dim() is an unknown dim.
struct Dim {
  Dim() = default;
  Dim(int64_t v) : has_value(true), value(v) {}  // NOLINT: implicit on purpose
  Dim(int v) : has_value(true), value(v) {}      // NOLINT
  Dim(const char* p) : param(p) {}               // NOLINT
  bool has_value = false;
  int64_t value = 0;
  std::string param;
};

// ValueInfoProto of a tensor with a shape.
inline ProtoWriter value_info(const std::string& name, DataType elem,
                              const std::vector<Dim>& dims) {
  ProtoWriter shape;
  for (const Dim& d : dims) {
    ProtoWriter dim;
    if (d.has_value) dim.int64(1, d.value);
    if (!d.param.empty()) dim.bytes(2, d.param);
    shape.message(1, dim);
  }
  ProtoWriter tt;
  tt.int64(1, static_cast<int64_t>(elem)).message(2, shape);
  ProtoWriter type;
  type.message(1, tt);
  ProtoWriter vi;
  vi.bytes(1, name).message(2, type);
  return vi;
}
// ValueInfoProto of a tensor of unknown rank (no shape field).
inline ProtoWriter value_info_unranked(const std::string& name, DataType elem) {
  ProtoWriter tt;
  tt.int64(1, static_cast<int64_t>(elem));
  ProtoWriter type;
  type.message(1, tt);
  ProtoWriter vi;
  vi.bytes(1, name).message(2, type);
  return vi;
}

// AttributeProto of each kind (with `type` set, as every current exporter does).
namespace attr_type {
enum : int64_t {
  kFloat = 1,
  kInt = 2,
  kString = 3,
  kTensor = 4,
  kGraph = 5,
  kFloats = 6,
  kInts = 7,
  kStrings = 8,
  kTensors = 9,
  kGraphs = 10
};
}
inline ProtoWriter attr(const std::string& name) {
  ProtoWriter a;
  a.bytes(1, name);
  return a;
}
inline ProtoWriter attr_float(const std::string& name, float v) {
  return attr(name).float32(2, v).int64(20, attr_type::kFloat);
}
inline ProtoWriter attr_int(const std::string& name, int64_t v) {
  return attr(name).int64(3, v).int64(20, attr_type::kInt);
}
inline ProtoWriter attr_string(const std::string& name, const std::string& v) {
  return attr(name).bytes(4, v).int64(20, attr_type::kString);
}
inline ProtoWriter attr_tensor(const std::string& name, const ProtoWriter& t) {
  return attr(name).message(5, t).int64(20, attr_type::kTensor);
}
inline ProtoWriter attr_graph(const std::string& name, const ProtoWriter& g) {
  return attr(name).message(6, g).int64(20, attr_type::kGraph);
}
inline ProtoWriter attr_floats(const std::string& name, const std::vector<float>& v) {
  return attr(name).packed_floats(7, v).int64(20, attr_type::kFloats);
}
inline ProtoWriter attr_ints(const std::string& name, const std::vector<int64_t>& v) {
  return attr(name).packed_varints(8, v).int64(20, attr_type::kInts);
}
inline ProtoWriter attr_strings(const std::string& name, const std::vector<std::string>& v) {
  ProtoWriter a = attr(name);
  for (const auto& s : v) a.bytes(9, s);
  return a.int64(20, attr_type::kStrings);
}
inline ProtoWriter attr_tensors(const std::string& name, const std::vector<ProtoWriter>& v) {
  ProtoWriter a = attr(name);
  for (const auto& t : v) a.message(10, t);
  return a.int64(20, attr_type::kTensors);
}
inline ProtoWriter attr_graphs(const std::string& name, const std::vector<ProtoWriter>& v) {
  ProtoWriter a = attr(name);
  for (const auto& g : v) a.message(11, g);
  return a.int64(20, attr_type::kGraphs);
}

// NodeProto.
inline ProtoWriter node(const std::string& op_type, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs,
                        const std::vector<ProtoWriter>& attrs = {}, const std::string& name = "",
                        const std::string& domain = "") {
  ProtoWriter n;
  for (const auto& i : inputs) n.bytes(1, i);
  for (const auto& o : outputs) n.bytes(2, o);
  if (!name.empty()) n.bytes(3, name);
  n.bytes(4, op_type);
  for (const auto& a : attrs) n.message(5, a);
  if (!domain.empty()) n.bytes(7, domain);
  return n;
}

// GraphProto.
inline ProtoWriter graph(const std::string& name, const std::vector<ProtoWriter>& nodes,
                         const std::vector<ProtoWriter>& inputs,
                         const std::vector<ProtoWriter>& outputs,
                         const std::vector<ProtoWriter>& initializers = {},
                         const std::vector<ProtoWriter>& value_infos = {}) {
  ProtoWriter g;
  for (const auto& n : nodes) g.message(1, n);
  g.bytes(2, name);
  for (const auto& t : initializers) g.message(5, t);
  for (const auto& i : inputs) g.message(11, i);
  for (const auto& o : outputs) g.message(12, o);
  for (const auto& v : value_infos) g.message(13, v);
  return g;
}

// OperatorSetIdProto.
inline ProtoWriter opset(const std::string& domain, int64_t version) {
  ProtoWriter o;
  if (!domain.empty()) o.bytes(1, domain);
  o.int64(2, version);
  return o;
}

// ModelProto importing the default domain at `opset_version` (plus any `extra_opsets`).
inline ProtoWriter model(const ProtoWriter& g, int64_t opset_version = 13, int64_t ir_version = 8,
                         const std::vector<ProtoWriter>& extra_opsets = {}) {
  ProtoWriter m;
  m.int64(1, ir_version).bytes(2, "kiln-test").message(7, g).message(8, opset("", opset_version));
  for (const auto& o : extra_opsets) m.message(8, o);
  return m;
}

// Parses model bytes with kiln's reader; the returned model keeps its own copy of the bytes alive.
inline onnx::ModelProto parse_bytes(std::string bytes, const std::string& base_dir = "") {
  auto keep = std::make_shared<const std::string>(std::move(bytes));
  return onnx::parse_model(reinterpret_cast<const uint8_t*>(keep->data()), keep->size(), keep,
                           base_dir);
}
inline onnx::TensorProto parse_tensor_bytes(std::string bytes) {
  auto keep = std::make_shared<const std::string>(std::move(bytes));
  return onnx::parse_tensor(reinterpret_cast<const uint8_t*>(keep->data()), keep->size(), keep);
}

}  // namespace proto
}  // namespace kiln::test
