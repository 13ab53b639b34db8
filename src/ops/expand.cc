// Expand: bidirectional broadcast to a shape given as a tensor.
#include "ops/expand.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  DataType dt = ctx.dtype(0);
  expect_int_input(ctx, 1, "shape");
  Shape in = known_shape(ctx, 0);
  const Tensor* sv = ctx.value(1);
  if (sv) {
    if (sv->rank() != 1) ctx.error(cat("shape must be 1-D, not ", dims_to_string(sv->dims())));
    Ints s = to_int64s(*sv);
    for (int64_t v : s)
      if (v < 0) ctx.error(cat("shape ", dims_to_string(s), " has a negative entry"));
    try {
      return ctx.set_output(0, dt, broadcast_shapes({in, Shape::from(s)}));
    } catch (const Error& e) {
      ctx.error(e.message());
    }
  }
  // Unknown target: its length gives the rank; a known input dim other than 1 must survive.
  const Shape& ss = ctx.shape(1);
  if (!in.rank_known || !ss.rank_known || ss.rank() != 1 || !ss.dims[0].known())
    return ctx.set_output(0, dt, Shape::unknown_rank());
  if (ss.dims[0].value > kMaxRank)
    ctx.error(cat("the shape operand asks for rank ", ss.dims[0].value, "; kiln supports up to ", kMaxRank));
  size_t r = std::max<size_t>(in.rank(), ss.dims[0].value);
  Shape out(std::vector<Dim>(r, Dim::unknown()));
  for (size_t i = 0; i < in.rank(); ++i) {
    const Dim& d = in.dims[i];
    if (d.known() && d.value != 1) out.dims[r - in.rank() + i] = d;
  }
  ctx.set_output(0, dt, out);
}

void compute(const ComputeArgs& a) {
  const Tensor& x = a.in(0);
  Ints s = to_int64s(a.in(1));
  for (int64_t v : s)
    KILN_EXPECT(v >= 0, StatusCode::kInvalidArgument, "shape ", dims_to_string(s),
                " has a negative entry");
  Dims od;
  try {
    od = broadcast_dims({x.dims(), s});
  } catch (const Error& e) {
    fail(StatusCode::kInvalidArgument, "cannot expand ", dims_to_string(x.dims()), " to ",
         dims_to_string(s));
  }
  Tensor& y = output_tensor(a, 0, x.dtype(), od);
  auto st = strides_of(x.dims());
  size_t r = od.size(), off = r - x.rank();
  std::vector<int64_t> os(r, 0);
  for (size_t i = 0; i < x.rank(); ++i) os[off + i] = x.dim(i) == 1 ? 0 : st[i];
  if (y.numel()) strided_copy(x, 0, od, os, y);
}

}  // namespace

const OpDef& kiln_op_expand() {
  static const OpDef d{"Expand", make_attrs_of<ExpandAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
