// NllLoss: the negative log-likelihood loss; SoftmaxCrossEntropyLoss lowers to Softmax
// (log_softmax) followed by this.
#include "ops/nll_loss.h"

#include "ops/op_util.h"

namespace kiln {

namespace {

void check_reduction(const NllLossAttrs& a) {
  if (a.reduction != "none" && a.reduction != "sum" && a.reduction != "mean")
    fail(StatusCode::kInvalidModel, "unknown reduction '", a.reduction, "' (none, sum or mean)");
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<NllLossAttrs>();
  check_reduction(a);
  DataType t = ctx.dtype(0);
  if (!dtype_is_float(t)) ctx.error(cat("the input must be floating-point, got ", dtype_name(t)));
  DataType tt = ctx.dtype(1);
  if (tt != DataType::kInt64 && tt != DataType::kInt32)
    ctx.error(cat("the target must be int32 or int64, got ", dtype_name(tt)));
  const Shape& s = ctx.shape(0);
  const Shape& ts = ctx.shape(1);
  if (s.rank_known && s.rank() < 2) ctx.error(cat("the input must be [N, C, ...], got ", s.str()));
  if (s.rank_known && ts.rank_known) {
    if (ts.rank() + 1 != s.rank())
      ctx.error(cat("the target ", ts.str(), " must have one axis less than the input ", s.str()));
    for (size_t i = 0; i < ts.rank(); ++i) {
      const Dim& sd = s[i == 0 ? 0 : i + 1];
      if (sd.known() && ts[i].known() && sd.value != ts[i].value)
        ctx.error(cat("the target ", ts.str(), " does not match the input ", s.str()));
    }
  }
  if (ctx.has_input(2)) {
    if (ctx.dtype(2) != t) ctx.error("the weight must have the input's type");
    const Shape& ws = ctx.shape(2);
    if (ws.rank_known && ws.rank() != 1) ctx.error(cat("the weight must be 1-D, got ", ws.str()));
    if (ws.rank_known && s.rank_known && ws[0].known() && s[1].known() && ws[0].value != s[1].value)
      ctx.error(cat("the weight ", ws.str(), " does not match the ", s[1].value, " classes"));
  }
  if (a.reduction != "none") {
    ctx.set_output(0, t, Shape(std::vector<Dim>{}));
    return;
  }
  if (ts.rank_known) {
    ctx.set_output(0, t, ts);
  } else if (s.rank_known) {
    Shape o = s;
    o.dims.erase(o.dims.begin() + 1);
    ctx.set_output(0, t, o);
  } else {
    ctx.set_output(0, t, Shape::unknown_rank());
  }
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<NllLossAttrs>();
  check_reduction(a);
  const Tensor& x = args.in(0);
  const Tensor& target = args.in(1);
  bool weighted = args.has(2);
  Tensor& y = args.out(0);
  int64_t n = x.dim(0), c = x.dim(1);
  int64_t inner = 1;
  for (size_t i = 2; i < x.rank(); ++i) inner *= x.dim(i);
  if (target.numel() != n * inner)
    fail(StatusCode::kInvalidArgument, "the target ", dims_to_string(target.dims()),
         " does not match the input ", dims_to_string(x.dims()));
  double sum = 0, wsum = 0;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t e = b * inner + i;
      int64_t cls = target.get_i64(e);
      double loss = 0, w = 0;
      if (!(a.has_ignore_index && cls == a.ignore_index)) {
        if (cls < 0 || cls >= c)
          fail(StatusCode::kInvalidArgument, "target value ", cls, " at element ", e,
               " is not a class index in [0, ", c, ")");
        w = weighted ? args.in(2).get_f64(cls) : 1.0;
        loss = -x.get_f64((b * c + cls) * inner + i) * w;
      }
      if (a.reduction == "none") y.set_f64(e, loss);
      sum += loss;
      wsum += w;
    }
  if (a.reduction == "sum") y.set_f64(0, sum);
  if (a.reduction == "mean") y.set_f64(0, sum / wsum);
}

}  // namespace

const OpDef& kiln_op_nll_loss() {
  static const OpDef d{"NllLoss", make_attrs_of<NllLossAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
