// cuda.cum_sum: CumSum (inclusive / exclusive, forward / reverse) on kiln's own kernels
// (cum_sum.cu) for float32, float16, bfloat16, float64, int32, int64, uint32 and uint64. The axis
// is a constant in every exported model we know, and the kernel then neither synchronises nor
// stops CUDA graph capture. An axis computed at run time is read back from the device at each
// launch (a copy and a wait on the launch stream), so that kernel is not capturable.
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/cum_sum.h"
#include "ops/cum_sum.h"

namespace kiln {
namespace cuda {
namespace {

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

Status supports(const Node& n) {
  const Value* x = n.in(0);
  if (!x) return unsupported("no input");
  if (!rk::cum_sum_supported(rk_dtype(x->dtype)))
    return unsupported(cat("CumSum of ", dtype_name(x->dtype), " inputs"));
  const Value* axis = n.in(1);
  if (!axis) return unsupported("no axis");
  if (axis->is_constant() && (axis->data.numel() != 1 || axis->data.rank() > 1))
    return unsupported("the axis is not a scalar");
  return Status::ok();
}

class CumSumKernel : public Kernel {
 public:
  explicit CumSumKernel(const Node& n)
      : run_time_axis_(!n.in(1)->is_constant()),
        axis_(run_time_axis_ ? 0 : n.in(1)->data.get_i64(0)) {}

  bool capturable() const override { return !run_time_axis_; }

  void enqueue(const LaunchArgs& a) override {
    const auto& at = a.node.a<CumSumAttrs>();
    const DeviceTensor& x = a.in(0);
    const Dims& d = x.dims;
    const int64_t rank = static_cast<int64_t>(d.size());
    const int64_t axis = normalize_axis(run_time_axis_ ? read_axis(a) : axis_, rank, "CumSum axis");
    rk::CumSumProblem p;
    p.dtype = rk_dtype(x.dtype);
    p.exclusive = at.exclusive;
    p.reverse = at.reverse;
    p.x = x.data;
    p.y = a.outputs[0].data;
    p.n = rank ? d[axis] : 1;
    for (int64_t i = 0; i < axis; ++i) p.outer *= d[i];
    for (int64_t i = axis + 1; i < rank; ++i) p.inner *= d[i];
    if (x.numel() == 0) return;
    rk::launch_cum_sum(p, a.stream);
    check_launch("cuda.cum_sum");
  }

 private:
  // The axis input's value, as the reference reads it (a scalar or one-element tensor).
  static int64_t read_axis(const LaunchArgs& a) {
    const Tensor t = copy_to_host_sync(a.in(1), stream_of(a));
    KILN_EXPECT(t.numel() == 1 && t.rank() <= 1, StatusCode::kInvalidModel,
                "the CumSum axis must be a scalar, got shape ", dims_to_string(t.dims()));
    return t.get_i64(0);
  }

  bool run_time_axis_;
  int64_t axis_;  // when constant
};

std::unique_ptr<Kernel> make(const Node& n) { return std::make_unique<CumSumKernel>(n); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_cum_sum() {
  static const cuda::SimpleTactic t("cuda.cum_sum", "CumSum", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
