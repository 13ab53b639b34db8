// cuda.top_k: TopK (largest / smallest; always sorted, which sorted = 0 also allows) on kiln's
// own kernels (top_k.cu) for float32, float16, bfloat16, float64, int8, uint8, int32 and int64.
// K may be known only at run time: the runtime sizes the outputs, and the kernel reads k from
// them.
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/top_k.h"
#include "ops/top_k.h"

namespace kiln {
namespace cuda {
namespace {

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

Status supports(const Node& n) {
  const Value* x = n.in(0);
  if (!x) return unsupported("no input");
  if (!rk::top_k_supported(rk_dtype(x->dtype)))
    return unsupported(cat("TopK of ", dtype_name(x->dtype), " inputs"));
  if (n.outputs.size() < 2 || !n.outputs[0] || !n.outputs[1])
    return unsupported("TopK without both outputs");
  return Status::ok();
}

class TopKKernel : public Kernel {
 public:
  size_t workspace_size(const LaunchArgs& a) const override {
    return rk::top_k_workspace_size(problem(a));
  }

  void enqueue(const LaunchArgs& a) override {
    rk::TopKProblem p = problem(a);
    if (p.k == 0 || a.in(0).numel() == 0) return;
    int rc = rk::launch_top_k(p, a.workspace, a.workspace_bytes, a.stream);
    if (rc == -1)
      fail(StatusCode::kUnsupported, "cuda.top_k: ", a.in(0).numel(),
           " elements exceed the radix sort's 32-bit sizes");
    if (rc != 0) KILN_CUDA_CHECK(static_cast<cudaError_t>(rc));
    check_launch("cuda.top_k");
  }

 private:
  static rk::TopKProblem problem(const LaunchArgs& a) {
    const auto& at = a.node.a<TopKAttrs>();
    const DeviceTensor& x = a.in(0);
    const Dims& d = x.dims;
    const int64_t rank = static_cast<int64_t>(d.size());
    const int64_t axis = normalize_axis(at.axis, rank, "TopK axis");
    rk::TopKProblem p;
    p.dtype = rk_dtype(x.dtype);
    p.largest = at.largest;
    p.x = x.data;
    p.values = a.outputs[0].data;
    p.indices = static_cast<int64_t*>(a.outputs[1].data);
    p.n = d[axis];
    KILN_CHECK(a.outputs[0].dims.size() == d.size(), "cuda.top_k: output rank");
    p.k = a.outputs[0].dims[axis];
    if (p.k > p.n)
      fail(StatusCode::kInvalidArgument, "K = ", p.k, " exceeds the size ", p.n, " of axis ", axis);
    for (int64_t i = 0; i < axis; ++i) p.outer *= d[i];
    for (int64_t i = axis + 1; i < rank; ++i) p.inner *= d[i];
    return p;
  }
};

std::unique_ptr<Kernel> make(const Node&) { return std::make_unique<TopKKernel>(); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_top_k() {
  static const cuda::SimpleTactic t("cuda.top_k", "TopK", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
