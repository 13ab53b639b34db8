// MaxUnpool: the reference scatter. See max_unpool.h for the semantics.
#include "ops/max_unpool.h"

#include <cstring>

#include "ops/op_util.h"

namespace kiln {

namespace {

// The default (inferred) output dims for concrete input dims; unknown axes stay unknown.
Shape default_shape(const MaxUnpoolAttrs& a, const Shape& xs, const InferContext* ctx) {
  size_t nsp = xs.rank() - 2;
  auto bad = [&](const std::string& msg) {
    if (ctx) ctx->error(msg);
    fail(StatusCode::kInvalidModel, "MaxUnpool: ", msg);
  };
  if (a.kernel.size() != nsp)
    bad(cat("kernel has ", a.kernel.size(), " values but X has ", nsp, " spatial axes"));
  if (!a.strides.empty() && a.strides.size() != nsp)
    bad(cat("strides has ", a.strides.size(), " values but X has ", nsp, " spatial axes"));
  if (!a.pads.empty() && a.pads.size() != 2 * nsp)
    bad(cat("pads has ", a.pads.size(), " values but X needs ", 2 * nsp));
  Shape s;
  s.dims = {xs[0], xs[1]};
  for (size_t i = 0; i < nsp; ++i) {
    const Dim& d = xs[2 + i];
    if (!d.known()) {
      s.dims.push_back(Dim::unknown());
      continue;
    }
    int64_t st = a.strides.empty() ? 1 : a.strides[i];
    int64_t pads = a.pads.empty() ? 0 : a.pads[i] + a.pads[nsp + i];
    int64_t o = (d.value - 1) * st - pads + a.kernel[i];
    if (o < 0) bad(cat("axis ", i, " of the unpooled output would be ", o, " long"));
    s.dims.emplace_back(o);
  }
  return s;
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<MaxUnpoolAttrs>();
  DataType t = ctx.dtype(0);
  if (!dtype_is_supported(t)) ctx.error(cat("X has unsupported type ", dtype_name(t)));
  if (ctx.dtype(1) != DataType::kInt64)
    ctx.error(cat("Indices must be int64, got ", dtype_name(ctx.dtype(1))));
  const Shape& xs = ctx.shape(0);
  if (xs.rank_known && xs.rank() < 3)
    ctx.error(cat("X must have rank >= 3 ([N, C, spatial...]), got ", xs.str()));
  if (ctx.has_input(2)) {
    const Tensor* os = value_or_unknown(ctx, 2, t);
    if (!os) return;
    if (os->rank() != 1) ctx.error("output_shape must be a 1-D tensor");
    Dims d = to_int64s(*os);
    if (xs.rank_known && d.size() != xs.rank())
      ctx.error(cat("output_shape ", dims_to_string(d), " does not have X's rank ", xs.rank()));
    for (int64_t v : d)
      if (v < 0) ctx.error(cat("output_shape ", dims_to_string(d), " has a negative dim"));
    if (xs.rank_known) {
      Shape def = default_shape(a, xs, &ctx);
      for (size_t i = 0; i < d.size(); ++i)
        if (def[i].known() && d[i] < def[i].value)
          ctx.error(cat("output_shape ", dims_to_string(d), " is smaller than the unpooled shape ",
                        def.str()));
    }
    ctx.set_output(0, t, Shape::from(d));
    return;
  }
  if (!xs.rank_known) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return;
  }
  ctx.set_output(0, t, default_shape(a, xs, &ctx));
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<MaxUnpoolAttrs>();
  const Tensor& x = args.in(0);
  const Tensor& ind = args.in(1);
  Tensor& y = args.out(0);
  KILN_EXPECT(ind.dims() == x.dims(), StatusCode::kInvalidArgument, "MaxUnpool: Indices ",
              dims_to_string(ind.dims()), " must have X's shape ", dims_to_string(x.dims()));
  Dims def = default_shape(a, Shape::from(x.dims()), nullptr).concrete();
  int64_t def_vol = dims_volume(def);
  KILN_CHECK(y.rank() == def.size());
  Ints def_str = strides_of(def), y_str = strides_of(y.dims());
  std::memset(y.raw(), 0, y.nbytes());  // outputs may arrive holding stale data
  const int64_t* ip = ind.data<int64_t>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t idx = ip[i];
    KILN_EXPECT(idx >= 0 && idx < def_vol, StatusCode::kInvalidArgument, "MaxUnpool: index ", idx,
                " at position ", i, " is outside the unpooled tensor ", dims_to_string(def));
    int64_t dst = 0;  // the same coordinates in the (possibly larger) output
    for (size_t j = 0; j < def.size(); ++j) dst += ((idx / def_str[j]) % def[j]) * y_str[j];
    copy_element(x, i, y, dst);
  }
}

}  // namespace

const OpDef& kiln_op_max_unpool() {
  static const OpDef d{"MaxUnpool", make_attrs_of<MaxUnpoolAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
