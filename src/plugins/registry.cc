// The process's plugin registry, and the loader of plugin libraries.
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>

#include <algorithm>
#include <mutex>
#include <set>

#include "common/api_guard.h"
#include "common/error.h"
#include "kiln/plugin.h"
#include "ops/plugin.h"

namespace kiln {

namespace {

// "1.10" > "1.9": dotted parts compared as numbers where both are numbers.
bool version_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    size_t ie = a.find('.', i), je = b.find('.', j);
    if (ie == std::string::npos) ie = a.size();
    if (je == std::string::npos) je = b.size();
    std::string pa = i < a.size() ? a.substr(i, ie - i) : "", pb = j < b.size() ? b.substr(j, je - j) : "";
    bool na = !pa.empty() && pa.find_first_not_of("0123456789") == std::string::npos;
    bool nb = !pb.empty() && pb.find_first_not_of("0123456789") == std::string::npos;
    if (na && nb) {
      if (pa.size() != pb.size()) return pa.size() < pb.size();
    }
    if (pa != pb) return pa < pb;
    i = ie + 1;
    j = je + 1;
  }
  return false;
}

class Registry : public PluginRegistry {
 public:
  Status add(std::shared_ptr<const PluginCreator> c) override {
    if (!c) return Status(StatusCode::kInvalidArgument, "plugin creator is null");
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& o : creators_)
      if (o->name() == c->name() && o->version() == c->version() &&
          o->plugin_namespace() == c->plugin_namespace())
        return Status(StatusCode::kInvalidArgument,
                      cat("plugin ", plugin_label(c->name(), c->version(), c->plugin_namespace()),
                          " is already registered"));
    creators_.push_back(std::move(c));
    return Status::ok();
  }
  std::shared_ptr<const PluginCreator> find(std::string_view name, std::string_view version,
                                            std::string_view ns) const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<const PluginCreator> best;
    for (const auto& c : creators_) {
      if (c->name() != name || c->plugin_namespace() != ns) continue;
      if (!version.empty()) {
        if (c->version() == version) return c;
        continue;
      }
      if (!best || version_less(best->version(), c->version())) best = c;
    }
    return best;
  }
  std::vector<std::shared_ptr<const PluginCreator>> creators() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return creators_;
  }
  bool remove(std::string_view name, std::string_view version, std::string_view ns) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(creators_.begin(), creators_.end(), [&](const auto& c) {
      return c->name() == name && c->version() == version && c->plugin_namespace() == ns;
    });
    if (it == creators_.end()) return false;
    creators_.erase(it);
    return true;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<const PluginCreator>> creators_;
};

using EntryFn = int32_t (*)(PluginRegistry*, int32_t);

}  // namespace

PluginRegistry& plugin_registry() {
  static Registry r;
  return r;
}

Status load_plugin_library(const std::string& path) {
  return guard([&] {
    static std::mutex mu;
    static std::set<std::string> loaded;
    std::lock_guard<std::mutex> lock(mu);
    char resolved[PATH_MAX];
    KILN_EXPECT(realpath(path.c_str(), resolved) != nullptr, StatusCode::kIoError,
                "plugin library '", path, "' does not exist or cannot be read");
    if (loaded.count(resolved)) return;
    // The library stays loaded for the life of the process: its creators and the plugin objects
    // they make are code inside it.
    void* h = dlopen(resolved, RTLD_NOW | RTLD_LOCAL);
    if (!h) fail(StatusCode::kIoError, "cannot load plugin library '", path, "': ", dlerror());
    auto entry = reinterpret_cast<EntryFn>(dlsym(h, "kiln_register_plugins"));
    if (!entry) {
      dlclose(h);
      fail(StatusCode::kInvalidArgument, "'", path,
           "' is not a kiln plugin library: it does not export kiln_register_plugins "
           "(extern \"C\" int32_t kiln_register_plugins(kiln::PluginRegistry*, int32_t))");
    }
    int32_t rc = entry(&plugin_registry(), kPluginApiVersion);
    if (rc == kPluginApiMismatch)
      fail(StatusCode::kIncompatible, "plugin library '", path,
           "' was built for another kiln plugin API version (this kiln has version ",
           kPluginApiVersion, "); rebuild it against this kiln's kiln/plugin.h");
    KILN_EXPECT(rc == 0, StatusCode::kInvalidArgument, "plugin library '", path,
                "' failed to register its plugins (kiln_register_plugins returned ", rc,
                "; a plugin it adds may already be registered)");
    loaded.insert(resolved);
  });
}

}  // namespace kiln
