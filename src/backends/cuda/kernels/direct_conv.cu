// Direct convolution kernel (see direct_conv.h). One thread per output element, grid-stride;
// consecutive threads take consecutive output elements (along the last spatial axis, or along
// the channels in channels-last), so the writes coalesce and neighbouring threads read
// neighbouring inputs. The kernel taps are walked with an odometer, and a tap whose input
// position falls in the padding (or, transposed, between strided positions) is skipped, as the
// reference never visits it.
#include "direct_common.cuh"
#include "direct_conv.h"

namespace kiln::cuda::rk {
namespace {

struct ConvArgs {
  DirectConvProblem p;
  long long total = 0;       // output elements
  long long k_vol = 0;       // kernel taps
  long long cg = 0, mg = 0;  // channels per group, in and out
  long long x_batch = 0, x_chan = 0;
  long long x_sp[kDirectConvMaxSpatial] = {};  // element stride of each spatial axis of x
};

template <class T>
__global__ void __launch_bounds__(256) direct_conv_kernel(const ConvArgs a) {
  using A = exact_acc_t<T>;
  const DirectConvProblem& p = a.p;
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* bias = static_cast<const T*>(p.bias);
  const T* z = static_cast<const T*>(p.z);
  T* y = static_cast<T*>(p.y);
  const int nsp = p.nsp;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < a.total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    long long rem = e, mo = 0;
    long long base[kDirectConvMaxSpatial];
    if (p.channels_last) {
      mo = rem % p.m;
      rem /= p.m;
    }
    for (int j = nsp - 1; j >= 0; --j) {
      const long long o = rem % p.out[j];
      rem /= p.out[j];
      // Forward: the input position of tap k is base + k * dilation. Transposed: input i feeds
      // this output through tap k when i * stride = base - k * dilation.
      base[j] = p.transposed ? o + p.pad_begin[j] : o * p.stride[j] - p.pad_begin[j];
    }
    if (!p.channels_last) {
      mo = rem % p.m;
      rem /= p.m;
    }
    const long long nb = rem;
    const long long g = mo / a.mg, ml = mo - g * a.mg;
    A acc = A(0);
    for (long long cc = 0; cc < a.cg; ++cc) {
      const long long ci = g * a.cg + cc;
      const T* xc = x + nb * a.x_batch + ci * a.x_chan;
      const T* wc = w + (p.transposed ? ci * a.mg + ml : mo * a.cg + cc) * a.k_vol;
      long long k[kDirectConvMaxSpatial];
      for (int j = 0; j < nsp; ++j) k[j] = 0;
      for (long long kk = 0; kk < a.k_vol; ++kk) {
        bool inside = true;
        long long off = 0;
        for (int j = 0; j < nsp; ++j) {
          long long pos;
          if (p.transposed) {
            const long long num = base[j] - k[j] * p.dilation[j];
            if (num < 0 || num % p.stride[j] != 0) {
              inside = false;
              break;
            }
            pos = num / p.stride[j];
          } else {
            pos = base[j] + k[j] * p.dilation[j];
          }
          if (pos < 0 || pos >= p.in[j]) {
            inside = false;
            break;
          }
          off += pos * a.x_sp[j];
        }
        if (inside) acc = exact_add(acc, exact_mul(load_exact(wc, kk), load_exact(xc, off)));
        for (int j = nsp - 1; j >= 0; --j) {
          if (++k[j] < p.kernel[j]) break;
          k[j] = 0;
        }
      }
    }
    if (bias) acc = exact_add(acc, load_exact(bias, mo));
    if (z) acc = exact_add(acc, load_exact(z, e));
    if constexpr (std::is_same_v<A, double>) {
      if (p.relu && !(acc > 0) && !is_nan(acc)) acc = 0.0;  // NaN passes, as the reference's
    }
    y[e] = store_exact<T>(acc);
  }
}

}  // namespace

bool direct_conv_supported(DType dtype) {
  return is_direct_dtype(dtype) && dtype != DType::kF32 && dtype != DType::kF16 &&
         dtype != DType::kBF16;
}

void launch_direct_conv(const DirectConvProblem& p, void* stream) {
  if (p.nsp < 1 || p.nsp > kDirectConvMaxSpatial || p.groups < 1) return;
  ConvArgs a;
  a.p = p;
  long long out_vol = 1, in_vol = 1;
  a.k_vol = 1;
  for (int j = 0; j < p.nsp; ++j) {
    out_vol *= p.out[j];
    in_vol *= p.in[j];
    a.k_vol *= p.kernel[j];
  }
  a.total = p.batch * p.m * out_vol;
  if (a.total == 0) return;
  a.cg = p.c / p.groups;
  a.mg = p.m / p.groups;
  long long st = p.channels_last ? p.c : 1;
  for (int j = p.nsp - 1; j >= 0; --j) {
    a.x_sp[j] = st;
    st *= p.in[j];
  }
  a.x_chan = p.channels_last ? 1 : in_vol;
  a.x_batch = p.c * in_vol;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  dispatch_all(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    direct_conv_kernel<T><<<grid_for(a.total, 256), 256, 0, s>>>(a);
  });
}

}  // namespace kiln::cuda::rk
