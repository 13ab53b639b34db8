// DeviceApi: what the runtime needs from a device backend, without naming CUDA. Streams and events
// are opaque pointers (cudaStream_t, cudaEvent_t). Every call throws kiln::Error (kDeviceError) on
// failure; none is made from enqueue paths that must not throw without being caught first.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <string>

namespace kiln {

// Per-execution-context library state (cuDNN and cuBLASLt handles): library handles are not safe
// to use from two threads at once, and contexts are one per thread.
class DeviceResources {
 public:
  virtual ~DeviceResources() = default;
};

// What the plan records about the device it was built for; loading on a device that differs in
// any of these is refused.
struct DeviceInfo {
  std::string gpu_name;            // "NVIDIA H100 80GB HBM3"
  std::string compute_capability;  // "9.0"
  std::string cuda_version;        // runtime version "13.0"
  std::string cudnn_version;       // "9.14.0"
  std::string cublaslt_version;    // "13.1.0"
};

class DeviceApi {
 public:
  virtual ~DeviceApi() = default;
  virtual DeviceInfo info() const = 0;
  virtual void* alloc(size_t bytes) const = 0;   // kDeviceError naming the size when it fails
  virtual void free(void* p) const = 0;          // never throws
  // Page-locked host memory: transfers from it are asynchronous and run at full speed.
  virtual void* alloc_host(size_t bytes) const = 0;
  virtual void free_host(void* p) const = 0;
  virtual void copy_to_device(void* dst, const void* src, size_t bytes, void* stream) const = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes, void* stream) const = 0;
  virtual void copy_on_device(void* dst, const void* src, size_t bytes, void* stream) const = 0;
  virtual void memset(void* dst, int value, size_t bytes, void* stream) const = 0;
  virtual void synchronize(void* stream) const = 0;
  virtual void* create_stream() const = 0;
  virtual void destroy_stream(void* stream) const = 0;
  virtual void* create_event() const = 0;
  virtual void destroy_event(void* event) const = 0;
  virtual void record_event(void* event, void* stream) const = 0;
  // Milliseconds between two recorded events (synchronises on `end`).
  virtual float elapsed_ms(void* start, void* end) const = 0;
  virtual std::unique_ptr<DeviceResources> create_resources() const = 0;
  // CUDA graphs: begin capturing the stream's work, end into an executable graph, launch it.
  virtual void begin_capture(void* stream) const = 0;
  virtual void* end_capture(void* stream) const = 0;   // returns a cudaGraphExec_t
  virtual void launch_graph(void* graph_exec, void* stream) const = 0;
  virtual void destroy_graph(void* graph_exec) const = 0;
};

}  // namespace kiln
