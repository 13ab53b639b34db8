#include "backends/cuda/cudnn/cudnn_descriptors.h"

#include <map>

namespace kiln::cuda {

TuningHandle cudnn_tuning_handle() {
  // Created once per device and kept for the life of the process: destroying library handles
  // from static destructors races with the CUDA runtime's own teardown.
  static std::mutex mu;
  static std::map<int, std::pair<cudnnHandle_t, cudaStream_t>>* handles =
      new std::map<int, std::pair<cudnnHandle_t, cudaStream_t>>();
  TuningHandle t;
  t.lock = std::unique_lock<std::mutex>(mu);
  int dev = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&dev));
  auto it = handles->find(dev);
  if (it == handles->end()) {
    cudnnHandle_t h = nullptr;
    cudaStream_t s = nullptr;
    KILN_CUDNN_CHECK(cudnnCreate(&h));
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    KILN_CUDNN_CHECK(cudnnSetStream(h, s));
    it = handles->emplace(dev, std::make_pair(h, s)).first;
  }
  t.handle = it->second.first;
  t.stream = it->second.second;
  return t;
}

}  // namespace kiln::cuda
