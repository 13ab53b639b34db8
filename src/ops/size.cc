// Size: a tensor's element count as data. Folded at build time when the dims are known.
#include "ops/size.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  ctx.input(0);
  ctx.set_output(0, DataType::kInt64, Shape());
}

void compute(const ComputeArgs& a) {
  Tensor& y = output_tensor(a, 0, DataType::kInt64, {});
  y.data<int64_t>()[0] = a.in(0).numel();
}

}  // namespace

const OpDef& kiln_op_size() {
  static const OpDef d{"Size", make_attrs_of<SizeAttrs>, infer, compute,
                       /*data_dependent_shape=*/false, /*reads_only_dims=*/true};
  return d;
}

}  // namespace kiln
