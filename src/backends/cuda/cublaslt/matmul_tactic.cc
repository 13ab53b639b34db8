// cuda.cublaslt_matmul: MatMul (numpy semantics: broadcast batch dims, 1-D operands, transposes,
// alpha) through cuBLASLt, for float32, float16, bfloat16 and float64.
//
// - Layout: see matmul_mapping.h (row-major kiln tensors as column-major transposes; batches as
//   one strided-batched call, an outer loop of calls, or folded into M).
// - Precision: float32 accumulates in float32 (CUBLAS_COMPUTE_32F: no TF32) unless the node's
//   allow_tf32 is set (the precision pass sets it); float16 / bfloat16 accumulate in float32;
//   float64 in float64.
// - Algorithm: per concrete shape (and operand alignment) on first use. In Kernel::workspace_size
//   (which the runtime calls before running a new shape) cuBLASLt's heuristics propose up to 8
//   algorithms within a 32 MiB workspace, and the first few are timed on the GPU on temporary
//   buffers; the fastest is kept. A shape or alignment first seen by enqueue() takes the
//   heuristics' first answer within the launch's workspace (no timing, no synchronisation).
// - cuBLASLt assumes 256-byte aligned operands unless told otherwise: the alignment each call's
//   pointers really have (at most 16 bytes is asked for, which every fast kernel is happy with) is
//   part of the plan's key.
// - Integer MatMul is left to other tactics (cuBLASLt's int8 path wants int32 outputs).
#include <algorithm>
#include <map>
#include <mutex>
#include <optional>

#include "backends/cuda/cublaslt/matmul_mapping.h"
#include "backends/cuda/cuda_common.h"
#include "ops/mat_mul.h"

namespace kiln {
namespace cuda {
namespace {

constexpr size_t kMaxWorkspace = size_t(32) << 20;
constexpr int kHeuristicCount = 8;
constexpr int kTimedCount = 4;
constexpr int kTimedRuns = 5;
constexpr uint32_t kMaxAlignment = 16;

bool lt_dtype_ok(DataType t) {
  return t == DataType::kFloat || t == DataType::kFloat16 || t == DataType::kBFloat16 ||
         t == DataType::kDouble;
}

cudaDataType_t cuda_type(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return CUDA_R_16F;
    case DataType::kBFloat16:
      return CUDA_R_16BF;
    case DataType::kDouble:
      return CUDA_R_64F;
    default:
      return CUDA_R_32F;
  }
}

template <class T, cublasStatus_t (*Destroy)(T)>
class LtObject {
 public:
  LtObject() = default;
  ~LtObject() {
    if (p_) Destroy(p_);
  }
  LtObject(const LtObject&) = delete;
  LtObject& operator=(const LtObject&) = delete;
  T* out() { return &p_; }
  T get() const { return p_; }

 private:
  T p_ = nullptr;
};
using MatmulDesc = LtObject<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>;
using MatrixLayout = LtObject<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>;
using Preference = LtObject<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>;

// The cuBLASLt handle and stream algorithm timing runs on (per device, kept for the process's
// life: destroying library handles from static destructors races with the runtime's teardown).
struct LtTuning {
  std::unique_lock<std::mutex> lock;
  cublasLtHandle_t handle = nullptr;
  cudaStream_t stream = nullptr;
};
LtTuning lt_tuning() {
  static std::mutex mu;
  static auto* handles = new std::map<int, std::pair<cublasLtHandle_t, cudaStream_t>>();
  LtTuning t;
  t.lock = std::unique_lock<std::mutex>(mu);
  int dev = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&dev));
  auto it = handles->find(dev);
  if (it == handles->end()) {
    cublasLtHandle_t h = nullptr;
    cudaStream_t s = nullptr;
    KILN_CUBLAS_CHECK(cublasLtCreate(&h));
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    it = handles->emplace(dev, std::make_pair(h, s)).first;
  }
  t.handle = it->second.first;
  t.stream = it->second.second;
  return t;
}

struct Alignment {
  uint32_t a = kMaxAlignment, b = kMaxAlignment, y = kMaxAlignment;  // kiln's A, B, Y
};

struct LtPlan {
  const MatMulMapping* map = nullptr;  // the shape's, owned by its ShapeEntry
  MatmulDesc op;
  MatrixLayout lt_a, lt_b, lt_d;  // cuBLASLt's A (kiln's B), B (kiln's A), C = D (Y)
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
};

// Per concrete shape: the mapping, the bits its call offsets add to each operand's address (for
// the alignment), and a plan per alignment seen.
struct ShapeEntry {
  MatMulMapping map;
  uint64_t a_bits = 0, b_bits = 0, y_bits = 0;
  std::map<std::vector<uint32_t>, std::unique_ptr<LtPlan>> plans;
};

uint64_t offset_bits(const std::vector<int64_t>& offsets, size_t es) {
  uint64_t bits = 0;
  for (int64_t o : offsets) bits |= static_cast<uint64_t>(o) * es;
  return bits;
}

// Largest power of two, at most kMaxAlignment, dividing the address and the offset bits.
uint32_t alignment_of(const void* p, uint64_t bits) {
  bits |= reinterpret_cast<uintptr_t>(p) | kMaxAlignment;
  return static_cast<uint32_t>(bits & (~bits + 1));
}

void make_layout(MatrixLayout& l, cudaDataType_t t, int64_t rows, int64_t cols, int64_t batch,
                 int64_t stride) {
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(l.out(), t, static_cast<uint64_t>(rows),
                                               static_cast<uint64_t>(cols),
                                               std::max<int64_t>(rows, 1)));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l.get(), CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                       &count, sizeof(count)));
    KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
        l.get(), CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
}

void describe(LtPlan& p, DataType dt, bool tf32) {
  const MatMulMapping& m = *p.map;
  const cudaDataType_t t = cuda_type(dt);
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  cudaDataType_t scale = CUDA_R_32F;
  if (dt == DataType::kDouble) {
    compute = CUBLAS_COMPUTE_64F;
    scale = CUDA_R_64F;
  } else if (dt == DataType::kFloat && tf32) {
    compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  }
  KILN_CUBLAS_CHECK(cublasLtMatmulDescCreate(p.op.out(), compute, scale));
  const cublasOperation_t op_a = m.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = m.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.op.get(), CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.op.get(), CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  make_layout(p.lt_a, t, m.lt_a_rows(), m.lt_a_cols(), m.batch, m.stride_b);
  make_layout(p.lt_b, t, m.lt_b_rows(), m.lt_b_cols(), m.batch, m.stride_a);
  make_layout(p.lt_d, t, m.n, m.m, m.batch, m.stride_y);
}

// Up to kHeuristicCount proposals, best first.
std::vector<cublasLtMatmulHeuristicResult_t> heuristics(cublasLtHandle_t h, const LtPlan& p,
                                                        const Alignment& al, size_t limit) {
  Preference pref;
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(pref.out()));
  const uint64_t ws = limit;
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  // cuBLASLt's A is kiln's B, its B kiln's A.
  const uint32_t aligns[4] = {al.b, al.a, al.y, al.y};
  const cublasLtMatmulPreferenceAttributes_t names[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i)
    KILN_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref.get(), names[i], &aligns[i], sizeof(uint32_t)));
  std::vector<cublasLtMatmulHeuristicResult_t> r(kHeuristicCount);
  int got = 0;
  cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(h, p.op.get(), p.lt_a.get(), p.lt_b.get(), p.lt_d.get(),
                                     p.lt_d.get(), pref.get(), kHeuristicCount, r.data(), &got);
  if (s != CUBLAS_STATUS_SUCCESS) got = 0;
  r.resize(std::max(got, 0));
  r.erase(std::remove_if(r.begin(), r.end(),
                         [&](const cublasLtMatmulHeuristicResult_t& x) {
                           return x.state != CUBLAS_STATUS_SUCCESS || x.workspaceSize > limit;
                         }),
          r.end());
  return r;
}

class LtMatMulKernel : public Kernel {
 public:
  explicit LtMatMulKernel(const Node& n) : attrs_(n.a<MatMulAttrs>()), dtype_(n.inputs[0]->dtype) {}

  size_t workspace_size(const LaunchArgs& a) const override {
    if (a.out(0).numel() == 0) return 0;
    // No pointers here: the arena and cudaMalloc give 256-byte alignment.
    return plan_for(a, true).workspace;
  }

  void enqueue(const LaunchArgs& a) override {
    DeviceTensor& y = a.out(0);
    if (y.numel() == 0) return;
    const LtPlan& p = plan_for(a, false);
    const MatMulMapping& m = *p.map;
    cudaStream_t s = stream_of(a);
    if (m.empty) return;
    if (m.zero) {
      KILN_CUDA_CHECK(cudaMemsetAsync(y.data, 0, y.nbytes(), s));
      return;
    }
    KILN_EXPECT(a.workspace_bytes >= p.workspace, StatusCode::kInternal,
                "cuda.cublaslt_matmul: workspace of ", a.workspace_bytes, " bytes, ", p.workspace,
                " needed");
    cublasLtHandle_t h = resources_of(a).cublaslt();
    run(h, p, a.in(0).data, a.in(1).data, y.data, a.workspace, s, -1, true);
  }

 private:
  // The plan's calls (or only call `only` when >= 0), enqueued on `s`. With `check`, a failure
  // throws; without, it is returned.
  cublasStatus_t run(cublasLtHandle_t h, const LtPlan& p, const void* a, const void* b, void* y,
                     void* ws, cudaStream_t s, int64_t only, bool check) const {
    const MatMulMapping& m = *p.map;
    const size_t es = dtype_size(dtype_);
    const float alpha_f = static_cast<float>(attrs_.alpha), beta_f = 0.f;
    const double alpha_d = attrs_.alpha, beta_d = 0.0;
    const bool dbl = dtype_ == DataType::kDouble;
    const void* alpha = dbl ? static_cast<const void*>(&alpha_d) : &alpha_f;
    const void* beta = dbl ? static_cast<const void*>(&beta_d) : &beta_f;
    const char* ap = static_cast<const char*>(a);
    const char* bp = static_cast<const char*>(b);
    char* yp = static_cast<char*>(y);
    const int64_t calls = static_cast<int64_t>(m.y_offset.size());
    const int64_t first = only >= 0 ? only : 0, last = only >= 0 ? only + 1 : calls;
    for (int64_t c = first; c < last; ++c) {
      char* yc = yp + m.y_offset[c] * es;
      cublasStatus_t st = cublasLtMatmul(
          h, p.op.get(), alpha, bp + m.b_offset[c] * es, p.lt_a.get(), ap + m.a_offset[c] * es,
          p.lt_b.get(), beta, yc, p.lt_d.get(), yc, p.lt_d.get(), &p.algo, ws, p.workspace, s);
      if (st != CUBLAS_STATUS_SUCCESS) {
        if (check) KILN_CUBLAS_CHECK(st);
        return st;
      }
    }
    return CUBLAS_STATUS_SUCCESS;
  }

  // The plan for the launch's shapes and operand alignment, made on first use: timed when
  // `tune`, else the heuristics' first answer within the launch's workspace.
  const LtPlan& plan_for(const LaunchArgs& a, bool tune) const {
    std::vector<int64_t> dims_key;
    const Dims* parts[] = {&a.in(0).dims, &a.in(1).dims, &a.out(0).dims};
    for (const Dims* d : parts) {
      dims_key.insert(dims_key.end(), d->begin(), d->end());
      dims_key.push_back(-1);
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto sit = shapes_.find(dims_key);
    if (sit == shapes_.end()) {
      auto e = std::make_unique<ShapeEntry>();
      e->map = map_matmul(attrs_, a.in(0).dims, a.in(1).dims, a.out(0).dims);
      KILN_EXPECT(e->map.ok, StatusCode::kUnsupported, "cuda.cublaslt_matmul cannot run A ",
                  dims_to_string(a.in(0).dims), " B ", dims_to_string(a.in(1).dims), ": ",
                  e->map.why);
      const size_t es = dtype_size(dtype_);
      e->a_bits = offset_bits(e->map.a_offset, es);
      e->b_bits = offset_bits(e->map.b_offset, es);
      e->y_bits = offset_bits(e->map.y_offset, es);
      sit = shapes_.emplace(std::move(dims_key), std::move(e)).first;
    }
    ShapeEntry& e = *sit->second;
    Alignment al;
    al.a = alignment_of(a.in(0).data, e.a_bits);
    al.b = alignment_of(a.in(1).data, e.b_bits);
    al.y = alignment_of(a.out(0).data, e.y_bits);
    std::vector<uint32_t> key{al.a, al.b, al.y};
    auto it = e.plans.find(key);
    if (it != e.plans.end()) return *it->second;
    auto p = std::make_unique<LtPlan>();
    p->map = &e.map;
    if (!e.map.empty && !e.map.zero) {
      describe(*p, dtype_, attrs_.allow_tf32);
      const size_t limit = tune ? kMaxWorkspace : std::min(kMaxWorkspace, a.workspace_bytes);
      std::vector<cublasLtMatmulHeuristicResult_t> cands;
      {
        LtTuning t = lt_tuning();
        cands = heuristics(t.handle, *p, al, limit);
      }
      KILN_EXPECT(!cands.empty(), StatusCode::kUnsupported, "cuBLASLt has no algorithm for A ",
                  dims_to_string(a.in(0).dims), " B ", dims_to_string(a.in(1).dims), " (",
                  dtype_name(dtype_), ")");
      size_t best = 0;
      if (tune && cands.size() > 1) {
        try {
          best = fastest(*p, a, cands);
        } catch (const Error&) {
          best = 0;  // no memory to time candidates: trust the heuristics
        }
      }
      p->algo = cands[best].algo;
      p->workspace = cands[best].workspaceSize;
    }
    LtPlan& ref = *p;
    e.plans.emplace(std::move(key), std::move(p));
    return ref;
  }

  // Times the first kTimedCount candidates (one call of the plan each, kTimedRuns times after a
  // warm-up) on zero-filled temporary buffers; returns the index of the fastest.
  size_t fastest(LtPlan& p, const LaunchArgs& a,
                 const std::vector<cublasLtMatmulHeuristicResult_t>& cands) const {
    auto up = [](size_t n) { return (n + 255) / 256 * 256; };
    const size_t ab = up(a.in(0).nbytes()), bb = up(a.in(1).nbytes()), yb = up(a.out(0).nbytes());
    size_t ws_max = 0;
    for (const auto& c : cands) ws_max = std::max(ws_max, c.workspaceSize);
    DeviceBuffer buf(ab + bb + yb + ws_max);
    char* base = static_cast<char*>(buf.get());
    char* ws = base + ab + bb + yb;
    LtTuning t = lt_tuning();
    KILN_CUDA_CHECK(cudaMemsetAsync(base, 0, ab + bb + yb, t.stream));
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    KILN_CUDA_CHECK(cudaEventCreate(&e0));
    if (cudaEventCreate(&e1) != cudaSuccess) {
      cudaEventDestroy(e0);
      fail(StatusCode::kDeviceError, "cannot create a CUDA event");
    }
    size_t best = 0;
    float best_ms = -1.f;
    const size_t n = std::min<size_t>(cands.size(), kTimedCount);
    for (size_t i = 0; i < n; ++i) {
      p.algo = cands[i].algo;
      p.workspace = cands[i].workspaceSize;
      auto once = [&] {
        return run(t.handle, p, base, base + ab, base + ab + bb, ws, t.stream, 0, false) ==
               CUBLAS_STATUS_SUCCESS;
      };
      if (!once()) continue;  // warm-up; a candidate that fails to launch is skipped
      bool ok = cudaEventRecord(e0, t.stream) == cudaSuccess;
      for (int r = 0; ok && r < kTimedRuns; ++r) ok = once();
      ok = ok && cudaEventRecord(e1, t.stream) == cudaSuccess &&
           cudaEventSynchronize(e1) == cudaSuccess;
      float ms = 0.f;
      ok = ok && cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess;
      if (ok && (best_ms < 0.f || ms < best_ms)) {
        best_ms = ms;
        best = i;
      }
    }
    cudaStreamSynchronize(t.stream);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return best;
  }

  MatMulAttrs attrs_;
  DataType dtype_;
  mutable std::mutex mu_;
  mutable std::map<std::vector<int64_t>, std::unique_ptr<ShapeEntry>> shapes_;
};

class LtMatMulTactic : public Tactic {
 public:
  std::string_view id() const override { return "cuda.cublaslt_matmul"; }
  std::string_view op() const override { return "MatMul"; }

  Status supports(const Node& n) const override {
    if (n.op() != "MatMul") return unsupported("not a MatMul");
    const Value* a = n.in(0);
    const Value* b = n.in(1);
    if (!a || !b || n.outputs.size() != 1) return unsupported("needs A, B and one output");
    if (!lt_dtype_ok(a->dtype))
      return unsupported(cat(dtype_name(a->dtype), " (takes float32, float16, bfloat16, float64)"));
    if (b->dtype != a->dtype) return unsupported("operands of mixed types");
    const Value* y = n.outputs[0];
    if (!(a->shape.fully_known() && b->shape.fully_known() && y->shape.fully_known()))
      return Status::ok();
    MatMulMapping m = map_matmul(n.a<MatMulAttrs>(), a->shape.concrete(), b->shape.concrete(),
                                 y->shape.concrete());
    if (!m.ok) return unsupported(m.why);
    if (m.empty || m.zero) return Status::ok();
    // Ask the heuristics now, so that a shape cuBLASLt lacks falls back at build time. Without a
    // usable device the question is left to run time.
    std::optional<LtTuning> t;
    try {
      t.emplace(lt_tuning());
    } catch (const Error&) {
      return Status::ok();
    }
    try {
      LtPlan p;
      p.map = &m;
      describe(p, a->dtype, n.a<MatMulAttrs>().allow_tf32);
      if (heuristics(t->handle, p, Alignment{}, kMaxWorkspace).empty())
        return unsupported("cuBLASLt has no algorithm for these shapes");
    } catch (const Error& e) {
      return unsupported(cat("cuBLASLt refuses this product: ", e.message()));
    }
    return Status::ok();
  }

  std::unique_ptr<Kernel> instantiate(const Node& n, std::string_view) const override {
    return std::make_unique<LtMatMulKernel>(n);
  }
};

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_cublaslt_matmul() {
  static const cuda::LtMatMulTactic t;
  return t;
}

}  // namespace kiln
