// kiln public API: plugins, the layers kiln does not implement itself.
//
// A plugin is one object with three capabilities, split as TensorRT's IPluginV3 splits them:
//
//   core     what it is: name, version, namespace, its fields (attributes), clone();
//   build    what it makes: the number of outputs, their dtypes, their shapes as expressions of
//            the input dims (DimExpr), the dtype/layout combinations it accepts, its workspace;
//   runtime  how it runs: on host tensors (CPU), or enqueued on the context's stream with device
//            pointers (GPU), and its state as bytes for the plan.
//
// A PluginCreator makes plugins of one (name, version, namespace) from fields (an ONNX node's
// attributes, or Network::add_plugin) and from the state a plan stored. Creators live in the
// process's PluginRegistry; a shared library adds its creators through one exported function:
//
//   extern "C" int32_t kiln_register_plugins(kiln::PluginRegistry* registry, int32_t api_version);
//
// which returns 0 when it registered, kiln::kPluginApiMismatch when `api_version` is not the
// kPluginApiVersion it was compiled with (kiln_plugin_entry() below does both). `kiln --plugin
// LIB.so` and kiln::load_plugin_library() call it.
//
// Everything in this header is inline or abstract: a plugin library needs this header (and
// kiln/types.h, kiln/status.h) but does not link against kiln. No exception may leave a plugin
// method: report errors as a Status. kiln calls the runtime methods of one plugin object from one
// execution context at a time but from several contexts concurrently (each engine step keeps one
// clone); they are const and must keep no per-run state.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/status.h"
#include "kiln/types.h"

namespace kiln {

// Bumped whenever a class in this header changes its layout or virtual methods.
inline constexpr int32_t kPluginApiVersion = 1;
inline constexpr int32_t kPluginApiMismatch = -1000;

// ---------------------------------------------------------------------------------------------
// Fields: a plugin's typed attributes.

enum class PluginFieldType : int32_t { kInt = 1, kFloat, kString, kInts, kFloats, kTensor };

struct PluginField {
  std::string name;
  PluginFieldType type = PluginFieldType::kInt;
  int64_t i = 0;
  double f = 0;
  std::string s;                 // kString; kTensor: the raw little-endian bytes
  std::vector<int64_t> ints;
  std::vector<double> floats;
  DataType dtype = DataType::kUndefined;  // kTensor
  std::vector<int64_t> dims;              // kTensor
};

// An ordered list of fields with typed accessors. get_*() return `def` when the field is absent
// or of another type (an int read as a float converts).
class PluginFields {
 public:
  std::vector<PluginField> items;

  const PluginField* find(std::string_view name) const {
    for (const auto& f : items)
      if (f.name == name) return &f;
    return nullptr;
  }
  PluginFields& set_int(std::string name, int64_t v) { return put(std::move(name), PluginFieldType::kInt).i = v, *this; }
  PluginFields& set_float(std::string name, double v) { return put(std::move(name), PluginFieldType::kFloat).f = v, *this; }
  PluginFields& set_string(std::string name, std::string v) { return put(std::move(name), PluginFieldType::kString).s = std::move(v), *this; }
  PluginFields& set_ints(std::string name, std::vector<int64_t> v) { return put(std::move(name), PluginFieldType::kInts).ints = std::move(v), *this; }
  PluginFields& set_floats(std::string name, std::vector<double> v) { return put(std::move(name), PluginFieldType::kFloats).floats = std::move(v), *this; }
  PluginFields& set_tensor(std::string name, DataType dtype, std::vector<int64_t> dims, std::string bytes) {
    PluginField& f = put(std::move(name), PluginFieldType::kTensor);
    f.dtype = dtype;
    f.dims = std::move(dims);
    f.s = std::move(bytes);
    return *this;
  }

  int64_t get_int(std::string_view name, int64_t def) const {
    const PluginField* f = find(name);
    return f && f->type == PluginFieldType::kInt ? f->i : def;
  }
  double get_float(std::string_view name, double def) const {
    const PluginField* f = find(name);
    if (f && f->type == PluginFieldType::kFloat) return f->f;
    if (f && f->type == PluginFieldType::kInt) return static_cast<double>(f->i);
    return def;
  }
  std::string get_string(std::string_view name, std::string def) const {
    const PluginField* f = find(name);
    return f && f->type == PluginFieldType::kString ? f->s : def;
  }
  std::vector<int64_t> get_ints(std::string_view name, std::vector<int64_t> def = {}) const {
    const PluginField* f = find(name);
    return f && f->type == PluginFieldType::kInts ? f->ints : def;
  }
  std::vector<double> get_floats(std::string_view name, std::vector<double> def = {}) const {
    const PluginField* f = find(name);
    if (f && f->type == PluginFieldType::kFloats) return f->floats;
    if (f && f->type == PluginFieldType::kInts) return {f->ints.begin(), f->ints.end()};
    return def;
  }

 private:
  PluginField& put(std::string name, PluginFieldType t) {
    for (auto& f : items)
      if (f.name == name) { f = PluginField{}; f.name = std::move(name); f.type = t; return f; }
    items.push_back(PluginField{});
    items.back().name = std::move(name);
    items.back().type = t;
    return items.back();
  }
};

// ---------------------------------------------------------------------------------------------
// State bytes: little helpers for serialize()/deserialize(). The reader never reads past the end:
// it sets ok() to false and returns zeros instead.

class PluginStateWriter {
 public:
  std::string bytes;
  void i64(int64_t v) { raw(&v, sizeof v); }
  void f64(double v) { raw(&v, sizeof v); }
  void str(std::string_view s) { i64(static_cast<int64_t>(s.size())); bytes.append(s); }
  void i64s(const std::vector<int64_t>& v) { i64(static_cast<int64_t>(v.size())); for (auto x : v) i64(x); }
  void f64s(const std::vector<double>& v) { i64(static_cast<int64_t>(v.size())); for (auto x : v) f64(x); }
  void fields(const PluginFields& fs) {
    i64(static_cast<int64_t>(fs.items.size()));
    for (const auto& f : fs.items) {
      str(f.name);
      i64(static_cast<int64_t>(f.type));
      i64(f.i);
      f64(f.f);
      str(f.s);
      i64s(f.ints);
      f64s(f.floats);
      i64(static_cast<int64_t>(f.dtype));
      i64s(f.dims);
    }
  }

 private:
  void raw(const void* p, size_t n) { bytes.append(static_cast<const char*>(p), n); }
};

class PluginStateReader {
 public:
  explicit PluginStateReader(std::string_view bytes) : bytes_(bytes) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == bytes_.size(); }
  int64_t i64() { int64_t v = 0; raw(&v, sizeof v); return v; }
  double f64() { double v = 0; raw(&v, sizeof v); return v; }
  std::string str() {
    int64_t n = count(1);
    std::string s(ok_ ? bytes_.substr(pos_, static_cast<size_t>(n)) : std::string_view());
    pos_ += s.size();
    return s;
  }
  std::vector<int64_t> i64s() { std::vector<int64_t> v(static_cast<size_t>(count(8))); for (auto& x : v) x = i64(); return v; }
  std::vector<double> f64s() { std::vector<double> v(static_cast<size_t>(count(8))); for (auto& x : v) x = f64(); return v; }
  PluginFields fields() {
    PluginFields fs;
    int64_t n = count(8 * 8);
    for (int64_t k = 0; k < n && ok_; ++k) {
      PluginField f;
      f.name = str();
      f.type = static_cast<PluginFieldType>(i64());
      f.i = i64();
      f.f = f64();
      f.s = str();
      f.ints = i64s();
      f.floats = f64s();
      f.dtype = static_cast<DataType>(i64());
      f.dims = i64s();
      fs.items.push_back(std::move(f));
    }
    return fs;
  }

 private:
  // A length prefix, checked against the bytes left (each element at least `elem` bytes).
  int64_t count(size_t elem) {
    int64_t n = i64();
    if (n < 0 || static_cast<uint64_t>(n) > (bytes_.size() - pos_) / elem) { ok_ = false; return 0; }
    return n;
  }
  void raw(void* p, size_t n) {
    if (!ok_ || bytes_.size() - pos_ < n) { ok_ = false; std::memset(p, 0, n); return; }
    std::memcpy(p, bytes_.data() + pos_, n);
    pos_ += n;
  }
  std::string_view bytes_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// ---------------------------------------------------------------------------------------------
// Dimension expressions: a plugin's output dims in terms of its input dims. kiln evaluates them
// to numbers where the input dims are known and keeps them symbolic where not (an input's
// symbolic batch dim passes through as that symbol; an expression of it becomes a symbol named
// after the expression, "ceil(batch/2)"). Integer division floors; dividing by zero is an error.

class DimExpr {
 public:
  enum class Kind { kConstant, kInput, kAdd, kSub, kMul, kFloorDiv, kCeilDiv, kMax, kMin };

  DimExpr(int64_t value = 0) : node_(std::make_shared<Node>()) { node_->value = value; }  // NOLINT
  // Dim `axis` of input `input`.
  static DimExpr input(int32_t input, int32_t axis) {
    DimExpr e;
    e.node_->kind = Kind::kInput;
    e.node_->input = input;
    e.node_->axis = axis;
    return e;
  }

  Kind kind() const { return node_->kind; }
  int64_t value() const { return node_->value; }     // kConstant
  int32_t input_index() const { return node_->input; }  // kInput
  int32_t axis() const { return node_->axis; }          // kInput
  const DimExpr& lhs() const { return *node_->lhs; }
  const DimExpr& rhs() const { return *node_->rhs; }

  friend DimExpr operator+(const DimExpr& a, const DimExpr& b) { return binary(Kind::kAdd, a, b); }
  friend DimExpr operator-(const DimExpr& a, const DimExpr& b) { return binary(Kind::kSub, a, b); }
  friend DimExpr operator*(const DimExpr& a, const DimExpr& b) { return binary(Kind::kMul, a, b); }
  friend DimExpr operator/(const DimExpr& a, const DimExpr& b) { return binary(Kind::kFloorDiv, a, b); }
  friend DimExpr ceil_div(const DimExpr& a, const DimExpr& b) { return binary(Kind::kCeilDiv, a, b); }
  friend DimExpr max(const DimExpr& a, const DimExpr& b) { return binary(Kind::kMax, a, b); }
  friend DimExpr min(const DimExpr& a, const DimExpr& b) { return binary(Kind::kMin, a, b); }

 private:
  struct Node {
    Kind kind = Kind::kConstant;
    int64_t value = 0;
    int32_t input = 0, axis = 0;
    std::shared_ptr<const DimExpr> lhs, rhs;
  };
  static DimExpr binary(Kind k, const DimExpr& a, const DimExpr& b) {
    DimExpr e;
    e.node_->kind = k;
    e.node_->lhs = std::make_shared<const DimExpr>(a);
    e.node_->rhs = std::make_shared<const DimExpr>(b);
    return e;
  }
  std::shared_ptr<Node> node_;
};

using ShapeExpr = std::vector<DimExpr>;

// ---------------------------------------------------------------------------------------------
// Tensors as a plugin sees them.

enum class PluginDevice : int32_t { kCpu = 0, kGpu = 1 };

// kLinear: dense row-major in the model's dim order. kChannelsLast: a rank-4 tensor stored
// [N, H, W, C] whose dims (and output shape expressions) are still given as [N, C, H, W]; the
// builder inserts the transposes.
enum class PluginLayout : int32_t { kLinear = 0, kChannelsLast = 1 };

struct PluginFormat {
  DataType dtype = DataType::kFloat;
  PluginLayout layout = PluginLayout::kLinear;
};

// Build time: what is known of an input. dims[i] is -1 where not known yet.
struct PluginTensorDesc {
  DataType dtype = DataType::kUndefined;
  std::vector<int64_t> dims;
  PluginLayout layout = PluginLayout::kLinear;
};

// Run time: one tensor, host or device memory. dims are in the logical order (see PluginLayout).
struct PluginTensor {
  void* data = nullptr;
  DataType dtype = DataType::kUndefined;
  std::vector<int64_t> dims;
  PluginLayout layout = PluginLayout::kLinear;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
  template <class T> T* as() const { return static_cast<T*>(data); }
};

struct PluginLaunch {
  std::span<const PluginTensor> inputs;
  std::span<const PluginTensor> outputs;   // allocated by kiln with the inferred shapes
  void* workspace = nullptr;               // workspace_size() bytes, private to the context
  size_t workspace_bytes = 0;
  void* stream = nullptr;                  // GPU: the context's cudaStream_t; CPU: null
};

// ---------------------------------------------------------------------------------------------
// The capabilities.

class Plugin;

class PluginCore {
 public:
  virtual ~PluginCore() = default;
  virtual std::string name() const = 0;
  virtual std::string version() const = 0;
  virtual std::string plugin_namespace() const = 0;
  // The fields it was made with (for `kiln inspect` and error messages).
  virtual PluginFields fields() const { return {}; }
};

class PluginBuild {
 public:
  virtual ~PluginBuild() = default;
  virtual int32_t num_outputs() const = 0;
  // The output dtypes for these input dtypes (one per output).
  virtual Status output_dtypes(std::span<const DataType> inputs, std::vector<DataType>& out) const = 0;
  // The output shapes, one ShapeExpr per output, built from DimExpr::input(i, axis) and
  // constants. `inputs` gives ranks, dtypes and the dims known so far, to choose the form by.
  virtual Status output_shapes(std::span<const PluginTensorDesc> inputs,
                               std::vector<ShapeExpr>& out) const = 0;
  // Whether position `pos` (inputs first, then outputs) may have format formats[pos], given the
  // formats of the positions before it, on `device`. The builder asks in position order: it
  // offers each input's current dtype first, then float32, float16, bfloat16 and the rest, and
  // inserts a Cast (and, for kChannelsLast, a Transpose) where the chosen format differs.
  // Output dtypes come from output_dtypes() of the chosen input dtypes, and must be accepted too.
  virtual bool supports_format(size_t pos, std::span<const PluginFormat> formats,
                               size_t num_inputs, PluginDevice device) const {
    return formats[pos].layout == PluginLayout::kLinear && formats[pos].dtype == DataType::kFloat;
  }
  // Workspace bytes for these concrete shapes; planned with the context's arena.
  virtual size_t workspace_size(std::span<const PluginTensorDesc> inputs,
                                std::span<const PluginTensorDesc> outputs,
                                PluginDevice device) const {
    return 0;
  }
};

class PluginRuntime {
 public:
  virtual ~PluginRuntime() = default;
  // Which implementations the plugin has. A plugin without the one a plan's device needs is a
  // build error naming it.
  virtual bool runs_on(PluginDevice device) const = 0;
  // CPU: compute on host tensors (launch.stream is null).
  virtual Status run_host(const PluginLaunch& launch) const {
    return Status(StatusCode::kUnsupported, "no CPU implementation");
  }
  // GPU: enqueue on launch.stream with device pointers; never synchronise the stream.
  virtual Status enqueue(const PluginLaunch& launch) const {
    return Status(StatusCode::kUnsupported, "no GPU implementation");
  }
  // Whether enqueue() may be recorded in a CUDA graph. A context holding a step that may not runs
  // its steps one by one.
  virtual bool capturable() const { return true; }
  // The state the plan stores; PluginCreator::deserialize() gets it back.
  virtual std::string serialize() const = 0;
};

// One plugin object. The usual implementation derives from all four classes and returns *this
// from each capability.
class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual const PluginCore& core() const = 0;
  virtual const PluginBuild& build() const = 0;
  virtual const PluginRuntime& runtime() const = 0;
  virtual std::unique_ptr<Plugin> clone() const = 0;
};

class PluginCreator {
 public:
  virtual ~PluginCreator() = default;
  virtual std::string name() const = 0;
  virtual std::string version() const = 0;
  virtual std::string plugin_namespace() const = 0;
  // From fields: an ONNX node's attributes (its domain is the namespace, its op type the name),
  // or Network::add_plugin().
  virtual Status create(const PluginFields& fields, std::unique_ptr<Plugin>& out) const = 0;
  // From the bytes PluginRuntime::serialize() gave when the plan was built.
  virtual Status deserialize(std::string_view state, std::unique_ptr<Plugin>& out) const = 0;
};

// The creators this process knows. One per process (plugin_registry()); thread-safe.
class PluginRegistry {
 public:
  virtual ~PluginRegistry() = default;
  // Fails (kInvalidArgument) when a creator of the same name, version and namespace is there.
  virtual Status add(std::shared_ptr<const PluginCreator> creator) = 0;
  // An empty version finds the newest (highest by numeric comparison of dotted parts).
  virtual std::shared_ptr<const PluginCreator> find(std::string_view name,
                                                    std::string_view version,
                                                    std::string_view plugin_namespace) const = 0;
  virtual std::vector<std::shared_ptr<const PluginCreator>> creators() const = 0;
  // Removes one creator; false when it was not there. For tests and for unloading.
  virtual bool remove(std::string_view name, std::string_view version,
                      std::string_view plugin_namespace) = 0;
};

// The body of a library's kiln_register_plugins(): checks the API version, then adds `creators`.
inline int32_t kiln_plugin_entry(PluginRegistry* registry, int32_t api_version,
                                 std::vector<std::shared_ptr<const PluginCreator>> creators) {
  if (api_version != kPluginApiVersion) return kPluginApiMismatch;
  if (!registry) return -1;
  for (auto& c : creators)
    if (!registry->add(std::move(c)).is_ok()) return -2;
  return 0;
}

// Defined in kiln (not available to plugin libraries, which get the registry as an argument).
PluginRegistry& plugin_registry();
// dlopen()s `path` and calls its kiln_register_plugins(). A missing file, a library without the
// entry point, an API version mismatch or a failed registration is an error naming the library.
// Loading the same file twice registers nothing the second time.
Status load_plugin_library(const std::string& path);

}  // namespace kiln
