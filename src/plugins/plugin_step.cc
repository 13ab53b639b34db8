#include "plugins/plugin_step.h"

#include "common/error.h"
#include "ops/plugin.h"

namespace kiln {

std::vector<PluginFormat> plugin_formats(const Node& n) {
  const auto& a = n.a<PluginAttrs>();
  std::vector<PluginFormat> f;
  for (size_t i = 0; i < n.inputs.size(); ++i)
    f.push_back({n.inputs[i] ? n.inputs[i]->dtype : DataType::kUndefined, a.layout(i)});
  for (size_t k = 0; k < n.outputs.size(); ++k)
    f.push_back({n.outputs[k]->dtype, a.layout(n.inputs.size() + k)});
  return f;
}

Status plugin_supports(const Node& n, PluginDevice device) {
  const char* where = device == PluginDevice::kGpu ? "GPU" : "CPU";
  const Plugin* p = nullptr;
  try {
    p = &plugin_of(n);
  } catch (const Error& e) {
    return Status(StatusCode::kUnsupported, e.message());
  }
  const std::string label = plugin_label(n.a<PluginAttrs>());
  if (!p->runtime().runs_on(device))
    return Status(StatusCode::kUnsupported, cat("plugin ", label, " has no ", where, " implementation"));
  std::vector<PluginFormat> f = plugin_formats(n);
  for (size_t pos = 0; pos < f.size(); ++pos) {
    if (pos < n.inputs.size() && !n.inputs[pos]) continue;
    if (!p->build().supports_format(pos, f, n.inputs.size(), device))
      return Status(StatusCode::kUnsupported,
                    cat("plugin ", label, " does not accept ", dtype_name(f[pos].dtype),
                        f[pos].layout == PluginLayout::kChannelsLast ? " channels-last" : "",
                        " at position ", pos, " on the ", where));
  }
  return Status::ok();
}

PluginTensor plugin_tensor(const Node& n, size_t pos, void* data, DataType dtype, const Dims& dims) {
  PluginTensor t;
  t.data = data;
  t.dtype = dtype;
  t.layout = n.a<PluginAttrs>().layout(pos);
  t.dims = dims;
  if (t.layout == PluginLayout::kChannelsLast && dims.size() == 4)
    for (size_t i = 0; i < 4; ++i) t.dims[i] = dims[kFromChannelsLast[i]];
  return t;
}

PluginTensorDesc plugin_desc(const PluginTensor& t) { return {t.dtype, t.dims, t.layout}; }

void plugin_failed(const Node& n, const char* what, const Status& st) {
  fail(st.is_ok() ? StatusCode::kInternal : st.code(), "plugin ",
       plugin_label(n.a<PluginAttrs>()), " failed in ", what, ": ", st.message());
}

}  // namespace kiln
