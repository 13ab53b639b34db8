#include "common/env.h"

#include <cstdlib>

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

}  // namespace kiln::env
