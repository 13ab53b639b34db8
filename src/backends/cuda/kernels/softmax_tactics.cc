// cuda.softmax: Softmax / LogSoftmax / Hardmax (and the legacy 2-D mode) on kiln's own kernels
// (softmax.cu), for float32, float16, bfloat16 and float64.
#include <optional>
#include <string>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/softmax.h"
#include "ops/softmax.h"

namespace kiln {
namespace cuda {
namespace {

std::optional<rk::SoftmaxMode> mode_of(const std::string& m) {
  if (m == "softmax") return rk::SoftmaxMode::kSoftmax;
  if (m == "log_softmax") return rk::SoftmaxMode::kLogSoftmax;
  if (m == "hardmax") return rk::SoftmaxMode::kHardmax;
  return std::nullopt;
}

Status supports(const Node& n) {
  const auto& a = n.a<SoftmaxAttrs>();
  if (!mode_of(a.mode)) return unsupported("unknown softmax mode '" + a.mode + "'");
  const Value* x = n.in(0);
  if (!x) return unsupported("no input");
  if (!rk::softmax_supported(static_cast<rk::DType>(static_cast<int>(x->dtype))))
    return unsupported(cat("softmax on ", dtype_name(x->dtype), " inputs"));
  if (x->shape.rank_known && x->shape.rank() == 0) return unsupported("a scalar input");
  return Status::ok();
}

class SoftmaxKernel : public Kernel {
 public:
  void enqueue(const LaunchArgs& a) override {
    const auto& at = a.node.a<SoftmaxAttrs>();
    const DeviceTensor& x = a.in(0);
    const Dims& d = x.dims;
    const int64_t rank = static_cast<int64_t>(d.size());
    const int64_t axis = normalize_axis(at.axis, rank, "softmax axis");
    rk::SoftmaxProblem p;
    p.dtype = static_cast<rk::DType>(static_cast<int>(x.dtype));
    p.mode = *mode_of(at.mode);
    p.x = x.data;
    p.y = a.outputs[0].data;
    // Rows of n elements `inner` apart, as the reference splits them.
    for (int64_t i = 0; i < rank; ++i) {
      if (i < axis)
        p.outer *= d[i];
      else if (i == axis || at.legacy_2d)
        p.n *= d[i];
      else
        p.inner *= d[i];
    }
    if (x.numel() == 0) return;
    rk::launch_softmax(p, a.stream);
    check_launch("cuda.softmax");
  }
};

std::unique_ptr<Kernel> make(const Node&) { return std::make_unique<SoftmaxKernel>(); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_softmax() {
  static const cuda::SimpleTactic t("cuda.softmax", "Softmax", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
