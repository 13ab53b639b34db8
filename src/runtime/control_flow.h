// The control-flow tactics (cpu.if, cpu.loop, cpu.scan, and cuda.*): the step of an If, Loop or
// Scan node. Its kernel does nothing itself:
// the execution context runs the node (runtime/control_flow.cc), each sub-graph through the
// engine built from the step's own step sequence (EngineImpl::bodies), on the plan's device.
#pragma once
#include <string>

#include "runtime/backend.h"

namespace kiln {

class ControlFlowTactic : public Tactic {
 public:
  ControlFlowTactic(std::string id, std::string op) : id_(std::move(id)), op_(std::move(op)) {}
  std::string_view id() const override { return id_; }
  std::string_view op() const override { return op_; }
  Status supports(const Node& node) const override;
  std::unique_ptr<Kernel> instantiate(const Node& node, std::string_view state) const override;

 private:
  std::string id_, op_;
};

}  // namespace kiln
