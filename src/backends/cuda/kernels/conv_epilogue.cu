// The Conv epilogue (see conv_epilogue.h). Memory-bound and off the fast path (cuDNN's fused
// conv-bias-activation covers the common forward case), so it stays simple: one element per
// thread in a grid-stride loop, float arithmetic, int64 indices.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "backends/cuda/kernels/conv_epilogue.h"

namespace kiln::cuda {

namespace {

__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}
__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

// Spatial sizes right-aligned into three slots (leading unused slots are 1 with offset 0).
struct Geometry {
  int64_t n, m, inner;   // inner: spatial volume of y
  int64_t out[3], native[3], offset[3];
};

template <class T, bool kWindow, bool kChannelsLast>
__global__ void conv_epilogue_kernel(T* y, const T* src, const T* __restrict__ bias, const T* z,
                                     bool relu, Geometry g, int64_t total) {
  // y may be src (in place) or z: no __restrict__ on those. Each element is read and written by
  // one thread only, so in-place use is safe.
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    int64_t ch = 0;
    float v = 0.f;
    if constexpr (!kWindow) {
      ch = kChannelsLast ? i % g.m : (i / g.inner) % g.m;
      if (src) v = load(src, i);
    } else {
      int64_t t = i, o[3], nn;
      if constexpr (kChannelsLast) {
        ch = t % g.m;
        t /= g.m;
      }
      o[2] = t % g.out[2];
      t /= g.out[2];
      o[1] = t % g.out[1];
      t /= g.out[1];
      o[0] = t % g.out[0];
      t /= g.out[0];
      if constexpr (!kChannelsLast) {
        ch = t % g.m;
        t /= g.m;
      }
      nn = t;
      const int64_t s0 = o[0] + g.offset[0], s1 = o[1] + g.offset[1], s2 = o[2] + g.offset[2];
      if (src && s0 < g.native[0] && s1 < g.native[1] && s2 < g.native[2]) {
        int64_t si;
        if constexpr (kChannelsLast)
          si = (((nn * g.native[0] + s0) * g.native[1] + s1) * g.native[2] + s2) * g.m + ch;
        else
          si = (((nn * g.m + ch) * g.native[0] + s0) * g.native[1] + s1) * g.native[2] + s2;
        v = load(src, si);
      }
    }
    if (bias) v += load(bias, ch);
    if (z) v += load(z, i);
    if (relu) v = v < 0.f ? 0.f : v;   // NaN stays NaN, as the reference's relu
    store(y, i, v);
  }
}

template <class T>
void launch_typed(const ConvEpilogueArgs& a, const Geometry& g, int64_t total,
                  cudaStream_t stream) {
  const int threads = 256;
  const int64_t want = (total + threads - 1) / threads;
  const int blocks = static_cast<int>(std::min<int64_t>(want, 65535LL * 16));
  T* y = static_cast<T*>(a.y);
  const T* src = static_cast<const T*>(a.src);
  const T* bias = static_cast<const T*>(a.bias);
  const T* z = static_cast<const T*>(a.z);
  if (a.window) {
    if (a.channels_last)
      conv_epilogue_kernel<T, true, true><<<blocks, threads, 0, stream>>>(y, src, bias, z, a.relu,
                                                                          g, total);
    else
      conv_epilogue_kernel<T, true, false><<<blocks, threads, 0, stream>>>(y, src, bias, z,
                                                                           a.relu, g, total);
  } else {
    if (a.channels_last)
      conv_epilogue_kernel<T, false, true><<<blocks, threads, 0, stream>>>(y, src, bias, z,
                                                                           a.relu, g, total);
    else
      conv_epilogue_kernel<T, false, false><<<blocks, threads, 0, stream>>>(y, src, bias, z,
                                                                            a.relu, g, total);
  }
}

}  // namespace

void launch_conv_epilogue(const ConvEpilogueArgs& a, void* stream) {
  Geometry g;
  g.n = a.n;
  g.m = a.m;
  g.inner = 1;
  const int pad = 3 - a.nsp;
  for (int j = 0; j < 3; ++j) {
    const int k = j - pad;
    g.out[j] = k >= 0 ? a.out[k] : 1;
    g.native[j] = k >= 0 ? a.native[k] : 1;
    g.offset[j] = k >= 0 ? a.offset[k] : 0;
    g.inner *= g.out[j];
  }
  const int64_t total = a.n * a.m * g.inner;
  if (total <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (a.type) {
    case EpilogueType::kFloat: launch_typed<float>(a, g, total, s); break;
    case EpilogueType::kHalf: launch_typed<__half>(a, g, total, s); break;
    case EpilogueType::kBFloat16: launch_typed<__nv_bfloat16>(a, g, total, s); break;
  }
}

}  // namespace kiln::cuda
