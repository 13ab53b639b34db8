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
  ~EngineImpl();
};

std::vector<TensorDesc> describe_values(const std::vector<Value*>& values);

}  // namespace kiln
