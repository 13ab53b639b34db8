// cuda.control_flow: the step of an If, Loop or Scan node in a GPU plan. The execution context
// runs it (runtime/control_flow.cc): the condition and trip count are read on the host, and each
// sub-graph runs its own CUDA steps.
#include "runtime/control_flow.h"

namespace kiln {

const Tactic& kiln_cuda_tactic_control_flow() {
  static const ControlFlowTactic t("cuda.control_flow");
  return t;
}

}  // namespace kiln
