// Direct matrix-product kernel (see direct_matmul.h). One thread per output element,
// grid-stride; consecutive threads take consecutive columns j, so reads of a row-major B and the
// writes of Y coalesce while A's element is shared by the warp. The activations evaluate the
// reference's expressions (ops/epilogue.cc) one rounded operation at a time; erf and tanh are
// CUDA's, within an ulp or two of the host's.
#include "direct_common.cuh"
#include "direct_matmul.h"

namespace kiln::cuda::rk {
namespace {

__device__ __forceinline__ double activate(DirectActivation act, double x) {
  switch (act) {
    case DirectActivation::kRelu:
      return x > 0 || x != x ? x : 0.0;
    case DirectActivation::kGeluErf: {
      const double s = __dadd_rn(1.0, erf(__dmul_rn(x, 0.70710678118654752440)));
      return __dmul_rn(__dmul_rn(0.5, x), s);
    }
    case DirectActivation::kGeluTanh: {
      const double k = __dsqrt_rn(__ddiv_rn(2.0, 3.14159265358979323846));
      const double cube = __dmul_rn(__dmul_rn(__dmul_rn(0.044715, x), x), x);
      const double s = __dadd_rn(1.0, tanh(__dmul_rn(k, __dadd_rn(x, cube))));
      return __dmul_rn(__dmul_rn(0.5, x), s);
    }
    default:
      return x;
  }
}

template <class T>
__global__ void __launch_bounds__(256)
    direct_matmul_kernel(const DirectMatMulProblem p, long long total) {
  using A = exact_acc_t<T>;
  const T* a = static_cast<const T*>(p.a);
  const T* b = static_cast<const T*>(p.b);
  const T* bias = static_cast<const T*>(p.bias);
  const T* z = static_cast<const T*>(p.z);
  T* y = static_cast<T*>(p.y);
  // Element steps of op(A) along (i, p) and of op(B) along (p, j).
  const long long a_i = p.trans_a ? 1 : p.k, a_p = p.trans_a ? p.m : 1;
  const long long b_p = p.trans_b ? 1 : p.n, b_j = p.trans_b ? p.k : 1;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long j = e % p.n;
    long long rem = e / p.n;
    const long long i = rem % p.m;
    rem /= p.m;
    long long a_off = 0, b_off = 0;
    for (int d = p.batch_rank - 1; d >= 0; --d) {
      const long long c = rem % p.batch[d];
      rem /= p.batch[d];
      a_off += c * p.a_stride[d];
      b_off += c * p.b_stride[d];
    }
    const T* ar = a + a_off + i * a_i;
    const T* bc = b + b_off + j * b_j;
    A acc = A(0);
    for (long long q = 0; q < p.k; ++q)
      acc = exact_add(acc, exact_mul(load_exact(ar, q * a_p), load_exact(bc, q * b_p)));
    if constexpr (std::is_same_v<A, double>) {
      if (p.alpha != 1.0) acc = __dmul_rn(acc, p.alpha);
    }
    if (bias) acc = exact_add(acc, load_exact(bias, j));
    if (z) acc = exact_add(acc, load_exact(z, e));
    if constexpr (std::is_same_v<A, double>) acc = activate(p.act, acc);
    y[e] = store_exact<T>(acc);
  }
}

}  // namespace

bool direct_matmul_supported(DType dtype) {
  return is_direct_dtype(dtype) && dtype != DType::kF32 && dtype != DType::kF16 &&
         dtype != DType::kBF16;
}

void launch_direct_matmul(const DirectMatMulProblem& p, void* stream) {
  if (p.batch_rank < 0 || p.batch_rank > kDirectMatMulMaxBatch) return;
  long long total = p.m * p.n;
  for (int d = 0; d < p.batch_rank; ++d) total *= p.batch[d];
  if (total == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  dispatch_all(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    direct_matmul_kernel<T><<<grid_for(total, 256), 256, 0, s>>>(p, total);
  });
}

}  // namespace kiln::cuda::rk
