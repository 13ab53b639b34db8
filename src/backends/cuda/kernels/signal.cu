// DFT, STFT and MelWeightMatrix kernels (see signal.h).
//
// DFT / STFT: a thread per output bin sums x[t] * w^(k t) over the signal in double. The phase
// index k t mod L advances by k each sample (as the reference's DftPlan does), so the twiddle is
// always that of an exact angle 2 pi idx / L with idx < L, evaluated by sincospi in double: no
// recurrence, no accumulated phase error. Consecutive threads take consecutive bins (or inner
// positions), so they read the same or neighbouring samples.
//
// MelWeightMatrix: each thread derives the bins of its column's filter from the scalar inputs,
// with the reference's mixture of float32 (the mel scale) and double (the bins) arithmetic and
// numpy's floor division. The float32 log10 is taken as the correctly rounded float of a double
// log10; the host's log10f (glibc) is not always correctly rounded, so for a few edge frequencies
// the mel edges, and rarely a bin, can differ from the reference's by one unit.
#include "reduction_common.cuh"
#include "signal.h"

namespace kiln::cuda::rk {
namespace {

constexpr int kThreads = 256;
constexpr long long kMaxLength = 1LL << 28;  // the reference's largest transform

__device__ __forceinline__ long long read_int(const IntScalar& s) {
  if (!s.ptr) return s.value;
  return s.is64 ? *static_cast<const long long*>(s.ptr) : *static_cast<const int*>(s.ptr);
}

// Adds x * e^(sign * 2 pi i * idx / L) to (re, im); scale = 2 / L.
__device__ __forceinline__ void add_term(double xr, double xi, long long idx, double scale,
                                         double sign, double& re, double& im) {
  double sn, cs;
  sincospi(static_cast<double>(idx) * scale, &sn, &cs);
  sn *= sign;
  re += xr * cs - xi * sn;
  im += xr * sn + xi * cs;
}

// ---- DFT -------------------------------------------------------------------------------------

struct DftArgs {
  long long outer, n, inner, comps, n_out, total;
  IntScalar length;
  bool inverse, onesided;
};

template <class T>
__global__ void __launch_bounds__(kThreads)
    dft_kernel(const T* __restrict__ x, T* __restrict__ y, DftArgs a) {
  const long long L = read_int(a.length);
  const bool ok = L >= 1 && L <= kMaxLength && (a.onesided ? L / 2 + 1 : L) == a.n_out;
  const long long m = a.n < L ? a.n : L;  // samples beyond L are truncated, missing ones are 0
  const double scale = ok ? 2.0 / static_cast<double>(L) : 0.0;
  const double sign = a.inverse ? 1.0 : -1.0;
  const long long stride = a.inner * a.comps;  // between consecutive samples of a signal
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < a.total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long i = e % a.inner;
    const long long rest = e / a.inner;
    const long long k = rest % a.n_out;
    const long long o = rest / a.n_out;
    double re = 0, im = 0;
    if (!ok) {
      re = im = acc_nan<double>();
    } else {
      const T* xs = x + (o * a.n * a.inner + i) * a.comps;
      long long idx = 0;  // k * t mod L
      for (long long t = 0; t < m; ++t) {
        const double xr = to_acc<double>(xs[t * stride]);
        const double xi = a.comps == 2 ? to_acc<double>(xs[t * stride + 1]) : 0.0;
        add_term(xr, xi, idx, scale, sign, re, im);
        idx += k;  // k < L and idx < L: one subtraction reduces it
        if (idx >= L) idx -= L;
      }
      if (a.inverse) {
        re /= static_cast<double>(L);
        im /= static_cast<double>(L);
      }
    }
    T* out = y + ((o * a.n_out + k) * a.inner + i) * 2;
    out[0] = from_acc<T>(re);
    out[1] = from_acc<T>(im);
  }
}

// ---- STFT ------------------------------------------------------------------------------------

struct StftArgs {
  long long batch, length, comps, frames, bins, window_length, total;
  IntScalar frame_step, frame_length;
  bool onesided;
};

template <class T>
__global__ void __launch_bounds__(kThreads)
    stft_kernel(const T* __restrict__ signal, const T* __restrict__ window, T* __restrict__ y,
                StftArgs a) {
  const long long step = read_int(a.frame_step);
  const long long fl = read_int(a.frame_length);
  const bool ok = step >= 1 && fl >= 1 && fl <= a.length && fl <= kMaxLength &&
                  (a.window_length < 0 || a.window_length == fl) &&
                  a.frames == 1 + (a.length - fl) / step &&
                  a.bins == (a.onesided ? fl / 2 + 1 : fl);
  const double scale = ok ? 2.0 / static_cast<double>(fl) : 0.0;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < a.total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long k = e % a.bins;
    const long long rest = e / a.bins;
    const long long f = rest % a.frames;
    const long long b = rest / a.frames;
    double re = 0, im = 0;
    if (!ok) {
      re = im = acc_nan<double>();
    } else {
      const T* xs = signal + (b * a.length + f * step) * a.comps;
      long long idx = 0;  // k * t mod fl
      for (long long t = 0; t < fl; ++t) {
        const double w = window ? to_acc<double>(window[t]) : 1.0;
        const double xr = to_acc<double>(xs[t * a.comps]) * w;
        const double xi = a.comps == 2 ? to_acc<double>(xs[t * a.comps + 1]) * w : 0.0;
        add_term(xr, xi, idx, scale, -1.0, re, im);
        idx += k;
        if (idx >= fl) idx -= fl;
      }
    }
    T* out = y + e * 2;  // [batch, frames, bins, 2] in thread order
    out[0] = from_acc<T>(re);
    out[1] = from_acc<T>(im);
  }
}

// ---- MelWeightMatrix -------------------------------------------------------------------------

struct MelArgs {
  IntScalar num_mel_bins, dft_length, sample_rate;
  const void* lower;
  const void* upper;
  DType lower_dtype, upper_dtype, out_dtype;
  long long rows, cols, total;
};

// 2595 log10(1 + hz / 700) in float32, each operation rounded as the host rounds it.
__device__ __forceinline__ float to_mel(float hz) {
  const float s = __fadd_rn(1.0f, __fdiv_rn(hz, 700.0f));
  return __fmul_rn(2595.0f, static_cast<float>(log10(static_cast<double>(s))));
}

// numpy's float floor_divide (npy_divmod), which rounds the quotient of the exact remainder.
__device__ double np_floor_divide(double a, double b) {
  const double mod = fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0) return copysign(0.0, a / b);
  double fl = floor(div);
  if (div - fl > 0.5) fl += 1.0;
  return fl;
}

// Bin of mel point i: floor((dft_length + 1) * hz(i) / sample_rate), clamped to +-1e12.
__device__ long long mel_bin(long long i, float mel_step, float low_mel, long long dft_length,
                             long long sample_rate) {
  const double mel = __dadd_rn(__dmul_rn(static_cast<double>(i), static_cast<double>(mel_step)),
                               static_cast<double>(low_mel));
  const double hz = __dmul_rn(700.0, __dsub_rn(pow(10.0, mel / 2595.0), 1.0));
  const double b = np_floor_divide(__dmul_rn(static_cast<double>(dft_length + 1), hz),
                                   static_cast<double>(sample_rate));
  const double lo = -1e12, hi = 1e12;
  const double c = b < lo ? lo : b;  // std::min(std::max(b, lo), hi)
  return static_cast<long long>(hi < c ? hi : c);
}

// Tensor::set_f64: floats rounded (16-bit types through float), integers truncated toward zero
// (through int64, then narrowed), NaN (an argument the kernel cannot use) as 0 for integers.
__device__ void store_f64(void* y, DType t, long long i, double v) {
  switch (t) {
    case DType::kF32:
      static_cast<float*>(y)[i] = static_cast<float>(v);
      return;
    case DType::kF64:
      static_cast<double*>(y)[i] = v;
      return;
    case DType::kF16:
      static_cast<__half*>(y)[i] = __float2half_rn(static_cast<float>(v));
      return;
    case DType::kBF16:
      static_cast<__nv_bfloat16*>(y)[i] = __float2bfloat16_rn(static_cast<float>(v));
      return;
    default:
      break;
  }
  if (v != v) v = 0;
  if (t == DType::kU64) {
    static_cast<unsigned long long*>(y)[i] = static_cast<unsigned long long>(v);
    return;
  }
  const long long q = static_cast<long long>(v);
  switch (t) {
    case DType::kI8:
      static_cast<int8_t*>(y)[i] = static_cast<int8_t>(q);
      break;
    case DType::kU8:
      static_cast<uint8_t*>(y)[i] = static_cast<uint8_t>(q);
      break;
    case DType::kI16:
      static_cast<int16_t*>(y)[i] = static_cast<int16_t>(q);
      break;
    case DType::kU16:
      static_cast<uint16_t*>(y)[i] = static_cast<uint16_t>(q);
      break;
    case DType::kI32:
      static_cast<int32_t*>(y)[i] = static_cast<int32_t>(q);
      break;
    case DType::kU32:
      static_cast<uint32_t*>(y)[i] = static_cast<uint32_t>(q);
      break;
    default:  // kI64
      static_cast<long long*>(y)[i] = q;
      break;
  }
}

__global__ void __launch_bounds__(kThreads)
    mel_weight_matrix_kernel(void* __restrict__ y, MelArgs a) {
  const long long nb = read_int(a.num_mel_bins);
  const long long dl = read_int(a.dft_length);
  const long long sr = read_int(a.sample_rate);
  const double lower = load_float_as<double>(a.lower, a.lower_dtype, 0);
  const double upper = load_float_as<double>(a.upper, a.upper_dtype, 0);
  // The reference's argument checks, and the plan's dims must be the ones these values give.
  const bool ok = nb >= 1 && dl >= 1 && sr >= 1 && nb <= (1 << 20) && dl <= kMaxLength &&
                  (dl / 2 + 1) * nb <= (1LL << 30) && lower >= 0 && upper > lower &&
                  isfinite(upper) && a.rows == dl / 2 + 1 && a.cols == nb;
  const float low_mel = to_mel(static_cast<float>(lower));
  const float high_mel = to_mel(static_cast<float>(upper));
  const float mel_step = __fdiv_rn(__fsub_rn(high_mel, low_mel), static_cast<float>(nb + 2));
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < a.total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    if (!ok) {
      store_f64(y, a.out_dtype, e, acc_nan<double>());
      continue;
    }
    const long long j = e / a.cols, i = e - j * a.cols;
    const long long lo = mel_bin(i, mel_step, low_mel, dl, sr);
    const long long center = mel_bin(i + 1, mel_step, low_mel, dl, sr);
    const long long hi = mel_bin(i + 2, mel_step, low_mel, dl, sr);
    // The reference writes the rising edge, then the falling edge over it (from the centre on).
    double v = 0;
    const long long up = center - lo;
    if (up == 0) {
      if (j == center) v = 1.0;
    } else if (j >= lo && j <= center) {
      v = static_cast<double>(j - lo) / static_cast<double>(up);
    }
    const long long down = hi - center;
    if (down > 0 && j >= center && j < hi)
      v = static_cast<double>(hi - j) / static_cast<double>(down);
    store_f64(y, a.out_dtype, e, v);
  }
}

bool is_float_type(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64;
}

}  // namespace

bool dft_supported(DType dtype) { return is_float_type(dtype); }

void launch_dft(const DftProblem& p, void* stream) {
  DftArgs a{};
  a.outer = p.outer;
  a.n = p.n;
  a.inner = p.inner;
  a.comps = p.comps;
  a.n_out = p.n_out;
  a.total = p.outer * p.n_out * p.inner;
  a.length = p.length;
  a.inverse = p.inverse;
  a.onesided = p.onesided;
  if (a.total <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  dispatch_float(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    dft_kernel<T><<<grid_for(a.total, kThreads), kThreads, 0, s>>>(static_cast<const T*>(p.x),
                                                                   static_cast<T*>(p.y), a);
  });
}

bool stft_supported(DType dtype) { return is_float_type(dtype); }

void launch_stft(const StftProblem& p, void* stream) {
  StftArgs a{};
  a.batch = p.batch;
  a.length = p.length;
  a.comps = p.comps;
  a.frames = p.frames;
  a.bins = p.bins;
  a.window_length = p.window_length;
  a.total = p.batch * p.frames * p.bins;
  a.frame_step = p.frame_step;
  a.frame_length = p.frame_length;
  a.onesided = p.onesided;
  if (a.total <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  dispatch_float(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    stft_kernel<T><<<grid_for(a.total, kThreads), kThreads, 0, s>>>(
        static_cast<const T*>(p.signal), static_cast<const T*>(p.window), static_cast<T*>(p.y), a);
  });
}

bool mel_weight_matrix_supported(DType out_dtype, DType lower_dtype, DType upper_dtype) {
  switch (out_dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kF64:
    case DType::kI8:
    case DType::kU8:
    case DType::kI16:
    case DType::kU16:
    case DType::kI32:
    case DType::kU32:
    case DType::kI64:
    case DType::kU64:
      break;
    default:
      return false;
  }
  return is_float_type(lower_dtype) && is_float_type(upper_dtype);
}

void launch_mel_weight_matrix(const MelWeightMatrixProblem& p, void* stream) {
  MelArgs a{};
  a.num_mel_bins = p.num_mel_bins;
  a.dft_length = p.dft_length;
  a.sample_rate = p.sample_rate;
  a.lower = p.lower_edge_hertz;
  a.upper = p.upper_edge_hertz;
  a.lower_dtype = p.lower_dtype;
  a.upper_dtype = p.upper_dtype;
  a.out_dtype = p.out_dtype;
  a.rows = p.rows;
  a.cols = p.cols;
  a.total = p.rows * p.cols;
  if (a.total <= 0) return;
  mel_weight_matrix_kernel<<<grid_for(a.total, kThreads), kThreads, 0,
                             static_cast<cudaStream_t>(stream)>>>(p.y, a);
}

}  // namespace kiln::cuda::rk
