// NllLoss kernels (see loss.h). Each loss is computed as the reference computes it, in double:
// -x[b, cls, i] * w[cls], and +0 with weight 0 where the target is ignore_index. The reductions
// are deterministic: the partial pass's block count depends only on the element count, every
// thread adds its elements in index order, and blocks combine with a fixed shuffle tree.
#include "loss.h"
#include "reduction_common.cuh"

namespace kiln::cuda::rk {
namespace {

constexpr int kThreads = 256;
// Elements per partial block (at least), and the most partials: enough blocks to fill a GPU on
// large inputs, few enough for one block to combine them quickly.
constexpr long long kPerBlock = 4096;
constexpr long long kMaxPartials = 1024;

// Sums of one share of the elements; 16 bytes, shuffled as four 32-bit words.
struct Partial {
  double loss;
  double weight;
};

struct AddPartial {
  __device__ Partial operator()(const Partial& a, const Partial& b) const {
    return {a.loss + b.loss, a.weight + b.weight};
  }
};

struct Geometry {
  long long c, inner;
  bool has_ignore;
  long long ignore_index;
};

// The loss of element e of [n, inner] and the weight it applies.
template <class T, class I>
__device__ __forceinline__ Partial element_loss(const T* __restrict__ x,
                                                const I* __restrict__ target,
                                                const T* __restrict__ weight, long long e,
                                                const Geometry& g) {
  const long long b = e / g.inner, i = e - b * g.inner;
  const long long cls = static_cast<long long>(target[e]);
  if (g.has_ignore && cls == g.ignore_index) return {0.0, 0.0};
  // The reference rejects a class outside [0, C); a kernel cannot, so the loss is NaN.
  if (cls < 0 || cls >= g.c) return {acc_nan<double>(), 0.0};
  const double w = weight ? to_acc<double>(weight[cls]) : 1.0;
  return {-to_acc<double>(x[(b * g.c + cls) * g.inner + i]) * w, w};
}

template <class T, class I>
__global__ void __launch_bounds__(kThreads)
    nll_loss_none_kernel(const T* __restrict__ x, const I* __restrict__ target,
                         const T* __restrict__ weight, T* __restrict__ y, long long total,
                         Geometry g) {
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x)
    y[e] = from_acc<T>(element_loss(x, target, weight, e, g).loss);
}

template <class T, class I>
__global__ void __launch_bounds__(kThreads)
    nll_loss_partial_kernel(const T* __restrict__ x, const I* __restrict__ target,
                            const T* __restrict__ weight, Partial* __restrict__ partials,
                            long long total, Geometry g) {
  __shared__ Partial smem[32];
  Partial acc{0.0, 0.0};
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const Partial l = element_loss(x, target, weight, e, g);
    acc.loss += l.loss;
    acc.weight += l.weight;
  }
  const Partial r = block_all_reduce(acc, AddPartial{}, smem);
  if (threadIdx.x == 0) partials[blockIdx.x] = r;
}

// One block: the partials in a fixed order, then sum or sum / weight (0 / 0 = NaN when every
// element is ignored or there is none, as in the reference).
template <class T>
__global__ void __launch_bounds__(kThreads)
    nll_loss_final_kernel(const Partial* __restrict__ partials, long long count, T* __restrict__ y,
                          bool mean) {
  __shared__ Partial smem[32];
  Partial acc{0.0, 0.0};
  for (long long k = threadIdx.x; k < count; k += blockDim.x) {
    acc.loss += partials[k].loss;
    acc.weight += partials[k].weight;
  }
  const Partial r = block_all_reduce(acc, AddPartial{}, smem);
  if (threadIdx.x == 0) y[0] = from_acc<T>(mean ? r.loss / r.weight : r.loss);
}

long long partial_count(const NllLossProblem& p) {
  const long long total = p.n * p.inner;
  if (total <= 0) return 0;
  const long long g = (total + kPerBlock - 1) / kPerBlock;
  return g < kMaxPartials ? g : kMaxPartials;
}

template <class T, class I>
int launch_typed(const NllLossProblem& p, void* workspace, size_t workspace_bytes, cudaStream_t s) {
  const T* x = static_cast<const T*>(p.x);
  const I* target = static_cast<const I*>(p.target);
  const T* weight = static_cast<const T*>(p.weight);
  T* y = static_cast<T*>(p.y);
  const long long total = p.n * p.inner;
  const Geometry g{p.c, p.inner, p.has_ignore_index, p.ignore_index};
  if (p.reduction == NllReduction::kNone) {
    if (total > 0)
      nll_loss_none_kernel<T, I>
          <<<grid_for(total, kThreads), kThreads, 0, s>>>(x, target, weight, y, total, g);
    return 0;
  }
  const long long parts = partial_count(p);
  Partial* partials = static_cast<Partial*>(workspace);
  if (parts > 0) {
    if (!workspace || workspace_bytes < static_cast<size_t>(parts) * sizeof(Partial))
      return static_cast<int>(cudaErrorInvalidValue);
    nll_loss_partial_kernel<T, I>
        <<<static_cast<unsigned>(parts), kThreads, 0, s>>>(x, target, weight, partials, total, g);
  }
  // Even without elements the scalar is written: 0 for sum, NaN for mean.
  nll_loss_final_kernel<T>
      <<<1, kThreads, 0, s>>>(partials, parts, y, p.reduction == NllReduction::kMean);
  return 0;
}

}  // namespace

bool nll_loss_supported(DType dtype, DType target_dtype) {
  const bool float_ok =
      dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF64;
  return float_ok && (target_dtype == DType::kI32 || target_dtype == DType::kI64);
}

size_t nll_loss_workspace_size(const NllLossProblem& p) {
  if (p.reduction == NllReduction::kNone) return 0;
  return static_cast<size_t>(partial_count(p)) * sizeof(Partial);
}

int launch_nll_loss(const NllLossProblem& p, void* workspace, size_t workspace_bytes,
                    void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  int rc = 0;
  dispatch_float(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (p.target_dtype == DType::kI32)
      rc = launch_typed<T, int32_t>(p, workspace, workspace_bytes, s);
    else
      rc = launch_typed<T, int64_t>(p, workspace, workspace_bytes, s);
  });
  return rc;
}

}  // namespace kiln::cuda::rk
