// kiln's own in-memory form of the ONNX protobuf messages it needs, filled by reader.cc straight
// from the wire format (no libprotobuf). Tensor payloads are not copied: they point into the
// memory-mapped model file (or an external-data file), kept alive by the Tensor's keepalive.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/types.h"

namespace kiln::onnx {

struct GraphProto;

struct DimProto {
  bool has_value = false;
  int64_t value = 0;
  std::string param;  // symbolic name, may be empty
};

struct TypeProto {
  enum class Kind { kUnknown, kTensor, kSequence, kMap, kOptional, kSparseTensor } kind = Kind::kUnknown;
  DataType elem_type = DataType::kUndefined;   // for tensors
  bool has_shape = false;
  std::vector<DimProto> shape;
};

struct ValueInfoProto {
  std::string name;
  TypeProto type;
  std::string doc;
};

struct TensorProto {
  std::string name;
  DataType data_type = DataType::kUndefined;
  std::vector<int64_t> dims;
  // The decoded tensor (little-endian host layout), borrowing file memory for raw_data and
  // external data; typed *_data fields are converted into an owned buffer.
  Tensor value;
  std::vector<std::string> string_data;  // for string tensors (value stays undefined)
};

struct AttributeProto {
  enum class Type {
    kUndefined = 0, kFloat = 1, kInt = 2, kString = 3, kTensor = 4, kGraph = 5, kSparseTensor = 11,
    kTypeProto = 13, kFloats = 6, kInts = 7, kStrings = 8, kTensors = 9, kGraphs = 10,
    kSparseTensors = 12, kTypeProtos = 14
  };
  std::string name;
  Type type = Type::kUndefined;
  std::string ref_attr_name;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::shared_ptr<TensorProto> t;
  std::shared_ptr<GraphProto> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<std::shared_ptr<TensorProto>> tensors;
  std::vector<std::shared_ptr<GraphProto>> graphs;
};

struct NodeProto {
  std::string name;
  std::string op_type;
  std::string domain;
  std::vector<std::string> input;
  std::vector<std::string> output;
  std::vector<AttributeProto> attribute;

  const AttributeProto* attr(const std::string& n) const {
    for (const auto& a : attribute)
      if (a.name == n) return &a;
    return nullptr;
  }
};

struct GraphProto {
  std::string name;
  std::vector<NodeProto> node;
  std::vector<std::shared_ptr<TensorProto>> initializer;
  std::vector<ValueInfoProto> input;
  std::vector<ValueInfoProto> output;
  std::vector<ValueInfoProto> value_info;
  std::string doc;
};

struct OperatorSetId {
  std::string domain;  // "" or "ai.onnx" for the default domain
  int64_t version = 0;
};

struct ModelProto {
  int64_t ir_version = 0;
  std::vector<OperatorSetId> opset_import;
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  int64_t model_version = 0;
  std::string doc;
  std::shared_ptr<GraphProto> graph;
  std::map<std::string, std::string> metadata;

  // Opset version of the default ONNX domain (0 when absent).
  int64_t default_opset() const;
};

// Reads a .onnx file. External-data tensors are resolved relative to the model's directory and
// memory-mapped. Throws kiln::Error(kInvalidModel / kIoError) with a message naming the field
// (e.g. "ModelProto.graph.node[3].attribute[1]: length 812 runs past the end of the message").
ModelProto read_model(const std::string& path);
// Parses a model from bytes already in memory (kept alive by `keepalive`); external data is
// resolved against `base_dir`.
ModelProto parse_model(const uint8_t* data, size_t size, std::shared_ptr<const void> keepalive,
                       const std::string& base_dir = "");
// Reads a standalone serialized TensorProto (.pb), as the ONNX test data uses.
TensorProto read_tensor(const std::string& path);
// Parses a standalone TensorProto from bytes in memory (kept alive by `keepalive`).
TensorProto parse_tensor(const uint8_t* data, size_t size, std::shared_ptr<const void> keepalive,
                         const std::string& base_dir = "");

}  // namespace kiln::onnx
