// Normalization kernels (see normalization.h). Semantics follow the reference
// (src/ops/normalization.cc): biased variance from a second pass over (x - mean), y =
// (x - mean) * (1 / sqrt(var + epsilon)) * scale + bias, empty rows give NaN statistics.
// Statistics accumulate in float (double for double).
#include "normalization.h"
#include "reduction_common.cuh"

namespace kiln::cuda::rk {
namespace {

struct XShape {
  int rank;
  long long dims[kMaxDims];
};

template <class A>
__device__ A param_at(const NormParam& P, long long e, const XShape& xs, A def) {
  if (!P.p) return def;
  long long off;
  if (P.mode == ParamMode::kDivMod) {
    off = (e / P.div) % P.mod;
  } else {
    off = 0;
    long long t = e;
    for (int d = xs.rank - 1; d >= 0; --d) {
      const long long c = t % xs.dims[d];
      t /= xs.dims[d];
      off += c * P.strides[d];
    }
  }
  return load_float_as<A>(P.p, P.dtype, off);
}

// How a parameter is found along one statistics row of L elements (L > 0): absent, one value
// for the whole row, dense along the row from an offset, or per element.
enum { kAbsent, kConst, kDense, kPerElement };
struct RowParam {
  int how;
  long long off;
};
__device__ __forceinline__ RowParam row_param(const NormParam& P, long long row, long long L) {
  if (!P.p) return {kAbsent, 0};
  if (P.mode == ParamMode::kDivMod) {
    if (P.mod == 1) return {kConst, 0};
    if (P.div % L == 0) return {kConst, (row * L / P.div) % P.mod};
    if (P.div == 1 && P.mod % L == 0) return {kDense, (row * L) % P.mod};
  }
  return {kPerElement, 0};
}
template <class A>
__device__ __forceinline__ A row_param_at(const RowParam& rp, const NormParam& P, long long row,
                                          long long L, long long j, const XShape& xs, A def) {
  switch (rp.how) {
    case kAbsent:
      return def;
    case kConst:
      return load_float_as<A>(P.p, P.dtype, rp.off);
    case kDense:
      return load_float_as<A>(P.p, P.dtype, rp.off + j);
    default:
      return param_at<A>(P, row * L + j, xs, def);
  }
}

struct RowArgs {
  long long rows, L;
  bool center;
  double eps;
  NormParam scale, bias;
  XShape xs;
  void* mean_out;
  DType mean_dtype;
  void* inv_out;
  DType inv_dtype;
};

template <class A>
__device__ __forceinline__ void write_stats(const RowArgs& a, long long row, A mean, A inv) {
  if (a.mean_out) store_float_as<A>(a.mean_out, a.mean_dtype, row, mean);
  if (a.inv_out) store_float_as<A>(a.inv_out, a.inv_dtype, row, inv);
}

template <class A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int off = 16; off > 0; off >>= 1) v += shfl_xor(v, off);
  return v;
}

// A warp per row, the row in registers (L <= 32 * NPT).
template <class T, int NPT>
__global__ void __launch_bounds__(256)
    norm_rows_warp_kernel(const T* __restrict__ x, T* __restrict__ y, RowArgs a) {
  using A = acc_t<T>;
  const int lane = threadIdx.x & 31;
  const long long first = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const long long step = (static_cast<long long>(gridDim.x) * blockDim.x) >> 5;
  const int L = static_cast<int>(a.L);
  for (long long row = first; row < a.rows; row += step) {
    const T* xr = x + row * a.L;
    T* yr = y + row * a.L;
    A v[NPT];
    A sum = A(0);
#pragma unroll
    for (int k = 0; k < NPT; ++k) {
      const int j = lane + 32 * k;
      v[k] = j < L ? to_acc<A>(xr[j]) : A(0);
      sum += v[k];
    }
    const A mean = a.center ? warp_sum(sum) / static_cast<A>(L) : A(0);
    A sq = A(0);
#pragma unroll
    for (int k = 0; k < NPT; ++k) {
      const A dv = v[k] - mean;
      if (lane + 32 * k < L) sq += dv * dv;
    }
    const A var = warp_sum(sq) / static_cast<A>(L);
    const A inv = A(1) / acc_sqrt(var + static_cast<A>(a.eps));
    if (lane == 0) write_stats(a, row, mean, inv);
    if (L == 0) continue;
    const RowParam rs = row_param(a.scale, row, L), rb = row_param(a.bias, row, L);
#pragma unroll
    for (int k = 0; k < NPT; ++k) {
      const int j = lane + 32 * k;
      if (j < L) {
        const A s = row_param_at<A>(rs, a.scale, row, L, j, a.xs, A(1));
        const A b = row_param_at<A>(rb, a.bias, row, L, j, a.xs, A(0));
        yr[j] = from_acc<T>((v[k] - mean) * inv * s + b);
      }
    }
  }
}

// A block per row (long rows): mean, variance and the write each read the row.
template <class T>
__global__ void __launch_bounds__(512)
    norm_rows_block_kernel(const T* __restrict__ x, T* __restrict__ y, RowArgs a) {
  using A = acc_t<T>;
  __shared__ A smem[32];
  auto add = [](A p, A q) { return p + q; };
  for (long long row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const T* xr = x + row * a.L;
    T* yr = y + row * a.L;
    A mean = A(0);
    if (a.center) {
      A sum = A(0);
      for (long long j = threadIdx.x; j < a.L; j += blockDim.x) sum += to_acc<A>(xr[j]);
      mean = block_all_reduce(sum, add, smem) / static_cast<A>(a.L);
    }
    A sq = A(0);
    for (long long j = threadIdx.x; j < a.L; j += blockDim.x) {
      const A dv = to_acc<A>(xr[j]) - mean;
      sq += dv * dv;
    }
    const A var = block_all_reduce(sq, add, smem) / static_cast<A>(a.L);
    const A inv = A(1) / acc_sqrt(var + static_cast<A>(a.eps));
    if (threadIdx.x == 0) write_stats(a, row, mean, inv);
    if (a.L == 0) continue;
    const RowParam rs = row_param(a.scale, row, a.L), rb = row_param(a.bias, row, a.L);
    for (long long j = threadIdx.x; j < a.L; j += blockDim.x) {
      const A s = row_param_at<A>(rs, a.scale, row, a.L, j, a.xs, A(1));
      const A b = row_param_at<A>(rb, a.bias, row, a.L, j, a.xs, A(0));
      yr[j] = from_acc<T>((to_acc<A>(xr[j]) - mean) * inv * s + b);
    }
  }
}

// ---- batch normalization ------------------------------------------------------------------------

// Folds mean, var, scale and bias (all laid out alike, P values) into y = (x - m) * k + b.
template <class A>
__global__ void bn_fold_kernel(long long P, NormParam mean, NormParam var, NormParam scale,
                               NormParam bias, double eps, A* __restrict__ m, A* __restrict__ k,
                               A* __restrict__ b) {
  for (long long p = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; p < P;
       p += static_cast<long long>(gridDim.x) * blockDim.x) {
    const A inv = A(1) / acc_sqrt(load_float_as<A>(var.p, var.dtype, p) + static_cast<A>(eps));
    m[p] = load_float_as<A>(mean.p, mean.dtype, p);
    k[p] = inv * (scale.p ? load_float_as<A>(scale.p, scale.dtype, p) : A(1));
    b[p] = bias.p ? load_float_as<A>(bias.p, bias.dtype, p) : A(0);
  }
}

// Planes of `div` contiguous elements sharing one folded parameter ((plane % mod)).
template <class T>
__global__ void __launch_bounds__(256)
    bn_apply_planes_kernel(const T* __restrict__ x, T* __restrict__ y, long long planes,
                           long long div, long long mod, const acc_t<T>* __restrict__ m,
                           const acc_t<T>* __restrict__ k, const acc_t<T>* __restrict__ b) {
  using A = acc_t<T>;
  for (long long pl = blockIdx.y; pl < planes; pl += gridDim.y) {
    const long long p = pl % mod;
    const A mm = m[p], kk = k[p], bb = b[p];
    const T* xp = x + pl * div;
    T* yp = y + pl * div;
    for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < div;
         i += static_cast<long long>(gridDim.x) * blockDim.x)
      yp[i] = from_acc<T>((to_acc<A>(xp[i]) - mm) * kk + bb);
  }
}

template <class T>
__global__ void __launch_bounds__(256)
    bn_apply_flat_kernel(const T* __restrict__ x, T* __restrict__ y, long long n, long long div,
                         long long mod, const acc_t<T>* __restrict__ m,
                         const acc_t<T>* __restrict__ k, const acc_t<T>* __restrict__ b) {
  using A = acc_t<T>;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = (e / div) % mod;
    y[e] = from_acc<T>((to_acc<A>(x[e]) - m[p]) * k[p] + b[p]);
  }
}

// Any parameter layouts: every parameter looked up per element.
template <class T>
__global__ void __launch_bounds__(256)
    bn_general_kernel(const T* __restrict__ x, T* __restrict__ y, long long n, NormParam mean,
                      NormParam var, NormParam scale, NormParam bias, double eps, XShape xs) {
  using A = acc_t<T>;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const A mm = param_at<A>(mean, e, xs, A(0));
    const A inv = A(1) / acc_sqrt(param_at<A>(var, e, xs, A(1)) + static_cast<A>(eps));
    const A v = (to_acc<A>(x[e]) - mm) * inv * param_at<A>(scale, e, xs, A(1)) +
                param_at<A>(bias, e, xs, A(0));
    y[e] = from_acc<T>(v);
  }
}

// ---- local response normalization ---------------------------------------------------------------

template <class T>
__global__ void __launch_bounds__(256)
    lrn_kernel(const T* __restrict__ x, T* __restrict__ y, long long n, long long C, long long sp,
               long long size, double alpha_over_size, double beta, double bias) {
  using A = acc_t<T>;
  const long long lo = (size - 1) / 2, hi = size - 1 - lo;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long s = e % sp;
    const long long ch = (e / sp) % C;
    const long long base = e - (ch * sp + s);  // element (b, 0, 0)
    const long long c0 = ch - lo > 0 ? ch - lo : 0;
    const long long c1 = ch + hi < C - 1 ? ch + hi : C - 1;
    A sq = A(0);
    for (long long cc = c0; cc <= c1; ++cc) {
      const A v = to_acc<A>(x[base + cc * sp + s]);
      sq += v * v;
    }
    const A den = static_cast<A>(bias) + static_cast<A>(alpha_over_size) * sq;
    A p;
    if constexpr (std::is_same_v<A, double>)
      p = pow(den, beta);
    else
      p = powf(den, static_cast<float>(beta));
    y[e] = from_acc<T>(to_acc<A>(x[e]) / p);
  }
}

// ---- host ---------------------------------------------------------------------------------------

bool same_layout(const NormParam& a, const NormParam& b) {
  return !b.present || (b.mode == ParamMode::kDivMod && b.div == a.div && b.mod == a.mod);
}
// Batch normalization can fold its parameters when all share one (div, mod) layout.
bool batch_folds(const NormProblem& p) {
  return p.mean.present && p.var.present && p.mean.mode == ParamMode::kDivMod &&
         same_layout(p.mean, p.var) && same_layout(p.mean, p.scale) && same_layout(p.mean, p.bias);
}

long long numel_of(const NormProblem& p) {
  long long n = 1;
  for (int d = 0; d < p.rank; ++d) n *= p.dims[d];
  return n;
}

XShape xshape_of(const NormProblem& p) {
  XShape xs{};
  xs.rank = p.rank;
  for (int d = 0; d < p.rank; ++d) xs.dims[d] = p.dims[d];
  return xs;
}

template <class T, int NPT>
void launch_rows_warp(const T* x, T* y, const RowArgs& a, cudaStream_t s) {
  norm_rows_warp_kernel<T, NPT><<<grid_for(a.rows, 8), 256, 0, s>>>(x, y, a);
}

template <class T>
void launch_typed(const NormProblem& p, void* ws, size_t ws_bytes, cudaStream_t s) {
  using A = acc_t<T>;
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const long long n = numel_of(p);
  const XShape xs = xshape_of(p);
  switch (p.kind) {
    case NormKind::kBatch: {
      if (n == 0) return;
      const size_t need = 3 * static_cast<size_t>(p.mean.mod) * sizeof(A);
      if (batch_folds(p) && ws && ws_bytes >= need) {
        A* m = static_cast<A*>(ws);
        A* k = m + p.mean.mod;
        A* b = k + p.mean.mod;
        bn_fold_kernel<A><<<grid_for(p.mean.mod, 256), 256, 0, s>>>(
            p.mean.mod, p.mean, p.var, p.scale, p.bias, p.epsilon, m, k, b);
        const long long div = p.mean.div;
        if (div >= 64) {
          const long long planes = n / div;
          dim3 grid(grid_for(div, 256, 64), static_cast<unsigned>(planes < 65535 ? planes : 65535));
          bn_apply_planes_kernel<T><<<grid, 256, 0, s>>>(x, y, planes, div, p.mean.mod, m, k, b);
        } else {
          bn_apply_flat_kernel<T>
              <<<grid_for(n, 256), 256, 0, s>>>(x, y, n, div, p.mean.mod, m, k, b);
        }
      } else {
        bn_general_kernel<T><<<grid_for(n, 256), 256, 0, s>>>(x, y, n, p.mean, p.var, p.scale,
                                                              p.bias, p.epsilon, xs);
      }
      return;
    }
    case NormKind::kLrn: {
      if (n == 0) return;
      const long long N = p.dims[0], C = p.dims[1];
      const long long sp = N * C > 0 ? n / (N * C) : 1;
      lrn_kernel<T><<<grid_for(n, 256), 256, 0, s>>>(
          x, y, n, C, sp, p.size, p.alpha / static_cast<double>(p.size), p.beta, p.lrn_bias);
      return;
    }
    default:
      break;
  }
  if (p.rows == 0) return;
  RowArgs a{};
  a.rows = p.rows;
  a.L = p.row_len;
  a.center = p.kind != NormKind::kRms;
  a.eps = p.epsilon;
  a.scale = p.scale;
  a.bias = p.bias;
  a.xs = xs;
  a.mean_out = p.mean_out;
  a.mean_dtype = p.mean_dtype;
  a.inv_out = p.inv_std_out;
  a.inv_dtype = p.inv_std_dtype;
  const long long L = p.row_len;
  if (L <= 32)
    launch_rows_warp<T, 1>(x, y, a, s);
  else if (L <= 64)
    launch_rows_warp<T, 2>(x, y, a, s);
  else if (L <= 128)
    launch_rows_warp<T, 4>(x, y, a, s);
  else if (L <= 256)
    launch_rows_warp<T, 8>(x, y, a, s);
  else if (L <= 512)
    launch_rows_warp<T, 16>(x, y, a, s);
  else if (L <= 1024)
    launch_rows_warp<T, 32>(x, y, a, s);
  else
    norm_rows_block_kernel<T><<<grid_for(p.rows, 1, 1LL << 16), 512, 0, s>>>(x, y, a);
}

}  // namespace

bool normalization_supported(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 ||
         dtype == DType::kF64;
}

size_t normalization_workspace_size(const NormProblem& p) {
  if (p.kind != NormKind::kBatch || !batch_folds(p)) return 0;
  return 3 * static_cast<size_t>(p.mean.mod) * sizeof(double);
}

void launch_normalization(const NormProblem& p, void* workspace, size_t workspace_bytes,
                          void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  dispatch_float(p.dtype, [&](auto tag) {
    launch_typed<typename decltype(tag)::type>(p, workspace, workspace_bytes, s);
  });
}

}  // namespace kiln::cuda::rk
