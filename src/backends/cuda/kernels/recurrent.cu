// Element-wise kernels of cuda.recurrent (see recurrent.h). One thread per (direction, batch row,
// hidden unit); the equations, the order of the gates (GRU z, r, h; LSTM i, o, f, c; peepholes i,
// o, f), clip and the activations are the reference's (src/ops/recurrent.cc), evaluated in Acc
// (float, or double for float64) instead of double.
#include "recurrent.h"
#include "reduction_common.cuh"

namespace kiln::cuda::rk {
namespace {

constexpr int kThreads = 256;

// The reference's comparisons, written as std::min / std::max evaluate them, so that NaN goes
// the same way.
template <class A>
__device__ __forceinline__ A ref_min(A a, A b) {
  return b < a ? b : a;
}
template <class A>
__device__ __forceinline__ A ref_max(A a, A b) {
  return a < b ? b : a;
}

template <class A>
__device__ A activate(const RnnActivation& f, A x) {
  const A alpha = static_cast<A>(f.alpha), beta = static_cast<A>(f.beta);
  switch (f.kind) {
    case RnnActKind::kRelu:
      return x > A(0) ? x : A(0);
    case RnnActKind::kTanh:
      return acc_tanh(x);
    case RnnActKind::kSigmoid:
      return A(1) / (A(1) + acc_exp(-x));
    case RnnActKind::kAffine:
      return alpha * x + beta;
    case RnnActKind::kLeakyRelu:
      return x >= A(0) ? x : alpha * x;
    case RnnActKind::kThresholdedRelu:
      return x > alpha ? x : A(0);
    case RnnActKind::kScaledTanh:
      return alpha * acc_tanh(beta * x);
    case RnnActKind::kHardSigmoid:
      return ref_max(A(0), ref_min(A(1), alpha * x + beta));
    case RnnActKind::kElu:
      return x >= A(0) ? x : alpha * (acc_exp(x) - A(1));
    case RnnActKind::kSoftsign:
      return x / (A(1) + acc_abs(x));
    case RnnActKind::kSoftplus:
      return x > A(30) ? x : acc_log1p(acc_exp(x));
  }
  return x;
}

template <class A>
__device__ __forceinline__ A clipped(const RnnProblem& p, A v) {
  if (!(p.clip > 0)) return v;
  const A c = static_cast<A>(p.clip);
  return ref_max(-c, ref_min(c, v));
}

__device__ __forceinline__ long long gates_of(RnnCell c) {
  return c == RnnCell::kRnn ? 1 : c == RnnCell::kGru ? 3 : 4;
}

// The row's sequence length, clamped to [0, S] (the reference rejects values outside it).
__device__ __forceinline__ long long row_len(const RnnProblem& p, long long b) {
  if (!p.lens) return p.seq;
  long long l = p.lens_dtype == DType::kI64 ? static_cast<const long long*>(p.lens)[b]
                                            : static_cast<long long>(static_cast<const int*>(p.lens)[b]);
  return l < 0 ? 0 : (l > p.seq ? p.seq : l);
}

// Offsets of X's row (t, b) and of Y's and the outputs' states' element (t, d, b, 0) / (d, b, 0).
__device__ __forceinline__ long long x_row(const RnnProblem& p, long long t, long long b) {
  return p.layout == 0 ? t * p.batch + b : b * p.seq + t;
}
__device__ __forceinline__ long long y_at(const RnnProblem& p, long long t, int d, long long b) {
  return p.layout == 0 ? ((t * p.ndir + d) * p.batch + b) * p.hidden
                       : ((b * p.seq + t) * p.ndir + d) * p.hidden;
}
__device__ __forceinline__ long long state_at(const RnnProblem& p, int d, long long b) {
  return p.layout == 0 ? (d * p.batch + b) * p.hidden : (b * p.ndir + d) * p.hidden;
}

__device__ __forceinline__ const RnnActivation& act_of(const RnnProblem& p, int d, int k) {
  return d == 0 ? p.act[0][k] : p.act[1][k];
}

template <class A>
__global__ void __launch_bounds__(kThreads)
    rnn_convert_kernel(const void* __restrict__ src, DType t, A* __restrict__ dst, long long n) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    dst[i] = load_float_as<A>(src, t, i);
}

template <class T>
__global__ void __launch_bounds__(kThreads) rnn_init_kernel(RnnProblem p) {
  using A = acc_t<T>;
  const long long H = p.hidden, total = p.ndir * p.batch * H;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long j = e % H, b = (e / H) % p.batch;
    const int d = static_cast<int>(e / (H * p.batch));
    const long long src = state_at(p, d, b) + j;
    static_cast<A*>(p.h)[e] = p.h0 ? to_acc<A>(static_cast<const T*>(p.h0)[src]) : A(0);
    if (p.cell == RnnCell::kLstm)
      static_cast<A*>(p.c)[e] = p.c0 ? to_acc<A>(static_cast<const T*>(p.c0)[src]) : A(0);
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) rnn_gru_reset_kernel(RnnProblem p, long long step) {
  using A = acc_t<T>;
  const long long H = p.hidden, N = p.batch, GH = 3 * H, total = p.ndir * N * H;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long j = e % H, b = (e / H) % N;
    const int d = static_cast<int>(e / (H * N));
    const long long len = row_len(p, b);
    if (step >= len) {
      static_cast<A*>(p.rh)[e] = A(0);  // the row is done: its product is never read
      continue;
    }
    const long long t = (p.reverse || d == 1) ? len - 1 - step : step;
    const A* xw = static_cast<const A*>(p.xw) + (x_row(p, t, b) * p.ndir + d) * GH;
    const A* hr = static_cast<const A*>(p.hr) + (d * N + b) * GH;
    const A* wb = p.bias ? static_cast<const A*>(p.bias) + d * 2 * GH : nullptr;
    A xr = xw[H + j], hrr = hr[H + j];
    if (wb) {
      xr += wb[H + j];
      hrr += wb[GH + H + j];
    }
    const A r = activate(act_of(p, d, 0), clipped(p, xr + hrr));
    static_cast<A*>(p.rh)[e] = r * static_cast<const A*>(p.h)[e];
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) rnn_step_kernel(RnnProblem p, long long step) {
  using A = acc_t<T>;
  const long long H = p.hidden, N = p.batch, G = gates_of(p.cell), GH = G * H;
  const long long total = p.ndir * N * H;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long j = e % H, b = (e / H) % N;
    const int d = static_cast<int>(e / (H * N));
    const long long len = row_len(p, b);
    if (step >= len) {
      // Time `step` lies past the row's length in either direction: Y is 0 there.
      if (p.y) static_cast<T*>(p.y)[y_at(p, step, d, b) + j] = from_acc<T>(A(0));
      continue;
    }
    const long long t = (p.reverse || d == 1) ? len - 1 - step : step;
    const A* xw = static_cast<const A*>(p.xw) + (x_row(p, t, b) * p.ndir + d) * GH;
    const A* hr = static_cast<const A*>(p.hr) + (d * N + b) * GH;
    const A* wb = p.bias ? static_cast<const A*>(p.bias) + d * 2 * GH : nullptr;
    // Gate k's input projection (with Wb) and recurrent product (with Rb).
    auto x_in = [&](long long k) { return wb ? xw[k * H + j] + wb[k * H + j] : xw[k * H + j]; };
    auto h_in = [&](long long k) {
      return wb ? hr[k * H + j] + wb[GH + k * H + j] : hr[k * H + j];
    };
    A* hp = static_cast<A*>(p.h) + e;
    const A h_prev = *hp;
    A h_new;
    if (p.cell == RnnCell::kRnn) {
      h_new = activate(act_of(p, d, 0), clipped(p, x_in(0) + h_in(0)));
    } else if (p.cell == RnnCell::kGru) {
      const RnnActivation& f = act_of(p, d, 0);
      const A z = activate(f, clipped(p, x_in(0) + h_in(0)));
      A rh;
      if (p.linear_before_reset) {
        const A r = activate(f, clipped(p, x_in(1) + h_in(1)));
        rh = r * h_in(2);
      } else {
        rh = h_in(2);  // (r ⊙ h_prev) · Rhᵀ from the second product, plus Rbh
      }
      const A ht = activate(act_of(p, d, 1), clipped(p, x_in(2) + rh));
      h_new = (A(1) - z) * ht + z * h_prev;
    } else {
      const RnnActivation& f = act_of(p, d, 0);
      const A* pp = p.peep ? static_cast<const A*>(p.peep) + d * 3 * H : nullptr;
      A* cp = static_cast<A*>(p.c) + e;
      const A c = *cp;
      const A pi = pp ? pp[j] : A(0), po = pp ? pp[H + j] : A(0), pf = pp ? pp[2 * H + j] : A(0);
      const A it = activate(f, clipped(p, x_in(0) + h_in(0) + pi * c));
      const A ft =
          p.input_forget ? A(1) - it : activate(f, clipped(p, x_in(2) + h_in(2) + pf * c));
      const A ct = activate(act_of(p, d, 1), clipped(p, x_in(3) + h_in(3)));
      const A cn = ft * c + it * ct;
      const A ot = activate(f, clipped(p, x_in(1) + h_in(1) + po * cn));
      *cp = cn;
      h_new = ot * activate(act_of(p, d, 2), cn);
    }
    *hp = h_new;
    if (p.y) static_cast<T*>(p.y)[y_at(p, t, d, b) + j] = from_acc<T>(h_new);
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) rnn_final_kernel(RnnProblem p) {
  using A = acc_t<T>;
  const long long H = p.hidden, total = p.ndir * p.batch * H;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long j = e % H, b = (e / H) % p.batch;
    const int d = static_cast<int>(e / (H * p.batch));
    const long long dst = state_at(p, d, b) + j;
    if (p.y_h) static_cast<T*>(p.y_h)[dst] = from_acc<T>(static_cast<const A*>(p.h)[e]);
    if (p.y_c) static_cast<T*>(p.y_c)[dst] = from_acc<T>(static_cast<const A*>(p.c)[e]);
  }
}

long long state_count(const RnnProblem& p) { return p.ndir * p.batch * p.hidden; }

// Launches kernel<T> for the problem's element type; 0 or the launch's error.
template <class F>
int by_dtype(const RnnProblem& p, F&& launch) {
  if (!dispatch_float(p.dtype, launch)) return static_cast<int>(cudaErrorInvalidValue);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int launch_rnn_convert(const void* src, DType src_dtype, void* dst, bool acc_double, long long n,
                       void* stream) {
  if (n <= 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const unsigned grid = grid_for(n, kThreads);
  if (acc_double)
    rnn_convert_kernel<double><<<grid, kThreads, 0, s>>>(src, src_dtype, static_cast<double*>(dst), n);
  else
    rnn_convert_kernel<float><<<grid, kThreads, 0, s>>>(src, src_dtype, static_cast<float*>(dst), n);
  return static_cast<int>(cudaGetLastError());
}

int launch_rnn_init(const RnnProblem& p, void* stream) {
  const long long n = state_count(p);
  if (n <= 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  return by_dtype(p, [&](auto tag) {
    rnn_init_kernel<typename decltype(tag)::type><<<grid_for(n, kThreads), kThreads, 0, s>>>(p);
  });
}

int launch_rnn_gru_reset(const RnnProblem& p, long long step, void* stream) {
  const long long n = state_count(p);
  if (n <= 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  return by_dtype(p, [&](auto tag) {
    rnn_gru_reset_kernel<typename decltype(tag)::type>
        <<<grid_for(n, kThreads), kThreads, 0, s>>>(p, step);
  });
}

int launch_rnn_step(const RnnProblem& p, long long step, void* stream) {
  const long long n = state_count(p);
  if (n <= 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  return by_dtype(p, [&](auto tag) {
    rnn_step_kernel<typename decltype(tag)::type><<<grid_for(n, kThreads), kThreads, 0, s>>>(p, step);
  });
}

int launch_rnn_final(const RnnProblem& p, void* stream) {
  const long long n = state_count(p);
  if (n <= 0 || (!p.y_h && !p.y_c)) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  return by_dtype(p, [&](auto tag) {
    rnn_final_kernel<typename decltype(tag)::type><<<grid_for(n, kThreads), kThreads, 0, s>>>(p);
  });
}

}  // namespace kiln::cuda::rk
