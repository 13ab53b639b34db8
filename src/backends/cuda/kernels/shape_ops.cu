// Tiny kernels for shape-like ops: values as kernel arguments, a fill, and Range.
#include <algorithm>

#include "backends/cuda/kernels/movement_device.cuh"
#include "backends/cuda/kernels/shape_ops.h"

namespace kiln::cuda::mv {

namespace {

constexpr int kChunk = 16;

struct Int64Chunk {
  int64_t v[kChunk];
};

__global__ void write_int64s_kernel(int64_t* dst, Int64Chunk c, int n) {
  int i = threadIdx.x;
  if (i < n) dst[i] = c.v[i];
}

template <class U>
__global__ void __launch_bounds__(kThreads) fill_kernel(U* dst, U v, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) dst[i] = v;
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    range_kernel(const T* start, const T* delta, T* dst, int64_t n) {
  if constexpr (is_float_type<T>()) {
    // As the reference: start + i * delta in double, one rounding per operation (no fused
    // multiply-add, which would round differently from the host).
    const double s = to_f64(*start), d = to_f64(*delta);
    for (int64_t i = global_thread(); i < n; i += grid_threads())
      dst[i] = from_f64<T>(__dadd_rn(s, __dmul_rn(static_cast<double>(i), d)));
  } else {
    const uint64_t s = static_cast<uint64_t>(static_cast<int64_t>(*start));
    const uint64_t d = static_cast<uint64_t>(static_cast<int64_t>(*delta));
    for (int64_t i = global_thread(); i < n; i += grid_threads())
      dst[i] = static_cast<T>(s + static_cast<uint64_t>(i) * d);
  }
}

constexpr double kTwoPi = 2 * 3.14159265358979323846;  // 2 * M_PI, as the reference

// As ops/window_function.cc, one rounding per operation (no fused multiply-adds).
template <class T>
__global__ void __launch_bounds__(kThreads)
    window_kernel(T* dst, int64_t n, double N, double a0, double a1, double a2) {
  for (int64_t k = global_thread(); k < n; k += grid_threads()) {
    double v;
    if (N == 0) {
      v = 1.0;
    } else {
      double x = __ddiv_rn(__dmul_rn(kTwoPi, static_cast<double>(k)), N);
      v = __dadd_rn(__dsub_rn(a0, __dmul_rn(a1, cos(x))), __dmul_rn(a2, cos(__dmul_rn(2.0, x))));
    }
    if constexpr (is_float_type<T>())
      dst[k] = from_f64<T>(v);
    else
      dst[k] = static_cast<T>(static_cast<int64_t>(v));  // Tensor::set_f64 on integers
  }
}

template <class U>
void launch_fill(void* dst, uint64_t bits, int64_t n, cudaStream_t s) {
  U v;
  static_assert(sizeof(U) <= sizeof(bits), "fill units are at most 8 bytes");
  memcpy(&v, &bits, sizeof(U));  // little-endian: the low bytes
  fill_kernel<U><<<grid_for(n), kThreads, 0, s>>>(static_cast<U*>(dst), v, n);
}

}  // namespace

void write_int64s(int64_t* dst, const int64_t* values, int64_t n, void* stream) {
  cudaStream_t s = as_stream(stream);
  for (int64_t first = 0; first < n; first += kChunk) {
    int m = static_cast<int>(std::min<int64_t>(kChunk, n - first));
    Int64Chunk c{};
    for (int i = 0; i < m; ++i) c.v[i] = values[first + i];
    write_int64s_kernel<<<1, kChunk, 0, s>>>(dst + first, c, m);
  }
}

void fill(void* dst, int elem_bytes, uint64_t bits, int64_t n, void* stream) {
  if (n == 0) return;
  cudaStream_t s = as_stream(stream);
  switch (elem_bytes) {
    case 1:
      return launch_fill<uint8_t>(dst, bits, n, s);
    case 2:
      return launch_fill<uint16_t>(dst, bits, n, s);
    case 4:
      return launch_fill<uint32_t>(dst, bits, n, s);
    default:
      return launch_fill<unsigned long long>(dst, bits, n, s);
  }
}

void range(const void* start, const void* delta, ElemType t, void* dst, int64_t n, void* stream) {
  if (n == 0) return;
  cudaStream_t s = as_stream(stream);
  unsigned g = grid_for(n);
  dispatch_elem(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    range_kernel<T><<<g, kThreads, 0, s>>>(static_cast<const T*>(start),
                                           static_cast<const T*>(delta), static_cast<T*>(dst), n);
  });
}

void window(void* dst, ElemType t, int64_t n, bool periodic, double a0, double a1, double a2,
            void* stream) {
  if (n == 0) return;
  cudaStream_t s = as_stream(stream);
  const double N = static_cast<double>(periodic ? n : n - 1);
  unsigned g = grid_for(n);
  dispatch_elem(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    window_kernel<T><<<g, kThreads, 0, s>>>(static_cast<T*>(dst), n, N, a0, a1, a2);
  });
}

}  // namespace kiln::cuda::mv
