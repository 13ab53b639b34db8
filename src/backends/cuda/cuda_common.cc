#include "backends/cuda/cuda_common.h"

namespace kiln::cuda {

void fail_cuda(cudaError_t e, const char* expr, const char* file, int line) {
  cudaGetLastError();  // clear a sticky non-fatal error so the context stays usable
  fail(StatusCode::kDeviceError, "CUDA error ", cudaGetErrorName(e), " (", cudaGetErrorString(e),
       ") in ", expr, " at ", file, ":", line);
}

void fail_cudnn(cudnnStatus_t s, const char* expr, const char* file, int line) {
  fail(StatusCode::kDeviceError, "cuDNN error ", cudnnGetErrorString(s), " in ", expr, " at ", file,
       ":", line);
}

void fail_cublas(cublasStatus_t s, const char* expr, const char* file, int line) {
  fail(StatusCode::kDeviceError, "cuBLAS error ", static_cast<int>(s), " in ", expr, " at ", file,
       ":", line);
}

Resources::~Resources() {
  if (cudnn_) cudnnDestroy(cudnn_);
  if (lt_) cublasLtDestroy(lt_);
}

cudnnHandle_t Resources::cudnn(cudaStream_t stream) {
  if (!cudnn_) KILN_CUDNN_CHECK(cudnnCreate(&cudnn_));
  KILN_CUDNN_CHECK(cudnnSetStream(cudnn_, stream));
  return cudnn_;
}

cublasLtHandle_t Resources::cublaslt() {
  if (!lt_) KILN_CUBLAS_CHECK(cublasLtCreate(&lt_));
  return lt_;
}

DeviceBuffer::DeviceBuffer(size_t bytes) : n_(bytes) {
  if (bytes) {
    cudaError_t e = cudaMalloc(&p_, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      fail(StatusCode::kDeviceError, "cannot allocate ", bytes, " bytes of GPU memory: ",
           cudaGetErrorString(e));
    }
  }
}

DeviceBuffer::DeviceBuffer(const void* host, size_t bytes) : DeviceBuffer(bytes) {
  if (bytes) KILN_CUDA_CHECK(cudaMemcpy(p_, host, bytes, cudaMemcpyHostToDevice));
}

DeviceBuffer::~DeviceBuffer() {
  if (p_) cudaFree(p_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (p_) cudaFree(p_);
    p_ = o.p_;
    n_ = o.n_;
    o.p_ = nullptr;
    o.n_ = 0;
  }
  return *this;
}

void check_launch(const char* what) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    fail(StatusCode::kDeviceError, "launching ", what, " failed: ", cudaGetErrorName(e), " (",
         cudaGetErrorString(e), ")");
}

Tensor copy_to_host_sync(const DeviceTensor& t, cudaStream_t stream) {
  KILN_CHECK(t.defined() && t.dense(), "copy_to_host_sync: an undefined or strided tensor");
  Tensor h(t.dtype, t.dims);
  if (h.nbytes() == 0) return h;
  KILN_CUDA_CHECK(cudaMemcpyAsync(h.raw(), t.data, h.nbytes(), cudaMemcpyDeviceToHost, stream));
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  return h;
}

bool device_dtype_ok(DataType t) {
  switch (t) {
    case DataType::kFloat: case DataType::kFloat16: case DataType::kBFloat16:
    case DataType::kDouble: case DataType::kInt8: case DataType::kUInt8: case DataType::kInt16:
    case DataType::kUInt16: case DataType::kInt32: case DataType::kUInt32: case DataType::kInt64:
    case DataType::kUInt64: case DataType::kBool:
      return true;
    default:
      return false;
  }
}

}  // namespace kiln::cuda
