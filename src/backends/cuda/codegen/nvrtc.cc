#include "backends/cuda/codegen/nvrtc.h"

#include <nvrtc.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "backends/cuda/cuda_common.h"
#include "common/log.h"

namespace kiln::cuda {

namespace {

[[noreturn]] void fail_nvrtc(nvrtcResult r, const char* what, const std::string& name) {
  fail(StatusCode::kInternal, "NVRTC ", what, " failed for ", name, ": ", nvrtcGetErrorString(r));
}

// Destroys the program on every path out of compile().
struct ProgramGuard {
  nvrtcProgram p = nullptr;
  ~ProgramGuard() {
    if (p) nvrtcDestroyProgram(&p);
  }
};

std::string compile(const std::string& source, int sm, const std::string& name) {
  ProgramGuard g;
  nvrtcResult r = nvrtcCreateProgram(&g.p, source.c_str(), (name + ".cu").c_str(), 0, nullptr,
                                     nullptr);
  if (r != NVRTC_SUCCESS) fail_nvrtc(r, "program creation", name);
  const std::string arch = "--gpu-architecture=sm_" + std::to_string(sm);
  // No fast math and no FMA contraction: each operation rounds as in the reference compute.
  const char* opts[] = {arch.c_str(), "-std=c++17", "--fmad=false", "--ftz=false",
                        "--prec-div=true", "--prec-sqrt=true"};
  r = nvrtcCompileProgram(g.p, static_cast<int>(sizeof opts / sizeof opts[0]), opts);
  std::string log_text;
  size_t log_size = 0;
  if (nvrtcGetProgramLogSize(g.p, &log_size) == NVRTC_SUCCESS && log_size > 1) {
    log_text.resize(log_size);
    if (nvrtcGetProgramLog(g.p, log_text.data()) != NVRTC_SUCCESS) log_text.clear();
    while (!log_text.empty() && (log_text.back() == '\0' || log_text.back() == '\n'))
      log_text.pop_back();
  }
  if (r != NVRTC_SUCCESS)
    fail(StatusCode::kInternal, "NVRTC could not compile ", name, " for sm_", sm, " (",
         nvrtcGetErrorString(r), "):\n", log_text,
         "\n(set KILN_LOG_LEVEL=verbose to see the generated source)");
  if (!log_text.empty()) log(LogLevel::kVerbose, "nvrtc: ", name, ": ", log_text);
  size_t n = 0;
  r = nvrtcGetCUBINSize(g.p, &n);
  if (r != NVRTC_SUCCESS) fail_nvrtc(r, "nvrtcGetCUBINSize", name);
  if (n == 0) fail(StatusCode::kInternal, "NVRTC produced an empty CUBIN for ", name);
  std::string cubin(n, '\0');
  r = nvrtcGetCUBIN(g.p, cubin.data());
  if (r != NVRTC_SUCCESS) fail_nvrtc(r, "nvrtcGetCUBIN", name);
  return cubin;
}

struct Cache {
  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<const std::string>> cubins;
  size_t hits = 0;
};
Cache& cache() {
  static Cache c;
  return c;
}

}  // namespace

int current_device_sm() {
  int dev = 0, major = 0, minor = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&dev));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  return major * 10 + minor;
}

int nvrtc_target_sm(int device_sm) {
  static const std::vector<int> archs = [] {
    std::vector<int> a;
    int n = 0;
    if (nvrtcGetNumSupportedArchs(&n) == NVRTC_SUCCESS && n > 0) {
      a.resize(static_cast<size_t>(n));
      if (nvrtcGetSupportedArchs(a.data()) != NVRTC_SUCCESS) a.clear();
    }
    return a;
  }();
  if (std::find(archs.begin(), archs.end(), device_sm) != archs.end()) return device_sm;
  int best = -1;
  for (int a : archs)
    if (a / 10 == device_sm / 10 && a < device_sm) best = std::max(best, a);
  if (best < 0) {
    std::string known;
    for (int a : archs) known += cat(known.empty() ? "" : " ", "sm_", a);
    fail(StatusCode::kUnsupported, "this NVRTC cannot compile for sm_", device_sm,
         " (it knows: ", known, ")");
  }
  return best;
}

std::string nvrtc_compile_cubin(const std::string& source, int sm, const std::string& name) {
  std::string key = std::to_string(sm) + "\n" + source;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.cubins.find(key);
    if (it != c.cubins.end()) {
      ++c.hits;
      return *it->second;
    }
  }
  // Compile outside the lock: two threads racing on one source both compile, harmlessly.
  log(LogLevel::kVerbose, "nvrtc: compiling ", name, " for sm_", sm, ":\n", source);
  auto t0 = std::chrono::steady_clock::now();
  auto cubin = std::make_shared<const std::string>(compile(source, sm, name));
  log(LogLevel::kVerbose, "nvrtc: ", name, ": ", cubin->size(), " bytes of CUBIN in ",
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count(),
      " ms");
  std::lock_guard<std::mutex> lock(c.mu);
  c.cubins.emplace(std::move(key), cubin);
  return *cubin;
}

size_t nvrtc_cache_hits() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.hits;
}

}  // namespace kiln::cuda
