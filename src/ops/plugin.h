#pragma once
#include <memory>
#include <string>

#include "ir/attrs.h"
#include "ir/graph.h"
#include "kiln/plugin.h"

namespace kiln {

// Plugin: a layer computed by a plugin object (kiln/plugin.h). The attributes name the plugin's
// creator and hold the state its runtime capability serialized, so that a plan recreates the
// object through the registry when it is loaded. `layouts` holds, per position (inputs, then
// outputs), the PluginLayout negotiated by NegotiatePluginFormats (empty: all kLinear): a
// channels-last position's value is stored [N, H, W, C] while the plugin sees [N, C, H, W] dims.
// The op has no reference compute: cpu.plugin and cuda.plugin call the object.
struct PluginAttrs : AttrsOf<PluginAttrs> {
  std::string plugin_name;
  std::string plugin_version;
  std::string plugin_namespace;
  Tensor state;  // uint8 bytes of PluginRuntime::serialize()
  Ints layouts;
  // The live object (not reflected): made at import / add_plugin, or from the registry and
  // `state` on first use (plugin_of). Shared between copies of the attributes; its methods are
  // const.
  std::shared_ptr<const Plugin> instance;
  template <class V>
  void reflect(V& v) {
    v("name", plugin_name);
    v("version", plugin_version);
    v("namespace", plugin_namespace);
    v("state", state);
    v("layouts", layouts);
  }
  PluginLayout layout(size_t pos) const {
    return pos < layouts.size() ? static_cast<PluginLayout>(layouts[pos]) : PluginLayout::kLinear;
  }
};

// "name (version, namespace 'ns')", for messages.
std::string plugin_label(const std::string& name, const std::string& version, const std::string& ns);
std::string plugin_label(const PluginAttrs& a);

// The node's plugin object, made from the registry when the attributes do not hold it yet.
// Throws kIncompatible naming the plugin (and how to load its library) when no creator is
// registered, or the creator's error when deserialize fails.
const Plugin& plugin_of(const Node& n);
// A clone of plugin_of(n) for one kernel of a step; throws kInternal when the plugin returns none.
std::unique_ptr<Plugin> clone_plugin_of(const Node& n);

// Attributes for a freshly created plugin: its identity, its serialized state, and the object.
std::unique_ptr<PluginAttrs> plugin_attrs(std::shared_ptr<const Plugin> p);

// Permutations between a rank-4 channels-last value's storage and the dims a plugin sees.
inline const Ints kToChannelsLast = {0, 2, 3, 1};
inline const Ints kFromChannelsLast = {0, 3, 1, 2};

}  // namespace kiln
