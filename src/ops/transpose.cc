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
  if (!at.pad_end.empty()) {
    if (at.pad_end.size() != out.dims.size()) ctx.error("pad_end must have one entry per dim");
    for (size_t d = 0; d < out.dims.size(); ++d) {
      if (at.pad_end[d] < 0) ctx.error("pad_end must not be negative");
      if (at.pad_end[d] && out.dims[d].known()) out.dims[d] = Dim(out.dims[d].value + at.pad_end[d]);
      else if (at.pad_end[d]) out.dims[d] = Dim::unknown();
    }
  }
  DataType dt = ctx.dtype(0);
  if (at.to != DataType::kUndefined) {
    if (!dtype_is_float(dt) || !dtype_is_float(at.to)) ctx.error("a converting Transpose is float to float");
    dt = at.to;
  }
  ctx.set_output(0, dt, out);
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
  const auto& at = a.node.a<TransposeAttrs>();
  if (!at.reformats()) {
    Tensor& y = output_tensor(a, 0, x.dtype(), od);
    strided_copy(x, 0, od, os, y);
    return;
  }
  // Reformat: element by element through double (exact for the float types kiln stores, and
  // float32 -> float16 then rounds once, as a Cast does).
  Dims yd = od;
  for (size_t d = 0; d < yd.size() && d < at.pad_end.size(); ++d) yd[d] += at.pad_end[d];
  Tensor& y = output_tensor(a, 0, at.to == DataType::kUndefined ? x.dtype() : at.to, yd);
  std::vector<int64_t> idx(yd.size(), 0);
  for (int64_t o = 0; o < y.numel(); ++o) {
    int64_t src = 0;
    bool pad = false;
    for (size_t d = 0; d < yd.size(); ++d) {
      if (idx[d] >= od[d]) pad = true;
      src += idx[d] * os[d];
    }
    y.set_f64(o, pad ? 0.0 : x.get_f64(src));
    for (size_t d = yd.size(); d-- > 0;) {
      if (++idx[d] < yd[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace

const OpDef& kiln_op_transpose() {
  static const OpDef d{"Transpose", make_attrs_of<TransposeAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
