// What cpu.plugin and cuda.plugin share: whether a Plugin node's object runs on a device with the
// node's formats, and the views a plugin gets of the step's tensors.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/plugin.h"
#include "kiln/status.h"

namespace kiln {

// The formats of the node's positions (inputs, then outputs) as they are in the graph.
std::vector<PluginFormat> plugin_formats(const Node& n);
// Ok when the node's plugin is registered (or held), has an implementation for `device`, and
// accepts the node's formats there; otherwise an unsupported status that names the plugin.
Status plugin_supports(const Node& n, PluginDevice device);
// A plugin's view of position `pos` of n stored with these (physical) dims.
PluginTensor plugin_tensor(const Node& n, size_t pos, void* data, DataType dtype, const Dims& dims);
PluginTensorDesc plugin_desc(const PluginTensor& t);
// Throws the plugin's failure as an Error naming the plugin (the runtime adds the node).
[[noreturn]] void plugin_failed(const Node& n, const char* what, const Status& st);

}  // namespace kiln
