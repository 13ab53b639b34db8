// LtGemm (gemm.h). kiln's matrices are row-major and cuBLASLt's column-major: a row-major [r, c]
// buffer with row stride ld is, read column-major, the [c, r] transpose with leading dimension ld.
// So C = A · op(B) is computed as Cᵀ = op(B)ᵀ · Aᵀ: cuBLASLt's A is kiln's B (transposed when
// trans_b), its B is kiln's A (untransposed), its D (n x m, leading dim ldc) is C.
#include "backends/cuda/cublaslt/gemm.h"

#include <algorithm>

#include "backends/cuda/cuda_common.h"

namespace kiln::cuda {
namespace {

constexpr uint32_t kMaxAlignment = 16;  // every fast kernel is content with 16-byte operands

template <class T, cublasStatus_t (*Destroy)(T)>
class LtHandle {
 public:
  LtHandle() = default;
  ~LtHandle() {
    if (p_) Destroy(p_);
  }
  LtHandle(const LtHandle&) = delete;
  LtHandle& operator=(const LtHandle&) = delete;
  T* out() { return &p_; }
  T get() const { return p_; }

 private:
  T p_ = nullptr;
};

// Largest power of two, at most kMaxAlignment, dividing the address and every byte offset a
// row or batch entry adds to it.
uint32_t alignment_of(const void* p, uint64_t bits) {
  bits |= reinterpret_cast<uintptr_t>(p) | kMaxAlignment;
  return static_cast<uint32_t>(bits & (~bits + 1));
}

uint64_t offset_bits(int64_t ld, int64_t stride, int64_t batch, size_t es) {
  uint64_t bits = static_cast<uint64_t>(ld) * es;
  if (batch > 1) bits |= static_cast<uint64_t>(stride) * es;
  return bits;
}

void make_layout(cublasLtMatrixLayout_t* l, cudaDataType_t t, int64_t rows, int64_t cols,
                 int64_t ld, int64_t batch, int64_t stride) {
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(l, t, static_cast<uint64_t>(rows),
                                               static_cast<uint64_t>(cols),
                                               std::max<int64_t>(ld, 1)));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                       &count, sizeof(count)));
    KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
        *l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
}

}  // namespace

struct LtGemm::Plan {
  LtHandle<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy> op;
  // cuBLASLt's A (kiln's B), B (kiln's A) and C = D (kiln's C).
  LtHandle<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy> lt_a, lt_b, lt_d;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  bool dbl = false, i8 = false;
};

LtGemm::LtGemm() = default;
LtGemm::~LtGemm() = default;

void LtGemm::run(cublasLtHandle_t handle, const GemmSpec& s, const void* a, const void* b,
                 void* c, double alpha, double beta, void* workspace, size_t workspace_bytes,
                 cudaStream_t stream) {
  if (s.m == 0 || s.n == 0 || s.batch == 0) return;
  KILN_CHECK(s.k > 0, "LtGemm: an empty inner dimension");
  KILN_CHECK(s.dtype == DataType::kFloat || s.dtype == DataType::kDouble ||
                 (s.dtype == DataType::kInt8 && s.trans_b),
             "LtGemm: dtype ", dtype_name(s.dtype));
  const bool dbl = s.dtype == DataType::kDouble, i8 = s.dtype == DataType::kInt8;
  const size_t es = dbl ? 8 : i8 ? 1 : 4, es_c = dbl ? 8 : 4;
  const uint32_t al_a = alignment_of(a, offset_bits(s.lda, s.stride_a, s.batch, es));
  const uint32_t al_b = alignment_of(b, offset_bits(s.ldb, s.stride_b, s.batch, es));
  const uint32_t al_c = alignment_of(c, offset_bits(s.ldc, s.stride_c, s.batch, es_c));
  std::vector<int64_t> key{static_cast<int64_t>(s.dtype), s.m, s.n, s.k, s.trans_b ? 1 : 0,
                           s.lda, s.ldb, s.ldc, s.batch, s.stride_a, s.stride_b, s.stride_c,
                           al_a, al_b, al_c, static_cast<int64_t>(workspace_bytes)};
  const Plan* plan = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plans_.find(key);
    if (it == plans_.end()) {
      auto p = std::make_unique<Plan>();
      p->dbl = dbl;
      p->i8 = i8;
      const cudaDataType_t t = dbl ? CUDA_R_64F : i8 ? CUDA_R_8I : CUDA_R_32F;
      const cudaDataType_t tc = dbl ? CUDA_R_64F : i8 ? CUDA_R_32I : CUDA_R_32F;
      KILN_CUBLAS_CHECK(cublasLtMatmulDescCreate(
          p->op.out(), dbl ? CUBLAS_COMPUTE_64F : i8 ? CUBLAS_COMPUTE_32I : CUBLAS_COMPUTE_32F, tc));
      const cublasOperation_t op_a = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
      const cublasOperation_t op_b = CUBLAS_OP_N;
      KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op.get(), CUBLASLT_MATMUL_DESC_TRANSA,
                                                       &op_a, sizeof(op_a)));
      KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op.get(), CUBLASLT_MATMUL_DESC_TRANSB,
                                                       &op_b, sizeof(op_b)));
      // Stored shapes, column-major: kiln's B is [k, n] (trans_b) or [n, k]; kiln's A [k, m];
      // C [n, m].
      if (s.trans_b)
        make_layout(p->lt_a.out(), t, s.k, s.n, s.ldb, s.batch, s.stride_b);
      else
        make_layout(p->lt_a.out(), t, s.n, s.k, s.ldb, s.batch, s.stride_b);
      make_layout(p->lt_b.out(), t, s.k, s.m, s.lda, s.batch, s.stride_a);
      make_layout(p->lt_d.out(), tc, s.n, s.m, s.ldc, s.batch, s.stride_c);

      LtHandle<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy> pref;
      KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(pref.out()));
      const uint64_t limit = workspace_bytes;
      KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
          pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &limit, sizeof(limit)));
      const uint32_t aligns[4] = {al_b, al_a, al_c, al_c};
      const cublasLtMatmulPreferenceAttributes_t names[4] = {
          CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
          CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
      for (int i = 0; i < 4; ++i)
        KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.get(), names[i], &aligns[i],
                                                               sizeof(uint32_t)));
      cublasLtMatmulHeuristicResult_t result{};
      int got = 0;
      const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
          handle, p->op.get(), p->lt_a.get(), p->lt_b.get(), p->lt_d.get(), p->lt_d.get(),
          pref.get(), 1, &result, &got);
      KILN_EXPECT(st == CUBLAS_STATUS_SUCCESS && got > 0 && result.state == CUBLAS_STATUS_SUCCESS &&
                      result.workspaceSize <= workspace_bytes,
                  StatusCode::kUnsupported, "cuBLASLt has no ", dtype_name(s.dtype),
                  " algorithm for a [", s.m, ", ", s.k, "] x [", s.k, ", ", s.n, "] product (batch ",
                  s.batch, ")");
      p->algo = result.algo;
      p->workspace = result.workspaceSize;
      it = plans_.emplace(std::move(key), std::move(p)).first;
    }
    plan = it->second.get();  // plans are never erased: the pointer outlives the lock
  }
  const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
  const int32_t alpha_i = static_cast<int32_t>(alpha), beta_i = static_cast<int32_t>(beta);
  const void* pa = plan->dbl  ? static_cast<const void*>(&alpha)
                   : plan->i8 ? static_cast<const void*>(&alpha_i)
                              : &alpha_f;
  const void* pb = plan->dbl  ? static_cast<const void*>(&beta)
                   : plan->i8 ? static_cast<const void*>(&beta_i)
                              : &beta_f;
  KILN_CUBLAS_CHECK(cublasLtMatmul(handle, plan->op.get(), pa, b, plan->lt_a.get(), a,
                                   plan->lt_b.get(), pb, c, plan->lt_d.get(), c, plan->lt_d.get(),
                                   &plan->algo, plan->workspace ? workspace : nullptr,
                                   plan->workspace, stream));
}

}  // namespace kiln::cuda
