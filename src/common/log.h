// Minimal leveled logging to stderr, controlled by KILN_LOG_LEVEL (common/env.h).
#pragma once
#include "common/error.h"

namespace kiln {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kVerbose = 3 };
bool log_enabled(LogLevel level);
void log_message(LogLevel level, const std::string& msg);

template <class... Args>
void log(LogLevel level, const Args&... args) {
  if (log_enabled(level)) log_message(level, cat(args...));
}

}  // namespace kiln
