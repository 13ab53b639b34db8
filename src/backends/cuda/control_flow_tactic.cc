// cuda.if, cuda.loop and cuda.scan: the steps of If, Loop and Scan nodes in a GPU plan. The
// execution context runs them (runtime/control_flow.cc): the condition and trip count are read
// on the host, and each sub-graph runs its own CUDA steps.
#include "runtime/control_flow.h"

namespace kiln {

const Tactic& kiln_cuda_tactic_if() {
  static const ControlFlowTactic t("cuda.if", "If");
  return t;
}

const Tactic& kiln_cuda_tactic_loop() {
  static const ControlFlowTactic t("cuda.loop", "Loop");
  return t;
}

const Tactic& kiln_cuda_tactic_scan() {
  static const ControlFlowTactic t("cuda.scan", "Scan");
  return t;
}

}  // namespace kiln
