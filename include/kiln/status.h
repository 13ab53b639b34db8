// kiln public API: Status, the error value that crosses every library boundary.
#pragma once
#include <string>
#include <utility>

namespace kiln {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // bad input from the caller: wrong name, shape, dtype, option
  kInvalidModel,      // the model file is malformed or inconsistent
  kUnsupported,       // valid, but kiln does not implement it
  kCorruptPlan,       // the plan file fails validation
  kIncompatible,      // the plan was built for another machine/version
  kIoError,           // file system
  kInternal,          // a bug in kiln
  kDeviceError,       // the GPU or a CUDA library reported an error (out of memory among them)
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return Status(); }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

}  // namespace kiln
