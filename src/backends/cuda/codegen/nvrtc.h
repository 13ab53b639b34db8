// Runtime compilation of generated CUDA C++ (NVRTC) to CUBINs. Build time only: plans store the
// CUBIN, so loading a plan needs no compiler.
#pragma once
#include <string>

namespace kiln::cuda {

// The current device's compute capability as major * 10 + minor (90 for an H100). kDeviceError
// when there is no usable device.
int current_device_sm();

// The architecture NVRTC compiles for so that the code runs on a `device_sm` GPU: the device's
// own when this NVRTC knows it, else the newest it knows with the same major version and a lower
// minor (a CUBIN runs on later minors of its major). kUnsupported when there is none.
int nvrtc_target_sm(int device_sm);

// Compiles `source` to a CUBIN for sm_<sm>, with fast math off and no FMA contraction (results
// round like the reference's). Cached for the process by (source, sm): identical programs in one
// build compile once. `name` names the program in messages; the source is logged at verbose
// level. Throws kiln::Error kInternal with NVRTC's log when the source does not compile.
std::string nvrtc_compile_cubin(const std::string& source, int sm, const std::string& name);

// How many compilations the cache has answered without compiling (for tests).
size_t nvrtc_cache_hits();

}  // namespace kiln::cuda
