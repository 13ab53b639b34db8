// Fused attention kernels (see attention.h). Semantics as the reference (src/ops/attention.cc):
// scores = scale * q.k + mask (bool false and causal j > i: -inf); a row with every score -inf
// writes zeros. Softmax runs online in base 2: x * log2(e) is carried instead of x, so exp2f.
//
// Tensor-core fragment layouts (PTX ISA, mma.m16n8k16 with 16-bit inputs; g = lane / 4,
// t = lane % 4; element pairs are packed low index in the low half of a 32-bit register):
//   A (16x16, row-major): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
//   B (16x8, k x n):      b0 = (k 2t..2t+1, n g), b1 = (k 2t+8..2t+9, n g)
//   C (16x8, float32):    c0, c1 = (g, 2t..2t+1), c2, c3 = (g+8, 2t..2t+1)
// For S = Q Kᵀ, B[k][n] = K[n][k]: b0 is two neighbours of K's row g in shared memory. For O += P V,
// the C fragments of two neighbouring 8-key score tiles are exactly the A fragment of P over 16
// keys (converted to 16-bit), and ldmatrix.trans hands each lane its B pairs of V's columns.
#include <cfloat>

#include "attention.h"
#include "reduction_common.cuh"

namespace kiln::cuda::rk {
namespace {

constexpr int kBlockM = 64;   // query rows per block: 16 per warp
constexpr int kBlockN = 64;   // keys per shared-memory tile
constexpr int kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

struct Params {
  AttentionProblem p;
  bool q_vec = false, k_vec = false, v_vec = false;  // 16-byte loads are aligned
};

// The additive value of mask element i: bool false (and -inf) mask out.
__device__ __forceinline__ float mask_value(const void* m, DType t, int64_t i) {
  switch (t) {
    case DType::kBool: return static_cast<const uint8_t*>(m)[i] ? 0.0f : -INFINITY;
    case DType::kF16: return __half2float(static_cast<const __half*>(m)[i]);
    case DType::kBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(m)[i]);
    case DType::kF64: return static_cast<float>(static_cast<const double*>(m)[i]);
    default: return static_cast<const float*>(m)[i];
  }
}
__device__ __forceinline__ double mask_value_f64(const void* m, DType t, int64_t i) {
  if (t == DType::kF64) return static_cast<const double*>(m)[i];
  return mask_value(m, t, i);
}

template <class T>
struct Mma;

template <>
struct Mma<__half> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ __half out(float v) { return __float2half_rn(v); }
};

template <>
struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ __nv_bfloat16 out(float v) { return __float2bfloat16_rn(v); }
};

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const uint16_t* p) {
  unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ uint32_t ld32(const uint16_t* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

// Copies rows [0, rows) x cols [0, cols) of a 16-bit matrix (row stride rs elements, unit column
// stride) into a kRows x kD shared tile of leading dimension kD + 8, zeros elsewhere.
template <int kD, int kRows>
__device__ __forceinline__ void load_tile(uint16_t* tile, const uint16_t* g, int64_t rs, int rows,
                                          int cols, bool vec) {
  constexpr int kLd = kD + 8;
  if (vec) {  // cols % 8 == 0, 16-byte aligned rows
    constexpr int kChunks = kD / 8;
    for (int c = threadIdx.x; c < kRows * kChunks; c += kThreads) {
      const int r = c / kChunks, k8 = (c % kChunks) * 8;
      uint4 val = make_uint4(0, 0, 0, 0);
      if (r < rows && k8 < cols) val = *reinterpret_cast<const uint4*>(g + r * rs + k8);
      *reinterpret_cast<uint4*>(tile + r * kLd + k8) = val;
    }
  } else {
    for (int c = threadIdx.x; c < kRows * kD; c += kThreads) {
      const int r = c / kD, k = c % kD;
      tile[r * kLd + k] = r < rows && k < cols ? g[r * rs + k] : uint16_t{0};
    }
  }
}

template <class T, int kD>
__global__ void __launch_bounds__(kThreads) attention_mma_kernel(const Params prm) {
  constexpr int kLd = kD + 8;
  constexpr int kSteps = kD / 16;   // k-steps over the head size
  constexpr int kNTiles = kD / 8;   // 8-wide output column tiles
  const AttentionProblem& p = prm.p;
  extern __shared__ uint4 smem_raw[];
  uint16_t* qs = reinterpret_cast<uint16_t*>(smem_raw);
  uint16_t* ks = qs + kBlockM * kLd;
  uint16_t* vs = ks + kBlockN * kLd;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kBlockM;
  const int64_t h = blockIdx.y, b = blockIdx.z;
  const int64_t hk = h / (p.heads / p.kv_heads);
  const uint16_t* qg = static_cast<const uint16_t*>(p.q) + b * p.q_stride[0] +
                       h * p.q_stride[1] + m0 * p.q_stride[2];
  const uint16_t* kg = static_cast<const uint16_t*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[1];
  const uint16_t* vg = static_cast<const uint16_t*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[1];
  const int d = static_cast<int>(p.d), dv = static_cast<int>(p.d_v);

  const int q_rows = static_cast<int>(min64(kBlockM, p.s_q - m0));
  load_tile<kD, kBlockM>(qs, qg, p.q_stride[2], q_rows, d, prm.q_vec);
  __syncthreads();
  uint32_t qf[kSteps][4];
#pragma unroll
  for (int kk = 0; kk < kSteps; ++kk) {
    const uint16_t* base = qs + (warp * 16 + g) * kLd + kk * 16 + t * 2;
    qf[kk][0] = ld32(base);
    qf[kk][1] = ld32(base + 8 * kLd);
    qf[kk][2] = ld32(base + 8);
    qf[kk][3] = ld32(base + 8 * kLd + 8);
  }

  float o[kNTiles][4];
#pragma unroll
  for (int i = 0; i < kNTiles; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f};
  const int64_t rows[2] = {m0 + warp * 16 + g, m0 + warp * 16 + g + 8};
  const float sl2 = static_cast<float>(p.scale) * kLog2e;
  // Top-left causality: row i sees keys 0..i, so this block's last visible key is m0 + 63.
  const int64_t n_end = p.causal ? min64(p.s_kv, m0 + kBlockM) : p.s_kv;

  for (int64_t n0 = 0; n0 < n_end; n0 += kBlockN) {
    const int n_rows = static_cast<int>(min64(kBlockN, p.s_kv - n0));
    __syncthreads();  // every warp is done with the previous K and V tiles
    load_tile<kD, kBlockN>(ks, kg + n0 * p.k_stride[2], p.k_stride[2], n_rows, d, prm.k_vec);
    load_tile<kD, kBlockN>(vs, vg + n0 * p.v_stride[2], p.v_stride[2], n_rows, dv, prm.v_vec);
    __syncthreads();

    float s[kBlockN / 8][4];
#pragma unroll
    for (int nt = 0; nt < kBlockN / 8; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kSteps; ++kk) {
        const uint16_t* kb = ks + (nt * 8 + g) * kLd + kk * 16 + t * 2;
        Mma<T>::run(s[nt], qf[kk], ld32(kb), ld32(kb + 8));
      }
    }
    // Scale, mask and causality, in base 2.
#pragma unroll
    for (int nt = 0; nt < kBlockN / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t row = rows[e >> 1];
        const int64_t col = n0 + nt * 8 + t * 2 + (e & 1);
        float x = s[nt][e] * sl2;
        if (col >= p.s_kv || (p.causal && col > row)) {
          x = -INFINITY;
        } else if (p.mask && row < p.s_q) {
          const int64_t mi = b * p.mask_stride[0] + h * p.mask_stride[1] +
                             row * p.mask_stride[2] + col * p.mask_stride[3];
          x += mask_value(p.mask, p.mask_dtype, mi) * kLog2e;
        }
        s[nt][e] = x;
      }
    // Online softmax: each row lives in the 4 lanes of a quad.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kBlockN / 8; ++nt)
        mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(mrow[r], mx);
      // All -inf so far: subtract 0, so that exp2(-inf) is 0 and never exp2(-inf + inf).
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = exp2f(mrow[r] - m_use);
      mrow[r] = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < kBlockN / 8; ++nt) {
        const float p0 = exp2f(s[nt][2 * r] - m_use), p1 = exp2f(s[nt][2 * r + 1] - m_use);
        s[nt][2 * r] = p0;
        s[nt][2 * r + 1] = p1;
        sum += p0 + p1;
      }
      lrow[r] = lrow[r] * alpha + sum;  // this lane's part; the quad sums at the end
#pragma unroll
      for (int i = 0; i < kNTiles; ++i) {
        o[i][2 * r] *= alpha;
        o[i][2 * r + 1] *= alpha;
      }
    }
    // O += P V over the tile's 64 keys, 16 at a time.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      if (n0 + kk * 16 >= p.s_kv) break;  // the rest of the tile is padding (P is 0 there)
      uint32_t a[4];
      a[0] = Mma<T>::pack(s[2 * kk][0], s[2 * kk][1]);
      a[1] = Mma<T>::pack(s[2 * kk][2], s[2 * kk][3]);
      a[2] = Mma<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = Mma<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int j = 0; j < kNTiles / 2; ++j) {
        uint32_t bv[4];
        ldmatrix_x4_trans(bv, vs + (kk * 16 + (lane & 15)) * kLd + j * 16 + (lane >> 4) * 8);
        Mma<T>::run(o[2 * j], a, bv[0], bv[1]);
        Mma<T>::run(o[2 * j + 1], a, bv[2], bv[3]);
      }
    }
  }

  T* y = static_cast<T*>(p.y) + (b * p.heads + h) * p.s_q * p.d_v;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = lrow[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;  // fully masked: zeros
    const int64_t row = rows[r];
    if (row >= p.s_q) continue;
#pragma unroll
    for (int i = 0; i < kNTiles; ++i) {
      const int col = i * 8 + t * 2;
      if (col < dv) y[row * p.d_v + col] = Mma<T>::out(o[i][2 * r] * inv);
      if (col + 1 < dv) y[row * p.d_v + col + 1] = Mma<T>::out(o[i][2 * r + 1] * inv);
    }
  }
}

// One block per query row: 128 keys at a time, scores in the accumulation type A.
constexpr int kRowThreads = 128;
constexpr int kRowMaxDvPerThread = 8;  // d_v <= 1024

template <class A>
__device__ __forceinline__ A exp_of(A x) {
  if constexpr (std::is_same_v<A, double>)
    return exp(x);
  else
    return expf(x);
}

template <class A, class Op>
__device__ A block_reduce(A v, A* red, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // red is free again
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = red[0];
  for (int w = 1; w < kRowThreads / 32; ++w) v = op(v, red[w]);
  return v;
}

template <class T, class A>
__global__ void __launch_bounds__(kRowThreads) attention_row_kernel(const AttentionProblem p) {
  extern __shared__ uint4 smem_raw[];
  A* qrow = reinterpret_cast<A*>(smem_raw);
  A* probs = qrow + p.d;
  __shared__ A red[kRowThreads / 32];
  const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int64_t hk = h / (p.heads / p.kv_heads);
  const T* qg = static_cast<const T*>(p.q) + b * p.q_stride[0] + h * p.q_stride[1] +
                i * p.q_stride[2];
  const T* kg = static_cast<const T*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[1];
  const T* vg = static_cast<const T*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[1];
  for (int64_t d = threadIdx.x; d < p.d; d += kRowThreads) qrow[d] = to_acc<A>(qg[d]);
  A acc[kRowMaxDvPerThread];
  for (int k = 0; k < kRowMaxDvPerThread; ++k) acc[k] = A(0);
  A m = -INFINITY, l = 0;
  const A scale = static_cast<A>(p.scale);
  const int64_t n_end = p.causal ? min64(p.s_kv, i + 1) : p.s_kv;
  __syncthreads();
  auto max_op = [](A x, A y) { return x > y ? x : y; };
  auto sum_op = [](A x, A y) { return x + y; };
  for (int64_t j0 = 0; j0 < n_end; j0 += kRowThreads) {
    const int64_t j = j0 + threadIdx.x;
    A x = -INFINITY;
    if (j < n_end) {
      const T* kr = kg + j * p.k_stride[2];
      A dot = 0;
      for (int64_t d = 0; d < p.d; ++d) dot += qrow[d] * to_acc<A>(kr[d]);
      x = dot * scale;
      if (p.mask) {
        const int64_t mi = b * p.mask_stride[0] + h * p.mask_stride[1] + i * p.mask_stride[2] +
                           j * p.mask_stride[3];
        x += static_cast<A>(mask_value_f64(p.mask, p.mask_dtype, mi));
      }
    }
    const A cmax = block_reduce(x, red, max_op);
    const A m_new = m > cmax ? m : cmax;
    const A m_use = m_new == A(-INFINITY) ? A(0) : m_new;
    const A alpha = exp_of(m - m_use);
    const A pj = exp_of(x - m_use);
    probs[threadIdx.x] = pj;
    const A csum = block_reduce(pj, red, sum_op);  // its barriers also publish probs
    l = l * alpha + csum;
    m = m_new;
    const int64_t n = min64(kRowThreads, n_end - j0);
    for (int k = 0; k < kRowMaxDvPerThread; ++k) {
      const int64_t dv = threadIdx.x + k * kRowThreads;
      if (dv >= p.d_v) break;
      A s = acc[k] * alpha;
      for (int64_t jj = 0; jj < n; ++jj) {
        const A w = probs[jj];
        if (w != A(0)) s += w * to_acc<A>(vg[(j0 + jj) * p.v_stride[2] + dv]);
      }
      acc[k] = s;
    }
    __syncthreads();  // probs is rewritten next chunk
  }
  T* y = static_cast<T*>(p.y) + ((b * p.heads + h) * p.s_q + i) * p.d_v;
  const A inv = l > A(0) ? A(1) / l : A(0);
  for (int k = 0; k < kRowMaxDvPerThread; ++k) {
    const int64_t dv = threadIdx.x + k * kRowThreads;
    if (dv >= p.d_v) break;
    y[dv] = from_acc<T>(acc[k] * inv);
  }
}

int mma_head_size(const AttentionProblem& p) {
  if (p.dtype != DType::kF16 && p.dtype != DType::kBF16) return 0;
  const int64_t d = p.d > p.d_v ? p.d : p.d_v;
  if (d <= 32) return 32;
  if (d <= 64) return 64;
  if (d <= 128) return 128;
  return 0;
}

bool aligned16(const void* ptr, const int64_t (&stride)[3], int64_t cols) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && cols % 8 == 0 && stride[0] % 8 == 0 &&
         stride[1] % 8 == 0 && stride[2] % 8 == 0;
}

template <class T, int kD>
void launch_mma(const AttentionProblem& p, cudaStream_t s) {
  Params prm;
  prm.p = p;
  prm.q_vec = aligned16(p.q, p.q_stride, p.d);
  prm.k_vec = aligned16(p.k, p.k_stride, p.d);
  prm.v_vec = aligned16(p.v, p.v_stride, p.d_v);
  const size_t smem = static_cast<size_t>(kBlockM + 2 * kBlockN) * (kD + 8) * sizeof(uint16_t);
  static bool attribute_set = false;  // per instantiation; setting it twice is harmless
  if (!attribute_set) {
    cudaFuncSetAttribute(attention_mma_kernel<T, kD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem));
    attribute_set = true;
  }
  dim3 grid(static_cast<unsigned>((p.s_q + kBlockM - 1) / kBlockM),
            static_cast<unsigned>(p.heads), static_cast<unsigned>(p.batch));
  attention_mma_kernel<T, kD><<<grid, kThreads, smem, s>>>(prm);
}

template <class T, class A>
void launch_rows(const AttentionProblem& p, cudaStream_t s) {
  const size_t smem = static_cast<size_t>(p.d + kRowThreads) * sizeof(A);
  if (smem > 48 * 1024)
    cudaFuncSetAttribute(attention_row_kernel<T, A>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem));
  dim3 grid(static_cast<unsigned>(p.s_q), static_cast<unsigned>(p.heads),
            static_cast<unsigned>(p.batch));
  attention_row_kernel<T, A><<<grid, kRowThreads, smem, s>>>(p);
}

}  // namespace

bool attention_supported(DType dtype, DType mask_dtype) {
  bool data = dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF32 ||
              dtype == DType::kF64;
  bool mask = mask_dtype == DType::kBool || mask_dtype == DType::kF16 ||
              mask_dtype == DType::kBF16 || mask_dtype == DType::kF32 ||
              mask_dtype == DType::kF64;
  return data && mask;
}

const char* attention_kernel_name(const AttentionProblem& p) {
  switch (mma_head_size(p)) {
    case 32: return "mma32";
    case 64: return "mma64";
    case 128: return "mma128";
    default: return "rowwise";
  }
}

void launch_attention(const AttentionProblem& p, void* stream) {
  if (p.batch * p.heads * p.s_q * p.d_v == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (p.s_kv == 0) {  // no key to attend to: every row is fully masked
    cudaMemsetAsync(p.y, 0, static_cast<size_t>(p.batch * p.heads * p.s_q * p.d_v) *
                                (p.dtype == DType::kF64 ? 8 : p.dtype == DType::kF32 ? 4 : 2),
                    s);
    return;
  }
  const int kd = mma_head_size(p);
  if (kd) {
    const bool half = p.dtype == DType::kF16;
    if (kd == 32) half ? launch_mma<__half, 32>(p, s) : launch_mma<__nv_bfloat16, 32>(p, s);
    if (kd == 64) half ? launch_mma<__half, 64>(p, s) : launch_mma<__nv_bfloat16, 64>(p, s);
    if (kd == 128) half ? launch_mma<__half, 128>(p, s) : launch_mma<__nv_bfloat16, 128>(p, s);
    return;
  }
  switch (p.dtype) {
    case DType::kF16: launch_rows<__half, float>(p, s); break;
    case DType::kBF16: launch_rows<__nv_bfloat16, float>(p, s); break;
    case DType::kF32: launch_rows<float, float>(p, s); break;
    case DType::kF64: launch_rows<double, double>(p, s); break;
    default: break;
  }
}

}  // namespace kiln::cuda::rk
