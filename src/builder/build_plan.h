// Internal entry point shared by Builder, Network and the tests: optimise a graph and choose a
// tactic per node for the options' device.
#pragma once
#include <memory>

#include "ir/graph.h"
#include "kiln/builder.h"
#include "plan/plan_data.h"

namespace kiln {

std::unique_ptr<PlanData> build_plan(std::unique_ptr<Graph> g, const BuildOptions& o);

}  // namespace kiln
