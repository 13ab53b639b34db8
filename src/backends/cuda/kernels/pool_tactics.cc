// cuda.pool: max / avg / lp pooling on kiln's own kernels, channels-first or channels-last
// (the layout pass's `channels_last`), 1 to 3 spatial axes, with padding, dilation, ceil_mode,
// count_include_pad and max pooling's Indices output (channels-first only, as the op defines).
// Global average / max pooling (and lp with p = 1 or 2) is a reduction over the spatial axes and
// runs on the Reduce kernels: rows of H*W for NCHW, columns coalesced along C for NHWC.
// Float types take every kind; int8 / uint8 / int32 / int64 take max.
#include <optional>
#include <string>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/pool.h"
#include "backends/cuda/kernels/reduce.h"
#include "ops/pool.h"

namespace kiln {
namespace cuda {
namespace {

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

std::optional<rk::PoolKind> kind_of(const std::string& k) {
  if (k == "max") return rk::PoolKind::kMax;
  if (k == "avg") return rk::PoolKind::kAvg;
  if (k == "lp") return rk::PoolKind::kLp;
  return std::nullopt;
}

bool wants_indices(const Node& n) { return n.outputs.size() > 1 && n.outputs[1] != nullptr; }

// The Reduce op that a global pool is, if any.
std::optional<rk::ReduceOp> global_reduce_op(const PoolAttrs& a, bool indices) {
  if (!a.global || indices) return std::nullopt;
  if (a.kind == "avg") return rk::ReduceOp::kMean;
  if (a.kind == "max") return rk::ReduceOp::kMax;
  if (a.kind == "lp" && a.p == 1) return rk::ReduceOp::kL1;
  if (a.kind == "lp" && a.p == 2) return rk::ReduceOp::kL2;
  return std::nullopt;
}

Status supports(const Node& n) {
  const auto& a = n.a<PoolAttrs>();
  auto kind = kind_of(a.kind);
  if (!kind) return unsupported("unknown pool kind '" + a.kind + "'");
  const Value* x = n.in(0);
  if (!x) return unsupported("no input");
  if (!rk::pool_supported(rk_dtype(x->dtype), *kind))
    return unsupported(cat(a.kind, " pooling of ", dtype_name(x->dtype), " inputs"));
  const bool indices = wants_indices(n);
  if (indices && (*kind != rk::PoolKind::kMax || a.channels_last))
    return unsupported("Indices output of a non-max or channels-last pool");
  if (!x->shape.rank_known) return unsupported("the input's rank is not known");
  if (x->shape.rank() < 3) return unsupported("X of rank < 3");
  const size_t nsp = x->shape.rank() - 2;
  if (global_reduce_op(a, indices)) {
    if (x->shape.rank() > static_cast<size_t>(rk::kMaxDims))
      return unsupported(cat("rank ", x->shape.rank(), " > ", rk::kMaxDims));
    return Status::ok();
  }
  if (nsp > static_cast<size_t>(rk::kPoolMaxSpatial))
    return unsupported(
        cat(nsp, " spatial axes (the kernels take up to ", rk::kPoolMaxSpatial, ")"));
  if (a.p <= 0 && *kind == rk::PoolKind::kLp) return unsupported("lp pooling with p <= 0");
  return Status::ok();
}

class PoolKernel : public Kernel {
 public:
  size_t workspace_size(const LaunchArgs& a) const override {
    rk::ReduceProblem r;
    if (!as_reduction(a, r)) return 0;
    return rk::reduce_workspace_size(r);
  }

  void enqueue(const LaunchArgs& a) override {
    rk::ReduceProblem r;
    if (as_reduction(a, r)) {
      rk::launch_reduce(r, a.workspace, a.workspace_bytes, a.stream);
      check_launch("cuda.pool (global)");
      return;
    }
    const auto& at = a.node.a<PoolAttrs>();
    const DeviceTensor& x = a.in(0);
    const Dims& d = x.dims;
    const size_t rank = d.size();
    KILN_EXPECT(rank >= 3 && rank - 2 <= static_cast<size_t>(rk::kPoolMaxSpatial),
                StatusCode::kUnsupported, "cuda.pool: X of shape ", dims_to_string(d));
    const size_t nsp = rank - 2;
    Ints in_spatial =
        at.channels_last ? Ints(d.begin() + 1, d.end() - 1) : Ints(d.begin() + 2, d.end());
    PoolGeometry g = pool_geometry(at, in_spatial);
    rk::PoolProblem p;
    p.dtype = rk_dtype(x.dtype);
    p.kind = *kind_of(at.kind);
    p.channels_last = at.channels_last;
    p.count_include_pad = at.count_include_pad;
    p.p = at.p;
    p.storage_order = static_cast<int>(at.storage_order);
    p.x = x.data;
    p.y = a.outputs[0].data;
    if (a.outputs.size() > 1 && a.outputs[1].defined())
      p.indices = static_cast<int64_t*>(a.outputs[1].data);
    p.n = d[0];
    p.c = at.channels_last ? d[rank - 1] : d[1];
    p.nsp = static_cast<int>(nsp);
    int64_t out_vol = 1;
    for (size_t j = 0; j < nsp; ++j) {
      p.in[j] = g.in[j];
      p.out[j] = g.out[j];
      p.kernel[j] = g.kernel[j];
      p.stride[j] = g.strides[j];
      p.dilation[j] = g.dilations[j];
      p.pad_begin[j] = g.pad_begin[j];
      p.pad_end[j] = g.pad_end[j];
      out_vol *= g.out[j];
    }
    KILN_CHECK(a.outputs[0].numel() == p.n * p.c * out_vol, "cuda.pool: output of shape ",
               dims_to_string(a.outputs[0].dims), " for ", out_vol, " windows per plane");
    rk::launch_pool(p, a.stream);
    check_launch("cuda.pool");
  }

 private:
  // Global avg / max (and lp 1 / 2) pooling with a non-empty window, as a Reduce problem.
  static bool as_reduction(const LaunchArgs& a, rk::ReduceProblem& r) {
    const auto& at = a.node.a<PoolAttrs>();
    const bool indices = a.outputs.size() > 1 && a.outputs[1].defined();
    auto op = global_reduce_op(at, indices);
    if (!op) return false;
    const DeviceTensor& x = a.in(0);
    const Dims& d = x.dims;
    const size_t rank = d.size();
    if (rank < 3) return false;
    int64_t spatial = 1;
    for (size_t i = at.channels_last ? 1 : 2; i < (at.channels_last ? rank - 1 : rank); ++i)
      spatial *= d[i];
    // An empty window keeps the windowed kernel's answer for integer max (see pool.cu).
    if (spatial == 0) return false;
    r.dtype = rk_dtype(x.dtype);
    r.op = *op;
    r.x = x.data;
    r.y = a.outputs[0].data;
    r.rank = 3;
    if (at.channels_last) {
      r.dims[0] = d[0];
      r.dims[1] = spatial;
      r.dims[2] = d[rank - 1];
      r.reduced[1] = true;
    } else {
      r.dims[0] = d[0];
      r.dims[1] = d[1];
      r.dims[2] = spatial;
      r.reduced[2] = true;
    }
    return true;
  }
};

std::unique_ptr<Kernel> make(const Node&) { return std::make_unique<PoolKernel>(); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_pool() {
  static const cuda::SimpleTactic t("cuda.pool", "Pool", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
