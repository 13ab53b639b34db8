// Transpose: permutes dims; the reference is a strided copy.
#include "ops/transpose.h"

#include "ops/movement_util.h"

namespace kiln {

namespace {

// The effective permutation for rank r; throws naming the problem when perm is not one.
Ints checked_perm(const Ints& perm, size_t r, const std::string& where) {
  if (perm.empty()) {
    Ints p(r);
    for (size_t i = 0; i < r; ++i) p[i] = static_cast<int64_t>(r - 1 - i);
    return p;
  }
  KILN_EXPECT(perm.size() == r, StatusCode::kInvalidModel, where, ": perm ", dims_to_string(perm),
              " has ", perm.size(), " entries but the input has rank ", r);
  std::vector<bool> seen(r, false);
  for (int64_t p : perm) {
    KILN_EXPECT(p >= 0 && p < static_cast<int64_t>(r) && !seen[p], StatusCode::kInvalidModel, where,
                ": perm ", dims_to_string(perm), " is not a permutation of 0..", r - 1);
    seen[p] = true;
  }
  return perm;
}

void infer(InferContext& ctx) {
  const auto& at = ctx.node().a<TransposeAttrs>();
  Shape in = known_shape(ctx, 0);
  if (!in.rank_known) {
    ctx.set_output(0, ctx.dtype(0),
                   at.perm.empty() ? Shape::unknown_rank()
                                   : Shape(std::vector<Dim>(at.perm.size(), Dim::unknown())));
    return;
  }
  Ints p;
  try {
    p = checked_perm(at.perm, in.rank(), "transpose");
  } catch (const Error& e) {
    ctx.error(e.message());
  }
  Shape out;
  for (int64_t i : p) out.dims.push_back(in.dims[i]);
  ctx.set_output(0, ctx.dtype(0), out);
}

void compute(const ComputeArgs& a) {
  const Tensor& x = a.in(0);
  Ints p = checked_perm(a.node.a<TransposeAttrs>().perm, x.rank(), "transpose");
  auto st = strides_of(x.dims());
  Dims od;
  std::vector<int64_t> os;
  for (int64_t i : p) {
    od.push_back(x.dim(i));
    os.push_back(st[i]);
  }
  Tensor& y = output_tensor(a, 0, x.dtype(), od);
  strided_copy(x, 0, od, os, y);
}

}  // namespace

const OpDef& kiln_op_transpose() {
  static const OpDef d{"Transpose", make_attrs_of<TransposeAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
