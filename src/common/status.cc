#include "common/error.h"

namespace kiln {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kInvalidModel: return "invalid model";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kCorruptPlan: return "corrupt plan";
    case StatusCode::kIncompatible: return "incompatible plan";
    case StatusCode::kIoError: return "I/O error";
    case StatusCode::kInternal: return "internal error";
    case StatusCode::kDeviceError: return "device error";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(status_code_name(code_)) + ": " + message_;
}

Status Error::to_status() const {
  if (node_.empty()) return Status(code_, message_);
  return Status(code_, "node '" + node_ + "': " + message_);
}

}  // namespace kiln
