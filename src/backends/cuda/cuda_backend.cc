// The CUDA backend: device memory, streams, events and CUDA graphs for the runtime (DeviceApi),
// and the tactic list generated from this folder's CMakeLists. Available when the CUDA runtime
// finds a GPU; otherwise find_backend("cuda") returns nullptr and says why.
#include <mutex>

#include "backends/cuda/cuda_common.h"

namespace kiln {

std::vector<const Tactic*> generated_cuda_tactics();   // generated registry

namespace cuda {
namespace {

std::string version_string(int v, int major_div, int minor_div, int minor_mod, int patch_mod) {
  if (patch_mod) return cat(v / major_div, ".", (v / minor_div) % minor_mod, ".", v % patch_mod);
  return cat(v / major_div, ".", (v / minor_div) % minor_mod);
}

class CudaDevice : public DeviceApi {
 public:
  explicit CudaDevice(DeviceInfo info) : info_(std::move(info)) {}
  DeviceInfo info() const override { return info_; }
  void* alloc(size_t bytes) const override {
    void* p = nullptr;
    if (bytes == 0) return nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      fail(StatusCode::kDeviceError, "cannot allocate ", bytes, " bytes of GPU memory (",
           free_b >> 20, " MiB free of ", total_b >> 20, " MiB): ", cudaGetErrorString(e));
    }
    return p;
  }
  void free(void* p) const override {
    if (p) cudaFree(p);
  }
  void* alloc_host(size_t bytes) const override {
    void* p = nullptr;
    if (bytes) KILN_CUDA_CHECK(cudaMallocHost(&p, bytes));
    return p;
  }
  void free_host(void* p) const override {
    if (p) cudaFreeHost(p);
  }
  void copy_to_device(void* dst, const void* src, size_t n, void* s) const override {
    if (n) KILN_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, cs(s)));
  }
  void copy_to_host(void* dst, const void* src, size_t n, void* s) const override {
    if (n) KILN_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, cs(s)));
  }
  void copy_on_device(void* dst, const void* src, size_t n, void* s) const override {
    if (n) KILN_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, cs(s)));
  }
  void memset(void* dst, int v, size_t n, void* s) const override {
    if (n) KILN_CUDA_CHECK(cudaMemsetAsync(dst, v, n, cs(s)));
  }
  void synchronize(void* s) const override { KILN_CUDA_CHECK(cudaStreamSynchronize(cs(s))); }
  void* create_stream() const override {
    cudaStream_t s;
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return s;
  }
  void destroy_stream(void* s) const override {
    if (s) cudaStreamDestroy(cs(s));
  }
  void* create_event() const override {
    cudaEvent_t e;
    KILN_CUDA_CHECK(cudaEventCreate(&e));
    return e;
  }
  void destroy_event(void* e) const override {
    if (e) cudaEventDestroy(static_cast<cudaEvent_t>(e));
  }
  void record_event(void* e, void* s) const override {
    KILN_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(e), cs(s)));
  }
  float elapsed_ms(void* a, void* b) const override {
    KILN_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(b)));
    float ms = 0;
    KILN_CUDA_CHECK(
        cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(a), static_cast<cudaEvent_t>(b)));
    return ms;
  }
  std::unique_ptr<DeviceResources> create_resources() const override {
    return std::make_unique<Resources>();
  }
  void begin_capture(void* s) const override {
    KILN_CUDA_CHECK(cudaStreamBeginCapture(cs(s), cudaStreamCaptureModeThreadLocal));
  }
  void* end_capture(void* s) const override {
    cudaGraph_t g = nullptr;
    KILN_CUDA_CHECK(cudaStreamEndCapture(cs(s), &g));
    cudaGraphExec_t exec = nullptr;
    cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) fail_cuda(e, "cudaGraphInstantiate", __FILE__, __LINE__);
    return exec;
  }
  void launch_graph(void* g, void* s) const override {
    KILN_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(g), cs(s)));
  }
  void destroy_graph(void* g) const override {
    if (g) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(g));
  }

 private:
  static cudaStream_t cs(void* s) { return static_cast<cudaStream_t>(s); }
  DeviceInfo info_;
};

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(DeviceInfo info) : device_(std::move(info)), tactics_(generated_cuda_tactics()) {}
  std::string_view name() const override { return "cuda"; }
  const std::vector<const Tactic*>& tactics() const override { return tactics_; }
  const DeviceApi* device() const override { return &device_; }

 private:
  CudaDevice device_;
  std::vector<const Tactic*> tactics_;
};

struct Probe {
  std::unique_ptr<CudaBackend> backend;
  std::string reason;
};

const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
      cudaGetLastError();
      if (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice)
        r.reason = cat("no NVIDIA GPU or driver was found (the CUDA runtime says: ",
                       cudaGetErrorString(e), ")");
      else
        r.reason = e != cudaSuccess
                       ? cat("no usable GPU: the CUDA runtime says ", cudaGetErrorString(e))
                       : std::string("no GPU was found");
      return r;
    }
    int dev = 0;
    cudaDeviceProp prop{};
    e = cudaGetDeviceProperties(&prop, dev);
    if (e == cudaSuccess) e = cudaSetDevice(dev);
    if (e != cudaSuccess) {
      cudaGetLastError();
      r.reason = cat("the GPU cannot be used: ", cudaGetErrorString(e));
      return r;
    }
    DeviceInfo info;
    info.gpu_name = prop.name;
    info.compute_capability = cat(prop.major, ".", prop.minor);
    int rt = 0;
    cudaRuntimeGetVersion(&rt);
    info.cuda_version = version_string(rt, 1000, 10, 100, 0);
    info.cudnn_version = version_string(static_cast<int>(cudnnGetVersion()), 10000, 100, 100, 100);
    info.cublaslt_version = version_string(static_cast<int>(cublasLtGetVersion()), 10000, 100, 100, 100);
    r.backend = std::make_unique<CudaBackend>(std::move(info));
    return r;
  }();
  return p;
}

}  // namespace
}  // namespace cuda

const Backend* cuda_backend_if_available() { return cuda::probe().backend.get(); }
std::string cuda_backend_unavailable_reason() { return cuda::probe().reason; }

}  // namespace kiln
