// The control-flow tactic: the step of an If, Loop or Scan node. Its kernel does nothing itself:
// the execution context runs the node (runtime/control_flow.cc), each sub-graph through the
// engine built from the step's own step sequence (EngineImpl::bodies), on the plan's device.
#pragma once
#include <string>

#include "runtime/backend.h"

namespace kiln {

class ControlFlowTactic : public Tactic {
 public:
  explicit ControlFlowTactic(std::string id) : id_(std::move(id)) {}
  std::string_view id() const override { return id_; }
  Status supports(const Node& node) const override;
  std::unique_ptr<Kernel> instantiate(const Node& node, std::string_view state) const override;

 private:
  std::string id_;
};

}  // namespace kiln
