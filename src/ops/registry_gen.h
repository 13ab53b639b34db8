// Implemented by the registry that CMake generates from the op list in src/ops/CMakeLists.txt.
#pragma once
#include <vector>

namespace kiln {
struct OpDef;
std::vector<const OpDef*> generated_op_defs();
}  // namespace kiln
