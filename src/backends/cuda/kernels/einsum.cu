// General Einsum kernel (see einsum.h). One thread per output element, grid-stride. The summed
// space is walked as the reference walks it (row-major, last summed axis fastest), with that
// axis as a tight inner loop and the outer summed axes as an odometer of per-operand offsets;
// each term is the product x0 * x1 * ... in operand order, added to the sum, with double
// operations rounded one at a time (direct_common.cuh), so float results are the reference's.
// The operand count is a template parameter so that the per-operand offsets live in registers.
#include "direct_common.cuh"
#include "einsum.h"

namespace kiln::cuda::rk {
namespace {

template <class T, int N>
__global__ void __launch_bounds__(256)
    einsum_kernel(const EinsumProblem p, long long out_numel, long long red_numel) {
  using A = exact_acc_t<T>;
  const T* xs[N];
#pragma unroll
  for (int i = 0; i < N; ++i) xs[i] = static_cast<const T*>(p.x[i]);
  T* y = static_cast<T*>(p.y);
  const int last = p.n_red - 1;  // -1: nothing is summed, one term per output
  const long long len = last >= 0 ? p.red_sizes[last] : 1;
  const long long outer = len > 0 ? red_numel / len : 0;
  long long step[N];
#pragma unroll
  for (int i = 0; i < N; ++i) step[i] = last >= 0 ? p.red_strides[i][last] : 0;

  for (long long o = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; o < out_numel;
       o += static_cast<long long>(gridDim.x) * blockDim.x) {
    long long off[N];
#pragma unroll
    for (int i = 0; i < N; ++i) off[i] = 0;
    long long rem = o;
    for (int j = p.n_out - 1; j >= 0; --j) {
      const long long c = rem % p.out_sizes[j];
      rem /= p.out_sizes[j];
#pragma unroll
      for (int i = 0; i < N; ++i) off[i] += c * p.out_strides[i][j];
    }
    A acc = A(0);
    long long ctr[kEinsumMaxAxes];
    for (int j = 0; j < last; ++j) ctr[j] = 0;
    for (long long q = 0; q < outer; ++q) {
      for (long long t = 0; t < len; ++t) {
        A prod = A(1);
#pragma unroll
        for (int i = 0; i < N; ++i) prod = exact_mul(prod, load_exact(xs[i], off[i] + t * step[i]));
        acc = exact_add(acc, prod);
      }
      // Next point of the outer summed axes.
      for (int j = last - 1; j >= 0; --j) {
        if (++ctr[j] < p.red_sizes[j]) {
#pragma unroll
          for (int i = 0; i < N; ++i) off[i] += p.red_strides[i][j];
          break;
        }
        ctr[j] = 0;
#pragma unroll
        for (int i = 0; i < N; ++i) off[i] -= (p.red_sizes[j] - 1) * p.red_strides[i][j];
      }
    }
    y[o] = store_exact<T>(acc);
  }
}

template <class T, int N>
void launch_n(const EinsumProblem& p, long long out_numel, long long red_numel, cudaStream_t s) {
  einsum_kernel<T, N><<<grid_for(out_numel, 256), 256, 0, s>>>(p, out_numel, red_numel);
}

template <class T>
void launch_typed(const EinsumProblem& p, long long out_numel, long long red_numel,
                  cudaStream_t s) {
  switch (p.n_inputs) {
    case 1:
      return launch_n<T, 1>(p, out_numel, red_numel, s);
    case 2:
      return launch_n<T, 2>(p, out_numel, red_numel, s);
    case 3:
      return launch_n<T, 3>(p, out_numel, red_numel, s);
    case 4:
      return launch_n<T, 4>(p, out_numel, red_numel, s);
    case 5:
      return launch_n<T, 5>(p, out_numel, red_numel, s);
    case 6:
      return launch_n<T, 6>(p, out_numel, red_numel, s);
    case 7:
      return launch_n<T, 7>(p, out_numel, red_numel, s);
    case 8:
      return launch_n<T, 8>(p, out_numel, red_numel, s);
    default:
      return;
  }
}

}  // namespace

bool einsum_supported(DType dtype) { return is_direct_dtype(dtype); }

void launch_einsum(const EinsumProblem& p, void* stream) {
  long long out_numel = 1, red_numel = 1;
  for (int j = 0; j < p.n_out; ++j) out_numel *= p.out_sizes[j];
  for (int j = 0; j < p.n_red; ++j) red_numel *= p.red_sizes[j];
  if (out_numel == 0 || p.n_inputs < 1 || p.n_inputs > kEinsumMaxOperands) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  dispatch_all(p.dtype, [&](auto tag) {
    launch_typed<typename decltype(tag)::type>(p, out_numel, red_numel, s);
  });
}

}  // namespace kiln::cuda::rk
