// Data-movement kernels: one strided copy serves Slice, Expand, Tile and the transposes that keep
// the innermost dim; a tiled shared-memory kernel serves the transposes that do not; Concat copies
// all its inputs in one launch; Pad, Trilu and ReverseSequence have small kernels of their own.
// Elements move by width (1..16 bytes); nothing here knows the element type.
#include <algorithm>
#include <cstdlib>

#include "backends/cuda/kernels/movement.h"
#include "backends/cuda/kernels/movement_device.cuh"

namespace kiln::cuda::mv {

namespace {

// ---- strided copy ----

// Arrays innermost-first, so that the unrolled loops below index them with constants (dynamic
// indexing of a kernel-parameter array would spill it to local memory).
struct CopyArgs {
  int rank;
  int64_t dims[kMaxCopyDims];
  FastDiv fdiv[kMaxCopyDims];
  int64_t ss[kMaxCopyDims];
  int64_t ds[kMaxCopyDims];
  int64_t sbase, dbase, n;
  const int64_t* dev_src;  // [base, strides outermost-first...] resolved on the device, or null
};

template <class U, bool kDense, bool k32>
__global__ void __launch_bounds__(kThreads)
    copy_kernel(const U* __restrict__ src, U* __restrict__ dst, CopyArgs a) {
  __shared__ int64_t sh[kMaxDims + 1];
  if (a.dev_src) {
    // Device-resolved Slice: base and strides come from the resolve kernel (outermost-first).
    if (threadIdx.x <= static_cast<unsigned>(a.rank)) sh[threadIdx.x] = a.dev_src[threadIdx.x];
    __syncthreads();
    a.sbase = sh[0];
#pragma unroll
    for (int k = 0; k < kMaxDims; ++k)
      if (k < a.rank) a.ss[k] = sh[a.rank - k];
  }
  for (int64_t i = global_thread(); i < a.n; i += grid_threads()) {
    int64_t so = a.sbase, dof = a.dbase;
    if constexpr (k32) {
      uint32_t rem = static_cast<uint32_t>(i);
#pragma unroll
      for (int k = 0; k < kMaxCopyDims; ++k) {
        if (k == a.rank) break;
        uint32_t q = a.fdiv[k].div(rem);
        uint32_t c = rem - q * a.fdiv[k].d;
        so += static_cast<int64_t>(c) * a.ss[k];
        if (!kDense) dof += static_cast<int64_t>(c) * a.ds[k];
        rem = q;
      }
    } else {
      int64_t rem = i;
#pragma unroll
      for (int k = 0; k < kMaxCopyDims; ++k) {
        if (k == a.rank) break;
        int64_t q = rem / a.dims[k];
        int64_t c = rem - q * a.dims[k];
        so += c * a.ss[k];
        if (!kDense) dof += c * a.ds[k];
        rem = q;
      }
    }
    dst[kDense ? a.dbase + i : dof] = src[so];
  }
}

template <int W>
void launch_copy(const void* src, void* dst, const CopyArgs& a, bool dense, cudaStream_t s) {
  using U = typename Unit<W>::T;
  auto* sp = static_cast<const U*>(src);
  auto* dp = static_cast<U*>(dst);
  unsigned g = grid_for(a.n);
  bool k32 = a.n < (int64_t{1} << 31);
  if (dense && k32)
    copy_kernel<U, true, true><<<g, kThreads, 0, s>>>(sp, dp, a);
  else if (dense)
    copy_kernel<U, true, false><<<g, kThreads, 0, s>>>(sp, dp, a);
  else if (k32)
    copy_kernel<U, false, true><<<g, kThreads, 0, s>>>(sp, dp, a);
  else
    copy_kernel<U, false, false><<<g, kThreads, 0, s>>>(sp, dp, a);
}

void dispatch_copy(int width, const void* src, void* dst, const CopyArgs& a, bool dense,
                   cudaStream_t s) {
  switch (width) {
    case 1:
      return launch_copy<1>(src, dst, a, dense, s);
    case 2:
      return launch_copy<2>(src, dst, a, dense, s);
    case 4:
      return launch_copy<4>(src, dst, a, dense, s);
    case 8:
      return launch_copy<8>(src, dst, a, dense, s);
    default:
      return launch_copy<16>(src, dst, a, dense, s);
  }
}

bool is_dense(const CopyPlan& p) {
  int64_t st = 1;
  for (int k = p.rank - 1; k >= 0; --k) {
    if (p.dst_strides[k] != st) return false;
    st *= p.dims[k];
  }
  return true;
}

// Drops size-1 dims and merges neighbours that are contiguous in both tensors.
void simplify(CopyPlan& p) {
  CopyPlan q = p;
  q.rank = 0;
  for (int k = 0; k < p.rank; ++k) {
    if (p.dims[k] == 1) continue;
    if (q.rank > 0) {
      int j = q.rank - 1;
      if (q.src_strides[j] == p.src_strides[k] * p.dims[k] &&
          q.dst_strides[j] == p.dst_strides[k] * p.dims[k]) {
        q.dims[j] *= p.dims[k];
        q.src_strides[j] = p.src_strides[k];
        q.dst_strides[j] = p.dst_strides[k];
        continue;
      }
    }
    q.dims[q.rank] = p.dims[k];
    q.src_strides[q.rank] = p.src_strides[k];
    q.dst_strides[q.rank] = p.dst_strides[k];
    ++q.rank;
  }
  if (q.rank == 0) {  // one element
    q.rank = 1;
    q.dims[0] = 1;
    q.src_strides[0] = 1;
    q.dst_strides[0] = 1;
  }
  p = q;
}

// The widest unit (bytes) that moves whole rows: the innermost dim must be contiguous on both
// sides, and every stride, base and pointer must be a multiple of it.
int widen(CopyPlan& p, int es, const void* src, const void* dst) {
  int r = p.rank - 1;
  if (p.src_strides[r] != 1 || p.dst_strides[r] != 1) return es;
  for (int w = 16; w > es; w /= 2) {
    if (w % es) continue;
    int64_t f = w / es;
    bool ok = p.dims[r] % f == 0 && p.src_base % f == 0 && p.dst_base % f == 0 && aligned(src, w) &&
              aligned(dst, w);
    for (int k = 0; k < r && ok; ++k) ok = p.src_strides[k] % f == 0 && p.dst_strides[k] % f == 0;
    if (!ok) continue;
    p.dims[r] /= f;
    for (int k = 0; k < r; ++k) {
      p.src_strides[k] /= f;
      p.dst_strides[k] /= f;
    }
    p.src_base /= f;
    p.dst_base /= f;
    return w;
  }
  return es;
}

CopyArgs copy_args(const CopyPlan& p) {
  CopyArgs a{};
  a.rank = p.rank;
  a.n = 1;
  for (int k = 0; k < p.rank; ++k) {
    int j = p.rank - 1 - k;  // innermost-first
    a.dims[k] = p.dims[j];
    a.ss[k] = p.src_strides[j];
    a.ds[k] = p.dst_strides[j];
    a.n *= p.dims[j];
  }
  if (a.n < (int64_t{1} << 31))
    for (int k = 0; k < p.rank; ++k) a.fdiv[k] = FastDiv(static_cast<uint32_t>(a.dims[k]));
  a.sbase = p.src_base;
  a.dbase = p.dst_base;
  a.dev_src = nullptr;
  return a;
}

// ---- transpose ----

constexpr int kTile = 32;
constexpr int kTileRows = 8;

// Output dims (innermost-first in the arrays) with source strides; the tile spans output dim `p`
// (contiguous in the source) and output dim 0 (contiguous in the destination). The other dims
// are batch dims, enumerated per block.
struct TileArgs {
  int rank;
  int64_t dims[kMaxCopyDims];
  int64_t ss[kMaxCopyDims];  // source strides per output dim
  int64_t ds[kMaxCopyDims];  // destination (dense) strides per output dim
  int p;                     // output dim with source stride 1
  int64_t tiles_p, tiles_q, blocks;
};

template <class U>
__global__ void __launch_bounds__(kTile* kTileRows)
    tile_transpose_kernel(const U* __restrict__ src, U* __restrict__ dst, TileArgs a) {
  __shared__ U tile[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t dim_p = a.dims[a.p], dim_q = a.dims[0];
  const int64_t sq = a.ss[0], dp = a.ds[a.p];
  for (int64_t blk = blockIdx.x; blk < a.blocks; blk += gridDim.x) {
    int64_t t = blk;
    const int64_t tq = t % a.tiles_q;
    t /= a.tiles_q;
    const int64_t tp = t % a.tiles_p;
    t /= a.tiles_p;
    int64_t so = 0, dof = 0;
#pragma unroll
    for (int k = 1; k < kMaxCopyDims; ++k) {
      if (k == a.rank) break;
      if (k == a.p) continue;
      int64_t c = t % a.dims[k];
      t /= a.dims[k];
      so += c * a.ss[k];
      dof += c * a.ds[k];
    }
    const int64_t p0 = tp * kTile, q0 = tq * kTile;
    // Read: consecutive threads walk dim p, contiguous in the source.
    for (int y = ty; y < kTile; y += kTileRows) {
      int64_t ip = p0 + tx, iq = q0 + y;
      if (ip < dim_p && iq < dim_q) tile[y][tx] = src[so + ip + iq * sq];
    }
    __syncthreads();
    // Write: consecutive threads walk dim q, contiguous in the destination.
    for (int y = ty; y < kTile; y += kTileRows) {
      int64_t ip = p0 + y, iq = q0 + tx;
      if (ip < dim_p && iq < dim_q) dst[dof + ip * dp + iq] = tile[tx][y];
    }
    __syncthreads();
  }
}

template <int W>
void launch_tile(const void* src, void* dst, const TileArgs& a, cudaStream_t s) {
  using U = typename Unit<W>::T;
  int64_t g = std::min<int64_t>(a.blocks, 65535);
  tile_transpose_kernel<U><<<static_cast<unsigned>(g), dim3(kTile, kTileRows), 0, s>>>(
      static_cast<const U*>(src), static_cast<U*>(dst), a);
}

// ---- device-resolved slice ----

__device__ int64_t read_index(const void* p, bool is64, int64_t i) {
  return is64 ? static_cast<const int64_t*>(p)[i] : static_cast<const int32_t*>(p)[i];
}

// One thread: ws = [base, strides outermost-first] of the slice view, as ops/slice.cc computes
// them. Repeated or out-of-range axes (an error in the reference) are skipped: the GPU does not
// diagnose them.
__global__ void slice_resolve_kernel(SliceDeviceArgs a, int64_t* ws) {
  int64_t st[kMaxDims];
  int64_t s = 1;
  for (int k = a.rank - 1; k >= 0; --k) {
    st[k] = s;
    s *= a.in_dims[k];
  }
  int64_t base = 0;
  int64_t out_st[kMaxDims];
  for (int k = 0; k < a.rank; ++k) out_st[k] = st[k];
  for (int64_t i = 0; i < a.n; ++i) {
    int64_t ax = a.axes ? read_index(a.axes, a.axes_is64, i) : i;
    if (ax < 0) ax += a.rank;
    if (ax < 0 || ax >= a.rank) continue;
    int64_t step = a.steps ? read_index(a.steps, a.steps_is64, i) : 1;
    if (step == 0) step = 1;
    int64_t dim = a.in_dims[ax];
    int64_t start = read_index(a.starts, a.starts_is64, i);
    if (start < 0) start += dim;
    if (step > 0)
      start = start < 0 ? 0 : (start > dim ? dim : start);
    else
      start = start < -1 ? -1 : (start > dim - 1 ? dim - 1 : start);
    if (a.out_dims[ax] > 0) base += start * st[ax];
    out_st[ax] = st[ax] * step;
  }
  ws[0] = base;
  for (int k = 0; k < a.rank; ++k) ws[1 + k] = out_st[k];
}

// ---- concat ----

constexpr int kMaxConcat = 32;

struct ConcatArgs {
  const void* src[kMaxConcat];
  int64_t row[kMaxConcat];   // units per row of input i
  int64_t col0[kMaxConcat];  // first output column (units) of input i
  FastDiv frow[kMaxConcat];
  int64_t outer, out_row;
};

template <class U>
__global__ void __launch_bounds__(kThreads) concat_kernel(U* __restrict__ dst, ConcatArgs a) {
  const int in = blockIdx.y;
  const int64_t row = a.row[in];
  if (row == 0) return;
  const U* __restrict__ src = static_cast<const U*>(a.src[in]);
  const int64_t n = a.outer * row, col0 = a.col0[in];
  const bool k32 = n < (int64_t{1} << 31);
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t o, c;
    if (k32) {
      uint32_t q = a.frow[in].div(static_cast<uint32_t>(i));
      o = q;
      c = i - static_cast<int64_t>(q) * row;
    } else {
      o = i / row;
      c = i - o * row;
    }
    dst[o * a.out_row + col0 + c] = src[i];
  }
}

template <int W>
void launch_concat(void* dst, const ConcatArgs& a, int n, int64_t max_units, cudaStream_t s) {
  using U = typename Unit<W>::T;
  dim3 grid(grid_for(a.outer * max_units), n);
  concat_kernel<U><<<grid, kThreads, 0, s>>>(static_cast<U*>(dst), a);
}

// ---- pad ----

struct PadKernelArgs {
  int rank;
  // innermost-first
  int64_t in_dims[kMaxDims], out_dims[kMaxDims], begin[kMaxDims], in_st[kMaxDims];
  FastDiv fdiv[kMaxDims];
  int64_t n;
  PadMode mode;
  const int64_t* begin_dev;  // outermost-first, or null
};

template <class U, bool k32>
__global__ void __launch_bounds__(kThreads)
    pad_kernel(const U* __restrict__ src, U* __restrict__ dst, const U* __restrict__ fill,
               PadKernelArgs a) {
  if (a.begin_dev) {
#pragma unroll
    for (int k = 0; k < kMaxDims; ++k)
      if (k < a.rank) a.begin[k] = a.begin_dev[a.rank - 1 - k];
  }
  U fv;
  if (fill) {
    fv = *fill;
  } else {
    memset(&fv, 0, sizeof(U));
  }
  for (int64_t i = global_thread(); i < a.n; i += grid_threads()) {
    int64_t rem = i, off = 0;
    bool is_fill = false;
#pragma unroll
    for (int k = 0; k < kMaxDims; ++k) {
      if (k == a.rank) break;
      int64_t o;
      if constexpr (k32) {
        uint32_t q = a.fdiv[k].div(static_cast<uint32_t>(rem));
        o = rem - static_cast<int64_t>(q) * a.out_dims[k];
        rem = q;
      } else {
        int64_t q = rem / a.out_dims[k];
        o = rem - q * a.out_dims[k];
        rem = q;
      }
      int64_t d = a.in_dims[k];
      int64_t x = o - a.begin[k];
      if (x < 0 || x >= d) {
        if (a.mode == PadMode::kConstant || d == 0) {
          is_fill = true;  // d == 0 only happens in constant mode (infer rejects the others)
          continue;
        } else if (a.mode == PadMode::kEdge) {
          x = x < 0 ? 0 : d - 1;
        } else if (d == 1) {
          x = 0;
        } else {  // reflect, repeating the mirror as numpy does when pads exceed the dim
          int64_t period = 2 * (d - 1);
          x %= period;
          if (x < 0) x += period;
          if (x >= d) x = period - x;
        }
      }
      off += x * a.in_st[k];
    }
    dst[i] = is_fill ? fv : src[off];
  }
}

// One thread: begin pads per dim (outermost-first) from the pads and axes tensors.
__global__ void pad_resolve_kernel(PadArgs a, int64_t* ws) {
  for (int k = 0; k < a.rank; ++k) ws[k] = 0;
  int64_t n = a.axes_dev ? a.n_axes : a.rank;
  for (int64_t i = 0; i < n; ++i) {
    int64_t ax = a.axes_dev ? read_index(a.axes_dev, a.axes_is64, i) : i;
    if (ax < 0) ax += a.rank;
    if (ax < 0 || ax >= a.rank) continue;  // an error in the reference; not diagnosed here
    ws[ax] = read_index(a.pads_dev, a.pads_is64, i);
  }
}

template <int W>
void launch_pad(const void* src, void* dst, const void* fill, const PadKernelArgs& a,
                cudaStream_t s) {
  using U = typename Unit<W>::T;
  unsigned g = grid_for(a.n);
  auto* sp = static_cast<const U*>(src);
  auto* dp = static_cast<U*>(dst);
  auto* fp = static_cast<const U*>(fill);
  if (a.n < (int64_t{1} << 31))
    pad_kernel<U, true><<<g, kThreads, 0, s>>>(sp, dp, fp, a);
  else
    pad_kernel<U, false><<<g, kThreads, 0, s>>>(sp, dp, fp, a);
}

// ---- trilu ----

template <class U>
__global__ void __launch_bounds__(kThreads)
    trilu_kernel(const U* __restrict__ src, U* __restrict__ dst, int64_t n, int64_t rows,
                 int64_t cols, bool upper, const int64_t* k_dev) {
  const int64_t k = k_dev ? *k_dev : 0;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t rc = i / cols;
    int64_t col = i - rc * cols;
    int64_t row = rc % rows;
    int64_t diff = col - row;  // |diff| < 2^62: no overflow against any k
    bool keep = upper ? diff >= k : diff <= k;
    if (keep) {
      dst[i] = src[i];
    } else {
      U z;
      memset(&z, 0, sizeof(U));
      dst[i] = z;
    }
  }
}

// ---- reverse sequence ----

template <class U>
__global__ void __launch_bounds__(kThreads)
    reverse_sequence_kernel(const U* __restrict__ src, U* __restrict__ dst, int64_t d0, int64_t d1,
                            int64_t inner, int batch_axis, const int64_t* __restrict__ lens) {
  const int64_t n = d0 * d1 * inner;
  const int64_t time = batch_axis == 0 ? d1 : d0;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t e = i % inner;
    int64_t r = i / inner;
    int64_t c1 = r % d1, c0 = r / d1;
    int64_t b = batch_axis == 0 ? c0 : c1;
    int64_t t = batch_axis == 0 ? c1 : c0;
    int64_t len = lens[b];
    len = len < 0 ? 0 : (len > time ? time : len);  // the GPU does not diagnose bad lengths
    int64_t s = t < len ? len - 1 - t : t;
    int64_t s0 = batch_axis == 0 ? c0 : s, s1 = batch_axis == 0 ? s : c1;
    dst[i] = src[(s0 * d1 + s1) * inner + e];
  }
}

template <int W>
void launch_trilu(const void* src, void* dst, int64_t n, int64_t rows, int64_t cols, bool upper,
                  const int64_t* k_dev, cudaStream_t s) {
  using U = typename Unit<W>::T;
  trilu_kernel<U><<<grid_for(n), kThreads, 0, s>>>(static_cast<const U*>(src), static_cast<U*>(dst),
                                                   n, rows, cols, upper, k_dev);
}

template <int W>
void launch_reverse(const void* src, void* dst, int64_t d0, int64_t d1, int64_t inner,
                    int batch_axis, const int64_t* lens, cudaStream_t s) {
  using U = typename Unit<W>::T;
  reverse_sequence_kernel<U><<<grid_for(d0 * d1 * inner), kThreads, 0, s>>>(
      static_cast<const U*>(src), static_cast<U*>(dst), d0, d1, inner, batch_axis, lens);
}

// The widest unit (<= 16 bytes, a multiple of es) dividing `bytes` with both pointers aligned.
int row_width(int es, int64_t bytes, const void* a, const void* b) {
  for (int w = 16; w > es; w /= 2)
    if (w % es == 0 && bytes % w == 0 && aligned(a, w) && aligned(b, w)) return w;
  return es;
}

}  // namespace

void set_dense_dst(CopyPlan& p) {
  int64_t st = 1;
  for (int k = p.rank - 1; k >= 0; --k) {
    p.dst_strides[k] = st;
    st *= p.dims[k];
  }
}

void strided_copy(const void* src, void* dst, int elem_bytes, CopyPlan plan, void* stream) {
  for (int k = 0; k < plan.rank; ++k)
    if (plan.dims[k] == 0) return;
  simplify(plan);
  int w = widen(plan, elem_bytes, src, dst);
  CopyArgs a = copy_args(plan);
  dispatch_copy(w, src, dst, a, is_dense(plan), as_stream(stream));
}

void transpose(const void* src, void* dst, int elem_bytes, int rank, const int64_t* in_dims,
               const int64_t* perm, void* stream) {
  CopyPlan p;
  p.rank = rank;
  int64_t in_st[kMaxCopyDims];
  int64_t s = 1;
  for (int k = rank - 1; k >= 0; --k) {
    in_st[k] = s;
    s *= in_dims[k];
  }
  if (s == 0) return;
  for (int k = 0; k < rank; ++k) {
    p.dims[k] = in_dims[perm[k]];
    p.src_strides[k] = in_st[perm[k]];
  }
  set_dense_dst(p);
  simplify(p);
  cudaStream_t st = as_stream(stream);
  int r = p.rank;
  // The output's innermost dim is strided in the source: tile when both tile dims are long
  // enough to fill a warp's row; short ones (NCHW -> NHWC with C = 3) copy directly.
  int pdim = -1;
  for (int k = 0; k < r; ++k)
    if (p.src_strides[k] == 1) pdim = k;
  if (r >= 2 && p.src_strides[r - 1] != 1 && pdim >= 0 && p.dims[pdim] >= 16 &&
      p.dims[r - 1] >= 16) {
    TileArgs a{};
    a.rank = r;
    for (int k = 0; k < r; ++k) {
      a.dims[k] = p.dims[r - 1 - k];
      a.ss[k] = p.src_strides[r - 1 - k];
      a.ds[k] = p.dst_strides[r - 1 - k];
    }
    a.p = r - 1 - pdim;
    a.tiles_p = (a.dims[a.p] + kTile - 1) / kTile;
    a.tiles_q = (a.dims[0] + kTile - 1) / kTile;
    a.blocks = a.tiles_p * a.tiles_q;
    for (int k = 1; k < r; ++k)
      if (k != a.p) a.blocks *= a.dims[k];
    switch (elem_bytes) {
      case 1:
        return launch_tile<1>(src, dst, a, st);
      case 2:
        return launch_tile<2>(src, dst, a, st);
      case 4:
        return launch_tile<4>(src, dst, a, st);
      default:
        return launch_tile<8>(src, dst, a, st);
    }
  }
  int w = widen(p, elem_bytes, src, dst);
  dispatch_copy(w, src, dst, copy_args(p), true, st);
}

void slice_device(const void* src, void* dst, int elem_bytes, const SliceDeviceArgs& sa,
                  void* workspace, void* stream) {
  int64_t n = 1;
  for (int k = 0; k < sa.rank; ++k) n *= sa.out_dims[k];
  if (n == 0) return;
  cudaStream_t s = as_stream(stream);
  auto* ws = static_cast<int64_t*>(workspace);
  slice_resolve_kernel<<<1, 1, 0, s>>>(sa, ws);
  CopyPlan p;
  p.rank = sa.rank;
  for (int k = 0; k < sa.rank; ++k) p.dims[k] = sa.out_dims[k];
  set_dense_dst(p);
  CopyArgs a = copy_args(p);  // not simplified: the resolved strides are per input dim
  a.dev_src = ws;
  dispatch_copy(elem_bytes, src, dst, a, true, s);
}

void concat(const ConcatInput* inputs, int n, void* dst, int elem_bytes, int64_t outer,
            int64_t out_axis_len, int64_t inner, void* stream) {
  if (outer == 0 || out_axis_len == 0 || inner == 0) return;
  cudaStream_t s = as_stream(stream);
  const int64_t es = elem_bytes;
  for (int first = 0; first < n; first += kMaxConcat) {
    int m = std::min(kMaxConcat, n - first);
    // One unit width for the launch: divides every row and column offset, all pointers aligned.
    int w = es;
    for (int cand = 16; cand > es; cand /= 2) {
      if (cand % es) continue;
      bool ok = (out_axis_len * inner * es) % cand == 0 && aligned(dst, cand);
      int64_t col = 0;
      for (int i = 0; i < first + m && ok; ++i) {
        if (i >= first)
          ok = (col * es) % cand == 0 && (inputs[i].axis_len * inner * es) % cand == 0 &&
               (inputs[i].axis_len == 0 || aligned(inputs[i].data, cand));
        col += inputs[i].axis_len * inner;
      }
      if (ok) {
        w = cand;
        break;
      }
    }
    int64_t f = w / es;
    ConcatArgs a{};
    a.outer = outer;
    a.out_row = out_axis_len * inner / f;
    int64_t col = 0, max_units = 0;
    for (int i = 0; i < first + m; ++i) {
      if (i >= first) {
        int j = i - first;
        a.src[j] = inputs[i].data;
        a.row[j] = inputs[i].axis_len * inner / f;
        a.col0[j] = col / f;
        if (a.row[j] > 0 && a.row[j] <= (int64_t{1} << 31))
          a.frow[j] = FastDiv(static_cast<uint32_t>(a.row[j]));
        max_units = std::max(max_units, a.row[j]);
      }
      col += inputs[i].axis_len * inner;
    }
    if (max_units == 0) continue;
    switch (w) {
      case 1:
        launch_concat<1>(dst, a, m, max_units, s);
        break;
      case 2:
        launch_concat<2>(dst, a, m, max_units, s);
        break;
      case 4:
        launch_concat<4>(dst, a, m, max_units, s);
        break;
      case 8:
        launch_concat<8>(dst, a, m, max_units, s);
        break;
      default:
        launch_concat<16>(dst, a, m, max_units, s);
        break;
    }
  }
}

void pad(const void* src, void* dst, int elem_bytes, const PadArgs& pa, const void* fill,
         void* workspace, void* stream) {
  PadKernelArgs a{};
  a.rank = pa.rank;
  a.mode = pa.mode;
  a.n = 1;
  int64_t st = 1;
  for (int k = 0; k < pa.rank; ++k) {
    int j = pa.rank - 1 - k;
    a.in_dims[k] = pa.in_dims[j];
    a.out_dims[k] = pa.out_dims[j];
    a.begin[k] = pa.begin[j];
    a.in_st[k] = st;
    st *= pa.in_dims[j];
    a.n *= pa.out_dims[j];
  }
  if (a.n == 0) return;
  if (a.n < (int64_t{1} << 31))
    for (int k = 0; k < pa.rank; ++k) a.fdiv[k] = FastDiv(static_cast<uint32_t>(a.out_dims[k]));
  cudaStream_t s = as_stream(stream);
  a.begin_dev = nullptr;
  if (pa.pads_dev) {
    auto* ws = static_cast<int64_t*>(workspace);
    pad_resolve_kernel<<<1, 1, 0, s>>>(pa, ws);
    a.begin_dev = ws;
  }
  switch (elem_bytes) {
    case 1:
      return launch_pad<1>(src, dst, fill, a, s);
    case 2:
      return launch_pad<2>(src, dst, fill, a, s);
    case 4:
      return launch_pad<4>(src, dst, fill, a, s);
    default:
      return launch_pad<8>(src, dst, fill, a, s);
  }
}

void trilu(const void* src, void* dst, int elem_bytes, int64_t mats, int64_t rows, int64_t cols,
           bool upper, const int64_t* k_dev, void* stream) {
  int64_t n = mats * rows * cols;
  if (n == 0) return;
  cudaStream_t s = as_stream(stream);
  switch (elem_bytes) {
    case 1:
      return launch_trilu<1>(src, dst, n, rows, cols, upper, k_dev, s);
    case 2:
      return launch_trilu<2>(src, dst, n, rows, cols, upper, k_dev, s);
    case 4:
      return launch_trilu<4>(src, dst, n, rows, cols, upper, k_dev, s);
    default:
      return launch_trilu<8>(src, dst, n, rows, cols, upper, k_dev, s);
  }
}

void reverse_sequence(const void* src, void* dst, int elem_bytes, int64_t d0, int64_t d1,
                      int64_t inner, int batch_axis, const int64_t* lens, void* stream) {
  if (d0 * d1 * inner == 0) return;
  cudaStream_t s = as_stream(stream);
  int w = row_width(elem_bytes, inner * elem_bytes, src, dst);
  int64_t in_units = inner * elem_bytes / w;
  switch (w) {
    case 1:
      return launch_reverse<1>(src, dst, d0, d1, in_units, batch_axis, lens, s);
    case 2:
      return launch_reverse<2>(src, dst, d0, d1, in_units, batch_axis, lens, s);
    case 4:
      return launch_reverse<4>(src, dst, d0, d1, in_units, batch_axis, lens, s);
    case 8:
      return launch_reverse<8>(src, dst, d0, d1, in_units, batch_axis, lens, s);
    default:
      return launch_reverse<16>(src, dst, d0, d1, in_units, batch_axis, lens, s);
  }
}

}  // namespace kiln::cuda::mv
