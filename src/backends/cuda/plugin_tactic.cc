// cuda.plugin: a Plugin node on the GPU, through the plugin's enqueue() on the context's stream
// with device pointers and the context's workspace (planned with its arena). A plugin that says
// it is not capturable makes its context run step by step instead of replaying a CUDA graph.
#include "backends/cuda/cuda_common.h"
#include "ops/plugin.h"
#include "plugins/plugin_step.h"

namespace kiln {
namespace cuda {
namespace {

class PluginKernel : public Kernel {
 public:
  explicit PluginKernel(std::unique_ptr<Plugin> p) : plugin_(std::move(p)) {}
  bool capturable() const override { return plugin_->runtime().capturable(); }
  size_t workspace_size(const LaunchArgs& a) const override {
    std::vector<PluginTensor> ins, outs;
    views(a, ins, outs);
    std::vector<PluginTensorDesc> in_d, out_d;
    for (const auto& t : ins) in_d.push_back(plugin_desc(t));
    for (const auto& t : outs) out_d.push_back(plugin_desc(t));
    return plugin_->build().workspace_size(in_d, out_d, PluginDevice::kGpu);
  }
  void enqueue(const LaunchArgs& a) override {
    std::vector<PluginTensor> ins, outs;
    views(a, ins, outs);
    PluginLaunch launch{ins, outs, a.workspace, a.workspace_bytes, a.stream};
    Status st;
    try {
      st = plugin_->runtime().enqueue(launch);
    } catch (const std::exception& e) {
      st = Status(StatusCode::kInternal, cat("threw ", e.what()));
    }
    if (!st.is_ok()) plugin_failed(a.node, "enqueue", st);
    check_launch("cuda.plugin");
  }

 private:
  static void views(const LaunchArgs& a, std::vector<PluginTensor>& ins,
                    std::vector<PluginTensor>& outs) {
    const Node& n = a.node;
    ins.resize(a.inputs.size());
    for (size_t i = 0; i < a.inputs.size(); ++i)
      if (a.inputs[i].defined())
        ins[i] = plugin_tensor(n, i, a.inputs[i].data, a.inputs[i].dtype, a.inputs[i].dims);
    for (size_t k = 0; k < a.outputs.size(); ++k)
      outs.push_back(plugin_tensor(n, a.inputs.size() + k, a.outputs[k].data, a.outputs[k].dtype,
                                   a.outputs[k].dims));
  }
  std::unique_ptr<Plugin> plugin_;
};

class PluginTactic : public Tactic {
 public:
  std::string_view id() const override { return "cuda.plugin"; }
  std::string_view op() const override { return "Plugin"; }
  Status supports(const Node& node) const override {
    return plugin_supports(node, PluginDevice::kGpu);
  }
  std::unique_ptr<Kernel> instantiate(const Node& node, std::string_view) const override {
    return std::make_unique<PluginKernel>(clone_plugin_of(node));
  }
};

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_plugin() {
  static const cuda::PluginTactic t;
  return t;
}

}  // namespace kiln
