// cuda.nll_loss: NllLoss (ONNX NegativeLogLikelihoodLoss; SoftmaxCrossEntropyLoss lowers to
// LogSoftmax + NllLoss) on kiln's own kernels (loss.cu): reduction none / sum / mean, optional
// class weights, ignore_index, any number of spatial axes; float32, float16, bfloat16 and
// float64 inputs with int32 or int64 targets. Losses and sums are computed in double as the
// reference does, and the sum / mean is reduced in a fixed order, so results are deterministic.
#include <string>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/loss.h"
#include "ops/nll_loss.h"

namespace kiln {
namespace cuda {
namespace {

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

bool reduction_of(const std::string& s, rk::NllReduction& r) {
  if (s == "none")
    r = rk::NllReduction::kNone;
  else if (s == "sum")
    r = rk::NllReduction::kSum;
  else if (s == "mean")
    r = rk::NllReduction::kMean;
  else
    return false;
  return true;
}

Status supports(const Node& n) {
  const Value* x = n.in(0);
  const Value* target = n.in(1);
  if (!x || !target) return unsupported("NllLoss without its input and target");
  if (!rk::nll_loss_supported(rk_dtype(x->dtype), rk_dtype(target->dtype)))
    return unsupported(cat("NllLoss of ", dtype_name(x->dtype), " inputs with ",
                           dtype_name(target->dtype), " targets"));
  if (const Value* w = n.in(2); w && w->dtype != x->dtype)
    return unsupported(
        cat("a ", dtype_name(w->dtype), " weight for ", dtype_name(x->dtype), " inputs"));
  rk::NllReduction r;
  if (!reduction_of(n.a<NllLossAttrs>().reduction, r))
    return unsupported(cat("reduction '", n.a<NllLossAttrs>().reduction, "'"));
  if (n.outputs.empty() || !n.outputs[0]) return unsupported("NllLoss without its output");
  return Status::ok();
}

class NllLossKernel : public Kernel {
 public:
  size_t workspace_size(const LaunchArgs& a) const override {
    return rk::nll_loss_workspace_size(problem(a));
  }

  void enqueue(const LaunchArgs& a) override {
    rk::NllLossProblem p = problem(a);
    int rc = rk::launch_nll_loss(p, a.workspace, a.workspace_bytes, a.stream);
    if (rc != 0) KILN_CUDA_CHECK(static_cast<cudaError_t>(rc));
    check_launch("cuda.nll_loss");
  }

 private:
  // Shapes as the reference reads them: input [N, C, d...], target [N, d...], weight [C].
  static rk::NllLossProblem problem(const LaunchArgs& a) {
    const auto& at = a.node.a<NllLossAttrs>();
    const DeviceTensor& x = a.in(0);
    const DeviceTensor& target = a.in(1);
    KILN_EXPECT(x.rank() >= 2, StatusCode::kInvalidArgument,
                "NllLoss: the input must be [N, C, ...], got ", dims_to_string(x.dims));
    rk::NllLossProblem p;
    p.dtype = rk_dtype(x.dtype);
    p.target_dtype = rk_dtype(target.dtype);
    p.x = x.data;
    p.target = target.data;
    p.n = x.dims[0];
    p.c = x.dims[1];
    for (size_t i = 2; i < x.rank(); ++i) p.inner *= x.dims[i];
    KILN_EXPECT(target.numel() == p.n * p.inner, StatusCode::kInvalidArgument,
                "NllLoss: the target ", dims_to_string(target.dims), " does not match the input ",
                dims_to_string(x.dims));
    if (a.has(2)) {
      const DeviceTensor& w = a.in(2);
      KILN_EXPECT(w.numel() == p.c, StatusCode::kInvalidArgument, "NllLoss: the weight ",
                  dims_to_string(w.dims), " does not match the ", p.c, " classes");
      p.weight = w.data;
    }
    p.y = a.out(0).data;
    p.has_ignore_index = at.has_ignore_index;
    p.ignore_index = at.ignore_index;
    if (!reduction_of(at.reduction, p.reduction))
      fail(StatusCode::kInvalidModel, "NllLoss: unknown reduction '", at.reduction, "'");
    const int64_t want = p.reduction == rk::NllReduction::kNone ? p.n * p.inner : 1;
    KILN_EXPECT(a.out(0).numel() == want, StatusCode::kInvalidArgument, "NllLoss: output ",
                dims_to_string(a.out(0).dims), " for input ", dims_to_string(x.dims));
    return p;
  }
};

std::unique_ptr<Kernel> make(const Node&) { return std::make_unique<NllLossKernel>(); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_nll_loss() {
  static const cuda::SimpleTactic t("cuda.nll_loss", "NllLoss", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
