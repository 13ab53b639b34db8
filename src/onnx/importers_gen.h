// Implemented by the registry that CMake generates from the family list in src/onnx/CMakeLists.txt.
#pragma once
#include <vector>

namespace kiln::onnx {
struct ImporterList;
std::vector<const ImporterList*> generated_importers();
}  // namespace kiln::onnx
