// The one entry point of libkiln_example_plugins.so (kiln/plugin.h).
#include "example_plugin.h"

namespace kiln_examples {
std::shared_ptr<const kiln::PluginCreator> yolo_decode_creator();
std::shared_ptr<const kiln::PluginCreator> batched_nms_creator();
}  // namespace kiln_examples

extern "C" __attribute__((visibility("default"))) int32_t kiln_register_plugins(
    kiln::PluginRegistry* registry, int32_t api_version) {
  return kiln::kiln_plugin_entry(registry, api_version,
                                 {kiln_examples::yolo_decode_creator(),
                                  kiln_examples::batched_nms_creator()});
}
