// kiln's ONNX wire-format reader (src/onnx/reader.cc, wire.cc): models built as bytes with
// proto_builder.h, external data in a temporary directory, every malformed-input case, real files
// from the ONNX test data, and truncation/corruption robustness.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "common/error.h"
#include "common/file.h"
#include "onnx/model.h"
#include "unit/proto_builder.h"

namespace kiln {
namespace {

using test::ProtoWriter;
using namespace test::proto;  // NOLINT: the builders are the test's vocabulary
using onnx::AttributeProto;
using onnx::ModelProto;
using onnx::TensorProto;
using onnx::TypeProto;

// The message of the kiln::Error `fn` throws, checking its code; "" (and a failure) if none.
template <class Fn>
std::string error_of(Fn&& fn, StatusCode code = StatusCode::kInvalidModel) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.message();
    return e.message();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a kiln::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no error was thrown";
  return "";
}

#define EXPECT_HAS(msg, sub) \
  EXPECT_NE(std::string(msg).find(sub), std::string::npos) << "message: " << (msg)

std::string model_error(const std::string& bytes, StatusCode code = StatusCode::kInvalidModel) {
  return error_of([&] { parse_bytes(bytes); }, code);
}
std::string model_error(const ProtoWriter& m, StatusCode code = StatusCode::kInvalidModel) {
  return model_error(m.str(), code);
}
std::string tensor_error(const ProtoWriter& t, StatusCode code = StatusCode::kInvalidModel) {
  return error_of([&] { parse_tensor_bytes(t.str()); }, code);
}

ProtoWriter kv(const std::string& k, const std::string& v) {
  ProtoWriter e;
  e.bytes(1, k).bytes(2, v);
  return e;
}

// A one-node graph, valid.
ProtoWriter relu_graph() {
  return graph("g", {node("Relu", {"x"}, {"y"})}, {value_info("x", DataType::kFloat, {2, 3})},
               {value_info("y", DataType::kFloat, {2, 3})});
}

std::vector<float> floats_of(const Tensor& t) {
  std::vector<float> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(static_cast<float>(t.get_f64(i)));
  return v;
}
std::vector<int64_t> ints_of(const Tensor& t) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.get_i64(i));
  return v;
}

// ---------------------------------------------------------------------------------------------
// A model using every message and attribute kind.

ProtoWriter body_graph() {
  return graph("body", {node("Identity", {"a"}, {"b"}, {}, "inner")},
               {value_info("a", DataType::kFloat, {2})}, {value_info("b", DataType::kFloat, {2})},
               {tensor_f32("sub_w", {2}, {7.f, 8.f})});
}

ProtoWriter full_model() {
  ProtoWriter empty_body = graph("empty", {}, {}, {});
  std::vector<ProtoWriter> attrs = {
      attr_float("alpha", 0.25f),
      attr_int("axis", -3),
      attr_string("mode", "constant"),
      attr_tensor("value", tensor_f32("", {2, 2}, {1.f, 2.f, 3.f, 4.f})),
      attr_graph("body", body_graph()),
      attr_floats("scales", {1.5f, -2.f}),
      attr_ints("pads", {0, 1, -1, int64_t{1} << 40}),
      attr_strings("names", {"x", ""}),
      attr_tensors("ts", {tensor_i64("", {1}, {42}), tensor_float_data("", {}, {3.5f})}),
      attr_graphs("gs", {empty_body, body_graph()}),
      // Pre-IR-2 files leave out `type`: inferred from the field that is set.
      attr("legacy_ints").int64(8, 5).int64(8, 6),  // unpacked
      attr("legacy_f").float32(2, 2.5f),
      attr("legacy_g").message(6, empty_body),
      attr("legacy_s").bytes(4, "abc"),
      attr("ref").bytes(21, "outer_alpha").int64(20, 1),
  };
  std::vector<ProtoWriter> inits = {
      tensor_f32("W", {2, 3}, {1.f, -2.f, 3.5f, 0.f, 1e-3f, -7.f}),
      tensor_float_data("B", {3}, {0.5f, -0.25f, 8.f}),
      tensor_raw("H", DataType::kFloat16, {3},
                 raw_bytes(std::vector<uint16_t>{0x3C00, 0xC000, 0x7BFF})),
      tensor_int32_data("BF", DataType::kBFloat16, {2}, {0x3F80, 0xC040}),
      tensor("I", DataType::kInt64, {3}).int64(7, -1).int64(7, 0).int64(7, int64_t{1} << 50),
      tensor("S", DataType::kString, {2}).bytes(6, "hello").bytes(6, ""),
  };
  ProtoWriter g =
      graph("main",
            {node("Custom", {"X", "", "W"}, {"Y"}, attrs, "n0", "com.example"),
             node("Relu", {"Y"}, {"Z"})},
            {value_info("X", DataType::kFloat, {"N", 3, Dim()}),
             value_info("W", DataType::kFloat, {2, 3}), value_info_unranked("U", DataType::kInt64),
             value_info("s", DataType::kBool, {})},
            {value_info("Z", DataType::kFloat, {"N", 3, 4})}, inits,
            {value_info("Y", DataType::kFloat, {"N", 3, 4})});
  g.bytes(10, "graph doc");
  ProtoWriter m = model(g, 13, 8, {opset("com.example", 2)});
  m.bytes(3, "1.2.3").bytes(4, "org.kiln").int64(5, 42).bytes(6, "model doc");
  m.message(14, kv("author", "kiln")).message(14, kv("license", "MIT"));
  return m;
}

TEST(OnnxReader, FullModelRoundTrip) {
  ModelProto m = parse_bytes(full_model().str());
  EXPECT_EQ(m.ir_version, 8);
  EXPECT_EQ(m.producer_name, "kiln-test");
  EXPECT_EQ(m.producer_version, "1.2.3");
  EXPECT_EQ(m.domain, "org.kiln");
  EXPECT_EQ(m.model_version, 42);
  EXPECT_EQ(m.doc, "model doc");
  EXPECT_EQ(m.metadata.at("author"), "kiln");
  EXPECT_EQ(m.metadata.at("license"), "MIT");
  ASSERT_EQ(m.opset_import.size(), 2u);
  EXPECT_EQ(m.opset_import[1].domain, "com.example");
  EXPECT_EQ(m.opset_import[1].version, 2);
  EXPECT_EQ(m.default_opset(), 13);

  ASSERT_TRUE(m.graph);
  const onnx::GraphProto& g = *m.graph;
  EXPECT_EQ(g.name, "main");
  EXPECT_EQ(g.doc, "graph doc");

  // Inputs: symbolic, known and unknown dims; unknown rank; scalar.
  ASSERT_EQ(g.input.size(), 4u);
  const TypeProto& xt = g.input[0].type;
  EXPECT_EQ(g.input[0].name, "X");
  EXPECT_EQ(xt.kind, TypeProto::Kind::kTensor);
  EXPECT_EQ(xt.elem_type, DataType::kFloat);
  ASSERT_TRUE(xt.has_shape);
  ASSERT_EQ(xt.shape.size(), 3u);
  EXPECT_FALSE(xt.shape[0].has_value);
  EXPECT_EQ(xt.shape[0].param, "N");
  EXPECT_TRUE(xt.shape[1].has_value);
  EXPECT_EQ(xt.shape[1].value, 3);
  EXPECT_FALSE(xt.shape[2].has_value);
  EXPECT_EQ(xt.shape[2].param, "");
  EXPECT_FALSE(g.input[2].type.has_shape);
  EXPECT_EQ(g.input[2].type.elem_type, DataType::kInt64);
  EXPECT_TRUE(g.input[3].type.has_shape);
  EXPECT_TRUE(g.input[3].type.shape.empty());
  EXPECT_EQ(g.input[3].type.elem_type, DataType::kBool);
  ASSERT_EQ(g.output.size(), 1u);
  EXPECT_EQ(g.output[0].name, "Z");
  EXPECT_EQ(g.output[0].type.shape[2].value, 4);
  ASSERT_EQ(g.value_info.size(), 1u);
  EXPECT_EQ(g.value_info[0].name, "Y");

  // Initializers.
  ASSERT_EQ(g.initializer.size(), 6u);
  const TensorProto& w = *g.initializer[0];
  EXPECT_EQ(w.name, "W");
  EXPECT_EQ(w.data_type, DataType::kFloat);
  EXPECT_EQ(w.dims, (Dims{2, 3}));
  EXPECT_EQ(w.value.dims(), (Dims{2, 3}));
  EXPECT_EQ(floats_of(w.value), (std::vector<float>{1.f, -2.f, 3.5f, 0.f, 1e-3f, -7.f}));
  EXPECT_EQ(floats_of(g.initializer[1]->value), (std::vector<float>{0.5f, -0.25f, 8.f}));
  const Tensor& h = g.initializer[2]->value;
  EXPECT_EQ(h.dtype(), DataType::kFloat16);
  EXPECT_EQ(floats_of(h), (std::vector<float>{1.f, -2.f, 65504.f}));
  const Tensor& bf = g.initializer[3]->value;
  EXPECT_EQ(bf.dtype(), DataType::kBFloat16);
  EXPECT_EQ(bf.data<uint16_t>()[1], 0xC040);
  EXPECT_EQ(floats_of(bf), (std::vector<float>{1.f, -3.f}));
  EXPECT_EQ(ints_of(g.initializer[4]->value), (std::vector<int64_t>{-1, 0, int64_t{1} << 50}));
  const TensorProto& s = *g.initializer[5];
  EXPECT_EQ(s.data_type, DataType::kString);
  EXPECT_FALSE(s.value.defined());
  EXPECT_EQ(s.string_data, (std::vector<std::string>{"hello", ""}));

  // Nodes.
  ASSERT_EQ(g.node.size(), 2u);
  const onnx::NodeProto& n = g.node[0];
  EXPECT_EQ(n.name, "n0");
  EXPECT_EQ(n.op_type, "Custom");
  EXPECT_EQ(n.domain, "com.example");
  EXPECT_EQ(n.input, (std::vector<std::string>{"X", "", "W"}));
  EXPECT_EQ(n.output, (std::vector<std::string>{"Y"}));
  EXPECT_EQ(g.node[1].op_type, "Relu");
  EXPECT_EQ(g.node[1].domain, "");
  ASSERT_EQ(n.attribute.size(), 15u);
  using T = AttributeProto::Type;
  const AttributeProto* a = n.attr("alpha");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->type, T::kFloat);
  EXPECT_EQ(a->f, 0.25f);
  EXPECT_EQ(n.attr("axis")->type, T::kInt);
  EXPECT_EQ(n.attr("axis")->i, -3);
  EXPECT_EQ(n.attr("mode")->type, T::kString);
  EXPECT_EQ(n.attr("mode")->s, "constant");
  a = n.attr("value");
  EXPECT_EQ(a->type, T::kTensor);
  ASSERT_TRUE(a->t);
  EXPECT_EQ(a->t->dims, (Dims{2, 2}));
  EXPECT_EQ(floats_of(a->t->value), (std::vector<float>{1.f, 2.f, 3.f, 4.f}));
  a = n.attr("body");
  EXPECT_EQ(a->type, T::kGraph);
  ASSERT_TRUE(a->g);
  EXPECT_EQ(a->g->name, "body");
  ASSERT_EQ(a->g->node.size(), 1u);
  EXPECT_EQ(a->g->node[0].name, "inner");
  EXPECT_EQ(a->g->node[0].op_type, "Identity");
  ASSERT_EQ(a->g->initializer.size(), 1u);
  EXPECT_EQ(floats_of(a->g->initializer[0]->value), (std::vector<float>{7.f, 8.f}));
  EXPECT_EQ(a->g->output[0].name, "b");
  EXPECT_EQ(n.attr("scales")->type, T::kFloats);
  EXPECT_EQ(n.attr("scales")->floats, (std::vector<float>{1.5f, -2.f}));
  EXPECT_EQ(n.attr("pads")->type, T::kInts);
  EXPECT_EQ(n.attr("pads")->ints, (std::vector<int64_t>{0, 1, -1, int64_t{1} << 40}));
  EXPECT_EQ(n.attr("names")->type, T::kStrings);
  EXPECT_EQ(n.attr("names")->strings, (std::vector<std::string>{"x", ""}));
  a = n.attr("ts");
  EXPECT_EQ(a->type, T::kTensors);
  ASSERT_EQ(a->tensors.size(), 2u);
  EXPECT_EQ(ints_of(a->tensors[0]->value), (std::vector<int64_t>{42}));
  EXPECT_EQ(a->tensors[1]->value.rank(), 0u);
  EXPECT_EQ(floats_of(a->tensors[1]->value), (std::vector<float>{3.5f}));
  a = n.attr("gs");
  EXPECT_EQ(a->type, T::kGraphs);
  ASSERT_EQ(a->graphs.size(), 2u);
  EXPECT_EQ(a->graphs[0]->name, "empty");
  EXPECT_EQ(a->graphs[1]->name, "body");
  EXPECT_EQ(n.attr("legacy_ints")->type, T::kInts);
  EXPECT_EQ(n.attr("legacy_ints")->ints, (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(n.attr("legacy_f")->type, T::kFloat);
  EXPECT_EQ(n.attr("legacy_f")->f, 2.5f);
  EXPECT_EQ(n.attr("legacy_g")->type, T::kGraph);
  EXPECT_EQ(n.attr("legacy_g")->g->name, "empty");
  EXPECT_EQ(n.attr("legacy_s")->type, T::kString);
  EXPECT_EQ(n.attr("ref")->ref_attr_name, "outer_alpha");
  EXPECT_EQ(n.attr("ref")->type, T::kFloat);
}

TEST(OnnxReader, TensorsOutliveTheCallersBuffer) {
  // parse_bytes hands its own copy of the bytes to the reader as keepalive; weights borrow it.
  ModelProto m;
  {
    std::string bytes = full_model().str();
    m = parse_bytes(bytes);
    bytes.assign(bytes.size(), '\xff');
  }
  EXPECT_EQ(floats_of(m.graph->initializer[0]->value),
            (std::vector<float>{1.f, -2.f, 3.5f, 0.f, 1e-3f, -7.f}));
}

TEST(OnnxReader, DefaultOpset) {
  ModelProto m;
  EXPECT_EQ(m.default_opset(), 0);
  m.opset_import = {{"com.microsoft", 1}, {"ai.onnx", 17}};
  EXPECT_EQ(m.default_opset(), 17);
  m.opset_import = {{"", 9}};
  EXPECT_EQ(m.default_opset(), 9);
}

TEST(OnnxReader, UnknownFieldsOfEveryWireTypeAreSkipped) {
  auto junk = [](ProtoWriter w) {
    return w.varint(999, 12345).fixed64(998, 7).bytes(997, "zzz").fixed32(996, 1);
  };
  ProtoWriter t = junk(tensor_f32("w", {2}, {1.f, 2.f}));
  ProtoWriter a = junk(attr_tensor("value", t));
  ProtoWriter n = junk(node("Constant", {}, {"c"}, {a}));
  ProtoWriter vi = junk(value_info("c", DataType::kFloat, {2}));
  ProtoWriter g = junk(graph("g", {n}, {}, {vi}, {t}));
  ProtoWriter m = junk(model(g));
  m.bytes(25, "a function");  // functions: skipped
  ModelProto p = parse_bytes(m.str());
  EXPECT_EQ(floats_of(p.graph->node[0].attr("value")->t->value), (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(floats_of(p.graph->initializer[0]->value), (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(p.graph->output[0].type.shape[0].value, 2);
}

// ---------------------------------------------------------------------------------------------
// Tensors of every element type, from raw_data and from the typed fields.

TEST(OnnxReader, TypedFieldsOfEveryElementType) {
  struct Case {
    DataType dt;
    ProtoWriter t;
    std::vector<uint8_t> expect_bytes;
  };
  auto le = [](std::initializer_list<uint64_t> vals, size_t width) {
    std::vector<uint8_t> b;
    for (uint64_t v : vals)
      for (size_t i = 0; i < width; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return b;
  };
  std::vector<Case> cases;
  cases.push_back(
      {DataType::kUInt8, tensor_int32_data("", DataType::kUInt8, {3}, {0, 255, 7}), {0, 255, 7}});
  cases.push_back({DataType::kInt8,
                   tensor_int32_data("", DataType::kInt8, {3}, {-1, 127, -128}),
                   {0xff, 0x7f, 0x80}});
  cases.push_back({DataType::kUInt16, tensor_int32_data("", DataType::kUInt16, {2}, {65535, 1}),
                   le({65535, 1}, 2)});
  cases.push_back({DataType::kInt16, tensor_int32_data("", DataType::kInt16, {2}, {-32768, 5}),
                   le({0x8000, 5}, 2)});
  cases.push_back({DataType::kInt32, tensor_int32_data("", DataType::kInt32, {2}, {-5, 2147483647}),
                   le({0xfffffffb, 0x7fffffff}, 4)});
  cases.push_back(
      {DataType::kBool, tensor_int32_data("", DataType::kBool, {3}, {1, 0, 1}), {1, 0, 1}});
  cases.push_back({DataType::kFloat16,
                   tensor_int32_data("", DataType::kFloat16, {2}, {0x3C00, 0xC000}),
                   le({0x3C00, 0xC000}, 2)});
  cases.push_back({DataType::kBFloat16,
                   tensor_int32_data("", DataType::kBFloat16, {2}, {0x3F80, 0x4049}),
                   le({0x3F80, 0x4049}, 2)});
  cases.push_back({DataType::kInt64, tensor_int64_data("", {2}, {-9000000000000000000LL, 3}),
                   le({static_cast<uint64_t>(-9000000000000000000LL), 3}, 8)});
  cases.push_back({DataType::kUInt32,
                   tensor("", DataType::kUInt32, {2}).packed_uvarints(11, {4294967295u, 1}),
                   le({4294967295u, 1}, 4)});
  cases.push_back({DataType::kUInt64,
                   tensor("", DataType::kUInt64, {2}).packed_uvarints(11, {~uint64_t{0}, 0}),
                   le({~uint64_t{0}, 0}, 8)});
  cases.push_back({DataType::kDouble,
                   tensor("", DataType::kDouble, {2}).packed_doubles(10, {1.5, -2.25}),
                   le({0x3FF8000000000000ull, 0xC002000000000000ull}, 8)});
  cases.push_back({DataType::kFloat,
                   tensor("", DataType::kFloat, {2}).float32(4, 1.f).float32(4, -0.5f),  // unpacked
                   le({0x3F800000, 0xBF000000}, 4)});
  cases.push_back({DataType::kDouble,
                   tensor("", DataType::kDouble, {1}).float64(10, 0.1),  // unpacked
                   le({0x3FB999999999999Aull}, 8)});
  cases.push_back({DataType::kInt32,  // unpacked int32_data
                   tensor("", DataType::kInt32, {2}).int64(5, -2).int64(5, 300),
                   le({0xfffffffe, 300}, 4)});
  for (const Case& c : cases) {
    SCOPED_TRACE(dtype_name(c.dt));
    TensorProto t = parse_tensor_bytes(c.t.str());
    ASSERT_EQ(t.data_type, c.dt);
    ASSERT_TRUE(t.value.defined());
    ASSERT_EQ(t.value.dtype(), c.dt);
    ASSERT_EQ(t.value.nbytes(), c.expect_bytes.size());
    std::vector<uint8_t> got(t.value.data<uint8_t>(), t.value.data<uint8_t>() + t.value.nbytes());
    EXPECT_EQ(got, c.expect_bytes);
  }
}

TEST(OnnxReader, RawDataOfEveryElementType) {
  const DataType types[] = {DataType::kFloat,   DataType::kUInt8,  DataType::kInt8,
                            DataType::kUInt16,  DataType::kInt16,  DataType::kInt32,
                            DataType::kInt64,   DataType::kBool,   DataType::kFloat16,
                            DataType::kDouble,  DataType::kUInt32, DataType::kUInt64,
                            DataType::kBFloat16};
  for (DataType dt : types) {
    SCOPED_TRACE(dtype_name(dt));
    size_t es = dtype_size(dt);
    std::string raw;
    for (size_t i = 0; i < 3 * es; ++i) raw.push_back(static_cast<char>(i % 2 ? 1 : 0));
    TensorProto t = parse_tensor_bytes(tensor_raw("r", dt, {1, 3}, raw).str());
    EXPECT_EQ(t.name, "r");
    ASSERT_EQ(t.value.dtype(), dt);
    EXPECT_EQ(t.value.dims(), (Dims{1, 3}));
    EXPECT_EQ(std::string(t.value.data<char>(), t.value.nbytes()), raw);
  }
  // Empty tensors need no data at all.
  TensorProto e = parse_tensor_bytes(tensor("e", DataType::kFloat, {0, 4}).str());
  EXPECT_TRUE(e.value.defined());
  EXPECT_EQ(e.value.numel(), 0);
}

TEST(OnnxReader, StringAndComplexTensorsLeaveValueUndefined) {
  TensorProto s = parse_tensor_bytes(
      tensor("s", DataType::kString, {3}).bytes(6, "a").bytes(6, "bc").bytes(6, "").str());
  EXPECT_FALSE(s.value.defined());
  EXPECT_EQ(s.string_data, (std::vector<std::string>{"a", "bc", ""}));
  TensorProto c64 = parse_tensor_bytes(
      tensor("c", DataType::kComplex64, {2}).packed_floats(4, {1, 2, 3, 4}).str());
  EXPECT_EQ(c64.data_type, DataType::kComplex64);
  EXPECT_FALSE(c64.value.defined());
  TensorProto c128 =
      parse_tensor_bytes(tensor_raw("c", DataType::kComplex128, {1}, std::string(16, '\0')).str());
  EXPECT_EQ(c128.data_type, DataType::kComplex128);
  EXPECT_FALSE(c128.value.defined());
}

TEST(OnnxReader, RawDataIsBorrowedWhenAlignedAndCopiedOtherwise) {
  std::vector<float> vals = {1.5f, -2.f, 3.25f, 1e9f};
  std::string bytes = tensor_f32("t", {4}, vals).str();
  size_t payload = bytes.find(raw_bytes(vals));
  ASSERT_NE(payload, std::string::npos);
  for (size_t shift = 0; shift < 4; ++shift) {
    SCOPED_TRACE(shift);
    auto storage = std::make_shared<std::vector<uint64_t>>(bytes.size() / 8 + 2);
    uint8_t* start = reinterpret_cast<uint8_t*>(storage->data()) + shift;
    std::memcpy(start, bytes.data(), bytes.size());
    TensorProto t = onnx::parse_tensor(start, bytes.size(), storage);
    auto* p = static_cast<const uint8_t*>(t.value.raw());
    bool borrowed = p >= start && p < start + bytes.size();
    EXPECT_EQ(borrowed, (reinterpret_cast<uintptr_t>(start) + payload) % 4 == 0);
    if (borrowed) {
      EXPECT_EQ(p, start + payload);
    }
    EXPECT_EQ(floats_of(t.value), vals);
  }
}

// ---------------------------------------------------------------------------------------------
// External data

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "kiln_reader_XXXXXX";
    char* d = ::mkdtemp(tmpl.data());
    EXPECT_NE(d, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    // Only what the tests wrote, by name.
    for (auto it = files_.rbegin(); it != files_.rend(); ++it) {
      if (::unlink(it->c_str()) != 0) ::rmdir(it->c_str());
    }
    ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& bytes) {
    std::string p = path_ + "/" + name;
    write_file(p, bytes);
    files_.push_back(p);
    return p;
  }
  std::string mkdir(const std::string& name) {
    std::string p = path_ + "/" + name;
    ::mkdir(p.c_str(), 0755);
    files_.insert(files_.begin(), p);  // removed last
    return p;
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

ProtoWriter external_tensor(const std::string& name, const Dims& dims,
                            const std::vector<std::pair<std::string, std::string>>& entries) {
  ProtoWriter t = tensor(name, DataType::kFloat, dims);
  for (const auto& [k, v] : entries) t.message(13, kv(k, v));
  return t.int64(14, 1);
}

std::string model_with_initializer(const ProtoWriter& t) {
  return model(graph("g", {node("Relu", {"w"}, {"y"})}, {},
                     {value_info("y", DataType::kFloat, {2, 3})}, {t}))
      .str();
}

TEST(OnnxReader, ExternalData) {
  TempDir dir;
  dir.mkdir("weights");
  dir.mkdir("sub");
  std::vector<float> w = {1.f, 2.f, -3.f, 4.5f, 1e-6f, 6.f};
  std::string data = std::string(8, 'J') + raw_bytes(w) + "J" + raw_bytes(w) + "tail";
  dir.write("weights/w.bin", data);

  std::string model_path = dir.write(
      "model.onnx",
      model_with_initializer(external_tensor(
          "w", {2, 3}, {{"location", "weights/w.bin"}, {"offset", "8"}, {"length", "24"}})));
  ModelProto m = onnx::read_model(model_path);
  const Tensor& v = m.graph->initializer[0]->value;
  EXPECT_EQ(v.dims(), (Dims{2, 3}));
  EXPECT_EQ(floats_of(v), w);

  // Unaligned offset: copied, same values. Without length: to the end of the file.
  dir.write("weights/tail.bin", std::string(5, 'J') + raw_bytes(w));
  std::string p2 = dir.write(
      "model2.onnx", model_with_initializer(external_tensor(
                         "w", {2, 3}, {{"location", "sub/../weights/tail.bin"}, {"offset", "5"}})));
  EXPECT_EQ(floats_of(onnx::read_model(p2).graph->initializer[0]->value), w);

  auto error_for = [&](const std::vector<std::pair<std::string, std::string>>& entries,
                       StatusCode code = StatusCode::kInvalidModel) {
    std::string p =
        dir.write("bad.onnx", model_with_initializer(external_tensor("w", {2, 3}, entries)));
    return error_of([&] { onnx::read_model(p); }, code);
  };
  std::string e = error_for({{"location", "/etc/passwd"}});
  EXPECT_HAS(e, "absolute path");
  EXPECT_HAS(e, "ModelProto.graph.initializer[0] (tensor 'w')");
  EXPECT_HAS(error_for({{"location", "../w.bin"}}), "escapes the model's directory");
  EXPECT_HAS(error_for({{"location", "sub/../../w.bin"}}), "escapes the model's directory");
  EXPECT_HAS(error_for({{"offset", "8"}}), "no 'location'");
  EXPECT_HAS(error_for({{"location", "weights/w.bin"}, {"offset", "-8"}}),
             "not a non-negative integer");
  EXPECT_HAS(error_for({{"location", "weights/w.bin"}, {"offset", "60"}, {"length", "24"}}),
             "runs past the end of 'weights/w.bin'");
  EXPECT_HAS(error_for({{"location", "weights/w.bin"}, {"offset", "1000"}}), "past the end");
  EXPECT_HAS(error_for({{"location", "weights/w.bin"}, {"offset", "8"}, {"length", "20"}}),
             "external data has 20 bytes, expected 24 for float32[2,3]");
  EXPECT_HAS(error_for({{"location", "weights/w.bin"}}), "expected 24");  // whole file: too long
  EXPECT_HAS(error_for({{"location", "weights/missing.bin"}}, StatusCode::kIoError), "cannot open");
  // A symbolic link inside the folder that leads out of it (the lexical check cannot see it), and
  // a NUL inside the location (the checked and the opened names would differ).
  TempDir outside;
  const std::string secret = outside.write("secret.bin", std::string(8, 'J') + raw_bytes(w));
  ASSERT_EQ(::symlink(secret.c_str(), (dir.path() + "/weights/link.bin").c_str()), 0);
  EXPECT_HAS(error_for({{"location", "weights/link.bin"}, {"offset", "8"}}),
             "leads outside the model's directory");
  ::unlink((dir.path() + "/weights/link.bin").c_str());
  EXPECT_HAS(error_for({{"location", std::string("weights/w.bin\0../../x", 22)}, {"offset", "8"}}),
             "NUL");

  // From memory without a base directory, external data cannot be found.
  std::string bytes = model_with_initializer(external_tensor(
      "w", {2, 3}, {{"location", "weights/w.bin"}, {"offset", "8"}, {"length", "24"}}));
  EXPECT_HAS(model_error(bytes), "without a base directory");
  EXPECT_EQ(floats_of(parse_bytes(bytes, dir.path()).graph->initializer[0]->value), w);
  // data_location and external_data must agree.
  EXPECT_HAS(model_error(model_with_initializer(
                 tensor("w", DataType::kFloat, {2, 3}).message(13, kv("location", "x")))),
             "data_location is not EXTERNAL");
  EXPECT_HAS(
      model_error(model_with_initializer(
          external_tensor("w", {2, 3}, {{"location", "x"}}).bytes(9, std::string(24, '\0')))),
      "has both raw_data and external data");
}

// ---------------------------------------------------------------------------------------------
// Malformed input: a clear kInvalidModel naming the field, never a crash.

TEST(OnnxReader, EmptyAndNonOnnxFiles) {
  EXPECT_HAS(error_of([] { onnx::parse_model(nullptr, 0, nullptr); }), "empty");
  TempDir dir;
  std::string empty = dir.write("empty.onnx", "");
  EXPECT_HAS(error_of([&] { onnx::read_model(empty); }), "empty");
  std::string text = dir.write("model.onnx.txt",
                               "ir_version: 8\nproducer_name: \"pytorch\"\ngraph {\n  node {\n"
                               "    input: \"x\"\n  }\n}\n");
  std::string e = error_of([&] { onnx::read_model(text); });
  EXPECT_HAS(e, "looks like text");
  EXPECT_HAS(e, text);
  EXPECT_HAS(model_error(std::string("hello world, this is not a model\n")), "looks like text");
  EXPECT_HAS(error_of([&] { onnx::read_model(dir.path() + "/nope.onnx"); }, StatusCode::kIoError),
             "cannot open");
  // Valid protobuf, but not a model.
  EXPECT_HAS(model_error(ProtoWriter().varint(1, 8)), "no graph");
  EXPECT_HAS(model_error(ProtoWriter().message(7, relu_graph())), "ir_version is missing");
}

TEST(OnnxReader, TruncatedFile) {
  std::string bytes = model(relu_graph()).str();
  // The last field is opset_import.
  std::string e = model_error(bytes.substr(0, bytes.size() - 1));
  EXPECT_HAS(e, "ModelProto.opset_import[0]: length");
  EXPECT_HAS(e, "runs past the end of the file");
  size_t graph_at = bytes.find(relu_graph().str());
  e = model_error(bytes.substr(0, graph_at + 10));
  EXPECT_HAS(e, "ModelProto.graph: length");
  EXPECT_HAS(e, "runs past the end");
  // Inside a varint.
  EXPECT_HAS(model_error(std::string("\x08\x96", 2)), "ModelProto.ir_version: truncated varint");
}

TEST(OnnxReader, VarintLongerThanTenBytes) {
  std::string e = model_error(ProtoWriter().tag(1, 0).raw(std::string(11, '\x80')).raw("\x01"));
  EXPECT_HAS(e, "ModelProto.ir_version: varint longer than 10 bytes");
  // In a packed run, and as a tag.
  ProtoWriter bad_attr = attr("pads").bytes(8, std::string(12, '\xff'));
  e = model_error(model(graph("g", {node("Pad", {"x"}, {"y"}, {bad_attr})}, {}, {})));
  EXPECT_HAS(e, "ModelProto.graph.node[0].attribute[0].ints: varint longer than 10 bytes");
  EXPECT_HAS(model_error(std::string(12, '\xff')), "varint longer than 10 bytes");
}

TEST(OnnxReader, LengthRunsPastEnclosingMessage) {
  // An attribute claims 50 bytes inside a node that has 3 left, in a file with plenty more.
  ProtoWriter bad_node;
  bad_node.bytes(4, "Relu").tag(5, 2).raw_varint(50).raw("abc");
  ProtoWriter g;
  g.message(1, bad_node).bytes(2, std::string(100, 'x'));
  std::string e = model_error(model(g));
  EXPECT_HAS(e,
             "ModelProto.graph.node[0].attribute[0]: length 50 runs past the end of the "
             "enclosing message (3 bytes left)");
  // A huge length (beyond 2 GB and 4 GB) is no different.
  ProtoWriter m;
  m.int64(1, 8).tag(7, 2).raw_varint(uint64_t{1} << 62).raw("xyz");
  EXPECT_HAS(model_error(m), "ModelProto.graph: length 4611686018427387904 runs past the end");
}

TEST(OnnxReader, WrongWireTypeForKnownField) {
  ProtoWriter m;
  m.bytes(1, "8").message(7, relu_graph());
  EXPECT_HAS(model_error(m),
             "ModelProto.ir_version: wrong wire type 2 (length-delimited), expected 0 (varint)");
  ProtoWriter n = node("Foo", {"x"}, {"y"}, {attr_int("a", 1), attr("b").fixed32(3, 5)});
  EXPECT_HAS(model_error(model(graph("g", {n}, {}, {}))),
             "ModelProto.graph.node[0].attribute[1].i: wrong wire type 5");
  ProtoWriter g = relu_graph();
  g.varint(1, 3);  // node as a varint
  EXPECT_HAS(model_error(model(g)), "ModelProto.graph.node[1]: wrong wire type 0");
  EXPECT_HAS(tensor_error(tensor("t", DataType::kFloat, {1}).fixed64(4, 0)),
             "TensorProto.float_data: wrong wire type 1");
}

TEST(OnnxReader, GroupsAndBadTags) {
  EXPECT_HAS(model_error(ProtoWriter().int64(1, 8).tag(7, 3)), "groups");
  EXPECT_HAS(model_error(ProtoWriter().int64(1, 8).tag(9, 4)), "groups");
  EXPECT_HAS(model_error(ProtoWriter().int64(1, 8).tag(9, 6)), "invalid wire type 6");
  EXPECT_HAS(model_error(ProtoWriter().int64(1, 8).tag(0, 0).raw_varint(1)),
             "invalid field number 0");
}

TEST(OnnxReader, TensorDataSizeMismatchNamesTheField) {
  std::vector<ProtoWriter> nodes;
  for (int i = 0; i < 3; ++i) nodes.push_back(node("Relu", {"x"}, {"x" + std::to_string(i)}));
  nodes.push_back(node(
      "Constant", {}, {"c"},
      {attr_int("a", 1),
       attr_tensor("value", tensor_raw("", DataType::kFloat, {2, 2}, std::string(12, '\0')))}));
  std::string e = model_error(model(graph("g", nodes, {}, {})));
  EXPECT_EQ(e,
            "ModelProto.graph.node[3].attribute[1].t: raw_data has 12 bytes, expected 16 for "
            "float32[2,2]");
  EXPECT_HAS(tensor_error(tensor_float_data("w", {2, 2}, {1, 2, 3})),
             "TensorProto (tensor 'w'): float_data has 3 values, expected 4 for float32[2,2]");
  EXPECT_HAS(tensor_error(tensor_int32_data("", DataType::kFloat16, {3}, {1, 2})),
             "int32_data has 2 values, expected 3 for float16[3]");
  EXPECT_HAS(tensor_error(tensor("", DataType::kString, {3}).bytes(6, "a")),
             "string_data has 1 strings, expected 3");
  EXPECT_HAS(tensor_error(tensor("", DataType::kFloat, {3})), "has no data, expected 3 elements");
  EXPECT_HAS(tensor_error(tensor_raw("", DataType::kFloat, {1}, "\0\0\0\0").packed_floats(4, {1})),
             "has both raw_data and float_data");
  EXPECT_HAS(tensor_error(tensor("", DataType::kInt64, {1}).packed_floats(4, {1})),
             "float_data cannot hold int64 values");
  EXPECT_HAS(tensor_error(tensor("", DataType::kFloat, {1}).bytes(4, "abcde")),
             "TensorProto.float_data: packed run of 5 bytes is not a multiple of 4");
  EXPECT_HAS(tensor_error(tensor_raw("", DataType::kString, {1}, "a")),
             "a string tensor's values must be in string_data");
}

TEST(OnnxReader, BadDimsAndDataTypes) {
  EXPECT_HAS(tensor_error(tensor_raw("w", DataType::kFloat, {2, -1}, "")),
             "negative dimension -1 in dims [2,-1]");
  EXPECT_HAS(
      tensor_error(tensor_raw("w", DataType::kFloat, {int64_t{1} << 40, int64_t{1} << 40}, "")),
      "overflows");
  EXPECT_HAS(tensor_error(tensor_raw("w", DataType::kFloat, {int64_t{1} << 62, 3}, "")),
             "overflows");
  EXPECT_HAS(tensor_error(tensor_raw("w", DataType::kDouble, {int64_t{1} << 61}, "")), "too large");
  EXPECT_HAS(tensor_error(tensor_raw("w", static_cast<DataType>(99), {1}, "x")),
             "unknown data_type value 99");
  EXPECT_HAS(tensor_error(tensor_raw("w", static_cast<DataType>(-3), {1}, "x")),
             "unknown data_type value -3");
  EXPECT_HAS(tensor_error(ProtoWriter().int64(1, 1).bytes(9, "x")), "data_type is missing");
  EXPECT_HAS(
      tensor_error(tensor_raw("w", static_cast<DataType>(22), {2}, "x"), StatusCode::kUnsupported),
      "int4");
  EXPECT_HAS(tensor_error(tensor_raw("w", DataType::kFloat, {1}, "abcd").int64(14, 7)),
             "unknown data_location 7");
  ProtoWriter bad_type = value_info("x", static_cast<DataType>(77), {1});
  EXPECT_HAS(model_error(model(graph("g", {}, {bad_type}, {}))),
             "ModelProto.graph.input[0].type.tensor_type.elem_type: unknown elem_type value 77");
  ProtoWriter bad_attr = attr("x").int64(3, 1).int64(20, 40);
  EXPECT_HAS(model_error(model(graph("g", {node("Foo", {}, {}, {bad_attr})}, {}, {}))),
             "ModelProto.graph.node[0].attribute[0].type: unknown attribute type 40");
}

TEST(OnnxReader, UnsupportedConstructs) {
  ProtoWriter g = relu_graph();
  g.message(15, ProtoWriter().varint(1, 1));
  EXPECT_HAS(model_error(model(g), StatusCode::kUnsupported),
             "ModelProto.graph.sparse_initializer: sparse initializers are not supported");
  EXPECT_HAS(tensor_error(tensor_raw("w", DataType::kFloat, {1}, "abcd").bytes(3, ""),
                          StatusCode::kUnsupported),
             "segmented");
}

TEST(OnnxReader, SubGraphErrorsNameTheFullPathAndDepthIsLimited) {
  ProtoWriter inner =
      graph("inner",
            {node("Constant", {}, {"c"},
                  {attr_tensor("value", tensor_raw("", DataType::kFloat, {2}, "abc"))})},
            {}, {});
  ProtoWriter outer =
      graph("outer", {node("If", {"c"}, {"y"}, {attr_graph("then_branch", inner)})}, {}, {});
  ProtoWriter top =
      graph("top", {node("Loop", {}, {}, {attr_graphs("bodies", {inner, outer})})}, {}, {});
  EXPECT_HAS(model_error(model(top)),
             "ModelProto.graph.node[0].attribute[0].graphs[0].node[0].attribute[0].t: raw_data has "
             "3 bytes, expected 8 for float32[2]");

  auto nest = [](int depth) {
    ProtoWriter g = graph("leaf", {}, {}, {});
    for (int i = 0; i < depth; ++i)
      g = graph("g", {node("If", {}, {}, {attr_graph("b", g)})}, {}, {});
    return model(g);
  };
  EXPECT_NO_THROW(parse_bytes(nest(60).str()));
  EXPECT_HAS(model_error(nest(200)), "nested more than 64 levels deep");
}

// ---------------------------------------------------------------------------------------------
// Real files from the ONNX test data (Debian package libonnx-testdata).

// The folder the build was configured with (-DKILN_ONNX_TESTDATA=...; scripts/test.sh installs
// the package). Missing data is a failure, not a skip: these tests have nothing else to read.
const std::string kNodeTests = std::string(KILN_ONNX_TESTDATA) + "/";

#define REQUIRE_TESTDATA(dir)                                                          \
  ASSERT_TRUE(file_exists(kNodeTests + dir + "/model.onnx"))                                \
      << "ONNX test data missing: " << kNodeTests << dir                                    \
      << "/model.onnx (install Debian's libonnx-testdata or configure -DKILN_ONNX_TESTDATA)"

TEST(OnnxReader, RealConvModel) {
  REQUIRE_TESTDATA("test_conv_with_strides_padding");
  std::string d = kNodeTests + "test_conv_with_strides_padding";
  ModelProto m = onnx::read_model(d + "/model.onnx");
  EXPECT_EQ(m.ir_version, 6);
  EXPECT_EQ(m.producer_name, "backend-test");
  EXPECT_EQ(m.default_opset(), 11);
  const onnx::GraphProto& g = *m.graph;
  EXPECT_EQ(g.name, "test_conv_with_strides_padding");
  ASSERT_EQ(g.node.size(), 1u);
  EXPECT_EQ(g.node[0].op_type, "Conv");
  EXPECT_EQ(g.node[0].input, (std::vector<std::string>{"x", "W"}));
  EXPECT_EQ(g.node[0].output, (std::vector<std::string>{"y"}));
  EXPECT_EQ(g.node[0].attr("kernel_shape")->ints, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(g.node[0].attr("pads")->ints, (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(g.node[0].attr("strides")->ints, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(g.node[0].attr("strides")->type, AttributeProto::Type::kInts);
  ASSERT_EQ(g.input.size(), 2u);
  EXPECT_EQ(g.input[0].name, "x");
  EXPECT_EQ(g.input[0].type.elem_type, DataType::kFloat);
  std::vector<int64_t> xdims;
  for (const auto& dim : g.input[0].type.shape) xdims.push_back(dim.value);
  EXPECT_EQ(xdims, (std::vector<int64_t>{1, 1, 7, 5}));
  EXPECT_EQ(g.output[0].type.shape[2].value, 4);
  EXPECT_EQ(g.output[0].type.shape[3].value, 3);

  TensorProto x = onnx::read_tensor(d + "/test_data_set_0/input_0.pb");
  EXPECT_EQ(x.name, "x");
  EXPECT_EQ(x.dims, (Dims{1, 1, 7, 5}));
  ASSERT_EQ(x.value.dtype(), DataType::kFloat);
  EXPECT_EQ(x.value.data<float>()[0], 0.f);
  EXPECT_EQ(x.value.data<float>()[1], 1.f);
  EXPECT_EQ(x.value.data<float>()[34], 34.f);
  TensorProto y = onnx::read_tensor(d + "/test_data_set_0/output_0.pb");
  EXPECT_EQ(y.dims, (Dims{1, 1, 4, 3}));
  EXPECT_EQ(floats_of(y.value),
            (std::vector<float>{12, 27, 24, 63, 108, 81, 123, 198, 141, 112, 177, 124}));
}

TEST(OnnxReader, RealModelsWithSubGraphs) {
  REQUIRE_TESTDATA("test_if");
  ModelProto m = onnx::read_model(kNodeTests + "test_if/model.onnx");
  const onnx::NodeProto& n = m.graph->node[0];
  EXPECT_EQ(n.op_type, "If");
  const AttributeProto* then_branch = n.attr("then_branch");
  ASSERT_TRUE(then_branch && then_branch->g);
  EXPECT_EQ(then_branch->type, AttributeProto::Type::kGraph);
  EXPECT_EQ(then_branch->g->name, "then_body");
  const Tensor& c = then_branch->g->node[0].attr("value")->t->value;
  EXPECT_EQ(floats_of(c), (std::vector<float>{1, 2, 3, 4, 5}));
  EXPECT_EQ(floats_of(n.attr("else_branch")->g->node[0].attr("value")->t->value),
            (std::vector<float>{5, 4, 3, 2, 1}));

  REQUIRE_TESTDATA("test_loop11");
  ModelProto loop = onnx::read_model(kNodeTests + "test_loop11/model.onnx");
  const onnx::GraphProto& body = *loop.graph->node[0].attr("body")->g;
  EXPECT_EQ(body.name, "loop_body");
  EXPECT_EQ(body.node.size(), 9u);
  EXPECT_EQ(body.output.size(), 3u);
  // trip_count: a scalar (a shape with no dims), unlike a tensor of unknown rank.
  EXPECT_TRUE(loop.graph->input[0].type.has_shape);
  EXPECT_TRUE(loop.graph->input[0].type.shape.empty());
  EXPECT_EQ(loop.graph->input[0].type.elem_type, DataType::kInt64);
}

// ---------------------------------------------------------------------------------------------
// Robustness: every truncation and a few hundred single-byte corruptions of real and built
// models parse or throw kiln::Error; nothing else (no crash, no other exception, no hang).

template <class Parse>
void fuzz(const std::string& name, const std::string& bytes, Parse&& parse, uint32_t seed) {
  SCOPED_TRACE(name);
  int ok = 0, errors = 0;
  auto attempt = [&](const std::string& b, const std::string& what) {
    try {
      parse(b);
      ++ok;
    } catch (const Error&) {
      ++errors;
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": not a kiln::Error: " << e.what();
    }
  };
  for (size_t n = 0; n < bytes.size(); ++n) attempt(bytes.substr(0, n), cat("prefix ", n));
  std::mt19937 rng(seed);
  for (int i = 0; i < 400; ++i) {
    std::string b = bytes;
    size_t at = rng() % b.size();
    b[at] = static_cast<char>(b[at] ^ static_cast<char>(1 + rng() % 255));
    attempt(b, cat("corruption at ", at));
  }
  EXPECT_GT(errors, 0);
  EXPECT_EQ(ok + errors, static_cast<int>(bytes.size()) + 400);
}

TEST(OnnxReader, TruncationsAndCorruptionsNeverCrash) {
  auto parse_m = [](const std::string& b) { parse_bytes(b); };
  auto parse_t = [](const std::string& b) { parse_tensor_bytes(b); };
  fuzz("built model", full_model().str(), parse_m, 1);
  const char* models[] = {"test_conv_with_strides_padding", "test_loop11", "test_if"};
  uint32_t seed = 2;
  for (const char* t : models) {
    REQUIRE_TESTDATA(std::string(t));
    fuzz(t, read_file(kNodeTests + t + "/model.onnx"), parse_m, seed++);
  }
  std::string pb = kNodeTests + "test_conv_with_strides_padding/test_data_set_0/input_0.pb";
  ASSERT_TRUE(file_exists(pb)) << pb;
  fuzz("input_0.pb", read_file(pb), parse_t, seed++);
}

}  // namespace
}  // namespace kiln
