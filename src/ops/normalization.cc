// Normalization: batch (inference), instance, group, layer, RMS and local-response normalization.
// ONNX BatchNormalization, InstanceNormalization, GroupNormalization, LayerNormalization and LRN
// lower to it; fusing it into a preceding Conv or MatMul is a pass's job.
#include "ops/normalization.h"

#include <cmath>

#include "ops/op_util.h"
#include "ops/reduce.h"

namespace kiln {

namespace {

enum class Kind { kBatch, kInstance, kGroup, kLayer, kRms, kLrn };

Kind kind_of(const NormalizationAttrs& a) {
  if (a.kind == "batch") return Kind::kBatch;
  if (a.kind == "instance") return Kind::kInstance;
  if (a.kind == "group") return Kind::kGroup;
  if (a.kind == "layer") return Kind::kLayer;
  if (a.kind == "rms") return Kind::kRms;
  if (a.kind == "lrn") return Kind::kLrn;
  fail(StatusCode::kInvalidModel, "unknown normalization kind '", a.kind,
       "' (batch, instance, group, layer, rms or lrn)");
}

// Kinds whose parameters align with X from axis 1 (per channel) rather than from the right.
bool channel_aligned(Kind k) {
  return k == Kind::kBatch || k == Kind::kInstance || k == Kind::kGroup;
}
bool has_stat_outputs(Kind k) { return k == Kind::kLayer; }

const char* param_name(size_t i) {
  static const char* names[] = {"X", "scale", "bias", "mean", "var"};
  return i < 5 ? names[i] : "input";
}

// Checks that a parameter of shape p can broadcast onto x's shape when aligned at axis `start`
// (channel-aligned) or from the right (start < 0). Dims that are not known are not checked.
void check_param_shape(InferContext& ctx, size_t i, const Shape& x, const Shape& p, int64_t start) {
  if (!x.rank_known || !p.rank_known) return;
  int64_t xr = static_cast<int64_t>(x.rank()), pr = static_cast<int64_t>(p.rank());
  if (start < 0) start = xr - pr;
  if (start < 0 || start + pr > xr)
    ctx.error(cat(param_name(i), " of shape ", p.str(), " does not fit X of shape ", x.str()));
  for (int64_t j = 0; j < pr; ++j) {
    const Dim& pd = p[j];
    const Dim& xd = x[start + j];
    if (pd.known() && xd.known() && pd.value != xd.value && pd.value != 1)
      ctx.error(cat(param_name(i), " of shape ", p.str(), " does not broadcast onto X of shape ",
                    x.str()));
  }
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<NormalizationAttrs>();
  Kind k = kind_of(a);
  DataType t = ctx.dtype(0);
  if (!dtype_is_float(t))
    ctx.error(cat("normalization needs a floating-point input, got ", dtype_name(t)));
  const Shape& s = ctx.shape(0);
  int64_t rank = static_cast<int64_t>(s.rank());
  if (k != Kind::kLayer && k != Kind::kRms && s.rank_known && rank < 2)
    ctx.error(cat(a.kind, " normalization needs X of rank >= 2 (N, C, ...), got ", s.str()));
  if (a.epsilon < 0) ctx.error(cat("epsilon must not be negative, got ", a.epsilon));
  if (k == Kind::kBatch && (!ctx.has_input(3) || !ctx.has_input(4)))
    ctx.error("batch normalization needs the mean and var inputs");
  if (k == Kind::kGroup) {
    if (a.num_groups < 1) ctx.error(cat("num_groups must be positive, got ", a.num_groups));
    if (s.rank_known && s[1].known() && s[1].value % a.num_groups != 0)
      ctx.error(cat("num_groups ", a.num_groups, " does not divide the ", s[1].value, " channels"));
  }
  if (k == Kind::kLrn && a.size < 1) ctx.error(cat("LRN size must be positive, got ", a.size));
  int64_t axis = 0;
  if ((k == Kind::kLayer || k == Kind::kRms) && s.rank_known)
    axis = normalize_axis(a.axis, rank, "normalization axis");
  size_t n_params = k == Kind::kBatch ? 5 : 3;
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    if (i >= n_params) ctx.error(cat(a.kind, " normalization takes ", n_params, " inputs"));
    if (!dtype_is_float(ctx.dtype(i)))
      ctx.error(cat(param_name(i), " must be floating-point, got ", dtype_name(ctx.dtype(i))));
    const Shape& p = ctx.shape(i);
    if (k == Kind::kGroup && p.rank_known && p.rank() == 1 && p[0].known() &&
        p[0].value == a.num_groups)
      continue;  // one value per group
    check_param_shape(ctx, i, s, p, channel_aligned(k) ? 1 : -1);
  }
  ctx.set_output(0, t, s);
  if (ctx.node().outputs.size() > 1) {
    if (!has_stat_outputs(k))
      ctx.error(cat(a.kind, " normalization has one output, the node asks for ",
                    ctx.node().outputs.size()));
    if (!dtype_is_float(a.stash_type))
      ctx.error(cat("stash_type must be floating-point, got ", dtype_name(a.stash_type)));
    Shape st = s;
    if (s.rank_known)
      for (int64_t i = axis; i < rank; ++i) st.dims[i] = Dim(1);
    ctx.set_output(1, a.stash_type, st);
    ctx.set_output(2, a.stash_type, st);
  }
}

// For every element of x, the offset of its value in parameter p (broadcast, aligned at `start`,
// or from the right when start < 0).
std::vector<int64_t> param_offsets(const Tensor& x, const Tensor& p, int64_t start, size_t i) {
  const Dims& xd = x.dims();
  const Dims& pd = p.dims();
  int64_t xr = static_cast<int64_t>(xd.size()), pr = static_cast<int64_t>(pd.size());
  if (start < 0) start = xr - pr;
  if (start < 0 || start + pr > xr)
    fail(StatusCode::kInvalidArgument, param_name(i), " of shape ", dims_to_string(pd),
         " does not fit X of shape ", dims_to_string(xd));
  std::vector<int64_t> ps = strides_of(pd), st(xd.size(), 0);
  for (int64_t j = 0; j < pr; ++j) {
    if (pd[j] == xd[start + j])
      st[start + j] = ps[j];
    else if (pd[j] != 1)
      fail(StatusCode::kInvalidArgument, param_name(i), " of shape ", dims_to_string(pd),
           " does not broadcast onto X of shape ", dims_to_string(xd));
  }
  return strided_offsets(xd, st);
}

// Per-slot mean and biased variance (or mean of squares when !center) of x.
void slot_stats(const Tensor& x, const std::vector<int64_t>& slot, int64_t n_slots, bool center,
                std::vector<double>& mean, std::vector<double>& var) {
  std::vector<double> count(static_cast<size_t>(n_slots), 0.0);
  mean.assign(static_cast<size_t>(n_slots), 0.0);
  var.assign(static_cast<size_t>(n_slots), 0.0);
  const int64_t n = x.numel();
  if (center) {
    for (int64_t i = 0; i < n; ++i) {
      mean[slot[i]] += x.get_f64(i);
      count[slot[i]] += 1;
    }
    for (int64_t s = 0; s < n_slots; ++s) mean[s] /= count[s];
  } else {
    for (int64_t i = 0; i < n; ++i) count[slot[i]] += 1;
  }
  for (int64_t i = 0; i < n; ++i) {
    double dv = x.get_f64(i) - mean[slot[i]];
    var[slot[i]] += dv * dv;
  }
  for (int64_t s = 0; s < n_slots; ++s) var[s] /= count[s];
}

void compute_lrn(const NormalizationAttrs& a, const Tensor& x, Tensor& y) {
  const Dims& d = x.dims();
  int64_t n = d[0], c = d[1], sp = x.numel() / std::max<int64_t>(1, n * c);
  int64_t lo = (a.size - 1) / 2, hi = a.size - 1 - lo;  // floor and ceil of (size-1)/2
  double scale = a.alpha / static_cast<double>(a.size);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t s = 0; s < sp; ++s) {
        double sq = 0;
        for (int64_t cc = std::max<int64_t>(0, ch - lo); cc <= std::min(c - 1, ch + hi); ++cc) {
          double v = x.get_f64((b * c + cc) * sp + s);
          sq += v * v;
        }
        int64_t i = (b * c + ch) * sp + s;
        y.set_f64(i, x.get_f64(i) / std::pow(a.lrn_bias + scale * sq, a.beta));
      }
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<NormalizationAttrs>();
  Kind k = kind_of(a);
  const Tensor& x = args.in(0);
  Tensor& y = args.out(0);
  const Dims& d = x.dims();
  const int64_t rank = static_cast<int64_t>(d.size());
  const int64_t n = x.numel();
  if (k == Kind::kLrn) {
    compute_lrn(a, x, y);
    return;
  }

  // Parameter lookups: offsets per element of x, or none when the input is omitted.
  std::vector<int64_t> off[5];
  int64_t group_size = 0, spatial = 1;
  if (k == Kind::kGroup || k == Kind::kInstance)
    for (int64_t i = 2; i < rank; ++i) spatial *= d[i];
  if (k == Kind::kGroup) {
    if (d[1] % a.num_groups != 0)
      fail(StatusCode::kInvalidArgument, "num_groups ", a.num_groups, " does not divide the ", d[1],
           " channels");
    group_size = d[1] / a.num_groups;
  }
  for (size_t i = 1; i < 5; ++i) {
    if (!args.has(i)) continue;
    const Tensor& p = args.in(i);
    if (k == Kind::kGroup && p.rank() == 1 && p.numel() == a.num_groups && a.num_groups != d[1]) {
      off[i].resize(static_cast<size_t>(n));
      for (int64_t e = 0; e < n; ++e) off[i][e] = (e / spatial) % d[1] / group_size;
      continue;
    }
    off[i] = param_offsets(x, p, channel_aligned(k) ? 1 : -1, i);
  }

  // Statistics slot of every element.
  std::vector<int64_t> slot;
  int64_t n_slots = 0;
  int64_t axis = 0;
  if (k == Kind::kLayer || k == Kind::kRms || k == Kind::kInstance) {
    axis = k == Kind::kInstance ? std::min<int64_t>(2, rank)
                                : normalize_axis(a.axis, rank, "normalization axis");
    std::vector<bool> reduced(d.size(), false);
    n_slots = 1;
    for (int64_t i = 0; i < rank; ++i) {
      reduced[i] = i >= axis;
      if (!reduced[i]) n_slots *= d[i];
    }
    slot = strided_offsets(d, kept_strides(d, reduced));
  } else if (k == Kind::kGroup) {
    n_slots = d[0] * a.num_groups;
    slot.resize(static_cast<size_t>(n));
    for (int64_t e = 0; e < n; ++e) {
      int64_t b = e / (d[1] * spatial), ch = (e / spatial) % d[1];
      slot[e] = b * a.num_groups + ch / group_size;
    }
  }
  std::vector<double> mean, var;
  if (k != Kind::kBatch) slot_stats(x, slot, n_slots, k != Kind::kRms, mean, var);

  auto param = [&](size_t i, int64_t e, double def) {
    return off[i].empty() ? def : args.in(i).get_f64(off[i][e]);
  };
  for (int64_t e = 0; e < n; ++e) {
    double v = x.get_f64(e), m, inv;
    if (k == Kind::kBatch) {
      m = param(3, e, 0.0);
      inv = 1.0 / std::sqrt(param(4, e, 1.0) + a.epsilon);
    } else {
      m = mean[slot[e]];
      inv = 1.0 / std::sqrt(var[slot[e]] + a.epsilon);
    }
    y.set_f64(e, (v - m) * inv * param(1, e, 1.0) + param(2, e, 0.0));
  }
  if (args.outputs.size() > 1 && has_stat_outputs(k)) {
    for (size_t o = 1; o < 3 && o < args.outputs.size(); ++o) {
      Tensor& t = args.out(o);
      if (!t.defined()) continue;
      for (int64_t s = 0; s < n_slots; ++s)
        t.set_f64(s, o == 1 ? mean[s] : 1.0 / std::sqrt(var[s] + a.epsilon));
    }
  }
}

}  // namespace

const OpDef& kiln_op_normalization() {
  static const OpDef d{"Normalization", make_attrs_of<NormalizationAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
