// kiln public API: Engine (immutable, shared) and ExecutionContext (one per thread).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/builder.h"
#include "kiln/status.h"
#include "kiln/types.h"

namespace kiln {

class ExecutionContext;
struct EngineImpl;
struct ContextImpl;

class Engine {
 public:
  ~Engine();
  // Creates an engine for the plan's device. The plan must outlive nothing: the engine keeps it.
  static Status create(std::shared_ptr<const Plan> plan, std::shared_ptr<Engine>& out);

  std::vector<TensorDesc> inputs() const;
  std::vector<TensorDesc> outputs() const;
  std::string device() const;
  // Any number of contexts per engine; each is used by one thread at a time.
  Status create_context(std::unique_ptr<ExecutionContext>& out) const;

  const EngineImpl& impl() const { return *impl_; }

 private:
  Engine() = default;
  std::shared_ptr<EngineImpl> impl_;
};

struct StepTiming {
  std::string step;     // step name (the node it runs)
  std::string op;
  std::string tactic;
  double ms = 0;
  // When the step began, in ms after the run's first step began (device: CUDA events on the
  // context's stream; host: the host clock): a timeline (`kiln bench --trace`).
  double start_ms = 0;
};

// How a context lays out memory for its current input shapes (see ExecutionContext::memory_report).
struct StepMemory {
  int64_t workspace_bytes = 0;  // scratch the step's kernel asks for
  bool runs = true;             // false: the step is a view of memory another step wrote
  std::string note;             // e.g. "view of x", "in place over y", "writes into concat z"
};
struct MemoryReport {
  int64_t arena_bytes = 0;      // the activation arena (live-range planned, views aliased)
  int64_t naive_bytes = 0;      // the sum of every activation's size: the arena without planning
  int64_t workspace_bytes = 0;  // the one workspace the steps share (the largest they ask for)
  int64_t views = 0;            // activations that alias another (Reshape, Slice, Concat inputs)
  int64_t strided = 0;          // of those, the strided ones (channel slices at batch > 1)
  int64_t in_place = 0;         // activations written over one of their inputs
  std::vector<StepMemory> steps;  // one per plan step
};

class ExecutionContext {
 public:
  ~ExecutionContext();
  // Runs synchronously on host tensors. Every engine input must be given, with the declared
  // dtype and a shape that matches the declared dims (dynamic dims may take any size).
  // Outputs are (re)allocated by kiln and returned by name.
  Status run(const std::map<std::string, Tensor>& inputs, std::map<std::string, Tensor>& outputs);
  // Per-step times of the last run() or enqueue() when profiling is on (device engines: GPU time
  // measured with CUDA events, which makes that run synchronous).
  void set_profiling(bool on);
  const std::vector<StepTiming>& last_profile() const;

  // Device engines (cuda): asynchronous execution with device buffers on the caller's stream, as
  // in TensorRT. Set every input's shape and every input's and output's device address, then
  // enqueue(). Buffers must stay valid until the stream has finished the work. Output shapes
  // follow from the input shapes (output_dims); an engine whose output shapes depend on the
  // data (NonZero, Unique...) can only use run().
  Status set_input_shape(const std::string& name, const Dims& dims);
  Status output_dims(const std::string& name, Dims& out);
  Status set_tensor_address(const std::string& name, void* device_ptr);
  Status enqueue(void* cuda_stream);
  // Replays the steps as one CUDA graph once the shapes and addresses repeat (default on).
  void set_cuda_graphs(bool on);
  // Selects the plan's optimization profile `index` (default 0): input shapes must then lie within
  // its bounds. On a device engine the activation arena and workspace are sized for the
  // profile's max shapes here, once, so that no shape inside the bounds allocates when it runs.
  Status set_optimization_profile(size_t index);
  size_t optimization_profile() const;
  // The memory layout for the current input shapes (set_input_shape; a plan with static shapes
  // needs none): arena against the naive sum, views, in-place steps, per-step workspace.
  Status memory_report(MemoryReport& out);
  // Internal state (tests and tools): e.g. whether the steps replay as a CUDA graph.
  const ContextImpl& impl() const { return *impl_; }

 private:
  friend class Engine;
  ExecutionContext() = default;
  std::unique_ptr<ContextImpl> impl_;
};

}  // namespace kiln
