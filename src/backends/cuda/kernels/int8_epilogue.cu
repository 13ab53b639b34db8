#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "int8_epilogue.h"

namespace kiln::cuda::q8 {

namespace {

__device__ float load(const void* p, int64_t i, OutType t) {
  switch (t) {
    case OutType::kHalf: return __half2float(static_cast<const __half*>(p)[i]);
    case OutType::kBFloat16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

__device__ void store(void* p, int64_t i, OutType t, float v) {
  switch (t) {
    case OutType::kHalf: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    case OutType::kBFloat16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
    default: static_cast<float*>(p)[i] = v;
  }
}

// The activations as ops/epilogue.h defines them (float32 math).
__device__ float activate(float v, Act a) {
  switch (a) {
    case Act::kRelu: return v > 0.f || v != v ? v : 0.f;
    case Act::kGeluErf: return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    case Act::kGeluTanh:
      return 0.5f * v * (1.f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    default: return v;
  }
}

__global__ void epilogue_kernel(EpilogueArgs a, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = i % a.cols;
    float v = static_cast<float>(a.acc[i]) * a.scale[c];
    if (a.bias) v += load(a.bias, c, a.type);
    if (a.z) v += load(a.z, i, a.type);
    store(a.y, i, a.type, activate(v, a.act));
  }
}

}  // namespace

void launch_int8_epilogue(const EpilogueArgs& a, void* stream) {
  const int64_t total = a.rows * a.cols;
  if (total == 0) return;
  const int threads = 256;
  int64_t blocks = (total + threads - 1) / threads;
  if (blocks > 65536 * 8) blocks = 65536 * 8;
  epilogue_kernel<<<static_cast<unsigned>(blocks), threads, 0, static_cast<cudaStream_t>(stream)>>>(
      a, total);
}

}  // namespace kiln::cuda::q8
