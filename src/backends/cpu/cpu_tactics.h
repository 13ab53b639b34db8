// Faster CPU tactics (float32 convolution and matrix products). See the .cc files for each.
#pragma once
#include <vector>

namespace kiln {
class Tactic;
std::vector<const Tactic*> fast_cpu_tactics();
// cpu.plugin: Plugin nodes through the plugin's host implementation (plugin_tactic.cc).
const Tactic& cpu_plugin_tactic();
}  // namespace kiln
