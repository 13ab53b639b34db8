// cuda.det: Det of [..., M, M] float32, float16, bfloat16 or float64 tensors on kiln's own kernel
// (linalg.cu): a warp per matrix, LU with partial pivoting in double, operation for operation the
// reference's (ops/det.cc). M = 0 gives determinants of 1, as the reference.
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/linalg.h"

namespace kiln {
namespace cuda {
namespace {

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

Status supports(const Node& n) {
  const Value* x = n.in(0);
  if (!x) return unsupported("Det without its input");
  if (!rk::det_supported(rk_dtype(x->dtype)))
    return unsupported(cat("Det of ", dtype_name(x->dtype), " inputs"));
  if (x->shape.rank_known && x->shape.rank() < 2)
    return unsupported(cat("Det of a rank-", x->shape.rank(), " input"));
  return Status::ok();
}

class DetKernel : public Kernel {
 public:
  size_t workspace_size(const LaunchArgs& a) const override {
    return rk::det_workspace_size(problem(a));
  }

  void enqueue(const LaunchArgs& a) override {
    rk::DetProblem p = problem(a);
    if (p.batch == 0) return;
    int rc = rk::launch_det(p, a.workspace, a.workspace_bytes, a.stream);
    if (rc != 0) KILN_CUDA_CHECK(static_cast<cudaError_t>(rc));
    check_launch("cuda.det");
  }

 private:
  static rk::DetProblem problem(const LaunchArgs& a) {
    const DeviceTensor& x = a.in(0);
    const size_t r = x.rank();
    KILN_EXPECT(r >= 2 && x.dims[r - 1] == x.dims[r - 2], StatusCode::kInvalidArgument,
                "Det: matrices must be square, got ", dims_to_string(x.dims));
    rk::DetProblem p;
    p.dtype = rk_dtype(x.dtype);
    p.x = x.data;
    p.y = a.out(0).data;
    p.m = x.dims[r - 1];
    p.batch = a.out(0).numel();
    int64_t batch = 1;
    for (size_t i = 0; i + 2 < r; ++i) batch *= x.dims[i];
    KILN_EXPECT(batch == p.batch, StatusCode::kInvalidArgument, "Det: output ",
                dims_to_string(a.out(0).dims), " for input ", dims_to_string(x.dims));
    return p;
  }
};

std::unique_ptr<Kernel> make(const Node&) { return std::make_unique<DetKernel>(); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_det() {
  static const cuda::SimpleTactic t("cuda.det", "Det", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
