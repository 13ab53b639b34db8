// Engine internals shared by the runtime and tools.
#pragma once
#include <memory>
#include <vector>

#include "kiln/engine.h"
#include "plan/plan_data.h"
#include "runtime/backend.h"

namespace kiln {

struct EngineImpl {
  std::shared_ptr<const Plan> plan;
  const Backend* backend = nullptr;
  const DeviceApi* device = nullptr;             // null for host backends
  std::vector<std::unique_ptr<Kernel>> kernels;  // one per step; shared by every context
  std::vector<const Tactic*> tactics;
  // Device engines: the device copy of each constant a step reads, by value index of the plan's
  // graph (null for every other value). Uploaded once per engine.
  std::vector<void*> weights;
  size_t weight_bytes = 0;
  // Control-flow steps: one engine per sub-graph of the step's node (If: then, else; Loop, Scan:
  // the body), built from the step's own step sequences. Empty for every other step.
  std::vector<std::vector<std::shared_ptr<const EngineImpl>>> bodies;
  ~EngineImpl();
};

// The engine of a plan (Engine::create's work): the device check, the weights, one kernel per
// step, and the engines of control-flow steps' sub-graphs.
std::shared_ptr<EngineImpl> make_engine_impl(std::shared_ptr<const Plan> plan);

std::vector<TensorDesc> describe_values(const std::vector<Value*>& values);

}  // namespace kiln
