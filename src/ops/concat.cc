// Concat: joins inputs along one axis.
#include "ops/concat.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  int64_t axis = ctx.node().a<ConcatAttrs>().axis;
  if (ctx.num_inputs() == 0) ctx.error("needs at least one input");
  DataType dt = ctx.dtype(0);
  std::vector<Shape> shapes;
  int64_t rank = -1;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (ctx.dtype(i) != dt)
      ctx.error(
          cat("input ", i, " is ", dtype_name(ctx.dtype(i)), " but input 0 is ", dtype_name(dt)));
    shapes.push_back(known_shape(ctx, i));
    if (!shapes.back().rank_known) continue;
    int64_t r = static_cast<int64_t>(shapes.back().rank());
    if (rank >= 0 && r != rank)
      ctx.error(cat("input ", i, " has rank ", r, " but an earlier input has rank ", rank));
    rank = r;
  }
  if (rank < 0) return ctx.set_output(0, dt, Shape::unknown_rank());
  if (rank == 0) ctx.error("cannot concatenate scalars");
  if (axis < -rank || axis >= rank)
    ctx.error(cat("axis ", axis, " is out of range for rank ", rank));
  if (axis < 0) axis += rank;
  Shape out(std::vector<Dim>(rank, Dim::unknown()));
  bool sum_known = true;
  int64_t sum = 0;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Shape& s = shapes[i];
    if (!s.rank_known) {
      sum_known = false;
      continue;
    }
    for (int64_t k = 0; k < rank; ++k) {
      const Dim& d = s.dims[k];
      if (k == axis) {
        if (d.known())
          sum += d.value;
        else
          sum_known = false;
        continue;
      }
      Dim& o = out.dims[k];
      if (d.known() && o.known() && d.value != o.value)
        ctx.error(cat("input ", i, " has shape ", s.str(),
                      ", which differs from the others "
                      "outside axis ",
                      axis));
      if (d.known() || (!o.known() && o.symbol.empty())) o = d;
    }
  }
  out.dims[axis] = sum_known ? Dim(sum) : Dim::unknown();
  // A single input concatenated is itself: keep its (possibly symbolic) dim.
  if (shapes.size() == 1) out.dims[axis] = shapes[0].dims[axis];
  ctx.set_output(0, dt, out);
}

void compute(const ComputeArgs& a) {
  const Tensor& x0 = a.in(0);
  int64_t rank = static_cast<int64_t>(x0.rank());
  int64_t axis = normalize_axis(a.node.a<ConcatAttrs>().axis, rank);
  Dims od = x0.dims();
  od[axis] = 0;
  for (const Tensor& t : a.inputs) {
    KILN_EXPECT(t.rank() == x0.rank() && t.dtype() == x0.dtype(), StatusCode::kInvalidArgument,
                "inputs differ in rank or type");
    for (int64_t k = 0; k < rank; ++k)
      KILN_EXPECT(k == axis || t.dim(k) == x0.dim(k), StatusCode::kInvalidArgument, "input shapes ",
                  dims_to_string(x0.dims()), " and ", dims_to_string(t.dims()),
                  " differ outside axis ", axis);
    od[axis] += t.dim(axis);
  }
  Tensor& y = output_tensor(a, 0, x0.dtype(), od);
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= od[k];
  for (int64_t k = axis + 1; k < rank; ++k) inner *= od[k];
  size_t es = dtype_size(x0.dtype());
  size_t out_row = static_cast<size_t>(od[axis] * inner) * es;
  size_t off = 0;
  auto* dst = static_cast<char*>(y.raw());
  for (const Tensor& t : a.inputs) {
    size_t row = static_cast<size_t>(t.dim(axis) * inner) * es;
    const auto* src = static_cast<const char*>(t.raw());
    if (row)
      for (int64_t o = 0; o < outer; ++o) std::memcpy(dst + o * out_row + off, src + o * row, row);
    off += row;
  }
}

}  // namespace

const OpDef& kiln_op_concat() {
  static const OpDef d{"Concat", make_attrs_of<ConcatAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
