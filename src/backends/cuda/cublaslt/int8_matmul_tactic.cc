// cuda.int8_matmul: the quantized MatMul (MatMulAttrs q_* fields, ops/quantized.h) with a constant
// 2-D int8 weight, on cuBLASLt's int8 tensor-core kernels (IMMA): A [..., K] int8 (zero point 0)
// times W [K, N] int8 accumulates exactly in int32 (LtGemm, cublaslt/gemm.h), then one kernel
// (kernels/int8_epilogue.cu) scales each column by q_x_scale * q_w_scale[n] and adds the bias and
// residual and applies the activation (relu, gelu_erf, gelu_tanh) in float32, storing q_out
// (float32, float16 or bfloat16).
//
// - cuBLASLt's int8 kernels read both operands K-contiguous: W is stored [N, K] once, at
//   instantiate; K and N must be multiples of 4 (its alignment rule for int8 and int32 matrices).
// - The int32 products live in the step's workspace, with cuBLASLt's own workspace after them.
// - The algorithm is cuBLASLt's heuristic's first answer for the shape (no timing; the runtime
//   never times).
#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "backends/cuda/cublaslt/gemm.h"
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/int8_epilogue.h"
#include "ops/epilogue.h"
#include "ops/mat_mul.h"

namespace kiln {
namespace cuda {
namespace {

constexpr const char* kId = "cuda.int8_matmul";
constexpr size_t kAlign = 256;
constexpr size_t kLtWorkspace = size_t(8) << 20;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

std::optional<q8::OutType> out_type(DataType t) {
  switch (t) {
    case DataType::kFloat: return q8::OutType::kFloat;
    case DataType::kFloat16: return q8::OutType::kHalf;
    case DataType::kBFloat16: return q8::OutType::kBFloat16;
    default: return std::nullopt;
  }
}

std::optional<q8::Act> act_of(const std::string& a) {
  if (a.empty()) return q8::Act::kNone;
  if (a == "relu") return q8::Act::kRelu;
  if (a == "gelu_erf") return q8::Act::kGeluErf;
  if (a == "gelu_tanh") return q8::Act::kGeluTanh;
  return std::nullopt;
}

Status supports(const Node& n) {
  if (n.op() != "MatMul") return unsupported("not a MatMul");
  const auto& a = n.a<MatMulAttrs>();
  if (!a.quantized()) return unsupported("not a quantized MatMul");
  const Value* x = n.in(0);
  const Value* w = n.in(1);
  if (!x || !w || n.outputs.size() != 1) return unsupported("needs A, B and one output");
  if (x->dtype != DataType::kInt8 || a.q_x_zero != 0)
    return unsupported("A must be int8 with zero point 0 (symmetric)");
  if (!w->is_constant() || w->dtype != DataType::kInt8 || w->data.rank() != 2)
    return unsupported("B must be a constant 2-D int8 tensor");
  if (a.trans_a) return unsupported("a transposed A");
  if (!x->shape.rank_known || x->shape.rank() < 2) return unsupported("A of rank < 2");
  const int64_t k = a.trans_b ? w->data.dim(1) : w->data.dim(0);
  const int64_t cols = a.trans_b ? w->data.dim(0) : w->data.dim(1);
  if (k % 4 != 0 || cols % 4 != 0)
    return unsupported("K or N not a multiple of 4 (cuBLASLt's int8 alignment)");
  if (!out_type(a.q_out) || n.outputs[0]->dtype != a.q_out)
    return unsupported(cat("output type ", dtype_name(n.outputs[0]->dtype)));
  for (size_t i = 2; i < n.inputs.size(); ++i)
    if (n.in(i) && n.in(i)->dtype != a.q_out) return unsupported("bias or Z not of the output type");
  if (n.inputs.size() > 4) return unsupported("more than 4 inputs");
  if (!act_of(a.activation)) return unsupported(cat("activation '", a.activation, "'"));
  if (has_epilogue_program(a.epilogue)) return unsupported("an epilogue program");
  const Value* b = n.in(2);
  if (b && (!b->shape.rank_known || b->shape.rank() != 1))
    return unsupported("a bias that is not one value per column");
  return Status::ok();
}

class Int8MatMulKernel : public Kernel {
 public:
  explicit Int8MatMulKernel(const Node& n) : attrs_(n.a<MatMulAttrs>()) {
    const Tensor& w = n.in(1)->data;
    k_ = attrs_.trans_b ? w.dim(1) : w.dim(0);
    n_ = attrs_.trans_b ? w.dim(0) : w.dim(1);
    // [N, K] row-major: each column of W contiguous along K.
    std::vector<int8_t> wt(static_cast<size_t>(k_ * n_));
    const auto* src = static_cast<const int8_t*>(w.raw());
    if (attrs_.trans_b) {
      if (!wt.empty()) std::memcpy(wt.data(), src, wt.size());
    } else {
      for (int64_t r = 0; r < k_; ++r)
        for (int64_t c = 0; c < n_; ++c) wt[c * k_ + r] = src[r * n_ + c];
    }
    w_ = std::make_unique<DeviceBuffer>(wt.data(), wt.size());
    std::vector<float> scale(static_cast<size_t>(n_));
    for (int64_t c = 0; c < n_; ++c)
      scale[c] = static_cast<float>(attrs_.q_x_scale *
                                    attrs_.q_w_scale[attrs_.q_w_scale.size() == 1 ? 0 : c]);
    scale_ = std::make_unique<DeviceBuffer>(scale.data(), scale.size() * sizeof(float));
    type_ = *out_type(attrs_.q_out);
    act_ = *act_of(attrs_.activation);
  }

  size_t workspace_size(const LaunchArgs& a) const override {
    return align_up(static_cast<size_t>(rows(a) * n_) * sizeof(int32_t)) + kLtWorkspace;
  }

  void enqueue(const LaunchArgs& a) override {
    DeviceTensor& y = a.out(0);
    const int64_t m = rows(a);
    if (y.numel() == 0) return;
    KILN_EXPECT(y.numel() == m * n_, StatusCode::kInvalidArgument, kId, ": Y has ", y.numel(),
                " elements, not ", m, " x ", n_);
    if (a.has(3))
      KILN_EXPECT(a.in(3).numel() == y.numel(), StatusCode::kInvalidArgument, kId,
                  ": the residual has ", a.in(3).numel(), " elements but Y has ", y.numel());
    if (a.has(2))
      KILN_EXPECT(a.in(2).numel() == n_, StatusCode::kInvalidArgument, kId, ": the bias has ",
                  a.in(2).numel(), " elements for ", n_, " columns");
    const size_t acc_bytes = align_up(static_cast<size_t>(m * n_) * sizeof(int32_t));
    KILN_EXPECT(a.workspace_bytes >= acc_bytes + kLtWorkspace, StatusCode::kInternal, kId,
                ": workspace of ", a.workspace_bytes, " bytes");
    auto* acc = static_cast<int32_t*>(a.workspace);
    cudaStream_t s = stream_of(a);
    if (k_ == 0) {
      KILN_CUDA_CHECK(cudaMemsetAsync(acc, 0, static_cast<size_t>(m * n_) * sizeof(int32_t), s));
    } else {
      GemmSpec g;
      g.dtype = DataType::kInt8;
      g.m = m;
      g.n = n_;
      g.k = k_;
      g.trans_b = true;
      g.lda = k_;
      g.ldb = k_;
      g.ldc = n_;
      gemm_.run(resources_of(a).cublaslt(), g, a.in(0).data, w_->get(), acc, 1.0, 0.0,
                static_cast<char*>(a.workspace) + acc_bytes, kLtWorkspace, s);
    }
    q8::EpilogueArgs e;
    e.acc = acc;
    e.rows = m;
    e.cols = n_;
    e.scale = static_cast<const float*>(scale_->get());
    e.bias = a.has(2) ? a.in(2).data : nullptr;
    e.z = a.has(3) ? a.in(3).data : nullptr;
    e.y = y.data;
    e.type = type_;
    e.act = act_;
    q8::launch_int8_epilogue(e, s);
    check_launch(kId);
  }

 private:
  int64_t rows(const LaunchArgs& a) const {
    const DeviceTensor& x = a.in(0);
    return k_ == 0 ? a.out(0).numel() / std::max<int64_t>(n_, 1) : x.numel() / k_;
  }

  MatMulAttrs attrs_;
  int64_t k_ = 0, n_ = 0;
  std::unique_ptr<DeviceBuffer> w_;      // int8 [N, K]
  std::unique_ptr<DeviceBuffer> scale_;  // float32 [N]
  q8::OutType type_ = q8::OutType::kFloat;
  q8::Act act_ = q8::Act::kNone;
  LtGemm gemm_;
};

std::unique_ptr<Kernel> make(const Node& n) { return std::make_unique<Int8MatMulKernel>(n); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_int8_matmul() {
  static const cuda::SimpleTactic t(cuda::kId, "MatMul", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
