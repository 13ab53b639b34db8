// cuda.normalization: batch (inference), instance, group, layer, RMS and local-response
// normalization on kiln's own kernels (normalization.cu), for float32, float16, bfloat16 and
// float64 inputs with parameters of any of those types. Parameter layouts are resolved per
// launch from the concrete shapes, with the reference's broadcasting rules.
#include <optional>
#include <string>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/normalization.h"
#include "ops/normalization.h"

namespace kiln {
namespace cuda {
namespace {

std::optional<rk::NormKind> kind_of(const std::string& k) {
  if (k == "batch") return rk::NormKind::kBatch;
  if (k == "instance") return rk::NormKind::kInstance;
  if (k == "group") return rk::NormKind::kGroup;
  if (k == "layer") return rk::NormKind::kLayer;
  if (k == "rms") return rk::NormKind::kRms;
  if (k == "lrn") return rk::NormKind::kLrn;
  return std::nullopt;
}

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

bool float_ok(DataType t) {
  return t == DataType::kFloat || t == DataType::kFloat16 || t == DataType::kBFloat16 ||
         t == DataType::kDouble;
}

Status supports(const Node& n) {
  const auto& a = n.a<NormalizationAttrs>();
  auto kind = kind_of(a.kind);
  if (!kind) return unsupported("unknown normalization kind '" + a.kind + "'");
  const Value* x = n.in(0);
  if (!x) return unsupported("no input");
  if (!rk::normalization_supported(rk_dtype(x->dtype)))
    return unsupported(cat("normalization of ", dtype_name(x->dtype), " inputs"));
  if (!x->shape.rank_known) return unsupported("the input's rank is not known");
  if (x->shape.rank() > static_cast<size_t>(rk::kMaxDims))
    return unsupported(cat("rank ", x->shape.rank(), " > ", rk::kMaxDims));
  if (*kind == rk::NormKind::kBatch && (!n.in(3) || !n.in(4)))
    return unsupported("batch normalization without mean and var");
  for (size_t i = 1; i < n.inputs.size(); ++i)
    if (n.in(i) && !float_ok(n.in(i)->dtype))
      return unsupported(cat("parameter ", i, " of type ", dtype_name(n.in(i)->dtype)));
  for (size_t k = 1; k < n.outputs.size(); ++k)
    if (n.outputs[k] && !float_ok(n.outputs[k]->dtype))
      return unsupported(cat("output ", k, " of type ", dtype_name(n.outputs[k]->dtype)));
  if (*kind == rk::NormKind::kLrn && a.size < 1) return unsupported("LRN size < 1");
  return Status::ok();
}

const char* param_name(size_t i) {
  static const char* names[] = {"X", "scale", "bias", "mean", "var"};
  return i < 5 ? names[i] : "input";
}

// The descriptor of parameter i (dims pd) broadcast onto X (dims xd), aligned at axis `start`
// (or from the right when start < 0), as the reference's param_offsets() aligns it.
rk::NormParam describe(const DeviceTensor& p, const Dims& xd, int64_t start, size_t i) {
  rk::NormParam d;
  d.p = p.data;
  d.present = true;
  d.dtype = rk_dtype(p.dtype);
  const Dims& pd = p.dims;
  const int64_t xr = static_cast<int64_t>(xd.size()), pr = static_cast<int64_t>(pd.size());
  if (start < 0) start = xr - pr;
  if (start < 0 || start + pr > xr)
    fail(StatusCode::kInvalidArgument, param_name(i), " of shape ", dims_to_string(pd),
         " does not fit X of shape ", dims_to_string(xd));
  std::vector<int64_t> st(xd.size(), 0);
  int64_t acc = 1;
  for (int64_t j = pr - 1; j >= 0; --j) {
    if (pd[j] == xd[start + j])
      st[start + j] = acc;
    else if (pd[j] != 1)
      fail(StatusCode::kInvalidArgument, param_name(i), " of shape ", dims_to_string(pd),
           " does not broadcast onto X of shape ", dims_to_string(xd));
    acc *= pd[j];
  }
  // Dense over one block of axes [lo, hi) of X: offset = (e / div) % mod.
  int64_t lo = -1, hi = -1;
  for (int64_t j = 0; j < xr; ++j)
    if (st[j] != 0 && xd[j] != 1) {
      if (lo < 0) lo = j;
      hi = j + 1;
    }
  if (lo < 0) {
    d.mode = rk::ParamMode::kDivMod;  // one value
    d.div = d.mod = 1;
    return d;
  }
  bool dense = true;
  int64_t inner = 1;
  for (int64_t j = hi - 1; j >= lo; --j) {
    if (xd[j] == 1) continue;
    if (st[j] != inner) dense = false;
    inner *= xd[j];
  }
  if (dense) {
    d.mode = rk::ParamMode::kDivMod;
    d.mod = inner;
    d.div = 1;
    for (int64_t j = hi; j < xr; ++j) d.div *= xd[j];
    return d;
  }
  d.mode = rk::ParamMode::kStrided;
  for (int64_t j = 0; j < xr; ++j) d.strides[j] = st[j];
  return d;
}

class NormalizationKernel : public Kernel {
 public:
  size_t workspace_size(const LaunchArgs& a) const override {
    return rk::normalization_workspace_size(problem(a));
  }

  void enqueue(const LaunchArgs& a) override {
    rk::NormProblem p = problem(a);
    rk::launch_normalization(p, a.workspace, a.workspace_bytes, a.stream);
    check_launch("cuda.normalization");
  }

 private:
  static rk::NormProblem problem(const LaunchArgs& a) {
    const auto& at = a.node.a<NormalizationAttrs>();
    const rk::NormKind kind = *kind_of(at.kind);
    const DeviceTensor& x = a.in(0);
    const Dims& d = x.dims;
    const int64_t rank = static_cast<int64_t>(d.size());
    KILN_EXPECT(rank <= rk::kMaxDims, StatusCode::kUnsupported, "cuda.normalization: rank ", rank,
                " > ", rk::kMaxDims);
    rk::NormProblem p;
    p.kind = kind;
    p.dtype = rk_dtype(x.dtype);
    p.x = x.data;
    p.y = a.outputs[0].data;
    p.rank = static_cast<int>(rank);
    for (int64_t i = 0; i < rank; ++i) p.dims[i] = d[i];
    p.epsilon = at.epsilon;
    p.size = at.size;
    p.alpha = at.alpha;
    p.beta = at.beta;
    p.lrn_bias = at.lrn_bias;
    if (kind == rk::NormKind::kLrn) return p;

    const bool channel_aligned = kind == rk::NormKind::kBatch || kind == rk::NormKind::kInstance ||
                                 kind == rk::NormKind::kGroup;
    int64_t spatial = 1, group_size = 0;
    for (int64_t i = 2; i < rank; ++i) spatial *= d[i];
    if (kind == rk::NormKind::kGroup) {
      KILN_EXPECT(at.num_groups >= 1 && d[1] % at.num_groups == 0, StatusCode::kInvalidArgument,
                  "num_groups ", at.num_groups, " does not divide the ", d[1], " channels");
      group_size = d[1] / at.num_groups;
    }
    rk::NormParam* slots[5] = {nullptr, &p.scale, &p.bias, &p.mean, &p.var};
    for (size_t i = 1; i < 5; ++i) {
      if (!a.has(i)) continue;
      const DeviceTensor& t = a.in(i);
      if (kind == rk::NormKind::kGroup && t.rank() == 1 && t.numel() == at.num_groups &&
          at.num_groups != d[1]) {
        // One value per group: offset = channel / group_size.
        rk::NormParam& s = *slots[i];
        s.p = t.data;
        s.present = true;
        s.dtype = rk_dtype(t.dtype);
        s.mode = rk::ParamMode::kDivMod;
        s.div = spatial * group_size;
        s.mod = at.num_groups;
        continue;
      }
      *slots[i] = describe(t, d, channel_aligned ? 1 : -1, i);
    }
    if (kind == rk::NormKind::kBatch) return p;

    if (kind == rk::NormKind::kGroup) {
      p.rows = d[0] * at.num_groups;
      p.row_len = p.rows ? x.numel() / p.rows : 0;
    } else {
      const int64_t axis = kind == rk::NormKind::kInstance
                               ? std::min<int64_t>(2, rank)
                               : normalize_axis(at.axis, rank, "normalization axis");
      p.rows = 1;
      p.row_len = 1;
      for (int64_t i = 0; i < rank; ++i) (i < axis ? p.rows : p.row_len) *= d[i];
    }
    if (kind == rk::NormKind::kLayer) {
      if (a.outputs.size() > 1 && a.outputs[1].defined()) {
        p.mean_out = a.outputs[1].data;
        p.mean_dtype = rk_dtype(a.outputs[1].dtype);
      }
      if (a.outputs.size() > 2 && a.outputs[2].defined()) {
        p.inv_std_out = a.outputs[2].data;
        p.inv_std_dtype = rk_dtype(a.outputs[2].dtype);
      }
    }
    return p;
  }
};

std::unique_ptr<Kernel> make(const Node&) { return std::make_unique<NormalizationKernel>(); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_normalization() {
  static const cuda::SimpleTactic t("cuda.normalization", "Normalization", cuda::supports,
                                    cuda::make);
  return t;
}

}  // namespace kiln
