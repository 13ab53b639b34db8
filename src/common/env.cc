#include "common/env.h"

#include <cstdlib>
#include <thread>

namespace kiln::env {

namespace {
std::string get(const char* name, const char* def) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string(def);
}
}  // namespace

std::string log_level() { return get("KILN_LOG_LEVEL", "warning"); }
std::string dump_after() { return get("KILN_DUMP_AFTER", ""); }
bool verify_passes() { return get("KILN_VERIFY", "1") != "0"; }
int num_threads() {
  std::string v = get("KILN_NUM_THREADS", "");
  if (!v.empty()) {
    int n = std::atoi(v.c_str());
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

}  // namespace kiln::env
