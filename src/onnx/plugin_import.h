// ONNX nodes that stand for registered plugins: the node's domain is the plugin's namespace, its
// op type the plugin's name, and its attributes the plugin's fields. A string attribute
// `plugin_version` picks a version (the newest otherwise) and is not passed on as a field.
#pragma once
#include <memory>
#include <string>

#include "kiln/plugin.h"
#include "onnx/importer.h"

namespace kiln::onnx {

// The creator registered for the node, or null. Registered plugins take precedence over kiln's
// own importers: registering one is asking for it.
std::shared_ptr<const PluginCreator> plugin_for(const std::string& domain, const NodeProto& np);
// Adds the Plugin node and binds every output the node names.
void import_plugin(ImportContext& ctx, const PluginCreator& creator);

}  // namespace kiln::onnx
