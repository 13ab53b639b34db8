// What the example plugins share: a base class that is every capability at once, keeps its
// fields, serializes them as its state, and a creator for any such class.
#pragma once
#include <memory>
#include <string>
#include <utility>

#include "kiln/plugin.h"

namespace kiln_examples {

inline constexpr const char* kNamespace = "kiln.examples";

class ExamplePlugin : public kiln::Plugin,
                      public kiln::PluginCore,
                      public kiln::PluginBuild,
                      public kiln::PluginRuntime {
 public:
  explicit ExamplePlugin(kiln::PluginFields fields) : fields_(std::move(fields)) {}
  const kiln::PluginCore& core() const override { return *this; }
  const kiln::PluginBuild& build() const override { return *this; }
  const kiln::PluginRuntime& runtime() const override { return *this; }
  std::string plugin_namespace() const override { return kNamespace; }
  std::string version() const override { return "1"; }
  kiln::PluginFields fields() const override { return fields_; }
  std::string serialize() const override {
    kiln::PluginStateWriter w;
    w.fields(fields_);
    return w.bytes;
  }
  bool runs_on(kiln::PluginDevice device) const override {
#ifdef KILN_EXAMPLES_CUDA
    return true;
#else
    return device == kiln::PluginDevice::kCpu;
#endif
  }

 protected:
  kiln::PluginFields fields_;
};

// Makes plugins of class P, which has `static kiln::Status make(const kiln::PluginFields&,
// std::unique_ptr<kiln::Plugin>&)` and `static constexpr const char* kName`.
template <class P>
class ExampleCreator : public kiln::PluginCreator {
 public:
  std::string name() const override { return P::kName; }
  std::string version() const override { return "1"; }
  std::string plugin_namespace() const override { return kNamespace; }
  kiln::Status create(const kiln::PluginFields& fields,
                      std::unique_ptr<kiln::Plugin>& out) const override {
    return P::make(fields, out);
  }
  kiln::Status deserialize(std::string_view state, std::unique_ptr<kiln::Plugin>& out) const override {
    kiln::PluginStateReader r(state);
    kiln::PluginFields fields = r.fields();
    if (!r.done())
      return kiln::Status(kiln::StatusCode::kCorruptPlan, std::string(P::kName) + ": bad state");
    return P::make(fields, out);
  }
};

inline kiln::Status invalid(const std::string& what) {
  return kiln::Status(kiln::StatusCode::kInvalidArgument, what);
}

}  // namespace kiln_examples
