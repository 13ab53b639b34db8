// Owning wrappers of cuDNN's legacy descriptors, and the process-wide handle that tactics use for
// algorithm search (so that timing runs never share a handle, or its internal scratch memory, with
// an execution context's work in flight).
#pragma once
#include <cudnn.h>

#include <mutex>
#include <vector>

#include "backends/cuda/cuda_common.h"

namespace kiln::cuda {

template <class T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class CudnnDescriptor {
 public:
  CudnnDescriptor() { KILN_CUDNN_CHECK(Create(&d_)); }
  ~CudnnDescriptor() {
    if (d_) Destroy(d_);
  }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  T get() const { return d_; }

 private:
  T d_ = nullptr;
};

using TensorDesc = CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor,
                                   cudnnDestroyTensorDescriptor>;
using FilterDesc = CudnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor,
                                   cudnnDestroyFilterDescriptor>;
using ConvDesc = CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                                 cudnnDestroyConvolutionDescriptor>;
using ActivationDesc = CudnnDescriptor<cudnnActivationDescriptor_t, cudnnCreateActivationDescriptor,
                                       cudnnDestroyActivationDescriptor>;

// Dense tensor of `dims` given in NCHW order (N, C, spatial...), laid out NCHW or, with
// channels_last, NHWC / NDHWC (described through explicit strides).
inline void set_tensor_nd(cudnnTensorDescriptor_t d, cudnnDataType_t t,
                          const std::vector<int>& dims, bool channels_last) {
  const int nb = static_cast<int>(dims.size());
  std::vector<int> strides(nb);
  if (!channels_last) {
    int64_t s = 1;
    for (int i = nb - 1; i >= 0; --i) {
      strides[i] = static_cast<int>(s);
      s *= dims[i];
    }
  } else {
    // Memory order: N, spatial..., C.
    strides[1] = 1;
    int64_t s = dims[1];
    for (int i = nb - 1; i >= 2; --i) {
      strides[i] = static_cast<int>(s);
      s *= dims[i];
    }
    strides[0] = static_cast<int>(s);
  }
  KILN_CUDNN_CHECK(cudnnSetTensorNdDescriptor(d, t, nb, dims.data(), strides.data()));
}

// The handle algorithm searches run on, for the current device, with its own stream. Callers hold
// the returned lock for as long as they use the handle.
struct TuningHandle {
  std::unique_lock<std::mutex> lock;
  cudnnHandle_t handle = nullptr;
  cudaStream_t stream = nullptr;
};
TuningHandle cudnn_tuning_handle();

}  // namespace kiln::cuda
