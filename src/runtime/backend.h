// The Backend and Tactic interfaces. A Tactic is one implementation of one op on one backend:
// it answers whether it supports a node (unsupported is an answer, not an error), prepares its
// state at build time (serialised into the plan), and instantiates a Kernel at engine creation.
//
// Host backends (cpu) run kernels on host Tensors through Kernel::run(). Device backends (cuda)
// expose a DeviceApi and run kernels through Kernel::enqueue() on device memory and a stream; the
// runtime never includes a CUDA header, it only passes opaque stream and resource pointers.
#pragma once
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"
#include "ops/op.h"
#include "runtime/device.h"

namespace kiln {

// A tensor in device memory during one launch. An omitted optional input has dtype kUndefined
// and data == nullptr. Row-major and dense, like Tensor, unless `strides` is set: then element
// (i0, i1, ...) is at data + sum(ik * strides[k]) elements. Only a kernel whose
// Kernel::accepts_strided() said yes for those strides is ever given a strided tensor (the
// memory planner's channel-slice views, runtime/memory_plan.h).
struct DeviceTensor {
  void* data = nullptr;
  DataType dtype = DataType::kUndefined;
  Dims dims;
  Dims strides;   // in elements, one per dim; empty: dense row-major
  bool defined() const { return dtype != DataType::kUndefined; }
  bool dense() const { return strides.empty(); }
  int64_t numel() const { return dims_volume(dims); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  size_t rank() const { return dims.size(); }
};

// What a device kernel gets for one launch.
struct LaunchArgs {
  const Node& node;
  std::span<const DeviceTensor> inputs;
  // Allocated by the runtime with the inferred shapes, except the outputs of ops whose shape is
  // data-dependent: those are undefined and the kernel calls allocate_output() once it knows.
  std::span<DeviceTensor> outputs;
  void* stream = nullptr;            // cudaStream_t: everything is enqueued here, asynchronously
  void* workspace = nullptr;         // workspace_size() bytes, private to this context
  size_t workspace_bytes = 0;
  DeviceResources* resources = nullptr;  // per-context library handles (cuDNN, cuBLASLt)
  std::function<void(size_t k, const Dims&)> allocate_output;
  const DeviceTensor& in(size_t i) const { return inputs[i]; }
  bool has(size_t i) const { return i < inputs.size() && inputs[i].defined(); }
  DeviceTensor& out(size_t i) const { return outputs[i]; }
};

// A runnable step, made once per engine and shared by every execution context (so it keeps no
// per-run state; anything it caches must be guarded for concurrent use).
class Kernel {
 public:
  virtual ~Kernel() = default;
  // Host backends: reads and writes host tensors.
  virtual void run(const ComputeArgs& args);
  // Device backends: enqueues the work on args.stream; must not synchronise unless the op's
  // output shape is data-dependent.
  virtual void enqueue(const LaunchArgs& args);
  // Device workspace bytes for these concrete shapes (pointers are null when asked).
  virtual size_t workspace_size(const LaunchArgs& shapes) const { return 0; }
  // Whether enqueue() may be recorded into a CUDA graph (false when it synchronises).
  virtual bool capturable() const { return true; }
  // Context planning: whether enqueue() can run with these dims and strides, where at least one
  // tensor is strided (pointers are null). A kernel may prepare (and cache) what those strides
  // need here; it answers false for anything it cannot run, and must not throw.
  virtual bool accepts_strided(const LaunchArgs& shapes) const { return false; }
};

// What the builder allows a tactic: TacticLimits::max_workspace is the most device workspace
// one step may ask for (0: the tactic's own default bound).
struct TacticLimits {
  size_t max_workspace = 0;
  // The tactic's bound under these limits: `own` when no limit is set, else the smaller.
  size_t workspace(size_t own) const {
    return max_workspace == 0 ? own : (max_workspace < own ? max_workspace : own);
  }
};

class Tactic {
 public:
  virtual ~Tactic() = default;
  virtual std::string_view id() const = 0;
  // The canonical op this tactic implements ("Conv"); empty for tactics that take any op (the
  // reference and the host fallback). choose() asks supports() only of matching tactics, so
  // supports() may read the node's attributes as that op's.
  virtual std::string_view op() const { return {}; }
  // True for a device backend's tactic that computes on the host (the host fallback): its step
  // waits for the stream, copies inputs down and outputs up, and is never captured in a CUDA
  // graph. Tests, the conformance runner, `kiln inspect` and `kiln bench` count such steps so
  // that a GPU result is never mistaken for one that ran on the host.
  virtual bool computes_on_host() const { return false; }
  virtual Status supports(const Node& node) const = 0;
  // Build time: transform weights, plan, compile. The returned bytes are stored in the plan.
  virtual std::string prepare(const Node& node) const { return {}; }
  // Tuning (builder/autotuner.h). The variants this tactic can run `node` with (algorithms,
  // engine configs, launch parameters), each a short string in the tactic's own words; empty when
  // there is nothing to choose. The one autotuner times each (prepare_choice, instantiate, run or
  // enqueue) at the node's build-time shapes and keeps the fastest; without tuning the tactic's
  // heuristic decides (choice ""). The runtime never times.
  // `limits` bounds what a candidate may ask for (BuildOptions::max_workspace_mib).
  virtual std::vector<std::string> candidates(const Node& node, const TacticLimits& limits) const {
    return {};
  }
  // prepare() for one candidate; "" asks for the heuristic's choice. A tactic that reads
  // `limits` keeps them in its state, so the runtime honours them too.
  virtual std::string prepare_choice(const Node& node, std::string_view choice,
                                     const TacticLimits& limits) const {
    return prepare(node);
  }
  // Engine creation: the kernel that runs the node, from the prepared state.
  virtual std::unique_ptr<Kernel> instantiate(const Node& node, std::string_view state) const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;   // "cpu", "cuda"
  // In preference order: the heuristic picks the first that supports a node.
  virtual const std::vector<const Tactic*>& tactics() const = 0;
  // Device memory, streams and library handles; nullptr for host backends.
  virtual const DeviceApi* device() const { return nullptr; }
  const Tactic* find_tactic(std::string_view id) const;
  // Whether the builder may ask `t` about `node` at all: its op matches and it is not excluded.
  static bool considers(const Tactic& t, const Node& node, const std::vector<std::string>& excluded);
  // First supporting tactic not in `excluded`; throws kUnsupported listing each tactic's reason
  // when none does.
  const Tactic& choose(const Node& node, const std::vector<std::string>& excluded = {}) const;
};

const Backend& cpu_backend();
// The tactic `id` of the backend named `device` as compiled into this build, whether or not this
// machine can run that backend (a CUDA plan inspected on a machine without a GPU); nullptr when
// this build does not know it.
const Tactic* compiled_tactic(std::string_view device, std::string_view id);
// Every tactic of that backend compiled into this build, in preference order (empty when none).
std::vector<const Tactic*> compiled_tactics(std::string_view device);
// Whether step `tactic` of a plan for `device` computes on the host inside a device plan (false
// for host backends, whose every step is on the host by design, and for unknown tactics).
bool step_computes_on_host(std::string_view device, std::string_view tactic);
// The backend registered under `name`, or nullptr when this build or this machine lacks it
// ("cuda" needs the CUDA backend compiled in and a usable GPU).
const Backend* find_backend(std::string_view name);
// Why find_backend("cuda") returns nullptr (empty when it does not).
std::string cuda_unavailable_reason();

}  // namespace kiln
