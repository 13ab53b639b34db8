// cpu.plugin: a Plugin node on the host, through the plugin's run_host() with a host workspace.
#include <memory>

#include "backends/cpu/cpu_tactics.h"
#include "common/error.h"
#include "ops/plugin.h"
#include "plugins/plugin_step.h"
#include "runtime/backend.h"

namespace kiln {

namespace {

class CpuPluginKernel : public Kernel {
 public:
  explicit CpuPluginKernel(std::unique_ptr<Plugin> p) : plugin_(std::move(p)) {}
  void run(const ComputeArgs& args) override {
    const Node& n = args.node;
    std::vector<PluginTensor> ins(args.inputs.size()), outs(args.outputs.size());
    std::vector<PluginTensorDesc> in_d(ins.size()), out_d(outs.size());
    for (size_t i = 0; i < ins.size(); ++i) {
      const Tensor& t = args.inputs[i];
      if (!t.defined()) continue;
      ins[i] = plugin_tensor(n, i, const_cast<void*>(t.raw()), t.dtype(), t.dims());
      in_d[i] = plugin_desc(ins[i]);
    }
    for (size_t k = 0; k < outs.size(); ++k) {
      Tensor& t = args.outputs[k];
      KILN_CHECK(t.defined(), "plugin output ", k, " was not allocated");
      outs[k] = plugin_tensor(n, ins.size() + k, t.raw(), t.dtype(), t.dims());
      out_d[k] = plugin_desc(outs[k]);
    }
    size_t ws = plugin_->build().workspace_size(in_d, out_d, PluginDevice::kCpu);
    std::vector<unsigned char> workspace(ws);
    PluginLaunch launch{ins, outs, ws ? workspace.data() : nullptr, ws, nullptr};
    Status st;
    try {
      st = plugin_->runtime().run_host(launch);
    } catch (const std::exception& e) {
      st = Status(StatusCode::kInternal, cat("threw ", e.what()));
    }
    if (!st.is_ok()) plugin_failed(n, "run_host", st);
  }

 private:
  std::unique_ptr<Plugin> plugin_;
};

class CpuPluginTactic : public Tactic {
 public:
  std::string_view id() const override { return "cpu.plugin"; }
  std::string_view op() const override { return "Plugin"; }
  Status supports(const Node& node) const override {
    return plugin_supports(node, PluginDevice::kCpu);
  }
  std::unique_ptr<Kernel> instantiate(const Node& node, std::string_view) const override {
    return std::make_unique<CpuPluginKernel>(clone_plugin_of(node));
  }
};

}  // namespace

const Tactic& cpu_plugin_tactic() {
  static const CpuPluginTactic t;
  return t;
}

}  // namespace kiln
