// Internal entry point shared by Builder, Network and the tests: optimise a graph and choose a
// tactic per node for the options' device.
#pragma once
#include <memory>

#include "ir/graph.h"
#include "kiln/builder.h"
#include "plan/plan_data.h"

namespace kiln {

std::unique_ptr<PlanData> build_plan(std::unique_ptr<Graph> g, const BuildOptions& o);

// Calibration's plan (quant/calibrate.h): the float model, with the input 0 of every product
// InsertQuantization would quantize also made a graph output; their names go to `targets`
// (graph inputs among them are named but not made outputs: the caller has their values).
std::unique_ptr<PlanData> build_calibration_plan(std::unique_ptr<Graph> g, const BuildOptions& o,
                                                 std::vector<std::string>& targets);

}  // namespace kiln
