// The in-memory form of a plan: what built it, the optimized graph, and the steps (one per node,
// each naming the tactic that runs it and the tactic's prepared state).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/builder.h"

namespace kiln {

struct BuildInfo {
  std::string kiln_version;
  std::string device;            // "cpu" or "cuda"
  std::string gpu_name;          // empty for CPU plans
  std::string compute_capability;
  std::string cuda_version, cudnn_version, cublaslt_version;
  std::map<std::string, std::string> extra;
};

struct Step {
  size_t node = 0;               // index into graph->nodes()
  std::string tactic;            // stable tactic id, e.g. "cpu.reference", "cpu.conv_im2col"
  std::string state;             // tactic's serialised prepared state (may be empty)
  // Control-flow steps (If, Loop, Scan): one step sequence per sub-graph of the node, in the
  // order of Node::subgraphs, each built like a plan's own. Empty for every other step.
  std::vector<std::vector<Step>> bodies;
};

struct PlanData {
  BuildInfo info;
  std::unique_ptr<Graph> graph;
  std::vector<Step> steps;
  std::vector<OptimizationProfile> profiles;   // validated against the graph's inputs
  std::shared_ptr<const void> keepalive;   // the mapped plan file when loaded from disk
};

// Plan file format (see plan/format.cc): serialise and validate.
std::string serialize_plan(const PlanData& p);
std::unique_ptr<PlanData> deserialize_plan(const uint8_t* data, size_t size,
                                           std::shared_ptr<const void> keepalive);

struct PlanAccess {
  static std::shared_ptr<Plan> make(std::unique_ptr<PlanData> d);
};

}  // namespace kiln
