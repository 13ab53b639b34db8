// ONNX reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare, ArgMax, ArgMin.
// All lower to one Reduce node. Axes are an attribute up to opset 17 (12 for ReduceSum) and an
// input from then on; a constant axes input is folded into the attribute.
#include "ops/reduce.h"

#include "onnx/importer.h"

namespace kiln::onnx {

namespace {

void check_input(ImportContext& c) {
  Value* x = c.input(0);
  if (!dtype_is_supported(x->dtype))
    c.unsupported(cat("input type ", dtype_name(x->dtype), " is not supported"));
}

// `axes_input_since`: the first opset in which this op takes axes as its second input.
void reduce_op(ImportContext& c, const char* kind, int64_t axes_input_since) {
  check_input(c);
  auto a = std::make_unique<ReduceAttrs>();
  a->kind = kind;
  a->keepdims = c.attr_int("keepdims", 1) != 0;
  std::vector<Value*> ins = {c.input(0)};
  if (c.opset() >= axes_input_since) {
    if (c.has_attr("axes"))
      c.invalid(cat("axes is an input since opset ", axes_input_since, ", not an attribute"));
    a->noop_with_empty_axes = c.attr_int("noop_with_empty_axes", 0) != 0;
    if (c.has_input(1)) {
      const Tensor* t = c.constant_input(1);
      if (t && t->rank() <= 1) {
        for (int64_t i = 0; i < t->numel(); ++i) a->axes.push_back(t->get_i64(i));
      } else {
        ins.push_back(c.input(1));  // known at run time (or invalid: the op reports it)
      }
    }
  } else {
    if (c.num_inputs() > 1) c.invalid(cat("takes one input before opset ", axes_input_since));
    a->axes = c.attr_ints("axes");
  }
  c.set_output(0, c.add1("Reduce", std::move(ins), std::move(a)));
}

void arg_op(ImportContext& c, const char* kind) {
  check_input(c);
  auto a = std::make_unique<ReduceAttrs>();
  a->kind = kind;
  a->axes = {c.attr_int("axis", 0)};
  a->keepdims = c.attr_int("keepdims", 1) != 0;
  a->select_last_index = c.attr_int("select_last_index", 0) != 0;
  c.set_output(0, c.add1("Reduce", {c.input(0)}, std::move(a)));
}

#define REDUCE(NAME, KIND, SINCE) \
  void imp_##NAME(ImportContext& c) { reduce_op(c, KIND, SINCE); }
REDUCE(ReduceSum, "sum", 13)
REDUCE(ReduceMean, "mean", 18)
REDUCE(ReduceMax, "max", 18)
REDUCE(ReduceMin, "min", 18)
REDUCE(ReduceProd, "prod", 18)
REDUCE(ReduceL1, "l1", 18)
REDUCE(ReduceL2, "l2", 18)
REDUCE(ReduceLogSum, "log_sum", 18)
REDUCE(ReduceLogSumExp, "log_sum_exp", 18)
REDUCE(ReduceSumSquare, "sum_square", 18)
#undef REDUCE

void imp_ArgMax(ImportContext& c) { arg_op(c, "argmax"); }
void imp_ArgMin(ImportContext& c) { arg_op(c, "argmin"); }

}  // namespace

const ImporterList& kiln_import_reduce() {
  // Opset 18 only moved axes to an input, which the lowering handles, so it is accepted too.
  static const ImporterList l{{
      {"ReduceSum", imp_ReduceSum, 1},
      {"ReduceMean", imp_ReduceMean, 1},
      {"ReduceMax", imp_ReduceMax, 1},
      {"ReduceMin", imp_ReduceMin, 1},
      {"ReduceProd", imp_ReduceProd, 1},
      {"ReduceL1", imp_ReduceL1, 1},
      {"ReduceL2", imp_ReduceL2, 1},
      {"ReduceLogSum", imp_ReduceLogSum, 1},
      {"ReduceLogSumExp", imp_ReduceLogSumExp, 1},
      {"ReduceSumSquare", imp_ReduceSumSquare, 1},
      {"ArgMax", imp_ArgMax},
      {"ArgMin", imp_ArgMin},
  }};
  return l;
}

}  // namespace kiln::onnx
