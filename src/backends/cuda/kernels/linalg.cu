// Det kernel (see linalg.h): a warp per matrix, LU with partial pivoting in double. The lanes
// share the pivot search (a shuffle reduction that picks what the reference's sequential scan
// picks), the row swap, the multipliers and the rank-1 update; __syncwarp orders each phase's
// writes before the next phase's reads.
#include <climits>

#include "linalg.h"
#include "reduction_common.cuh"

namespace kiln::cuda::rk {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr long long kSmemMaxM = 32;  // 4 warps x 32 x 32 doubles = 32 KiB of shared memory
// Workspace path: at most this many matrices in flight, and about this many bytes of them.
constexpr long long kMaxSlots = 4096;
constexpr long long kScratchBudget = 256LL << 20;

// The determinant of the n x n row-major matrix `a` (overwritten), computed by all 32 lanes of
// the calling warp; every lane returns it.
__device__ double lu_det(double* a, long long n, int lane) {
  double det = 1;
  for (long long k = 0; k < n; ++k) {
    // The reference's scan keeps row p while no later |a[i][k]| is strictly larger: the first
    // row of largest magnitude among the non-NaN entries, or row k itself when a[k][k] is NaN.
    double best = -2;  // no row; NaN entries rank -1, below every magnitude
    long long best_row = LLONG_MAX;
    for (long long i = k + lane; i < n; i += 32) {
      const double v = fabs(a[i * n + k]);
      const double key = isnan(v) ? -1.0 : v;
      if (key > best) {
        best = key;
        best_row = i;
      }
    }
    for (int off = 16; off > 0; off >>= 1) {
      const double ob = __shfl_xor_sync(0xffffffffu, best, off);
      const long long orow = __shfl_xor_sync(0xffffffffu, best_row, off);
      if (ob > best || (ob == best && orow < best_row)) {
        best = ob;
        best_row = orow;
      }
    }
    const long long p = isnan(a[k * n + k]) ? k : best_row;
    const double pivot = a[p * n + k];
    __syncwarp();              // every lane has read column k before it changes
    if (pivot == 0) return 0;  // singular (NaN columns fall through and propagate)
    if (p != k) {
      for (long long j = k + lane; j < n; j += 32) {
        const double t = a[k * n + j];
        a[k * n + j] = a[p * n + j];
        a[p * n + j] = t;
      }
      det = -det;
      __syncwarp();
    }
    det *= pivot;
    // Multipliers in column k (no longer needed as matrix entries), then the update.
    for (long long i = k + 1 + lane; i < n; i += 32) a[i * n + k] = a[i * n + k] / pivot;
    __syncwarp();
    const long long m = n - k - 1;
    for (long long t = lane; t < m * m; t += 32) {
      const long long i = k + 1 + t / m, j = k + 1 + t % m;
      const double f = a[i * n + k];
      if (f == 0) continue;
      a[i * n + j] = __dsub_rn(a[i * n + j], __dmul_rn(f, a[k * n + j]));
    }
    __syncwarp();
  }
  return det;
}

// Matrices in turn per warp; `scratch` null: each warp's matrix in dynamic shared memory, else
// warp w's in scratch[w * n * n].
template <class T>
__global__ void det_kernel(const T* __restrict__ x, T* __restrict__ y, long long batch, long long n,
                           double* __restrict__ scratch) {
  extern __shared__ double smem[];
  const int lane = threadIdx.x & 31;
  const long long warp_in_block = threadIdx.x >> 5;
  const long long warps_per_block = blockDim.x >> 5;
  const long long warp = static_cast<long long>(blockIdx.x) * warps_per_block + warp_in_block;
  const long long warps = static_cast<long long>(gridDim.x) * warps_per_block;
  const long long nn = n * n;
  double* a = scratch ? scratch + warp * nn : smem + warp_in_block * nn;
  for (long long mat = warp; mat < batch; mat += warps) {
    const T* src = x + mat * nn;
    for (long long i = lane; i < nn; i += 32) a[i] = to_acc<double>(src[i]);
    __syncwarp();
    const double det = lu_det(a, n, lane);
    if (lane == 0) y[mat] = from_acc<T>(det);
    __syncwarp();  // the next matrix overwrites `a`
  }
}

// Warps (= matrices in flight) of the workspace path.
long long scratch_slots(const DetProblem& p) {
  const long long bytes = p.m * p.m * static_cast<long long>(sizeof(double));
  long long slots = kScratchBudget / bytes;
  if (slots < 1) slots = 1;
  if (slots > kMaxSlots) slots = kMaxSlots;
  if (slots > p.batch) slots = p.batch;
  return slots;
}

template <class T>
int launch_typed(const DetProblem& p, void* workspace, size_t workspace_bytes, cudaStream_t s) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  if (p.m <= kSmemMaxM) {
    const size_t smem = static_cast<size_t>(kWarpsPerBlock * p.m * p.m) * sizeof(double);
    det_kernel<T><<<grid_for(p.batch, kWarpsPerBlock), 32 * kWarpsPerBlock, smem, s>>>(
        x, y, p.batch, p.m, nullptr);
    return 0;
  }
  const long long slots = scratch_slots(p);
  if (!workspace || workspace_bytes < det_workspace_size(p))
    return static_cast<int>(cudaErrorInvalidValue);
  det_kernel<T><<<static_cast<unsigned>(slots), 32, 0, s>>>(x, y, p.batch, p.m,
                                                            static_cast<double*>(workspace));
  return 0;
}

}  // namespace

bool det_supported(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 ||
         dtype == DType::kF64;
}

size_t det_workspace_size(const DetProblem& p) {
  if (p.batch <= 0 || p.m <= kSmemMaxM) return 0;
  return static_cast<size_t>(scratch_slots(p)) * static_cast<size_t>(p.m * p.m) * sizeof(double);
}

int launch_det(const DetProblem& p, void* workspace, size_t workspace_bytes, void* stream) {
  if (p.batch <= 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  int rc = 0;
  dispatch_float(p.dtype, [&](auto tag) {
    rc = launch_typed<typename decltype(tag)::type>(p, workspace, workspace_bytes, s);
  });
  return rc;
}

}  // namespace kiln::cuda::rk
