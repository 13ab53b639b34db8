// Indexing kernels: gathers move elements by width (whole slices in units of up to 16 bytes
// where rows line up, so an embedding lookup reads each row with full sectors); scatters combine
// typed elements with atomics; OneHot compares indices of any numeric type.
#include <cmath>

#include "backends/cuda/kernels/indexing.h"
#include "backends/cuda/kernels/movement_device.cuh"

namespace kiln::cuda::mv {

namespace {

template <class I>
__device__ __forceinline__ int64_t wrap_index(I v, int64_t len) {
  int64_t x = static_cast<int64_t>(v);
  return x < 0 ? x + len : x;  // still out of [0, len) when it was out of range
}

// The widest unit (<= 16 bytes, a multiple of es) dividing `bytes` with the pointers aligned.
int unit_width(int es, int64_t bytes, const void* a, const void* b) {
  for (int w = 16; w > es; w /= 2)
    if (w % es == 0 && bytes % w == 0 && aligned(a, w) && aligned(b, w)) return w;
  return es;
}

// ---- gather ----

// Embedding lookups are the hot case: rows of `inner` units (16 bytes each where they align),
// consecutive threads on consecutive units of a row, and 32-bit fast division when it fits.
template <class U, class I, bool k32>
__global__ void __launch_bounds__(kThreads)
    gather_kernel(const U* __restrict__ data, const I* __restrict__ idx, U* __restrict__ out,
                  int64_t outer, int64_t axis_len, int64_t n_idx, int64_t inner, FastDiv f_inner,
                  FastDiv f_idx) {
  const int64_t n = outer * n_idx * inner;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t e, j, o;
    if constexpr (k32) {
      uint32_t r = f_inner.div(static_cast<uint32_t>(i));
      e = static_cast<uint32_t>(i) - r * f_inner.d;
      uint32_t q = f_idx.div(r);
      j = r - q * f_idx.d;
      o = q;
    } else {
      int64_t r = i / inner;
      e = i - r * inner;
      o = r / n_idx;
      j = r - o * n_idx;
    }
    int64_t x = wrap_index(idx[j], axis_len);
    if (x >= 0 && x < axis_len) {
      out[i] = data[(o * axis_len + x) * inner + e];
    } else {
      U z;
      memset(&z, 0, sizeof(U));
      out[i] = z;
    }
  }
}

template <class U, class I>
void launch_gather_t(const U* d, const I* idx, U* o, int64_t outer, int64_t axis_len, int64_t n_idx,
                     int64_t inner, cudaStream_t s) {
  const int64_t n = outer * n_idx * inner;
  unsigned g = grid_for(n);
  if (n < (int64_t{1} << 31))
    gather_kernel<U, I, true><<<g, kThreads, 0, s>>>(d, idx, o, outer, axis_len, n_idx, inner,
                                                     FastDiv(static_cast<uint32_t>(inner)),
                                                     FastDiv(static_cast<uint32_t>(n_idx)));
  else
    gather_kernel<U, I, false>
        <<<g, kThreads, 0, s>>>(d, idx, o, outer, axis_len, n_idx, inner, FastDiv(), FastDiv());
}

template <int W>
void launch_gather(const void* data, const void* idx, bool is64, void* out, int64_t outer,
                   int64_t axis_len, int64_t n_idx, int64_t inner, cudaStream_t s) {
  using U = typename Unit<W>::T;
  auto* d = static_cast<const U*>(data);
  auto* o = static_cast<U*>(out);
  if (is64)
    launch_gather_t(d, static_cast<const int64_t*>(idx), o, outer, axis_len, n_idx, inner, s);
  else
    launch_gather_t(d, static_cast<const int32_t*>(idx), o, outer, axis_len, n_idx, inner, s);
}

// ---- gather/scatter elements ----

// Innermost-first copy of ElementsArgs for constant-indexed unrolled loops.
struct ElemKernelArgs {
  int rank, axis;  // axis innermost-first
  int64_t dims[kMaxDims], st[kMaxDims];
  int64_t axis_len, n;
};

ElemKernelArgs elem_args(const ElementsArgs& a) {
  ElemKernelArgs k{};
  k.rank = a.rank;
  k.axis = a.rank - 1 - a.axis;
  k.axis_len = a.axis_len;
  k.n = 1;
  for (int i = 0; i < a.rank; ++i) {
    k.dims[i] = a.idx_dims[a.rank - 1 - i];
    k.st[i] = a.data_strides[a.rank - 1 - i];
    k.n *= a.idx_dims[i];
  }
  return k;
}

// Data offset of element i of the indices; -1 when its index is out of range.
template <class I>
__device__ __forceinline__ int64_t elements_offset(const ElemKernelArgs& a, const I* idx,
                                                   int64_t i) {
  int64_t rem = i, off = 0;
#pragma unroll
  for (int k = 0; k < kMaxDims; ++k) {
    if (k == a.rank) break;
    int64_t q = rem / a.dims[k];
    int64_t c = rem - q * a.dims[k];
    rem = q;
    if (k != a.axis) off += c * a.st[k];
  }
  int64_t x = wrap_index(idx[i], a.axis_len);
  if (x < 0 || x >= a.axis_len) return -1;
  return off + x * a.st[a.axis];
}

template <class U, class I>
__global__ void __launch_bounds__(kThreads)
    gather_elements_kernel(const U* __restrict__ data, const I* __restrict__ idx,
                           U* __restrict__ out, ElemKernelArgs a) {
  for (int64_t i = global_thread(); i < a.n; i += grid_threads()) {
    int64_t off = elements_offset(a, idx, i);
    if (off >= 0) {
      out[i] = data[off];
    } else {
      U z;
      memset(&z, 0, sizeof(U));
      out[i] = z;
    }
  }
}

template <int W>
void launch_gather_elements(const void* data, const void* idx, bool is64, void* out,
                            const ElemKernelArgs& a, cudaStream_t s) {
  using U = typename Unit<W>::T;
  unsigned g = grid_for(a.n);
  auto* d = static_cast<const U*>(data);
  auto* o = static_cast<U*>(out);
  if (is64)
    gather_elements_kernel<U, int64_t>
        <<<g, kThreads, 0, s>>>(d, static_cast<const int64_t*>(idx), o, a);
  else
    gather_elements_kernel<U, int32_t>
        <<<g, kThreads, 0, s>>>(d, static_cast<const int32_t*>(idx), o, a);
}

// ---- scatter reductions ----

// Combines a (current) and b (update) as ops/movement_util.h's scatter_reduce: float math in
// double rounded to the type, integers wrapping (through int64 for all but uint64), bool logical.
template <class T>
__device__ __forceinline__ T combine(Reduction r, T a, T b, bool is_bool) {
  if constexpr (is_float_type<T>()) {
    double x = to_f64(a), y = to_f64(b);
    double v = r == Reduction::kAdd   ? x + y
               : r == Reduction::kMul ? x * y
               : r == Reduction::kMax ? ((y > x || isnan(y)) ? y : x)
                                      : ((y < x || isnan(y)) ? y : x);
    return from_f64<T>(v);
  } else if constexpr (std::is_same<T, uint64_t>::value) {
    return r == Reduction::kAdd   ? a + b
           : r == Reduction::kMul ? a * b
           : r == Reduction::kMax ? (a > b ? a : b)
                                  : (a < b ? a : b);
  } else {
    if (is_bool) {
      bool x = a != 0, y = b != 0;
      bool v = (r == Reduction::kAdd || r == Reduction::kMax) ? (x || y) : (x && y);
      return static_cast<T>(v ? 1 : 0);
    }
    int64_t x = static_cast<int64_t>(a), y = static_cast<int64_t>(b);
    uint64_t ux = static_cast<uint64_t>(x), uy = static_cast<uint64_t>(y);
    int64_t v = r == Reduction::kAdd   ? static_cast<int64_t>(ux + uy)
                : r == Reduction::kMul ? static_cast<int64_t>(ux * uy)
                : r == Reduction::kMax ? (x > y ? x : y)
                                       : (x < y ? x : y);
    return static_cast<T>(v);
  }
}

template <class T, class W>
__device__ __forceinline__ T bits_as(W w) {
  T t;
  memcpy(&t, &w, sizeof(T));
  return t;
}

// dst = combine(dst, v) atomically: hardware adds where they exist, else a compare-and-swap loop
// on the element (4/8 bytes) or on the aligned 32-bit word holding it (1/2 bytes).
template <class T>
__device__ void atomic_combine(T* dst, T v, Reduction r, bool is_bool) {
  if constexpr (std::is_same<T, float>::value || std::is_same<T, double>::value) {
    if (r == Reduction::kAdd) {
      atomicAdd(dst, v);
      return;
    }
  }
  if constexpr (std::is_same<T, int32_t>::value || std::is_same<T, uint32_t>::value) {
    if (r == Reduction::kAdd) {
      atomicAdd(reinterpret_cast<unsigned*>(dst), static_cast<unsigned>(v));
      return;
    }
  }
  if constexpr (std::is_same<T, int64_t>::value || std::is_same<T, uint64_t>::value) {
    if (r == Reduction::kAdd) {
      atomicAdd(reinterpret_cast<unsigned long long*>(dst), static_cast<unsigned long long>(v));
      return;
    }
  }
  if constexpr (sizeof(T) == 8) {
    auto* p = reinterpret_cast<unsigned long long*>(dst);
    unsigned long long old = *p, assumed;
    do {
      assumed = old;
      T nv = combine(r, bits_as<T>(assumed), v, is_bool);
      old = atomicCAS(p, assumed, bits_as<unsigned long long>(nv));
    } while (old != assumed);
  } else if constexpr (sizeof(T) == 4) {
    auto* p = reinterpret_cast<unsigned*>(dst);
    unsigned old = *p, assumed;
    do {
      assumed = old;
      T nv = combine(r, bits_as<T>(assumed), v, is_bool);
      old = atomicCAS(p, assumed, bits_as<unsigned>(nv));
    } while (old != assumed);
  } else {
    // 1 or 2 bytes: swap the aligned word that holds the element (allocations are 256-byte
    // granular, so the word never leaves the buffer's allocation).
    uintptr_t addr = reinterpret_cast<uintptr_t>(dst);
    auto* p = reinterpret_cast<unsigned*>(addr & ~uintptr_t{3});
    const unsigned shift = static_cast<unsigned>(addr & 3) * 8;
    const unsigned mask = (sizeof(T) == 1 ? 0xffu : 0xffffu) << shift;
    unsigned old = *p, assumed;
    do {
      assumed = old;
      auto cur_bits = static_cast<typename Unit<sizeof(T)>::T>((assumed & mask) >> shift);
      T nv = combine(r, bits_as<T>(cur_bits), v, is_bool);
      unsigned nb = static_cast<unsigned>(bits_as<typename Unit<sizeof(T)>::T>(nv)) << shift;
      old = atomicCAS(p, assumed, (assumed & ~mask) | nb);
    } while (old != assumed);
  }
}

template <class T, class I>
__global__ void __launch_bounds__(kThreads)
    scatter_elements_reduce_kernel(T* out, const I* __restrict__ idx, const T* __restrict__ upd,
                                   ElemKernelArgs a, Reduction r, bool is_bool) {
  for (int64_t i = global_thread(); i < a.n; i += grid_threads()) {
    int64_t off = elements_offset(a, idx, i);
    if (off < 0) continue;  // out of range: not diagnosed on the GPU
    atomic_combine(out + off, upd[i], r, is_bool);
  }
}

// ---- reduction none: the last update aimed at a target wins ----
//
// The reference applies updates in order, so with repeated targets the last one stays. Pass 1
// (mark) stores, per target, the largest 1-based update number with atomicMax into a zeroed
// buffer of W (32-bit while the numbers fit, else 64-bit); pass 2 (store) lets only that update
// write. The passes are two launches on one stream, so pass 2 sees every mark. Where repeats are
// impossible the store pass runs alone (win == nullptr).

// Update numbers 1..n fit 32 bits while n <= 0xfffffffe.
bool wide_winners(int64_t n) { return n > int64_t{0xfffffffe}; }

__device__ __forceinline__ void atomic_max_w(uint32_t* p, uint32_t v) {
  atomicMax(reinterpret_cast<unsigned*>(p), static_cast<unsigned>(v));
}
__device__ __forceinline__ void atomic_max_w(unsigned long long* p, unsigned long long v) {
  atomicMax(p, v);
}

template <class I, class W>
__global__ void __launch_bounds__(kThreads)
    scatter_elements_mark_kernel(const I* __restrict__ idx, ElemKernelArgs a, W* win) {
  for (int64_t i = global_thread(); i < a.n; i += grid_threads()) {
    int64_t off = elements_offset(a, idx, i);
    if (off >= 0) atomic_max_w(win + off, static_cast<W>(i + 1));
  }
}

// U: an unsigned type of the element's size (none only moves bits).
template <class U, class I, class W>
__global__ void __launch_bounds__(kThreads)
    scatter_elements_store_kernel(U* out, const I* __restrict__ idx, const U* __restrict__ upd,
                                  ElemKernelArgs a, const W* __restrict__ win) {
  for (int64_t i = global_thread(); i < a.n; i += grid_threads()) {
    int64_t off = elements_offset(a, idx, i);
    if (off < 0) continue;  // out of range: not diagnosed on the GPU
    if (win && win[off] != static_cast<W>(i + 1)) continue;  // a later update wins
    out[off] = upd[i];
  }
}

template <class U, class I>
void launch_scatter_elements_none(U* out, const I* idx, const U* upd, const ElemKernelArgs& a,
                                  size_t ws_bytes, void* workspace, cudaStream_t s) {
  unsigned g = grid_for(a.n);
  if (ws_bytes == 0) {
    scatter_elements_store_kernel<U, I, uint32_t>
        <<<g, kThreads, 0, s>>>(out, idx, upd, a, nullptr);
    return;
  }
  // A failed memset shows in cudaGetLastError, which the tactic's check_launch reads.
  (void)cudaMemsetAsync(workspace, 0, ws_bytes, s);
  if (wide_winners(a.n)) {
    auto* win = static_cast<unsigned long long*>(workspace);
    scatter_elements_mark_kernel<I, unsigned long long><<<g, kThreads, 0, s>>>(idx, a, win);
    scatter_elements_store_kernel<U, I, unsigned long long>
        <<<g, kThreads, 0, s>>>(out, idx, upd, a, win);
  } else {
    auto* win = static_cast<uint32_t*>(workspace);
    scatter_elements_mark_kernel<I, uint32_t><<<g, kThreads, 0, s>>>(idx, a, win);
    scatter_elements_store_kernel<U, I, uint32_t><<<g, kThreads, 0, s>>>(out, idx, upd, a, win);
  }
}

// ---- gather/scatter nd ----

struct NDKernelArgs {
  int m;
  int64_t batches, per_batch, slice, batch_stride;  // slice in units for gathers
  int64_t dims[kMaxDims], strides[kMaxDims];        // strides in units for gathers
};

// Offset (in the strides' units) of tuple `row`; -1 when one of its indices is out of range.
__device__ __forceinline__ int64_t tuple_offset(const NDKernelArgs& a, const int64_t* idx,
                                                int64_t row) {
  int64_t b = a.per_batch > 0 ? row / a.per_batch : 0;
  int64_t off = b * a.batch_stride;
  const int64_t* t = idx + row * a.m;
#pragma unroll
  for (int k = 0; k < kMaxDims; ++k) {
    if (k == a.m) break;
    int64_t x = wrap_index(t[k], a.dims[k]);
    if (x < 0 || x >= a.dims[k]) return -1;
    off += x * a.strides[k];
  }
  return off;
}

template <class U>
__global__ void __launch_bounds__(kThreads)
    gather_nd_kernel(const U* __restrict__ data, const int64_t* __restrict__ idx,
                     U* __restrict__ out, NDKernelArgs a) {
  const int64_t n = a.batches * a.per_batch * a.slice;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t row = i / a.slice, e = i - row * a.slice;
    int64_t off = tuple_offset(a, idx, row);
    if (off >= 0) {
      out[i] = data[off + e];
    } else {
      U z;
      memset(&z, 0, sizeof(U));
      out[i] = z;
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    scatter_nd_reduce_kernel(T* out, const int64_t* __restrict__ idx, const T* __restrict__ upd,
                             NDKernelArgs a, int64_t tuples, Reduction r, bool is_bool) {
  const int64_t n = tuples * a.slice;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t t = i / a.slice, e = i - t * a.slice;
    int64_t off = tuple_offset(a, idx, t);
    if (off < 0) continue;  // out of range: not diagnosed on the GPU
    atomic_combine(out + off + e, upd[i], r, is_bool);
  }
}

// ScatterND none. Here `a` addresses slices: a.strides are in slices (the slot of a tuple is its
// slice's number in out) and a.slice is the slice length in units U (up to 16 bytes).
template <class W>
__global__ void __launch_bounds__(kThreads)
    scatter_nd_mark_kernel(const int64_t* __restrict__ idx, NDKernelArgs a, int64_t tuples,
                           W* win) {
  for (int64_t t = global_thread(); t < tuples; t += grid_threads()) {
    int64_t slot = tuple_offset(a, idx, t);
    if (slot >= 0) atomic_max_w(win + slot, static_cast<W>(t + 1));
  }
}

template <class U, class W>
__global__ void __launch_bounds__(kThreads)
    scatter_nd_store_kernel(U* out, const int64_t* __restrict__ idx, const U* __restrict__ upd,
                            NDKernelArgs a, int64_t tuples, const W* __restrict__ win) {
  const int64_t n = tuples * a.slice;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t t = i / a.slice, e = i - t * a.slice;
    int64_t slot = tuple_offset(a, idx, t);
    if (slot < 0) continue;                                  // out of range: not diagnosed
    if (win && win[slot] != static_cast<W>(t + 1)) continue;  // a later tuple wins
    out[slot * a.slice + e] = upd[i];
  }
}

template <int Wd>
void launch_scatter_nd_none(void* out, const int64_t* idx, const void* updates,
                            const NDKernelArgs& a, int64_t tuples, size_t ws_bytes,
                            void* workspace, cudaStream_t s) {
  using U = typename Unit<Wd>::T;
  auto* o = static_cast<U*>(out);
  auto* u = static_cast<const U*>(updates);
  unsigned g = grid_for(tuples * a.slice);
  if (ws_bytes == 0) {
    scatter_nd_store_kernel<U, uint32_t><<<g, kThreads, 0, s>>>(o, idx, u, a, tuples, nullptr);
    return;
  }
  // A failed memset shows in cudaGetLastError, which the tactic's check_launch reads.
  (void)cudaMemsetAsync(workspace, 0, ws_bytes, s);
  unsigned gm = grid_for(tuples);
  if (wide_winners(tuples)) {
    auto* win = static_cast<unsigned long long*>(workspace);
    scatter_nd_mark_kernel<unsigned long long><<<gm, kThreads, 0, s>>>(idx, a, tuples, win);
    scatter_nd_store_kernel<U, unsigned long long>
        <<<g, kThreads, 0, s>>>(o, idx, u, a, tuples, win);
  } else {
    auto* win = static_cast<uint32_t*>(workspace);
    scatter_nd_mark_kernel<uint32_t><<<gm, kThreads, 0, s>>>(idx, a, tuples, win);
    scatter_nd_store_kernel<U, uint32_t><<<g, kThreads, 0, s>>>(o, idx, u, a, tuples, win);
  }
}

template <int W>
void launch_gather_nd(const void* data, const int64_t* idx, void* out, const NDKernelArgs& a,
                      cudaStream_t s) {
  using U = typename Unit<W>::T;
  gather_nd_kernel<U><<<grid_for(a.batches * a.per_batch * a.slice), kThreads, 0, s>>>(
      static_cast<const U*>(data), idx, static_cast<U*>(out), a);
}

// ---- one hot ----

template <class I>
__device__ __forceinline__ int64_t one_hot_index(I v, int64_t depth) {
  if constexpr (is_float_type<I>()) {
    double f = to_f64(v);
    // The reference: finite values below 9e18 in magnitude truncate, the rest match nothing.
    return isfinite(f) && fabs(f) < 9e18 ? static_cast<int64_t>(f) : depth;
  } else {
    return static_cast<int64_t>(v);
  }
}

template <class U, class I>
__global__ void __launch_bounds__(kThreads)
    one_hot_kernel(const I* __restrict__ idx, const U* __restrict__ values, U* __restrict__ out,
                   int64_t outer, int64_t depth, int64_t inner) {
  const int64_t n = outer * depth * inner;
  const U off_v = values[0], on_v = values[1];
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t e = i % inner;
    int64_t r = i / inner;
    int64_t d = r % depth, o = r / depth;
    int64_t v = one_hot_index(idx[o * inner + e], depth);
    if (v < 0) v += depth;
    out[i] = v == d ? on_v : off_v;
  }
}

template <class U>
void launch_one_hot(const void* idx, ElemType it, const void* values, void* out, int64_t outer,
                    int64_t depth, int64_t inner, cudaStream_t s) {
  unsigned g = grid_for(outer * depth * inner);
  dispatch_elem(it, [&](auto tag) {
    using I = typename decltype(tag)::type;
    one_hot_kernel<U, I><<<g, kThreads, 0, s>>>(static_cast<const I*>(idx),
                                                static_cast<const U*>(values), static_cast<U*>(out),
                                                outer, depth, inner);
  });
}

// ---- max unpool ----

template <class U>
__global__ void __launch_bounds__(kThreads)
    max_unpool_kernel(const U* __restrict__ x, const int64_t* __restrict__ idx, U* __restrict__ y,
                      UnpoolArgs a) {
  int64_t def_vol = 1;
  for (int k = 0; k < a.rank; ++k) def_vol *= a.def_dims[k];
  for (int64_t i = global_thread(); i < a.n; i += grid_threads()) {
    int64_t v = idx[i];
    if (v < 0 || v >= def_vol) continue;  // an error in the reference; not diagnosed here
    int64_t off = 0;
    for (int k = a.rank - 1; k >= 0; --k) {
      int64_t q = v / a.def_dims[k];
      off += (v - q * a.def_dims[k]) * a.out_strides[k];
      v = q;
    }
    y[off] = x[i];
  }
}

template <int W>
void launch_max_unpool(const void* x, const int64_t* idx, void* y, const UnpoolArgs& a,
                       cudaStream_t s) {
  using U = typename Unit<W>::T;
  max_unpool_kernel<U>
      <<<grid_for(a.n), kThreads, 0, s>>>(static_cast<const U*>(x), idx, static_cast<U*>(y), a);
}

}  // namespace

void max_unpool(const void* x, const int64_t* idx, void* y, int elem_bytes, const UnpoolArgs& a,
                void* stream) {
  if (a.n == 0) return;
  cudaStream_t s = as_stream(stream);
  switch (elem_bytes) {
    case 1:
      return launch_max_unpool<1>(x, idx, y, a, s);
    case 2:
      return launch_max_unpool<2>(x, idx, y, a, s);
    case 4:
      return launch_max_unpool<4>(x, idx, y, a, s);
    default:
      return launch_max_unpool<8>(x, idx, y, a, s);
  }
}

void gather(const void* data, const void* idx, bool idx_is64, void* out, int elem_bytes,
            int64_t outer, int64_t axis_len, int64_t n_idx, int64_t inner, void* stream) {
  if (outer * n_idx * inner == 0) return;
  cudaStream_t s = as_stream(stream);
  int w = unit_width(elem_bytes, inner * elem_bytes, data, out);
  int64_t units = inner * elem_bytes / w;
  switch (w) {
    case 1:
      return launch_gather<1>(data, idx, idx_is64, out, outer, axis_len, n_idx, units, s);
    case 2:
      return launch_gather<2>(data, idx, idx_is64, out, outer, axis_len, n_idx, units, s);
    case 4:
      return launch_gather<4>(data, idx, idx_is64, out, outer, axis_len, n_idx, units, s);
    case 8:
      return launch_gather<8>(data, idx, idx_is64, out, outer, axis_len, n_idx, units, s);
    default:
      return launch_gather<16>(data, idx, idx_is64, out, outer, axis_len, n_idx, units, s);
  }
}

void gather_elements(const void* data, const void* idx, bool idx_is64, void* out, int elem_bytes,
                     const ElementsArgs& ea, void* stream) {
  ElemKernelArgs a = elem_args(ea);
  if (a.n == 0) return;
  cudaStream_t s = as_stream(stream);
  switch (elem_bytes) {
    case 1:
      return launch_gather_elements<1>(data, idx, idx_is64, out, a, s);
    case 2:
      return launch_gather_elements<2>(data, idx, idx_is64, out, a, s);
    case 4:
      return launch_gather_elements<4>(data, idx, idx_is64, out, a, s);
    default:
      return launch_gather_elements<8>(data, idx, idx_is64, out, a, s);
  }
}

size_t scatter_elements_workspace(Reduction r, const ElementsArgs& ea, int64_t out_numel) {
  if (r != Reduction::kNone || out_numel == 0) return 0;
  int64_t n = 1;
  for (int k = 0; k < ea.rank; ++k) n *= ea.idx_dims[k];
  // One update per position of the other axes: distinct in-range coordinates, distinct targets.
  if (n <= 1 || ea.idx_dims[ea.axis] == 1) return 0;
  return static_cast<size_t>(out_numel) * (wide_winners(n) ? 8 : 4);
}

void scatter_elements(void* out, int64_t out_numel, const void* idx, bool idx_is64,
                      const void* updates, ElemType t, Reduction r, const ElementsArgs& ea,
                      void* workspace, void* stream) {
  ElemKernelArgs a = elem_args(ea);
  if (a.n == 0 || out_numel == 0) return;  // no data: every index is out of range
  cudaStream_t s = as_stream(stream);
  if (r == Reduction::kNone) {
    size_t ws = scatter_elements_workspace(r, ea, out_numel);
    dispatch_elem(t, [&](auto tag) {
      using U = typename Unit<sizeof(typename decltype(tag)::type)>::T;
      auto* o = static_cast<U*>(out);
      auto* u = static_cast<const U*>(updates);
      if (idx_is64)
        launch_scatter_elements_none(o, static_cast<const int64_t*>(idx), u, a, ws, workspace, s);
      else
        launch_scatter_elements_none(o, static_cast<const int32_t*>(idx), u, a, ws, workspace, s);
    });
    return;
  }
  unsigned g = grid_for(a.n);
  bool is_bool = t == ElemType::kBool;
  dispatch_elem(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (idx_is64)
      scatter_elements_reduce_kernel<T, int64_t>
          <<<g, kThreads, 0, s>>>(static_cast<T*>(out), static_cast<const int64_t*>(idx),
                                  static_cast<const T*>(updates), a, r, is_bool);
    else
      scatter_elements_reduce_kernel<T, int32_t>
          <<<g, kThreads, 0, s>>>(static_cast<T*>(out), static_cast<const int32_t*>(idx),
                                  static_cast<const T*>(updates), a, r, is_bool);
  });
}

void gather_nd(const void* data, const int64_t* idx, void* out, int elem_bytes,
               const GatherNDArgs& ga, void* stream) {
  if (ga.batches * ga.per_batch * ga.slice == 0) return;
  cudaStream_t s = as_stream(stream);
  // Every stride is a multiple of the slice, so slices move in units that divide it.
  int w = unit_width(elem_bytes, ga.slice * elem_bytes, data, out);
  int64_t f = w / elem_bytes;
  NDKernelArgs a{};
  a.m = ga.m;
  a.batches = ga.batches;
  a.per_batch = ga.per_batch;
  a.slice = ga.slice / f;
  a.batch_stride = ga.batch_stride / f;
  for (int k = 0; k < ga.m; ++k) {
    a.dims[k] = ga.dims[k];
    a.strides[k] = ga.strides[k] / f;
  }
  switch (w) {
    case 1:
      return launch_gather_nd<1>(data, idx, out, a, s);
    case 2:
      return launch_gather_nd<2>(data, idx, out, a, s);
    case 4:
      return launch_gather_nd<4>(data, idx, out, a, s);
    case 8:
      return launch_gather_nd<8>(data, idx, out, a, s);
    default:
      return launch_gather_nd<16>(data, idx, out, a, s);
  }
}

size_t scatter_nd_workspace(Reduction r, int64_t tuples, const GatherNDArgs& ga) {
  if (r != Reduction::kNone || tuples <= 1) return 0;  // one tuple: nothing to order
  int64_t slots = 1;
  for (int k = 0; k < ga.m; ++k) slots *= ga.dims[k];
  return static_cast<size_t>(slots) * (wide_winners(tuples) ? 8 : 4);
}

void scatter_nd(void* out, const int64_t* idx, const void* updates, ElemType t, Reduction r,
                int64_t tuples, int64_t slice, const GatherNDArgs& ga, void* workspace,
                void* stream) {
  if (tuples * slice == 0) return;
  cudaStream_t s = as_stream(stream);
  NDKernelArgs a{};
  a.m = ga.m;
  a.batches = 1;
  a.per_batch = 0;  // no batch dims: tuple_offset skips its division
  a.batch_stride = 0;
  for (int k = 0; k < ga.m; ++k) a.dims[k] = ga.dims[k];
  int64_t slots = 1;
  for (int k = 0; k < ga.m; ++k) slots *= ga.dims[k];
  if (slots == 0) return;  // no data: every tuple is out of range
  if (r == Reduction::kNone) {
    // Slots: the strides of dims[0, m) in slices; whole slices move in units of up to 16 bytes.
    a.strides[ga.m - 1] = 1;
    for (int k = ga.m - 2; k >= 0; --k) a.strides[k] = a.strides[k + 1] * ga.dims[k + 1];
    int es = 0;
    dispatch_elem(t, [&](auto tag) { es = static_cast<int>(sizeof(typename decltype(tag)::type)); });
    int w = unit_width(es, slice * es, out, updates);
    a.slice = slice * es / w;
    size_t ws = scatter_nd_workspace(r, tuples, ga);
    switch (w) {
      case 1:
        return launch_scatter_nd_none<1>(out, idx, updates, a, tuples, ws, workspace, s);
      case 2:
        return launch_scatter_nd_none<2>(out, idx, updates, a, tuples, ws, workspace, s);
      case 4:
        return launch_scatter_nd_none<4>(out, idx, updates, a, tuples, ws, workspace, s);
      case 8:
        return launch_scatter_nd_none<8>(out, idx, updates, a, tuples, ws, workspace, s);
      default:
        return launch_scatter_nd_none<16>(out, idx, updates, a, tuples, ws, workspace, s);
    }
  }
  a.slice = slice;
  for (int k = 0; k < ga.m; ++k) a.strides[k] = ga.strides[k];
  unsigned g = grid_for(tuples * slice);
  bool is_bool = t == ElemType::kBool;
  dispatch_elem(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    scatter_nd_reduce_kernel<T><<<g, kThreads, 0, s>>>(
        static_cast<T*>(out), idx, static_cast<const T*>(updates), a, tuples, r, is_bool);
  });
}

void one_hot(const void* idx, ElemType idx_type, const void* values, void* out, int elem_bytes,
             int64_t outer, int64_t depth, int64_t inner, void* stream) {
  if (outer * depth * inner == 0) return;
  cudaStream_t s = as_stream(stream);
  switch (elem_bytes) {
    case 1:
      return launch_one_hot<uint8_t>(idx, idx_type, values, out, outer, depth, inner, s);
    case 2:
      return launch_one_hot<uint16_t>(idx, idx_type, values, out, outer, depth, inner, s);
    case 4:
      return launch_one_hot<uint32_t>(idx, idx_type, values, out, outer, depth, inner, s);
    default:
      return launch_one_hot<unsigned long long>(idx, idx_type, values, out, outer, depth, inner, s);
  }
}

}  // namespace kiln::cuda::mv
