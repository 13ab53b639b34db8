// The Backend and Tactic interfaces. A Tactic is one implementation of one op on one backend:
// it answers whether it supports a node (unsupported is an answer, not an error), prepares its
// state at build time (serialised into the plan), and instantiates a Kernel at engine creation.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"
#include "ops/op.h"

namespace kiln {

// A runnable step on the CPU: reads and writes host tensors.
class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void run(const ComputeArgs& args) = 0;
};

class Tactic {
 public:
  virtual ~Tactic() = default;
  virtual std::string_view id() const = 0;
  virtual Status supports(const Node& node) const = 0;
  // Scratch memory the tactic needs per execution context (bytes); the CPU tactics allocate
  // their own scratch per call and report 0.
  virtual size_t workspace_size(const Node& node) const { return 0; }
  // Build time: transform weights, plan, compile. The returned bytes are stored in the plan.
  virtual std::string prepare(const Node& node) const { return {}; }
  // Engine creation: the kernel that runs the node, from the prepared state.
  virtual std::unique_ptr<Kernel> instantiate(const Node& node, std::string_view state) const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;   // "cpu", "cuda"
  // In preference order: the heuristic picks the first that supports a node.
  virtual const std::vector<const Tactic*>& tactics() const = 0;
  const Tactic* find_tactic(std::string_view id) const;
  // First supporting tactic; throws kUnsupported listing each tactic's reason when none does.
  const Tactic& choose(const Node& node) const;
};

const Backend& cpu_backend();
// The backend registered under `name`, or nullptr when this build lacks it.
const Backend* find_backend(std::string_view name);

}  // namespace kiln
