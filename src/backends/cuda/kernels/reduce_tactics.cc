// cuda.reduce: every Reduce kind on kiln's own kernels (reduce.cu). Float types take every kind;
// int8/uint8/int32/int64 take sum, mean, prod, max, min, argmax and argmin (the real-valued
// kinds on integers, other integer widths and bool go to the host fallback). The axes are
// usually known when the plan is built (the attribute, or a constant axes input); an axes input
// computed at run time is read back from the device at each launch (a copy and a wait on the
// launch stream, so that kernel is not capturable) and then runs the same kernels.
#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/reduce.h"
#include "ops/op_util.h"
#include "ops/reduce.h"

namespace kiln {
namespace cuda {
namespace {

std::optional<rk::ReduceOp> op_of(std::string_view kind) {
  static constexpr std::pair<std::string_view, rk::ReduceOp> kOps[] = {
      {"sum", rk::ReduceOp::kSum},
      {"mean", rk::ReduceOp::kMean},
      {"max", rk::ReduceOp::kMax},
      {"min", rk::ReduceOp::kMin},
      {"prod", rk::ReduceOp::kProd},
      {"l1", rk::ReduceOp::kL1},
      {"l2", rk::ReduceOp::kL2},
      {"log_sum", rk::ReduceOp::kLogSum},
      {"log_sum_exp", rk::ReduceOp::kLogSumExp},
      {"sum_square", rk::ReduceOp::kSumSquare},
      {"argmax", rk::ReduceOp::kArgMax},
      {"argmin", rk::ReduceOp::kArgMin},
  };
  for (const auto& [name, op] : kOps)
    if (name == kind) return op;
  return std::nullopt;
}

bool is_arg(rk::ReduceOp op) { return op == rk::ReduceOp::kArgMax || op == rk::ReduceOp::kArgMin; }

// The axes of the node: the constant axes input when there is one, else the attribute.
// nullopt when the axes input is only known at run time.
std::optional<Ints> axes_of(const Node& n) {
  const auto& a = n.a<ReduceAttrs>();
  if (n.in(1) == nullptr) return a.axes;
  if (!n.in(1)->is_constant()) return std::nullopt;
  return to_int64s(n.in(1)->data);
}

Status supports(const Node& n) {
  const auto& a = n.a<ReduceAttrs>();
  auto op = op_of(a.kind);
  if (!op) return unsupported("unknown reduce kind '" + a.kind + "'");
  const Value* x = n.in(0);
  if (!x) return unsupported("no input");
  if (!rk::reduce_supported(static_cast<rk::DType>(static_cast<int>(x->dtype)), *op))
    return unsupported(cat(a.kind, " on ", dtype_name(x->dtype), " inputs"));
  if (!x->shape.rank_known) return unsupported("the input's rank is not known");
  if (x->shape.rank() > static_cast<size_t>(rk::kMaxDims))
    return unsupported(cat("rank ", x->shape.rank(), " > ", rk::kMaxDims));
  auto axes = axes_of(n);
  if (axes && is_arg(*op) && axes->size() != 1) return unsupported("arg reductions take one axis");
  return Status::ok();
}

class ReduceKernel : public Kernel {
 public:
  explicit ReduceKernel(const Node& n) {
    const auto& a = n.a<ReduceAttrs>();
    op_ = *op_of(a.kind);
    auto axes = axes_of(n);
    run_time_axes_ = !axes;
    if (axes) axes_ = *axes;
    noop_ = a.noop_with_empty_axes;
    last_ = a.select_last_index;
    keepdims_ = a.keepdims;
  }

  bool capturable() const override { return !run_time_axes_; }

  size_t workspace_size(const LaunchArgs& a) const override {
    if (run_time_axes_) return run_time_workspace_size(a);
    bool identity = false;
    rk::ReduceProblem p = problem(a, axes_, identity);
    return identity ? 0 : rk::reduce_workspace_size(p);
  }

  void enqueue(const LaunchArgs& a) override {
    bool identity = false;
    rk::ReduceProblem p = problem(a, run_time_axes_ ? read_axes(a) : axes_, identity);
    cudaStream_t s = stream_of(a);
    const DeviceTensor& x = a.in(0);
    DeviceTensor& y = a.out(0);
    if (identity) {
      KILN_CHECK(y.nbytes() == x.nbytes());
      if (x.nbytes())
        KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, s));
      return;
    }
    if (y.numel() == 0) return;
    if (is_arg(op_) && x.numel() == 0)
      fail(StatusCode::kInvalidArgument, a.node.a<ReduceAttrs>().kind,
           " over an axis of size 0 has no answer");
    rk::launch_reduce(p, a.workspace, a.workspace_bytes, a.stream);
    check_launch("cuda.reduce");
  }

 private:
  // The axes input's value, checked as the reference checks it.
  Ints read_axes(const LaunchArgs& a) const {
    const Tensor t = copy_to_host_sync(a.in(1), stream_of(a));
    KILN_EXPECT(t.rank() <= 1, StatusCode::kInvalidModel, "the axes input must be 1-D, got shape ",
                dims_to_string(t.dims()));
    Ints axes = to_int64s(t);
    if (is_arg(op_) && axes.size() != 1)
      fail(StatusCode::kInvalidModel, a.node.a<ReduceAttrs>().kind,
           " reduces exactly one axis, got ", axes.size());
    return axes;
  }

  // With axes known only at run time, the workspace is asked for before they are read: the most
  // that any set of reduced axes consistent with the output's dims needs (launch_reduce also
  // copes with less, by not splitting).
  size_t run_time_workspace_size(const LaunchArgs& a) const {
    const Dims& in = a.in(0).dims;
    const Dims& out = a.out(0).dims;
    const int rank = static_cast<int>(in.size());
    if (rank > rk::kMaxDims) return 0;
    size_t most = 0;
    for (uint32_t set = 0; set < (1u << rank); ++set) {
      Dims kept;
      for (int d = 0; d < rank; ++d) {
        const bool reduced = (set >> d) & 1u;
        if (!reduced)
          kept.push_back(in[d]);
        else if (keepdims_)
          kept.push_back(1);
      }
      if (kept != out) continue;
      Ints axes;
      for (int d = 0; d < rank; ++d)
        if ((set >> d) & 1u) axes.push_back(d);
      if (axes.empty()) continue;  // an identity, or every axis (counted as the full set)
      if (is_arg(op_) && axes.size() != 1) continue;
      bool identity = false;
      rk::ReduceProblem p = problem(a, axes, identity);
      if (!identity) most = std::max(most, rk::reduce_workspace_size(p));
    }
    return most;
  }

  rk::ReduceProblem problem(const LaunchArgs& a, const Ints& axes, bool& identity) const {
    const DeviceTensor& x = a.in(0);
    const int64_t rank = static_cast<int64_t>(x.rank());
    KILN_EXPECT(rank <= rk::kMaxDims, StatusCode::kUnsupported, "cuda.reduce: rank ", rank, " > ",
                rk::kMaxDims);
    rk::ReduceProblem p;
    p.dtype = static_cast<rk::DType>(static_cast<int>(x.dtype));
    p.op = op_;
    p.select_last = last_;
    p.x = x.data;
    p.y = a.outputs[0].data;
    p.rank = static_cast<int>(rank);
    for (int64_t d = 0; d < rank; ++d) p.dims[d] = x.dims[d];
    identity = false;
    if (axes.empty()) {
      if (noop_) identity = true;
      for (int64_t d = 0; d < rank; ++d) p.reduced[d] = true;
      return p;
    }
    for (int64_t ax : axes) {
      int64_t d = normalize_axis(ax, rank, "reduce axis");
      if (rank == 0) continue;  // a scalar has nothing to reduce
      KILN_EXPECT(!p.reduced[d], StatusCode::kInvalidModel, "reduce axis ", ax, " is listed twice");
      p.reduced[d] = true;
    }
    return p;
  }

  rk::ReduceOp op_ = rk::ReduceOp::kSum;
  Ints axes_;  // unless run_time_axes_
  bool run_time_axes_ = false;
  bool noop_ = false;
  bool last_ = false;
  bool keepdims_ = true;
};

std::unique_ptr<Kernel> make(const Node& n) { return std::make_unique<ReduceKernel>(n); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_reduce() {
  static const cuda::SimpleTactic t("cuda.reduce", "Reduce", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
