#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "reformat.h"

namespace kiln::cuda::rf {

namespace {

struct Params {
  int rank;
  int64_t src_dims[kMaxDims], src_strides[kMaxDims], out_dims[kMaxDims];
};

__device__ float load(const void* p, int64_t i, FloatType t) {
  switch (t) {
    case FloatType::kFloat16: return __half2float(static_cast<const __half*>(p)[i]);
    case FloatType::kBFloat16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

__device__ void store(void* p, int64_t i, FloatType t, float v) {
  switch (t) {
    case FloatType::kFloat16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    case FloatType::kBFloat16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
    default: static_cast<float*>(p)[i] = v;
  }
}

// One thread per output element, in output order: the writes are coalesced; the reads follow
// the permutation (for NCHW -> NHWC, a warp reads a few channel planes at consecutive pixels).
__global__ void reformat_kernel(const void* src, FloatType from, void* dst, FloatType to,
                                int64_t total, Params p) {
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < total;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = o, off = 0;
    bool pad = false;
    for (int d = p.rank - 1; d >= 0; --d) {
      int64_t c = rest % p.out_dims[d];
      rest /= p.out_dims[d];
      if (c >= p.src_dims[d]) pad = true;
      off += c * p.src_strides[d];
    }
    store(dst, o, to, pad ? 0.f : load(src, off, from));
  }
}

}  // namespace

void reformat(const void* src, FloatType from, void* dst, FloatType to, int rank,
              const int64_t* src_dims, const int64_t* src_strides, const int64_t* out_dims,
              void* stream) {
  Params p{};
  p.rank = rank;
  int64_t total = 1;
  for (int d = 0; d < rank; ++d) {
    p.src_dims[d] = src_dims[d];
    p.src_strides[d] = src_strides[d];
    p.out_dims[d] = out_dims[d];
    total *= out_dims[d];
  }
  if (total == 0) return;
  const int threads = 256;
  int64_t blocks = (total + threads - 1) / threads;
  if (blocks > 65536 * 8) blocks = 65536 * 8;
  reformat_kernel<<<static_cast<unsigned>(blocks), threads, 0, static_cast<cudaStream_t>(stream)>>>(
      src, from, dst, to, total, p);
}

}  // namespace kiln::cuda::rf
