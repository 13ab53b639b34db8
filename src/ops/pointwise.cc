// Pointwise: an element-wise expression program over broadcast inputs (expr/program.h). Every
// ONNX element-wise op, activation, comparison and Cast lowers to it; fusion merges programs.
#include "expr/eval.h"
#include "ops/op_util.h"
#include "ops/pointwise.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  const auto& p = ctx.node().a<PointwiseAttrs>().program;
  if (p.input_types.size() != ctx.num_inputs())
    ctx.error(cat("program has ", p.input_types.size(), " inputs but the node has ",
                  ctx.num_inputs()));
  std::vector<Shape> shapes;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (ctx.dtype(i) != p.input_types[i])
      ctx.error(cat("input ", i, " is ", dtype_name(ctx.dtype(i)), " but the program expects ",
                    dtype_name(p.input_types[i])));
    shapes.push_back(ctx.shape(i));
  }
  Shape out = broadcast_shapes(shapes);
  if (ctx.node().outputs.size() != p.outputs.size())
    ctx.error("output count differs from the program's");
  for (size_t k = 0; k < p.outputs.size(); ++k) ctx.set_output(k, p.code[p.outputs[k]].dtype, out);
}

void compute(const ComputeArgs& a) {
  const auto& p = a.node.a<PointwiseAttrs>().program;
  expr::evaluate(p, a.inputs, a.outputs);
}

}  // namespace

const OpDef& kiln_op_pointwise() {
  static const OpDef d{"Pointwise", make_attrs_of<PointwiseAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
