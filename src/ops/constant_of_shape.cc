// ConstantOfShape: a filled tensor whose shape is data. Folded at build time when it is known.
#include "ops/constant_of_shape.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

DataType out_type(const ConstantOfShapeAttrs& at) {
  return at.value.defined() ? at.value.dtype() : DataType::kFloat;
}

void infer(InferContext& ctx) {
  const auto& at = ctx.node().a<ConstantOfShapeAttrs>();
  if (at.value.defined() && at.value.numel() != 1)
    ctx.error(cat("value must hold one element, not ", at.value.numel()));
  DataType dt = out_type(at);
  expect_int_input(ctx, 0, "shape");
  const Tensor* s = ctx.value(0);
  if (!s) {
    const Shape& ss = ctx.shape(0);
    if (ss.rank_known && ss.rank() == 1 && ss.dims[0].known()) {
      if (ss.dims[0].value > kMaxRank)
        ctx.error(cat("the shape operand asks for rank ", ss.dims[0].value, "; kiln supports up to ", kMaxRank));
      return ctx.set_output(0, dt, Shape(std::vector<Dim>(ss.dims[0].value, Dim::unknown())));
    }
    return ctx.set_output(0, dt, Shape::unknown_rank());
  }
  if (s->rank() > 1) ctx.error(cat("shape must be 1-D, not ", dims_to_string(s->dims())));
  Ints d = to_int64s(*s);
  for (int64_t v : d)
    if (v < 0) ctx.error(cat("shape ", dims_to_string(d), " has a negative entry"));
  ctx.set_output(0, dt, Shape::from(d));
}

void compute(const ComputeArgs& a) {
  const auto& at = a.node.a<ConstantOfShapeAttrs>();
  Ints d = to_int64s(a.in(0));
  for (int64_t v : d)
    KILN_EXPECT(v >= 0, StatusCode::kInvalidArgument, "shape ", dims_to_string(d),
                " has a negative entry");
  Tensor& y = output_tensor(a, 0, out_type(at), d);
  if (!at.value.defined()) {
    std::memset(y.raw(), 0, y.nbytes());  // float 0
    return;
  }
  for (int64_t i = 0; i < y.numel(); ++i) copy_element(at.value, 0, y, i);
}

}  // namespace

const OpDef& kiln_op_constant_of_shape() {
  static const OpDef d{"ConstantOfShape", make_attrs_of<ConstantOfShapeAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
