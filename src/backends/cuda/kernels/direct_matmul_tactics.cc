// cuda.direct_matmul: MatMul for what cuBLASLt does not take, on kiln's direct kernel
// (direct_matmul.cu): every integer type and bool, exact with wrap-around as the reference, and
// float64 products that cuBLASLt refuses (a fused bias or activation, a computed bias), in double
// as the reference. Numpy broadcasting of up to 8 batch dims, 1-D operands, transposes, alpha,
// and the fused bias (input 2), residual (input 3) and activation (relu, gelu_erf, gelu_tanh).
// It refuses float32/float16/bfloat16, which belong to cuda.cublaslt_matmul (so it never shadows
// it; it also comes after it in preference order), and an epilogue program, which it does not
// run. (MatMulInteger and QLinearMatMul lower to float64 MatMul, which cuBLASLt takes.)
#include <algorithm>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/direct_matmul.h"
#include "ops/epilogue.h"
#include "ops/mat_mul.h"
#include "ops/op_util.h"

namespace kiln {
namespace cuda {
namespace {

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

rk::DirectActivation activation_of(const std::string& act) {
  if (act == "relu") return rk::DirectActivation::kRelu;
  if (act == "gelu_erf") return rk::DirectActivation::kGeluErf;
  if (act == "gelu_tanh") return rk::DirectActivation::kGeluTanh;
  return rk::DirectActivation::kNone;
}

Status supports(const Node& n) {
  const auto& at = n.a<MatMulAttrs>();
  const Value* a = n.in(0);
  const Value* b = n.in(1);
  if (!a || !b || n.outputs.size() != 1 || !n.outputs[0])
    return unsupported("needs A, B and one output");
  if (n.inputs.size() > 4) return unsupported("more than 4 inputs");
  if (a->dtype == DataType::kFloat || a->dtype == DataType::kFloat16 ||
      a->dtype == DataType::kBFloat16)
    return unsupported(cat(dtype_name(a->dtype), " (left to cuBLASLt)"));
  if (!rk::direct_matmul_supported(rk_dtype(a->dtype)))
    return unsupported(cat(dtype_name(a->dtype), " operands"));
  for (size_t i = 1; i < n.inputs.size(); ++i)
    if (n.in(i) && n.in(i)->dtype != a->dtype) return unsupported("inputs of mixed types");
  if (n.outputs[0]->dtype != a->dtype) return unsupported("Y's type differs from A's");
  if (!is_matmul_activation(at.activation))
    return unsupported(cat("activation '", at.activation, "'"));
  if (!dtype_is_float(a->dtype) && (!at.activation.empty() || at.alpha != 1.0))
    return unsupported("an activation or alpha on an integer type");
  if (has_epilogue_program(at.epilogue))
    return unsupported(
        "an epilogue program (the direct kernel runs bias, residual and activation only)");
  if (!a->shape.rank_known || !b->shape.rank_known)
    return unsupported("the operands' ranks are not known");
  if (a->shape.rank() < 1 || b->shape.rank() < 1) return unsupported("a scalar operand");
  const size_t batch = std::max(a->shape.rank(), b->shape.rank());
  if (batch > 2 + static_cast<size_t>(rk::kDirectMatMulMaxBatch))
    return unsupported(cat("more than ", rk::kDirectMatMulMaxBatch, " batch dims"));
  return Status::ok();
}

void enqueue_matmul(const LaunchArgs& args) {
  const auto& at = args.node.a<MatMulAttrs>();
  const DeviceTensor& a = args.in(0);
  const DeviceTensor& b = args.in(1);
  DeviceTensor& y = args.out(0);
  KILN_EXPECT(a.rank() >= 1 && b.rank() >= 1, StatusCode::kInvalidArgument,
              "MatMul: operands must be at least 1-D");
  // The transposes apply to matrices only: numpy's 1-D rules ignore them.
  const bool ta = at.trans_a && a.rank() >= 2, tb = at.trans_b && b.rank() >= 2;
  int64_t m, k, n, kb;
  if (a.rank() == 1) {
    m = 1;
    k = a.dims[0];
  } else {
    const int64_t r = a.dims[a.rank() - 2], c = a.dims[a.rank() - 1];
    m = ta ? c : r;
    k = ta ? r : c;
  }
  if (b.rank() == 1) {
    kb = b.dims[0];
    n = 1;
  } else {
    const int64_t r = b.dims[b.rank() - 2], c = b.dims[b.rank() - 1];
    kb = tb ? c : r;
    n = tb ? r : c;
  }
  KILN_EXPECT(k == kb, StatusCode::kInvalidArgument, "MatMul: inner dimensions differ (", k, " vs ",
              kb, ")");
  auto batch_of = [](const DeviceTensor& t) {
    return t.rank() <= 2 ? Dims{} : Dims(t.dims.begin(), t.dims.end() - 2);
  };
  const Dims a_batch = batch_of(a), b_batch = batch_of(b);
  const Dims batch = broadcast_dims({a_batch, b_batch});
  KILN_EXPECT(batch.size() <= static_cast<size_t>(rk::kDirectMatMulMaxBatch),
              StatusCode::kUnsupported, "cuda.direct_matmul: ", batch.size(), " batch dims exceed ",
              rk::kDirectMatMulMaxBatch);
  KILN_CHECK(y.numel() == dims_volume(batch) * m * n, "cuda.direct_matmul: Y ",
             dims_to_string(y.dims));
  if (args.has(2))
    KILN_EXPECT(b.rank() >= 2 && args.in(2).numel() == n, StatusCode::kInvalidArgument,
                "MatMul: the bias has ", args.in(2).numel(), " elements but the product has ", n,
                " columns");
  if (args.has(3))
    KILN_EXPECT(args.in(3).dims == y.dims, StatusCode::kInvalidArgument, "MatMul: the residual Z ",
                dims_to_string(args.in(3).dims), " does not have the output's shape ",
                dims_to_string(y.dims));
  if (y.numel() == 0) return;

  rk::DirectMatMulProblem p;
  p.dtype = rk_dtype(a.dtype);
  p.m = m;
  p.k = k;
  p.n = n;
  p.trans_a = ta;
  p.trans_b = tb;
  p.alpha = at.alpha;
  p.act = activation_of(at.activation);
  p.batch_rank = static_cast<int>(batch.size());
  // Matrix strides of each operand against Y's batch, 0 where it broadcasts (or lacks the dim).
  auto strides = [&](const Dims& own, int64_t matrix, int64_t* out) {
    const Ints st = strides_of(own);
    const size_t off = batch.size() - own.size();
    for (size_t d = 0; d < own.size(); ++d) out[off + d] = own[d] == 1 ? 0 : st[d] * matrix;
  };
  for (size_t d = 0; d < batch.size(); ++d) p.batch[d] = batch[d];
  strides(a_batch, m * k, p.a_stride);
  strides(b_batch, k * n, p.b_stride);
  p.a = a.data;
  p.b = b.data;
  p.bias = args.has(2) ? args.in(2).data : nullptr;
  p.z = args.has(3) ? args.in(3).data : nullptr;
  p.y = y.data;
  rk::launch_direct_matmul(p, args.stream);
  check_launch("cuda.direct_matmul");
}

class DirectMatMulKernel : public Kernel {
 public:
  void enqueue(const LaunchArgs& a) override { enqueue_matmul(a); }
};

std::unique_ptr<Kernel> make(const Node&) { return std::make_unique<DirectMatMulKernel>(); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_direct_matmul() {
  static const cuda::SimpleTactic t("cuda.direct_matmul", "MatMul", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
