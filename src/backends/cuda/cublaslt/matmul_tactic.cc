// cuda.cublaslt_matmul: MatMul (numpy semantics: broadcast batch dims, 1-D operands, transposes,
// alpha) through cuBLASLt, for float32, float16, bfloat16 and float64.
//
// - Layout: see matmul_mapping.h (row-major kiln tensors as column-major transposes; batches as
//   one strided-batched call, an outer loop of calls, or folded into M).
// - Precision: float32 accumulates in float32 (CUBLAS_COMPUTE_32F: no TF32) unless the node's
//   allow_tf32 is set (the precision pass sets it); float16 / bfloat16 accumulate in float32;
//   float64 in float64.
// - Algorithm: chosen at build time by the autotuner (builder/autotuner.h) among cuBLASLt's
//   heuristic proposals (candidates(): up to 8 within the workspace bound), each timed as the
//   whole step. The chosen cublasLtMatmulAlgo_t (an opaque struct that cuBLASLt documents as
//   serializable for the same library version) and the workspace bound
//   (BuildOptions::max_workspace_mib) are the step's state; the runtime never times. At other
//   shapes or operand alignments (an optimization profile's other shapes, views at odd offsets)
//   the heuristics' first answer within the bound is used.
// - cuBLASLt assumes 256-byte aligned operands unless told otherwise: the alignment each call's
//   pointers really have (at most 16 bytes is asked for, which every fast kernel is happy with) is
//   part of the plan's key.
// - Integer MatMul is left to other tactics (cuBLASLt's int8 path wants int32 outputs).
// - The fused epilogue Y = epilogue(act(alpha * A @ B + bias + Z)) (ops/mat_mul.h) maps onto
//   cuBLASLt's D = act(alpha * A @ B + beta * C + bias) (NVIDIA's documentation of cublasLt /
//   nvmath: the epilogue function applies to alpha*A@B + beta*C, the bias vector is added before
//   it): Z is C with beta = 1, bias is CUBLASLT_EPILOGUE_BIAS (its length must be D's rows, which
//   in kiln's row-major mapping are Y's columns: one bias value per output column, as kiln's
//   bias is), relu is CUBLASLT_EPILOGUE_RELU(_BIAS) and gelu_tanh CUBLASLT_EPILOGUE_GELU(_BIAS)
//   (cuBLASLt's GELU is the tanh approximation, so it never stands in for gelu_erf). gelu_erf and
//   the epilogue program run after the product, in the same step, as one NVRTC-compiled kernel in
//   place over Y (codegen/epilogue_program.h) compiled at prepare(). cuBLASLt's ReLU turns NaN
//   into 0 where the reference keeps NaN: results differ only where the product is already NaN.
//   float64 products take a residual only (cuBLASLt's epilogues are not used for them), and the
//   bias must be a constant (the kernel keeps a device copy whose address the plans hold).
#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include "backends/cuda/codegen/epilogue_program.h"
#include "backends/cuda/cublaslt/matmul_mapping.h"
#include "backends/cuda/cuda_common.h"
#include "common/log.h"
#include "ops/epilogue.h"
#include "ops/mat_mul.h"

namespace kiln {
namespace cuda {
namespace {

constexpr size_t kMaxWorkspace = size_t(32) << 20;
constexpr int kHeuristicCount = 8;
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
  // kiln's A, B, Y and Z (cuBLASLt's C; Y's when there is no residual).
  uint32_t a = kMaxAlignment, b = kMaxAlignment, y = kMaxAlignment, z = kMaxAlignment;
};

// What cuBLASLt's epilogue does for a node.
struct LtEpilogue {
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;  // device bias of Y's type, when epi includes BIAS
  bool residual = false;       // C = Z, beta = 1 (else C = D with beta = 0)
};

struct LtPlan {
  const MatMulMapping* map = nullptr;  // the shape's, owned by its ShapeEntry
  MatmulDesc op;
  MatrixLayout lt_a, lt_b, lt_d;  // cuBLASLt's A (kiln's B), B (kiln's A), C and D (Y, Z)
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

// The native part of a node's epilogue: the activation cuBLASLt computes (relu, gelu_tanh) with
// the bias when there is one. What it cannot compute (gelu_erf, the epilogue program) is in
// kernel_program().
cublasLtEpilogue_t native_epilogue(const MatMulAttrs& a, bool bias) {
  if (a.activation == "relu") return bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
  if (a.activation == "gelu_tanh") return bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
  return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
}

// The program that runs in place over Y after the product, if any: gelu_erf, then the node's
// epilogue program.
std::optional<expr::Program> kernel_program(const MatMulAttrs& a, DataType t) {
  std::optional<expr::Program> p;
  if (a.activation == "gelu_erf") p = activation_program(a.activation, t);
  if (has_epilogue_program(a.epilogue)) p = p ? compose_programs(*p, a.epilogue) : a.epilogue;
  return p;
}

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

// The alignment a product's operands have when its buffers are 256-byte aligned (the arena's
// and cudaMalloc's): what its calls' offsets leave of it. Candidates are proposed and the choice
// is kept for this alignment.
Alignment natural_alignment(const MatMulMapping& m, DataType t) {
  const size_t es = dtype_size(t);
  Alignment al;
  al.a = alignment_of(nullptr, offset_bits(m.a_offset, es));
  al.b = alignment_of(nullptr, offset_bits(m.b_offset, es));
  al.y = alignment_of(nullptr, offset_bits(m.y_offset, es));
  al.z = al.y;
  return al;
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

void describe(LtPlan& p, DataType dt, bool tf32, const LtEpilogue& e) {
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
  if (e.epi != CUBLASLT_EPILOGUE_DEFAULT) {
    const uint32_t epi = static_cast<uint32_t>(e.epi);
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op.get(), CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                     &epi, sizeof(epi)));
  }
  if (e.bias) {
    // One bias for every batch entry and call (BIAS_BATCH_STRIDE stays 0).
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        p.op.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, &e.bias, sizeof(e.bias)));
  }
  make_layout(p.lt_a, t, m.lt_a_rows(), m.lt_a_cols(), m.batch, m.stride_b);
  make_layout(p.lt_b, t, m.lt_b_rows(), m.lt_b_cols(), m.batch, m.stride_a);
  make_layout(p.lt_d, t, m.n, m.m, m.batch, m.stride_y);
}

// Up to kHeuristicCount proposals, best first.
std::vector<cublasLtMatmulHeuristicResult_t> heuristics(cublasLtHandle_t h, const LtPlan& p,
                                                        const Alignment& al, size_t limit,
                                                        bool out_of_place) {
  Preference pref;
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(pref.out()));
  const uint64_t ws = limit;
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  // cuBLASLt's A is kiln's B, its B kiln's A.
  const uint32_t aligns[4] = {al.b, al.a, al.z, al.y};
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
  // A residual is C != D: keep the algorithms that can write D elsewhere than C.
  auto in_place_only = [&](const cublasLtMatmulAlgo_t& a) {
    if (!out_of_place) return false;
    int32_t cap = 0;
    size_t written = 0;
    if (cublasLtMatmulAlgoCapGetAttribute(&a, CUBLASLT_ALGO_CAP_OUT_OF_PLACE_RESULT_SUPPORT, &cap,
                                          sizeof(cap), &written) != CUBLAS_STATUS_SUCCESS)
      return true;
    return cap == 0;
  };
  r.erase(std::remove_if(r.begin(), r.end(),
                         [&](const cublasLtMatmulHeuristicResult_t& x) {
                           return x.state != CUBLAS_STATUS_SUCCESS || x.workspaceSize > limit ||
                                  in_place_only(x.algo);
                         }),
          r.end());
  return r;
}

// One cuBLASLt algorithm, as the autotuner's candidates and a plan's steps name it:
// "lt HEX WORKSPACE @ A;B;Y": the cublasLtMatmulAlgo_t's bytes in hex, the workspace it needs,
// and the dims it was tuned at.
struct LtChoice {
  bool set = false;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  std::string dims;

  std::string str() const {
    static const char* hex = "0123456789abcdef";
    std::string h;
    const auto* b = reinterpret_cast<const unsigned char*>(&algo);
    for (size_t i = 0; i < sizeof(algo); ++i) {
      h += hex[b[i] >> 4];
      h += hex[b[i] & 15];
    }
    return cat("lt ", h, " ", workspace, " @ ", dims);
  }
  static LtChoice parse(std::string_view s) {
    LtChoice c;
    if (s.empty()) return c;
    const size_t at = s.find(" @ ");
    std::istringstream in{std::string(s.substr(0, at == std::string_view::npos ? 0 : at))};
    std::string kind, h;
    in >> kind >> h >> c.workspace;
    KILN_EXPECT(at != std::string_view::npos && kind == "lt" && !in.fail() &&
                    h.size() == 2 * sizeof(c.algo),
                StatusCode::kCorruptPlan, "cuda.cublaslt_matmul: malformed choice '", s, "'");
    auto nibble = [&](char ch) -> int {
      if (ch >= '0' && ch <= '9') return ch - '0';
      if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
      fail(StatusCode::kCorruptPlan, "cuda.cublaslt_matmul: malformed choice '", s, "'");
    };
    auto* b = reinterpret_cast<unsigned char*>(&c.algo);
    for (size_t i = 0; i < sizeof(c.algo); ++i)
      b[i] = static_cast<unsigned char>(nibble(h[2 * i]) * 16 + nibble(h[2 * i + 1]));
    c.dims = std::string(s.substr(at + 3));
    c.set = true;
    return c;
  }
};

std::string dims_key(const Dims& a, const Dims& b, const Dims& y) {
  return cat(dims_to_string(a), ";", dims_to_string(b), ";", dims_to_string(y));
}

// A step's state: "cublaslt_matmul LIMIT\n" (the workspace bound, bytes), the choice's line,
// then the compiled epilogue program (possibly empty).
std::string make_state(size_t limit, std::string_view choice, const std::string& program) {
  return cat("cublaslt_matmul ", limit, "\n", choice, "\n", program);
}
struct LtState {
  size_t limit = kMaxWorkspace;
  LtChoice choice;
  std::string_view program;
};
LtState read_state(std::string_view s) {
  LtState st;
  const size_t l1 = s.find('\n');
  const size_t l2 = l1 == std::string_view::npos ? l1 : s.find('\n', l1 + 1);
  constexpr std::string_view kTag = "cublaslt_matmul ";
  KILN_EXPECT(s.substr(0, kTag.size()) == kTag && l2 != std::string_view::npos,
              StatusCode::kCorruptPlan,
              "cuda.cublaslt_matmul: the step's state is not this tactic's");
  std::istringstream in{std::string(s.substr(kTag.size(), l1 - kTag.size()))};
  in >> st.limit;
  KILN_EXPECT(!in.fail(), StatusCode::kCorruptPlan, "cuda.cublaslt_matmul: malformed state");
  st.choice = LtChoice::parse(s.substr(l1 + 1, l2 - l1 - 1));
  st.program = s.substr(l2 + 1);
  return st;
}

// The native epilogue of a node (its bias pointer is set by the caller).
LtEpilogue node_epilogue(const Node& n) {
  LtEpilogue e;
  e.epi = native_epilogue(n.a<MatMulAttrs>(), n.in(2) != nullptr);
  e.residual = n.in(3) != nullptr;
  return e;
}

class LtMatMulKernel : public Kernel {
 public:
  LtMatMulKernel(const Node& n, std::string_view state)
      : attrs_(n.a<MatMulAttrs>()), dtype_(n.inputs[0]->dtype) {
    const Value* bias = n.in(2);
    if (bias) {
      KILN_EXPECT(bias->is_constant(), StatusCode::kInternal,
                  "cuda.cublaslt_matmul needs a constant bias");
      const Tensor& t = bias->data;
      bias_ = DeviceBuffer(t.raw(), t.nbytes());
      bias_numel_ = t.numel();
    }
    epi_.epi = native_epilogue(attrs_, bias != nullptr);
    epi_.bias = bias ? bias_.get() : nullptr;
    epi_.residual = n.in(3) != nullptr;
    LtState st = read_state(state);
    limit_ = st.limit;
    choice_ = st.choice;
    std::optional<expr::Program> prog = kernel_program(attrs_, dtype_);
    if (prog) {
      KILN_EXPECT(!st.program.empty(), StatusCode::kCorruptPlan,
                  "cuda.cublaslt_matmul: the plan lacks the compiled epilogue of ", n.label());
      program_ = std::make_unique<EpilogueKernel>(*prog, st.program);
    } else {
      KILN_EXPECT(st.program.empty(), StatusCode::kCorruptPlan,
                  "cuda.cublaslt_matmul: unexpected state for ", n.label());
    }
  }

  size_t workspace_size(const LaunchArgs& a) const override {
    if (a.out(0).numel() == 0) return 0;
    // No pointers here: the arena and cudaMalloc give 256-byte alignment.
    return plan_for(a, false).workspace;
  }

  void enqueue(const LaunchArgs& a) override {
    DeviceTensor& y = a.out(0);
    if (y.numel() == 0) return;
    const void* z = nullptr;
    if (epi_.residual) {
      KILN_EXPECT(a.has(3) && a.in(3).dims == y.dims, StatusCode::kInvalidArgument,
                  "MatMul: the residual Z ", dims_to_string(a.in(3).dims),
                  " does not have the output's shape ", dims_to_string(y.dims));
      z = a.in(3).data;
    }
    const LtPlan& p = plan_for(a, true);
    const MatMulMapping& m = *p.map;
    cudaStream_t s = stream_of(a);
    if (m.empty) return;
    if (m.zero) {
      KILN_EXPECT(!has_epilogue(), StatusCode::kUnsupported,
                  "cuda.cublaslt_matmul: a fused epilogue over an empty inner dimension");
      KILN_CUDA_CHECK(cudaMemsetAsync(y.data, 0, y.nbytes(), s));
      return;
    }
    KILN_EXPECT(a.workspace_bytes >= p.workspace, StatusCode::kInternal,
                "cuda.cublaslt_matmul: workspace of ", a.workspace_bytes, " bytes, ", p.workspace,
                " needed");
    cublasLtHandle_t h = resources_of(a).cublaslt();
    run(h, p, a.in(0).data, a.in(1).data, z, y.data, a.workspace, s, -1, true);
    if (program_) {
      program_->run(y.data, y.numel(), s);
      check_launch("cuda.cublaslt_matmul epilogue");
    }
  }

 private:
  bool has_epilogue() const {
    return epi_.epi != CUBLASLT_EPILOGUE_DEFAULT || epi_.residual || program_;
  }

  // The plan's calls (or only call `only` when >= 0), enqueued on `s`; z is the residual (C, with
  // beta 1) or null. With `check`, a failure throws; without, it is returned.
  cublasStatus_t run(cublasLtHandle_t h, const LtPlan& p, const void* a, const void* b,
                     const void* z, void* y, void* ws, cudaStream_t s, int64_t only,
                     bool check) const {
    const MatMulMapping& m = *p.map;
    const size_t es = dtype_size(dtype_);
    const float alpha_f = static_cast<float>(attrs_.alpha), beta_f = z ? 1.f : 0.f;
    const double alpha_d = attrs_.alpha, beta_d = z ? 1.0 : 0.0;
    const bool dbl = dtype_ == DataType::kDouble;
    const void* alpha = dbl ? static_cast<const void*>(&alpha_d) : &alpha_f;
    const void* beta = dbl ? static_cast<const void*>(&beta_d) : &beta_f;
    const char* ap = static_cast<const char*>(a);
    const char* bp = static_cast<const char*>(b);
    char* yp = static_cast<char*>(y);
    const char* zp = static_cast<const char*>(z);
    const int64_t calls = static_cast<int64_t>(m.y_offset.size());
    const int64_t first = only >= 0 ? only : 0, last = only >= 0 ? only + 1 : calls;
    for (int64_t c = first; c < last; ++c) {
      char* yc = yp + m.y_offset[c] * es;
      // Z has Y's shape, so its matrices sit at Y's offsets.
      const void* cc = zp ? static_cast<const void*>(zp + m.y_offset[c] * es) : yc;
      cublasStatus_t st = cublasLtMatmul(
          h, p.op.get(), alpha, bp + m.b_offset[c] * es, p.lt_a.get(), ap + m.a_offset[c] * es,
          p.lt_b.get(), beta, cc, p.lt_d.get(), yc, p.lt_d.get(), &p.algo, ws, p.workspace, s);
      if (st != CUBLAS_STATUS_SUCCESS) {
        if (check) KILN_CUBLAS_CHECK(st);
        return st;
      }
    }
    return CUBLAS_STATUS_SUCCESS;
  }

  // The plan for the launch's shapes and operand alignment, made on first use; nothing is timed
  // (see the top of this file). `from_enqueue`: asked by enqueue() rather than by the runtime's
  // planning, so the launch's workspace is all there is.
  const LtPlan& plan_for(const LaunchArgs& a, bool from_enqueue) const {
    std::vector<int64_t> dims_key;
    const Dims* parts[] = {&a.in(0).dims, &a.in(1).dims, &a.out(0).dims};
    const void* z = epi_.residual && a.has(3) ? a.in(3).data : nullptr;
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
      KILN_EXPECT(bias_numel_ == 0 || e->map.empty || bias_numel_ == e->map.n,
                  StatusCode::kInvalidArgument, "MatMul: the bias has ", bias_numel_,
                  " elements but the product has ", e->map.n, " columns");
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
    al.z = z ? alignment_of(z, e.y_bits) : al.y;
    std::vector<uint32_t> key{al.a, al.b, al.y, al.z};
    auto it = e.plans.find(key);
    if (it != e.plans.end()) return *it->second;
    auto p = std::make_unique<LtPlan>();
    p->map = &e.map;
    if (!e.map.empty && !e.map.zero) {
      describe(*p, dtype_, attrs_.allow_tf32, epi_);
      LtTuning t = lt_tuning();
      // The tuned algorithm at the shapes and alignment it was tuned at (buffers as aligned as
      // the arena's, so only the calls' offsets count), if cuBLASLt still accepts it here.
      const Alignment tuned = natural_alignment(e.map, dtype_);
      const bool full = al.a == tuned.a && al.b == tuned.b && al.y == tuned.y && al.z == tuned.z;
      bool done = false;
      if (choice_.set && full && choice_.workspace <= limit_ &&
          (!from_enqueue || choice_.workspace <= a.workspace_bytes) &&
          choice_.dims == cuda::dims_key(a.in(0).dims, a.in(1).dims, a.out(0).dims)) {
        cublasLtMatmulHeuristicResult_t check{};
        if (cublasLtMatmulAlgoCheck(t.handle, p->op.get(), p->lt_a.get(), p->lt_b.get(),
                                    p->lt_d.get(), p->lt_d.get(), &choice_.algo,
                                    &check) == CUBLAS_STATUS_SUCCESS &&
            check.workspaceSize <= choice_.workspace) {
          p->algo = choice_.algo;
          p->workspace = choice_.workspace;
          done = true;
        } else {
          log(LogLevel::kWarning, "cuda.cublaslt_matmul: the tuned algorithm no longer runs A ",
              dims_to_string(a.in(0).dims), " B ", dims_to_string(a.in(1).dims),
              "; using cuBLASLt's heuristics");
        }
      }
      if (!done) {
        // A shape or alignment first seen by enqueue() must fit the workspace it was given.
        const size_t limit = from_enqueue ? std::min(limit_, a.workspace_bytes) : limit_;
        std::vector<cublasLtMatmulHeuristicResult_t> cands =
            heuristics(t.handle, *p, al, limit, epi_.residual);
        KILN_EXPECT(!cands.empty(), StatusCode::kUnsupported, "cuBLASLt has no algorithm for A ",
                    dims_to_string(a.in(0).dims), " B ", dims_to_string(a.in(1).dims), " (",
                    dtype_name(dtype_), ") within ", limit, " bytes of workspace");
        p->algo = cands[0].algo;
        p->workspace = cands[0].workspaceSize;
      }
    }
    LtPlan& ref = *p;
    e.plans.emplace(std::move(key), std::move(p));
    return ref;
  }

  MatMulAttrs attrs_;
  DataType dtype_;
  DeviceBuffer bias_;  // the constant bias, on the device for the kernel's life
  int64_t bias_numel_ = 0;
  LtEpilogue epi_;
  size_t limit_ = kMaxWorkspace;  // the step's workspace bound
  LtChoice choice_;               // what the autotuner chose (unset: untuned)
  std::unique_ptr<EpilogueKernel> program_;  // gelu_erf and the epilogue program, in place
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
    const auto& at = n.a<MatMulAttrs>();
    const Value* y = n.outputs[0];
    if (n.inputs.size() > 4) return unsupported("more than 4 inputs");
    for (size_t i = 2; i < n.inputs.size(); ++i)
      if (n.in(i) && n.in(i)->dtype != a->dtype) return unsupported("inputs of mixed types");
    if (!is_matmul_activation(at.activation))
      return unsupported(cat("activation '", at.activation, "'"));
    const Value* bias = n.in(2);
    const Value* z = n.in(3);
    LtEpilogue epi;
    epi.epi = native_epilogue(at, bias != nullptr);
    epi.residual = z != nullptr;
    if (bias) {
      if (!bias->is_constant())
        return unsupported("a computed bias (the kernel keeps a device copy of a constant one)");
      if (bias->data.rank() != 1) return unsupported("the bias is not 1-D");
      // Heuristics read the bias address only for its alignment; the kernel's copy is
      // cudaMalloc'ed (256-byte aligned), and so is this stand-in, which is never dereferenced.
      epi.bias = reinterpret_cast<const void*>(uintptr_t{4096});
    }
    if (a->dtype == DataType::kDouble && (bias || !at.activation.empty()))
      return unsupported("a float64 product with a fused bias or activation");
    if (z && z->shape.fully_known() && y->shape.fully_known() && !(z->shape == y->shape))
      return unsupported(cat("residual ", z->shape.str(), " is not Y's shape ", y->shape.str()));
    std::optional<expr::Program> prog = kernel_program(at, a->dtype);
    if (prog) {
      std::string why = epilogue_kernel_unsupported(*prog, a->dtype);
      if (!why.empty()) return unsupported(cat("epilogue: ", why));
    }
    const bool epilogue = bias || z || !at.activation.empty() || prog;
    if (!(a->shape.fully_known() && b->shape.fully_known() && y->shape.fully_known()))
      return Status::ok();
    MatMulMapping m = map_matmul(at, a->shape.concrete(), b->shape.concrete(),
                                 y->shape.concrete());
    if (!m.ok) return unsupported(m.why);
    if (m.zero && epilogue) return unsupported("a fused epilogue over an empty inner dimension");
    if (bias && bias->data.numel() != m.n) return unsupported("the bias does not have N elements");
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
      describe(p, a->dtype, at.allow_tf32, epi);
      if (heuristics(t->handle, p, Alignment{}, kMaxWorkspace, epi.residual).empty())
        return unsupported("cuBLASLt has no algorithm for these shapes (and this epilogue)");
    } catch (const Error& e) {
      return unsupported(cat("cuBLASLt refuses this product: ", e.message()));
    }
    return Status::ok();
  }

  // The state without tuning: cuBLASLt's heuristics at run time, within the default bound.
  std::string prepare(const Node& n) const override { return prepare_choice(n, "", {}); }

  // cuBLASLt's heuristic proposals at the node's (concrete) shapes and full alignment, within
  // the workspace bound, in its order; each is timed by the autotuner as the whole step.
  std::vector<std::string> candidates(const Node& n, const TacticLimits& limits) const override {
    const Value* a = n.in(0);
    const Value* b = n.in(1);
    const Value* y = n.outputs[0];
    if (!a->shape.fully_known() || !b->shape.fully_known() || !y->shape.fully_known()) return {};
    const auto& at = n.a<MatMulAttrs>();
    const Dims ad = a->shape.concrete(), bd = b->shape.concrete(), yd = y->shape.concrete();
    MatMulMapping m = map_matmul(at, ad, bd, yd);
    if (!m.ok || m.empty || m.zero) return {};
    LtEpilogue epi = node_epilogue(n);
    if (n.in(2)) epi.bias = reinterpret_cast<const void*>(uintptr_t{4096});  // see supports()
    LtPlan p;
    p.map = &m;
    describe(p, a->dtype, at.allow_tf32, epi);
    const size_t limit = limits.workspace(kMaxWorkspace);
    std::vector<cublasLtMatmulHeuristicResult_t> found;
    {
      LtTuning t = lt_tuning();
      found = heuristics(t.handle, p, natural_alignment(m, a->dtype), limit, epi.residual);
    }
    std::vector<std::string> out;
    LtChoice c;
    c.dims = dims_key(ad, bd, yd);
    for (const auto& r : found) {
      c.algo = r.algo;
      c.workspace = r.workspaceSize;
      std::string str = c.str();
      if (std::find(out.begin(), out.end(), str) == out.end()) out.push_back(std::move(str));
    }
    if (out.size() < 2) out.clear();  // nothing to choose
    return out;
  }

  // The state: the workspace bound, the choice (checked here) and the NVRTC-compiled epilogue,
  // when the node needs one.
  std::string prepare_choice(const Node& n, std::string_view choice,
                             const TacticLimits& limits) const override {
    LtChoice::parse(choice);
    std::optional<expr::Program> prog = kernel_program(n.a<MatMulAttrs>(), n.inputs[0]->dtype);
    return make_state(limits.workspace(kMaxWorkspace), choice,
                      prog ? compile_epilogue_kernel(*prog, n.label()) : std::string());
  }

  std::unique_ptr<Kernel> instantiate(const Node& n, std::string_view state) const override {
    return std::make_unique<LtMatMulKernel>(n, state);
  }
};

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_cublaslt_matmul() {
  static const cuda::LtMatMulTactic t;
  return t;
}

}  // namespace kiln
