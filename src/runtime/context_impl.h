// ExecutionContext internals: the host path (run_host) and the device path (device_context.cc).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/engine_impl.h"

namespace kiln {

// The device-side layout for one set of input shapes: every value's dims and, when every shape
// is known before running (no data-dependent shapes), its offset in the context's arena.
struct ShapePlan {
  std::vector<std::pair<DataType, Dims>> key;   // the input dtypes and shapes planned for
  bool is_static = false;                       // all shapes known: offsets valid, no syncs
  std::vector<Dims> dims;                       // per value index
  std::vector<size_t> offset;                   // per value index; kNoOffset when not in the arena
  std::vector<Dims> strides;                    // per value index; empty when dense
  size_t arena_bytes = 0;
  size_t workspace_bytes = 0;
  size_t naive_bytes = 0;                       // sum of all activations (for reports)
  std::vector<bool> skip;                       // per step: a view (see memory_plan.h)
  std::vector<std::string> note;                // per step: how its outputs are stored
  int64_t views = 0, in_place = 0, strided = 0;
  std::vector<size_t> step_workspace;           // per step, at these shapes
  static constexpr size_t kNoOffset = SIZE_MAX;
};

struct ContextImpl {
  std::shared_ptr<const EngineImpl> engine;
  std::unique_ptr<Graph> graph;                 // private copy: run-time shapes are inferred here
  std::unordered_map<const Value*, size_t> index;
  std::vector<size_t> last_use;                 // per value: last step that reads it
  bool profiling = false;
  std::vector<StepTiming> profile;
  size_t opt_profile = 0;                       // the selected optimization profile

  // enqueue() API state.
  std::map<std::string, Dims> enqueue_shapes;
  std::map<std::string, void*> addresses;

  // Device state (device engines only).
  const DeviceApi* dev = nullptr;
  void* stream = nullptr;                       // the context's own stream, used by run()
  std::unique_ptr<DeviceResources> resources;
  ShapePlan shape_plan;
  bool planned = false;
  void* arena = nullptr;
  size_t arena_capacity = 0;
  void* workspace = nullptr;
  size_t workspace_capacity = 0;
  std::vector<void*> run_allocations;           // dynamic-shape runs: freed after the run
  std::vector<void*> events;                    // profiling: two per step
  bool use_graphs = true;
  void* graph_exec = nullptr;                   // the captured steps
  std::vector<void*> graph_key;                 // the addresses the graph was captured with
  std::vector<void*> last_key;                  // the addresses of the previous enqueue
  bool graph_failed = false;
  // Failed captures so far: a capture can fail for a reason outside this context (another
  // thread's work on the device while this one captures), so graphs are given up only after
  // kMaxCaptureFailures attempts.
  int capture_failures = 0;
  static constexpr int kMaxCaptureFailures = 3;

  // Control-flow steps: per step, one context per sub-graph, made at the step's first run.
  std::vector<std::vector<std::unique_ptr<ContextImpl>>> bodies;

  ~ContextImpl();
  void init_device();
  Value* find_input(const std::string& name) const;
  // Validates names, dtypes (kUndefined skips the dtype check), ranks, fixed dims and consistent
  // symbolic dims, then sets the graph inputs' shapes.
  void set_input_shapes(const std::map<std::string, std::pair<DataType, Dims>>& given);
  void run_host(const std::map<std::string, Tensor>& inputs, std::map<std::string, Tensor>& outputs);
  // Selects a profile; device contexts reserve the arena and workspace of its max shapes.
  void select_profile(size_t index);
  void run_device(const std::map<std::string, Tensor>& inputs,
                  std::map<std::string, Tensor>& outputs);
  void enqueue(void* stream);
  Dims output_dims(const std::string& name);
  MemoryReport memory_report();

 private:
  void plan_shapes(const std::map<std::string, std::pair<DataType, Dims>>& given);
  // Plans the shapes enqueue() would run with: those given to set_input_shape(), else the
  // plan's fixed input shapes.
  void plan_enqueue_shapes();
  // Runs every step on `s`. ptrs holds, per value index, the buffers already decided (inputs,
  // user outputs); the rest come from the arena or, in dynamic runs, fresh allocations.
  void execute(void* s, std::vector<void*>& ptrs);
  void execute_static(void* s, std::vector<void*>& ptrs);
  void execute_dynamic(void* s, std::vector<void*>& ptrs);
  void launch_step(size_t step, void* s, std::vector<void*>& ptrs);
  // The workspace the step's kernel asks for at these per-value dims (and strides, when given).
  size_t step_workspace(size_t step, const std::vector<Dims>& dims,
                        const std::vector<Dims>* strides = nullptr) const;
  // Whether the step's kernel runs with these per-value dims and strides (memory planning).
  bool step_accepts_strided(size_t step, const std::vector<Dims>& dims,
                            const std::vector<Dims>& strides) const;
  void release_run_allocations();
  // Control flow (runtime/control_flow.cc): runs step s's If, Loop or Scan on host tensors, each
  // sub-graph run by its own context (on this context's device), and, on a device, the step
  // with its inputs brought to the host and its outputs written back.
  void run_control_flow_step(size_t s, const ComputeArgs& args);
  std::vector<Tensor> run_body(size_t s, size_t k, std::vector<Tensor> inputs);
  void launch_control_flow(size_t s, void* stream, std::vector<void*>& ptrs);
};

std::unique_ptr<ContextImpl> make_context_impl(std::shared_ptr<const EngineImpl> engine);

}  // namespace kiln
