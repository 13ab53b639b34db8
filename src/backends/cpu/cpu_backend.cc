// The CPU backend: the reference compute of every op, and faster tactics where the tests and the
// demo need speed (listed first so that the heuristic prefers them).
#include "backends/cpu/cpu_tactics.h"
#include "runtime/backend.h"
#include "runtime/backend_traits.h"
#include "runtime/control_flow.h"

namespace kiln {

namespace {

class ReferenceKernel : public Kernel {
 public:
  void run(const ComputeArgs& args) override { args.node.def->compute(args); }
};

class ReferenceTactic : public Tactic {
 public:
  std::string_view id() const override { return "cpu.reference"; }
  Status supports(const Node& node) const override {
    if (!node.def || !node.def->compute)
      return Status(StatusCode::kUnsupported, "op has no reference compute");
    return Status::ok();
  }
  std::unique_ptr<Kernel> instantiate(const Node&, std::string_view) const override {
    return std::make_unique<ReferenceKernel>();
  }
};

class CpuBackend : public Backend {
 public:
  CpuBackend() {
    for (const Tactic* t : {&if_, &loop_, &scan_}) tactics_.push_back(t);
    for (const Tactic* t : fast_cpu_tactics()) tactics_.push_back(t);
    tactics_.push_back(&cpu_plugin_tactic());
    tactics_.push_back(&reference_);
  }
  std::string_view name() const override { return "cpu"; }
  const std::vector<const Tactic*>& tactics() const override { return tactics_; }

 private:
  // If, Loop and Scan: their sub-graphs run through their own steps (runtime/control_flow.h).
  ControlFlowTactic if_{"cpu.if", "If"}, loop_{"cpu.loop", "Loop"}, scan_{"cpu.scan", "Scan"};
  ReferenceTactic reference_;
  std::vector<const Tactic*> tactics_;
};

// The reference and the fast float32 tactics take any layout and any Pointwise program, and read
// dense tensors only: every answer is the default.
class CpuTraits : public BackendTraits {
 public:
  std::string_view name() const override { return "cpu"; }
};

}  // namespace

const BackendTraits& cpu_backend_traits() {
  static const CpuTraits t;
  return t;
}

const Backend& cpu_backend() {
  static const CpuBackend b;
  return b;
}

}  // namespace kiln
