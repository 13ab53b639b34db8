// kiln::Error: the exception used inside the library. It never crosses the public API; see
// to_status() and KILN_API_GUARD in api_guard.h.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

#include "kiln/status.h"

namespace kiln {

class Error : public std::runtime_error {
 public:
  Error(StatusCode code, std::string message, std::string node = {})
      : std::runtime_error(message), code_(code), message_(std::move(message)), node_(std::move(node)) {}
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& node() const { return node_; }
  Status to_status() const;

 private:
  StatusCode code_;
  std::string message_;
  std::string node_;
};

namespace detail {
inline void format_into(std::ostringstream&) {}
template <class T, class... Rest>
void format_into(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  format_into(os, rest...);
}
}  // namespace detail

// Concatenates its arguments with operator<<.
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  detail::format_into(os, args...);
  return os.str();
}

template <class... Args>
[[noreturn]] void fail(StatusCode code, const Args&... args) {
  throw Error(code, cat(args...));
}

}  // namespace kiln

// Internal invariant; a failure is a kiln bug.
#define KILN_CHECK(cond, ...)                                                              \
  do {                                                                                     \
    if (!(cond))                                                                           \
      ::kiln::fail(::kiln::StatusCode::kInternal, "internal check failed: " #cond " at ", \
                   __FILE__, ":", __LINE__, " ", ##__VA_ARGS__);                           \
  } while (0)

// Validation of caller/model input; a failure is the user's error, reported clearly.
#define KILN_EXPECT(cond, code, ...)                    \
  do {                                                  \
    if (!(cond)) ::kiln::fail(code, ##__VA_ARGS__);     \
  } while (0)
