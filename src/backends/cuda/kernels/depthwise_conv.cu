// Channels-last depthwise 2-D convolution (see depthwise_conv.h).
//
// Why kiln owns this: cuDNN's NHWC depthwise kernels run ~30x below memory bandwidth on H100 at
// MobileNet sizes, while the operation is memory-bound (9 multiply-adds per element for 3x3).
//
// Layout of the work: a grid-stride loop over N*OH*OW*(C/V) items, channel-vectors fastest, so a
// warp's loads and stores are contiguous along C (the innermost axis of X, Y, Z and the reordered
// W [KH, KW, C]). Neighbouring output pixels share input pixels through L1/L2. V (channels per
// thread) is the widest of 8/4/2/1 (16-bit types) or 4/2/1 (float) that divides C and keeps every
// vector access aligned; the 3x3 kernel gets a fully unrolled tap loop. Indices are 32-bit when
// every offset (and the grid-stride counter) provably fits, else 64-bit.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "backends/cuda/kernels/depthwise_conv.h"

namespace kiln::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t(1) << 20;  // grid-stride beyond; step <= 2^28
constexpr int64_t kInt32Limit = int64_t(1) << 30;  // offsets and i + step stay below 2^31

template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

template <class I>
struct Params {
  I h, w, c, oh, ow, cv;  // cv: channel-vectors per pixel (C / V)
  I kh, kw, sh, sw, dh, dw, ph, pw;
  bool relu;
};

// KS: the square kernel size when known at compile time (3), else 0 (sizes from p.kh / p.kw).
template <class T, int V, int KS, class I>
__global__ void __launch_bounds__(kThreads)
    depthwise_conv_kernel(const T* __restrict__ x, const float* __restrict__ w,
                          const float* __restrict__ bias, const T* __restrict__ bias_t,
                          const T* z, T* y, Params<I> p, I total) {
  // z may be y (an in-place residual): no __restrict__ on either. Each output element is read
  // (as z) and written by one thread only, so that is safe.
  const I kh = KS > 0 ? I(KS) : p.kh;
  const I kw = KS > 0 ? I(KS) : p.kw;
  const I step = static_cast<I>(gridDim.x) * static_cast<I>(blockDim.x);
  for (I i = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + static_cast<I>(threadIdx.x);
       i < total; i += step) {
    const I cv = i % p.cv;
    I t = i / p.cv;
    const I ox = t % p.ow;
    t /= p.ow;
    const I oy = t % p.oh;
    const I n = t / p.oh;
    const I c0 = cv * V;
    const I iy0 = oy * p.sh - p.ph, ix0 = ox * p.sw - p.pw;
    const T* xn = x + n * p.h * p.w * p.c + c0;
    float acc[V];
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = 0.f;
#pragma unroll
    for (I ky = 0; ky < kh; ++ky) {
      const I iy = iy0 + ky * p.dh;
      if (iy < 0 || iy >= p.h) continue;
      const T* xr = xn + iy * p.w * p.c;
      const float* wr = w + ky * kw * p.c + c0;
#pragma unroll
      for (I kx = 0; kx < kw; ++kx) {
        const I ix = ix0 + kx * p.dw;
        if (ix < 0 || ix >= p.w) continue;
        const Pack<T, V> xv = *reinterpret_cast<const Pack<T, V>*>(xr + ix * p.c);
        const Pack<float, V> wv = *reinterpret_cast<const Pack<float, V>*>(wr + kx * p.c);
#pragma unroll
        for (int j = 0; j < V; ++j) acc[j] = fmaf(to_float(xv.v[j]), wv.v[j], acc[j]);
      }
    }
    if (bias) {
      const Pack<float, V> bv = *reinterpret_cast<const Pack<float, V>*>(bias + c0);
#pragma unroll
      for (int j = 0; j < V; ++j) acc[j] += bv.v[j];
    } else if (bias_t) {
#pragma unroll
      for (int j = 0; j < V; ++j) acc[j] += to_float(bias_t[c0 + j]);
    }
    // Y's offset: pixel * C + c0 = (i / cv) * cv * V + cv_index * V = i * V.
    const I yo = i * V;
    if (z) {
      const Pack<T, V> zv = *reinterpret_cast<const Pack<T, V>*>(z + yo);
#pragma unroll
      for (int j = 0; j < V; ++j) acc[j] += to_float(zv.v[j]);
    }
    Pack<T, V> out;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float v = acc[j];
      if (p.relu) v = v < 0.f ? 0.f : v;  // NaN stays NaN, as the reference's relu
      out.v[j] = from_float<T>(v);
    }
    *reinterpret_cast<Pack<T, V>*>(y + yo) = out;
  }
}

template <class T, int V, int KS, class I>
void launch_typed(const DepthwiseConvArgs& a, cudaStream_t s) {
  Params<I> p;
  p.h = static_cast<I>(a.h);
  p.w = static_cast<I>(a.w_in);
  p.c = static_cast<I>(a.c);
  p.oh = static_cast<I>(a.oh);
  p.ow = static_cast<I>(a.ow);
  p.cv = static_cast<I>(a.c / V);
  p.kh = static_cast<I>(a.kh);
  p.kw = static_cast<I>(a.kw);
  p.sh = static_cast<I>(a.stride_h);
  p.sw = static_cast<I>(a.stride_w);
  p.dh = static_cast<I>(a.dilation_h);
  p.dw = static_cast<I>(a.dilation_w);
  p.ph = static_cast<I>(a.pad_h);
  p.pw = static_cast<I>(a.pad_w);
  p.relu = a.relu;
  const int64_t total = a.n * a.oh * a.ow * (a.c / V);
  const int64_t blocks = std::min<int64_t>((total + kThreads - 1) / kThreads, kMaxBlocks);
  depthwise_conv_kernel<T, V, KS, I><<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(
      static_cast<const T*>(a.x), a.w, a.bias, static_cast<const T*>(a.bias_typed),
      static_cast<const T*>(a.z), static_cast<T*>(a.y), p, static_cast<I>(total));
}

// 32-bit indices when every product the kernel forms stays below 2^30 (and so i + step, with
// step <= 2^28, below 2^31).
bool fits_int32(const DepthwiseConvArgs& a) {
  const int64_t x_numel = a.n * a.h * a.w_in * a.c;
  const int64_t y_numel = a.n * a.oh * a.ow * a.c;
  const int64_t w_numel = a.kh * a.kw * a.c;
  // |iy| <= oh * stride + kh * dilation + |pad| (and likewise along W).
  const int64_t sy = a.oh * a.stride_h + a.kh * a.dilation_h + std::llabs(a.pad_h) + a.h;
  const int64_t sx = a.ow * a.stride_w + a.kw * a.dilation_w + std::llabs(a.pad_w) + a.w_in;
  return x_numel < kInt32Limit && y_numel < kInt32Limit && w_numel < kInt32Limit &&
         sy < kInt32Limit && sx < kInt32Limit;
}

template <class T, int V>
void launch_vec(const DepthwiseConvArgs& a, cudaStream_t s) {
  const bool k3 = a.kh == 3 && a.kw == 3;
  if (fits_int32(a)) {
    if (k3)
      launch_typed<T, V, 3, int32_t>(a, s);
    else
      launch_typed<T, V, 0, int32_t>(a, s);
  } else {
    if (k3)
      launch_typed<T, V, 3, int64_t>(a, s);
    else
      launch_typed<T, V, 0, int64_t>(a, s);
  }
}

bool aligned(const void* p, size_t bytes) {
  return p == nullptr || reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// V channels per thread: C divisible by V and every vector access (X, Y, Z of T; W, bias of
// float) aligned to its width.
template <class T>
bool vec_ok(const DepthwiseConvArgs& a, int v) {
  if (a.c % v != 0) return false;
  const size_t tb = sizeof(T) * v, fb = sizeof(float) * v;
  return aligned(a.x, tb) && aligned(a.y, tb) && aligned(a.z, tb) && aligned(a.w, fb) &&
         aligned(a.bias, fb);
}

template <class T>
void launch_type(const DepthwiseConvArgs& a, cudaStream_t s) {
  if constexpr (sizeof(T) == 2) {
    if (vec_ok<T>(a, 8)) return launch_vec<T, 8>(a, s);
  }
  if (vec_ok<T>(a, 4)) return launch_vec<T, 4>(a, s);
  if (vec_ok<T>(a, 2)) return launch_vec<T, 2>(a, s);
  launch_vec<T, 1>(a, s);
}

}  // namespace

void launch_depthwise_conv(const DepthwiseConvArgs& a, void* stream) {
  if (a.n <= 0 || a.oh <= 0 || a.ow <= 0 || a.c <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (a.type) {
    case DepthwiseType::kHalf:
      launch_type<__half>(a, s);
      break;
    case DepthwiseType::kBFloat16:
      launch_type<__nv_bfloat16>(a, s);
      break;
    default:
      launch_type<float>(a, s);
      break;
  }
}

}  // namespace kiln::cuda
