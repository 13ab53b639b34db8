#include "backends/cpu/cpu_tactics.h"

namespace kiln {

std::vector<const Tactic*> fast_cpu_tactics() { return {}; }

}  // namespace kiln
