// Converts exceptions to Status at the public API boundary.
#pragma once
#include <exception>
#include <new>

#include "common/error.h"

namespace kiln {

template <class F>
Status guard(F&& f) {
  try {
    f();
    return Status::ok();
  } catch (const Error& e) {
    return e.to_status();
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kInvalidArgument, "out of memory: a tensor is larger than this machine can allocate");
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, e.what());
  }
}

}  // namespace kiln
