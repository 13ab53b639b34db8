// Shared by the CUDA backend's host code (.cc files): error checks that become kiln::Error, the
// per-context library handles, and small helpers for tactics. Kernels (.cu) do not include this:
// they expose plain launcher functions declared in their own headers.
#pragma once
#include <cuda_runtime.h>
#include <cublasLt.h>
#include <cudnn.h>

#include <memory>
#include <string>

#include "common/error.h"
#include "runtime/backend.h"

namespace kiln::cuda {

[[noreturn]] void fail_cuda(cudaError_t e, const char* expr, const char* file, int line);
[[noreturn]] void fail_cudnn(cudnnStatus_t s, const char* expr, const char* file, int line);
[[noreturn]] void fail_cublas(cublasStatus_t s, const char* expr, const char* file, int line);

// Per-execution-context handles, created on first use and bound to the launch's stream.
class Resources : public DeviceResources {
 public:
  ~Resources() override;
  cudnnHandle_t cudnn(cudaStream_t stream);
  cublasLtHandle_t cublaslt();

 private:
  cudnnHandle_t cudnn_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
};

inline cudaStream_t stream_of(const LaunchArgs& a) { return static_cast<cudaStream_t>(a.stream); }
inline Resources& resources_of(const LaunchArgs& a) { return static_cast<Resources&>(*a.resources); }

// The device (weights) copy of a host tensor, owned by a kernel for the engine's lifetime.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  DeviceBuffer(const void* host, size_t bytes);   // uploads synchronously
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  void* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

// The launch's error (after kernels were enqueued): a bad configuration shows up here.
void check_launch(const char* what);

// The value of a small dense device tensor (a parameter computed at run time: axes, scales, a
// roi) as a host Tensor. The copy is enqueued on `stream` and waited for, so it sees what earlier
// steps wrote; a kernel that calls this synchronises and must answer false to capturable().
Tensor copy_to_host_sync(const DeviceTensor& t, cudaStream_t stream);

// A kernel whose shapes come from the launch: subclasses implement enqueue() only.
// A tactic made from a name, a support predicate and a kernel factory: most own-kernel tactics
// need nothing more.
class SimpleTactic : public Tactic {
 public:
  using Supports = Status (*)(const Node&);
  using Make = std::unique_ptr<Kernel> (*)(const Node&);
  SimpleTactic(std::string id, std::string op, Supports s, Make m)
      : id_(std::move(id)), op_(std::move(op)), s_(s), m_(m) {}
  std::string_view id() const override { return id_; }
  std::string_view op() const override { return op_; }
  Status supports(const Node& n) const override { return s_(n); }
  std::unique_ptr<Kernel> instantiate(const Node& n, std::string_view) const override {
    return m_(n);
  }

 private:
  std::string id_, op_;
  Supports s_;
  Make m_;
};

// Unsupported-status shorthand: `return unsupported("int64 inputs");`
inline Status unsupported(const std::string& why) { return Status(StatusCode::kUnsupported, why); }
// True for the element types kiln's device kernels handle as data (every dtype but strings,
// complex and fp8).
bool device_dtype_ok(DataType t);

}  // namespace kiln::cuda

#define KILN_CUDA_CHECK(expr)                                                          \
  do {                                                                                 \
    cudaError_t kiln_e_ = (expr);                                                      \
    if (kiln_e_ != cudaSuccess) ::kiln::cuda::fail_cuda(kiln_e_, #expr, __FILE__, __LINE__); \
  } while (0)
#define KILN_CUDNN_CHECK(expr)                                                         \
  do {                                                                                 \
    cudnnStatus_t kiln_s_ = (expr);                                                    \
    if (kiln_s_ != CUDNN_STATUS_SUCCESS)                                               \
      ::kiln::cuda::fail_cudnn(kiln_s_, #expr, __FILE__, __LINE__);                    \
  } while (0)
#define KILN_CUBLAS_CHECK(expr)                                                        \
  do {                                                                                 \
    cublasStatus_t kiln_s_ = (expr);                                                   \
    if (kiln_s_ != CUBLAS_STATUS_SUCCESS)                                              \
      ::kiln::cuda::fail_cublas(kiln_s_, #expr, __FILE__, __LINE__);                   \
  } while (0)
