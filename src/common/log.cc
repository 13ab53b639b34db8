#include "common/log.h"

#include <cstdio>
#include <mutex>

#include "common/env.h"

namespace kiln {

namespace {
LogLevel configured() {
  static const LogLevel level = [] {
    std::string v = env::log_level();
    if (v == "error") return LogLevel::kError;
    if (v == "info") return LogLevel::kInfo;
    if (v == "verbose") return LogLevel::kVerbose;
    return LogLevel::kWarning;
  }();
  return level;
}
}  // namespace

bool log_enabled(LogLevel level) { return level <= configured(); }

void log_message(LogLevel level, const std::string& msg) {
  static std::mutex mu;
  static const char* names[] = {"error", "warning", "info", "verbose"};
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "kiln %s: %s\n", names[static_cast<int>(level)], msg.c_str());
}

}  // namespace kiln
