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
  std::vector<std::unique_ptr<Kernel>> kernels;   // one per step; stateless across contexts
  std::vector<const Tactic*> tactics;
};

std::vector<TensorDesc> describe_values(const std::vector<Value*>& values);

}  // namespace kiln
