// Reduce kernels: see reduce.h for the decomposition. Each reduction is an "op" object with a
// state (value, secondary value, index) and update / combine / store functions, so that the
// three thread mappings (rows, columns, general) and the split-combine kernel share one
// definition of every kind's semantics, which follow the reference compute (src/ops/reduce.cc):
// NaN propagates through max/min, arg ops take the first (or last) extreme with NaN as the
// extreme, log_sum_exp shifts by the maximum, integers wrap like their type.
#include <climits>
#include <limits>

#include "reduce.h"
#include "reduction_common.cuh"

namespace kiln::cuda::rk {

int sm_count() {
  static const int n = [] {
    int dev = 0, c = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || c <= 0) {
      cudaGetLastError();
      c = 108;
    }
    return c;
  }();
  return n;
}

namespace {

template <class A>
struct RState {
  A v;
  A s;
  long long i;
};

template <class A>
__device__ __forceinline__ RState<A> shfl_state(const RState<A>& st, int mask) {
  return {shfl_xor(st.v, mask), shfl_xor(st.s, mask), shfl_xor(st.i, mask)};
}

template <class A>
__device__ __forceinline__ A add_of(A a, A b) {
  if constexpr (std::is_integral_v<A>)
    return static_cast<A>(static_cast<unsigned long long>(a) + static_cast<unsigned long long>(b));
  else
    return a + b;
}
template <class A>
__device__ __forceinline__ A mul_of(A a, A b) {
  if constexpr (std::is_integral_v<A>)
    return static_cast<A>(static_cast<unsigned long long>(a) * static_cast<unsigned long long>(b));
  else
    return a * b;
}
template <class A>
__device__ __forceinline__ A abs_of(A v) {
  if constexpr (std::is_unsigned_v<A>)
    return v;
  else if constexpr (std::is_integral_v<A>)
    return v < 0 ? static_cast<A>(0ULL - static_cast<unsigned long long>(v)) : v;
  else
    return v < A(0) ? -v : v;
}

enum Pre { kPreId, kPreAbs, kPreSq };
enum Post { kPostNone, kPostMean, kPostSqrt, kPostLog };

// sum, mean, l1, l2, log_sum, sum_square: a sum of id/abs/square, then a final function.
template <class T, int kPre>
struct AddOp {
  using A = acc_t<T>;
  int post;
  long long count;
  __device__ RState<A> init() const { return {A(0), A(0), 0}; }
  __device__ void update(RState<A>& st, T x, long long) const {
    A v = to_acc<A>(x);
    if constexpr (kPre == kPreAbs) v = abs_of(v);
    if constexpr (kPre == kPreSq) v = mul_of(v, v);
    st.v = add_of(st.v, v);
  }
  __device__ void combine(RState<A>& a, const RState<A>& b) const { a.v = add_of(a.v, b.v); }
  __device__ void store(void* y, long long o, const RState<A>& st) const {
    A r = st.v;
    if constexpr (std::is_integral_v<A>) {
      // Integer mean truncates toward zero (numpy's mean, then astype); empty gives 0.
      if (post == kPostMean) r = count ? static_cast<A>(r / static_cast<A>(count)) : A(0);
    } else {
      if (post == kPostMean) r = r / static_cast<A>(count);  // empty: 0/0 = NaN, as numpy
      if (post == kPostSqrt) r = acc_sqrt(r);
      if (post == kPostLog) r = acc_log(r);
    }
    static_cast<T*>(y)[o] = from_acc<T>(r);
  }
};

template <class T>
struct MulOp {
  using A = acc_t<T>;
  __device__ RState<A> init() const { return {A(1), A(0), 0}; }
  __device__ void update(RState<A>& st, T x, long long) const { st.v = mul_of(st.v, to_acc<A>(x)); }
  __device__ void combine(RState<A>& a, const RState<A>& b) const { a.v = mul_of(a.v, b.v); }
  __device__ void store(void* y, long long o, const RState<A>& st) const {
    static_cast<T*>(y)[o] = from_acc<T>(st.v);
  }
};

// max / min: NaN is sticky (numpy); an empty reduction gives the type's lowest / highest value.
template <class T, bool kMax>
struct ExtremeOp {
  using A = acc_t<T>;
  __device__ RState<A> init() const {
    A v;
    if constexpr (std::is_floating_point_v<A>)
      v = kMax ? -acc_inf<A>() : acc_inf<A>();
    else
      v = kMax ? static_cast<A>(std::numeric_limits<T>::lowest())
               : static_cast<A>(std::numeric_limits<T>::max());
    return {v, A(0), 0};
  }
  __device__ bool takes(A nv, A ov) const { return is_nan(nv) || (kMax ? nv > ov : nv < ov); }
  __device__ void update(RState<A>& st, T x, long long) const {
    A v = to_acc<A>(x);
    if (takes(v, st.v)) st.v = v;
  }
  __device__ void combine(RState<A>& a, const RState<A>& b) const {
    if (takes(b.v, a.v)) a.v = b.v;
  }
  __device__ void store(void* y, long long o, const RState<A>& st) const {
    static_cast<T*>(y)[o] = from_acc<T>(st.v);
  }
};

// log_sum_exp: v is the running maximum (NaN sticky), s the sum of exp(x - v); the result is
// v + log(s) when v is finite and v itself otherwise (empty or all -inf: -inf; inf; NaN).
template <class T>
struct LseOp {
  using A = acc_t<T>;
  __device__ RState<A> init() const { return {-acc_inf<A>(), A(0), 0}; }
  __device__ void update(RState<A>& st, T x, long long) const {
    A v = to_acc<A>(x);
    if (is_nan(st.v)) return;
    if (is_nan(v)) {
      st.v = v;
      return;
    }
    if (v > st.v) {
      st.s = (st.v == -acc_inf<A>() ? A(0) : st.s * acc_exp(st.v - v)) + A(1);
      st.v = v;
    } else if (v != -acc_inf<A>()) {
      st.s += acc_exp(v - st.v);
    }
  }
  __device__ void combine(RState<A>& a, const RState<A>& b) const {
    if (is_nan(a.v)) return;
    if (is_nan(b.v)) {
      a.v = b.v;
      return;
    }
    A m = a.v > b.v ? a.v : b.v;
    if (m == -acc_inf<A>()) return;  // both empty or all -inf
    A s = (a.v == -acc_inf<A>() ? A(0) : a.s * acc_exp(a.v - m)) +
          (b.v == -acc_inf<A>() ? A(0) : b.s * acc_exp(b.v - m));
    a.v = m;
    a.s = s;
  }
  __device__ void store(void* y, long long o, const RState<A>& st) const {
    A r = isfinite(st.v) ? st.v + acc_log(st.s) : st.v;
    static_cast<T*>(y)[o] = from_acc<T>(r);
  }
};

// argmax / argmin over one axis: i is the position (-1 before the first element). NaN is the
// extreme of both; among equals the first position wins, or the last with select_last_index.
// The comparison looks at positions, so the order in which partial states meet does not matter.
template <class T, bool kMax>
struct ArgOp {
  using A = acc_t<T>;
  bool last;
  __device__ RState<A> init() const { return {A(0), A(0), -1}; }
  __device__ bool better(A nv, long long ni, A ov, long long oi) const {
    if (oi < 0) return true;
    bool nn = is_nan(nv), on = is_nan(ov);
    if (nn || on) {
      if (nn && on) return last ? ni > oi : ni < oi;
      return nn;
    }
    if (nv == ov) return last ? ni > oi : ni < oi;
    return kMax ? nv > ov : nv < ov;
  }
  __device__ void update(RState<A>& st, T x, long long r) const {
    A v = to_acc<A>(x);
    if (better(v, r, st.v, st.i)) {
      st.v = v;
      st.i = r;
    }
  }
  __device__ void combine(RState<A>& a, const RState<A>& b) const {
    if (b.i >= 0 && better(b.v, b.i, a.v, a.i)) a = b;
  }
  __device__ void store(void* y, long long o, const RState<A>& st) const {
    static_cast<long long*>(y)[o] = st.i;
  }
};

// Combines the states of each group of g consecutive threads (g a power of two <= 1024); every
// thread of the block calls it with the same g. Lane 0 of each group gets the group's state.
template <class A, class Op>
__device__ RState<A> group_reduce(RState<A> st, const Op& op, int g, RState<A>* smem) {
  const int lim = g < 32 ? g : 32;
  for (int off = lim / 2; off > 0; off >>= 1) {
    RState<A> other = shfl_state(st, off);
    op.combine(st, other);
  }
  if (g <= 32) return st;
  const int warp = threadIdx.x >> 5;
  if ((threadIdx.x & 31) == 0) smem[warp] = st;
  __syncthreads();
  const int wpg = g >> 5;
  const int first = (warp / wpg) * wpg;
  RState<A> r = smem[first];
  for (int w = 1; w < wpg; ++w) op.combine(r, smem[first + w]);
  __syncthreads();  // smem is reused by the next row of the grid-stride loop
  return r;
}

// Elements [r0, r1) of p, strided over the g lanes of a group: an unaligned head, 16-byte packs,
// a tail.
template <class T, class Op>
__device__ __forceinline__ void accumulate_span(const T* __restrict__ p, long long r0, long long r1,
                                                int lane, int g, RState<acc_t<T>>& st,
                                                const Op& op) {
  constexpr int V = Pack<T>::kN;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(p + r0);
  long long head = static_cast<long long>(((16 - (addr & 15)) & 15) / sizeof(T));
  if (head > r1 - r0) head = r1 - r0;
  for (long long r = r0 + lane; r < r0 + head; r += g) op.update(st, p[r], r);
  const long long vb = r0 + head;
  const long long nvec = (r1 - vb) / V;
  const Pack<T>* pv = reinterpret_cast<const Pack<T>*>(p + vb);
#pragma unroll 2
  for (long long k = lane; k < nvec; k += g) {
    const Pack<T> pk = pv[k];
#pragma unroll
    for (int j = 0; j < V; ++j) op.update(st, pk.v[j], vb + k * V + j);
  }
  for (long long r = vb + nvec * V + lane; r < r1; r += g) op.update(st, p[r], r);
}

// [rows, R]: a group of g threads per row; blockIdx.y is the split of R.
template <class T, class Op>
__global__ void __launch_bounds__(1024)
    reduce_rows_kernel(const T* __restrict__ x, void* __restrict__ y,
                       RState<acc_t<T>>* __restrict__ part, long long rows, long long R,
                       long long chunk, int splits, int g_log2, Op op) {
  using A = acc_t<T>;
  __shared__ RState<A> smem[32];
  const int g = 1 << g_log2;
  const int lane = threadIdx.x & (g - 1);
  const long long gpb = blockDim.x >> g_log2;
  const long long grp = threadIdx.x >> g_log2;
  const int split = blockIdx.y;
  const long long r0 = static_cast<long long>(split) * chunk;
  const long long r1 = min(R, r0 + chunk);
  for (long long base = blockIdx.x * gpb; base < rows; base += gridDim.x * gpb) {
    const long long row = base + grp;
    RState<A> st = op.init();
    if (row < rows) accumulate_span(x + row * R, r0, r1, lane, g, st, op);
    st = group_reduce(st, op, g, smem);
    if (row < rows && lane == 0) {
      if (splits == 1)
        op.store(y, row, st);
      else
        part[row * splits + split] = st;
    }
  }
}

// [outer, R, inner]: bx threads along inner (coalesced), blockDim.x / bx along R.
template <class T, class Op>
__global__ void __launch_bounds__(256)
    reduce_cols_kernel(const T* __restrict__ x, void* __restrict__ y,
                       RState<acc_t<T>>* __restrict__ part, long long outer, long long R,
                       long long inner, long long chunk, int splits, int bx_log2, Op op) {
  using A = acc_t<T>;
  __shared__ RState<A> smem[256];
  const int bx = 1 << bx_log2;
  const int by = blockDim.x >> bx_log2;
  const int tx = threadIdx.x & (bx - 1);
  const int ty = threadIdx.x >> bx_log2;
  const long long tpo = (inner + bx - 1) / bx;
  const long long tiles = outer * tpo;
  const int split = blockIdx.y;
  const long long r0 = static_cast<long long>(split) * chunk;
  const long long r1 = min(R, r0 + chunk);
  for (long long t = blockIdx.x; t < tiles; t += gridDim.x) {
    const long long o = t / tpo;
    const long long i = (t - o * tpo) * bx + tx;
    RState<A> st = op.init();
    if (i < inner) {
      const T* p = x + o * R * inner + i;
#pragma unroll 4
      for (long long r = r0 + ty; r < r1; r += by) op.update(st, p[r * inner], r);
    }
    smem[threadIdx.x] = st;
    __syncthreads();
    for (int s = by / 2; s > 0; s >>= 1) {
      if (ty < s) {
        op.combine(st, smem[threadIdx.x + s * bx]);
        smem[threadIdx.x] = st;
      }
      __syncthreads();
    }
    if (ty == 0 && i < inner) {
      const long long out = o * inner + i;
      if (splits == 1)
        op.store(y, out, st);
      else
        part[out * splits + split] = st;
    }
  }
}

struct GenShape {
  int nk = 0, nr = 0;
  long long kdims[kMaxDims], kstr[kMaxDims], rdims[kMaxDims], rstr[kMaxDims];
};

// Any pattern of reduced axes: a group of g (1 or 32) threads per output.
template <class T, class Op>
__global__ void __launch_bounds__(256)
    reduce_general_kernel(const T* __restrict__ x, void* __restrict__ y, long long n_out,
                          long long R, GenShape sh, int g_log2, Op op) {
  using A = acc_t<T>;
  const int g = 1 << g_log2;
  const int lane = threadIdx.x & (g - 1);
  const long long first = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) >> g_log2;
  const long long step = (static_cast<long long>(gridDim.x) * blockDim.x) >> g_log2;
  for (long long o = first; o < n_out; o += step) {
    long long base = 0, t = o;
    for (int d = sh.nk - 1; d >= 0; --d) {
      const long long c = t % sh.kdims[d];
      t /= sh.kdims[d];
      base += c * sh.kstr[d];
    }
    RState<A> st = op.init();
    for (long long r = lane; r < R; r += g) {
      long long off = base, u = r;
      for (int d = sh.nr - 1; d >= 0; --d) {
        const long long c = u % sh.rdims[d];
        u /= sh.rdims[d];
        off += c * sh.rstr[d];
      }
      op.update(st, x[off], r);
    }
    if (g == 32)
      for (int m = 16; m > 0; m >>= 1) {
        RState<A> other = shfl_state(st, m);
        op.combine(st, other);
      }
    if (lane == 0) op.store(y, o, st);
  }
}

// Combines the partial states of the splits of each output, in split order.
template <class T, class Op>
__global__ void reduce_finish_kernel(const RState<acc_t<T>>* __restrict__ part,
                                     void* __restrict__ y, long long n_out, int splits, Op op) {
  for (long long o = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; o < n_out;
       o += static_cast<long long>(gridDim.x) * blockDim.x) {
    RState<acc_t<T>> st = part[o * splits];
    for (int s = 1; s < splits; ++s) op.combine(st, part[o * splits + s]);
    op.store(y, o, st);
  }
}

// ---- planning (host) ------------------------------------------------------------------------

enum class Mapping { kNone, kRows, kCols, kGeneral };

struct Plan {
  Mapping mapping = Mapping::kNone;
  long long n_out = 0, R = 1, outer = 1, inner = 1;
  int log2 = 0;  // rows: log2 of the group size; cols: log2 of bx; general: log2 of g
  int block = 256;
  int splits = 1;
  long long chunk = 0;
  GenShape gen;
};

constexpr size_t kStateBytes = 24;  // the largest RState (double or 64-bit integer)

Plan make_plan(const ReduceProblem& p) {
  Plan pl;
  long long n_out = 1, R = 1;
  for (int d = 0; d < p.rank; ++d) (p.reduced[d] ? R : n_out) *= p.dims[d];
  pl.n_out = n_out;
  pl.R = R;
  if (n_out == 0) return pl;  // nothing to write
  // Merge: size-1 axes are neither reduced nor kept; neighbours of one status are one axis.
  long long md[kMaxDims];
  bool mr[kMaxDims];
  int m = 0;
  if (R > 0) {
    for (int d = 0; d < p.rank; ++d) {
      if (p.dims[d] == 1) continue;
      if (m > 0 && mr[m - 1] == p.reduced[d]) {
        md[m - 1] *= p.dims[d];
      } else {
        md[m] = p.dims[d];
        mr[m] = p.reduced[d];
        ++m;
      }
    }
  }
  const int sms = sm_count();
  auto rows = [&](long long outer, long long r) {
    pl.mapping = Mapping::kRows;
    pl.outer = outer;
    pl.R = r;
    // About 8 elements per thread, 1..1024 threads per row.
    int lg = ceil_log2((r + 7) / 8);
    if (lg > 10) lg = 10;
    pl.log2 = lg;
    pl.block = (1 << lg) > 256 ? (1 << lg) : 256;
    const long long gpb = pl.block >> lg;
    const long long blocks = (outer + gpb - 1) / gpb;
    if (blocks < 2LL * sms && r >= 16384) {
      long long want = (4LL * sms + blocks - 1) / blocks;
      long long by_len = (r + 8191) / 8192;
      long long s = want < by_len ? want : by_len;
      if (s > 65535) s = 65535;
      if (s > 1) {
        long long chunk = (r + s - 1) / s;
        chunk = (chunk + 15) / 16 * 16;
        pl.chunk = chunk;
        pl.splits = static_cast<int>((r + chunk - 1) / chunk);
      }
    }
    if (pl.splits == 1) pl.chunk = r;
  };
  auto cols = [&](long long outer, long long r, long long inner) {
    pl.mapping = Mapping::kCols;
    pl.outer = outer;
    pl.R = r;
    pl.inner = inner;
    int lg = ceil_log2(inner);
    if (lg > 5) lg = 5;
    pl.log2 = lg;
    pl.block = 256;
    const long long by = 256 >> lg;
    const long long tiles = outer * ((inner + (1LL << lg) - 1) >> lg);
    if (tiles < 2LL * sms && r >= 32 * by) {
      long long want = (4LL * sms + tiles - 1) / tiles;
      long long by_len = (r + 32 * by - 1) / (32 * by);
      long long s = want < by_len ? want : by_len;
      if (s > 65535) s = 65535;
      if (s > 1) {
        long long chunk = (r + s - 1) / s;
        pl.chunk = chunk;
        pl.splits = static_cast<int>((r + chunk - 1) / chunk);
      }
    }
    if (pl.splits == 1) pl.chunk = r;
  };
  if (R == 0 || m == 0) {
    rows(n_out, R);  // empty reductions (identity states) or nothing but size-1 axes
  } else if (m == 1) {
    if (mr[0])
      rows(1, md[0]);
    else
      rows(md[0], 1);
  } else if (m == 2 && !mr[0]) {
    rows(md[0], md[1]);
  } else if (m == 2) {
    cols(1, md[0], md[1]);
  } else if (m == 3 && !mr[0]) {
    cols(md[0], md[1], md[2]);
  } else {
    pl.mapping = Mapping::kGeneral;
    long long st = 1;
    long long strides[kMaxDims];
    for (int d = m - 1; d >= 0; --d) {
      strides[d] = st;
      st *= md[d];
    }
    for (int d = 0; d < m; ++d) {
      if (mr[d]) {
        pl.gen.rdims[pl.gen.nr] = md[d];
        pl.gen.rstr[pl.gen.nr++] = strides[d];
      } else {
        pl.gen.kdims[pl.gen.nk] = md[d];
        pl.gen.kstr[pl.gen.nk++] = strides[d];
      }
    }
    pl.log2 = R >= 32 ? 5 : 0;
    pl.block = 256;
  }
  return pl;
}

template <class T, class Op>
void run(const ReduceProblem& p, const Plan& pl, void* ws, cudaStream_t s, const Op& op) {
  using A = acc_t<T>;
  const T* x = static_cast<const T*>(p.x);
  RState<A>* part = static_cast<RState<A>*>(ws);
  switch (pl.mapping) {
    case Mapping::kRows: {
      const long long gpb = pl.block >> pl.log2;
      dim3 grid(grid_for(pl.outer, gpb), pl.splits);
      reduce_rows_kernel<T, Op><<<grid, pl.block, 0, s>>>(x, p.y, part, pl.outer, pl.R, pl.chunk,
                                                          pl.splits, pl.log2, op);
      break;
    }
    case Mapping::kCols: {
      const long long tiles = pl.outer * ((pl.inner + (1LL << pl.log2) - 1) >> pl.log2);
      dim3 grid(grid_for(tiles, 1), pl.splits);
      reduce_cols_kernel<T, Op><<<grid, pl.block, 0, s>>>(x, p.y, part, pl.outer, pl.R, pl.inner,
                                                          pl.chunk, pl.splits, pl.log2, op);
      break;
    }
    case Mapping::kGeneral: {
      const long long per_block = pl.block >> pl.log2;
      reduce_general_kernel<T, Op><<<grid_for(pl.n_out, per_block), pl.block, 0, s>>>(
          x, p.y, pl.n_out, pl.R, pl.gen, pl.log2, op);
      return;
    }
    default:
      return;
  }
  if (pl.splits > 1)
    reduce_finish_kernel<T, Op>
        <<<grid_for(pl.n_out, 256), 256, 0, s>>>(part, p.y, pl.n_out, pl.splits, op);
}

template <class T>
void run_typed(const ReduceProblem& p, const Plan& pl, void* ws, cudaStream_t s) {
  const long long count = pl.R;
  switch (p.op) {
    case ReduceOp::kSum:
      run<T>(p, pl, ws, s, AddOp<T, kPreId>{kPostNone, count});
      return;
    case ReduceOp::kMean:
      run<T>(p, pl, ws, s, AddOp<T, kPreId>{kPostMean, count});
      return;
    case ReduceOp::kProd:
      run<T>(p, pl, ws, s, MulOp<T>{});
      return;
    case ReduceOp::kMax:
      run<T>(p, pl, ws, s, ExtremeOp<T, true>{});
      return;
    case ReduceOp::kMin:
      run<T>(p, pl, ws, s, ExtremeOp<T, false>{});
      return;
    case ReduceOp::kArgMax:
      run<T>(p, pl, ws, s, ArgOp<T, true>{p.select_last});
      return;
    case ReduceOp::kArgMin:
      run<T>(p, pl, ws, s, ArgOp<T, false>{p.select_last});
      return;
    // Integer sums of absolute values and of squares wrap in 64 bits, as the reference's.
    case ReduceOp::kL1:
      run<T>(p, pl, ws, s, AddOp<T, kPreAbs>{kPostNone, count});
      return;
    case ReduceOp::kSumSquare:
      run<T>(p, pl, ws, s, AddOp<T, kPreSq>{kPostNone, count});
      return;
    default:
      break;
  }
  if constexpr (kIsFloat<T>) {
    switch (p.op) {
      case ReduceOp::kL2:
        run<T>(p, pl, ws, s, AddOp<T, kPreSq>{kPostSqrt, count});
        return;
      case ReduceOp::kLogSum:
        run<T>(p, pl, ws, s, AddOp<T, kPreId>{kPostLog, count});
        return;
      case ReduceOp::kLogSumExp:
        run<T>(p, pl, ws, s, LseOp<T>{});
        return;
      default:
        break;
    }
  }
}

}  // namespace

// The integer widths the shared dispatch leaves out: reductions take every integer type, as the
// reference does (64-bit accumulators, unsigned for uint64, wrapping like the reference).
template <class F>
bool dispatch_other_ints(DType t, F&& f) {
  switch (t) {
    case DType::kI16:
      f(Tag<int16_t>{});
      return true;
    case DType::kU16:
      f(Tag<uint16_t>{});
      return true;
    case DType::kU32:
      f(Tag<uint32_t>{});
      return true;
    case DType::kU64:
      f(Tag<uint64_t>{});
      return true;
    default:
      return false;
  }
}

bool reduce_supported(DType dtype, ReduceOp op) {
  bool is_float =
      dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF64;
  if (is_float) return true;
  bool is_int = dtype == DType::kI8 || dtype == DType::kU8 || dtype == DType::kI16 ||
                dtype == DType::kU16 || dtype == DType::kI32 || dtype == DType::kU32 ||
                dtype == DType::kI64 || dtype == DType::kU64;
  if (!is_int) return false;
  // The sums of absolute values and of squares wrap like the reference's integer sums; the
  // reductions with a float final function (l2, log_sum, log_sum_exp) stay with float types.
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kMean:
    case ReduceOp::kProd:
    case ReduceOp::kMax:
    case ReduceOp::kMin:
    case ReduceOp::kL1:
    case ReduceOp::kSumSquare:
    case ReduceOp::kArgMax:
    case ReduceOp::kArgMin:
      return true;
    default:
      return false;
  }
}

size_t reduce_workspace_size(const ReduceProblem& p) {
  Plan pl = make_plan(p);
  if (pl.splits <= 1) return 0;
  return static_cast<size_t>(pl.n_out) * static_cast<size_t>(pl.splits) * kStateBytes;
}

void launch_reduce(const ReduceProblem& p, void* workspace, size_t workspace_bytes, void* stream) {
  Plan pl = make_plan(p);
  if (pl.mapping == Mapping::kNone || pl.n_out == 0) return;
  if (pl.splits > 1 && workspace_bytes < static_cast<size_t>(pl.n_out) *
                                             static_cast<size_t>(pl.splits) * kStateBytes)
    pl.splits = 1, pl.chunk = pl.R;  // no room for partials: one block per output still works
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  auto go = [&](auto tag) {
    using T = typename decltype(tag)::type;
    run_typed<T>(p, pl, workspace, s);
  };
  if (!dispatch_float(p.dtype, go) && !dispatch_int(p.dtype, go)) dispatch_other_ints(p.dtype, go);
}

}  // namespace kiln::cuda::rk
