// Reshape: a view with ONNX shape semantics, plus attribute forms for Squeeze/Unsqueeze/Flatten
// (see reshape.h). Symbolic dims are carried through wherever the element count allows it.
#include "ops/reshape.h"

#include <algorithm>

#include "ops/movement_util.h"

namespace kiln {

namespace {

// The product of dims as a Dim: known when all are known, the single non-known dim when every
// other dim is 1, else unknown.
Dim product(const std::vector<Dim>& dims) {
  int64_t known = 1;
  const Dim* other = nullptr;
  int n_other = 0;
  for (const Dim& d : dims) {
    if (d.known()) {
      known *= d.value;
    } else {
      other = &d;
      ++n_other;
    }
  }
  if (n_other == 0) return Dim(known);
  if (known == 0) return Dim(0);
  if (n_other == 1 && known == 1) return *other;
  return Dim::unknown();
}

Shape shape_form(const ErrorFn& error, const Shape& in, const Ints& spec, bool allowzero) {
  Shape out;
  int minus_one = -1;
  bool has_zero = false;
  for (size_t i = 0; i < spec.size(); ++i) {
    int64_t s = spec[i];
    if (s == -1) {
      if (minus_one >= 0) error(cat("shape ", dims_to_string(spec), " has more than one -1"));
      minus_one = static_cast<int>(i);
      out.dims.push_back(Dim::unknown());
    } else if (s < -1) {
      error(cat("shape ", dims_to_string(spec), " has invalid entry ", s));
    } else if (s == 0 && !allowzero) {
      if (!in.rank_known) {
        out.dims.push_back(Dim::unknown());
      } else if (i >= in.rank()) {
        error(cat("shape ", dims_to_string(spec), " copies dim ", i, " (0) but the input has rank ",
                  in.rank()));
      } else {
        out.dims.push_back(in.dims[i]);
      }
    } else {
      has_zero |= s == 0;
      out.dims.push_back(Dim(s));
    }
  }
  if (allowzero && has_zero && minus_one >= 0)
    error(cat("shape ", dims_to_string(spec), " has both 0 and -1 while allowzero is set"));
  if (!in.rank_known) return out;

  // Compare the element counts with symbols cancelled out: in = ki * syms_i, out = ko * syms_o.
  int64_t ki = 1, ko = 1;
  std::vector<Dim> si, so;
  bool unknown_i = false, unknown_o = false;
  for (const Dim& d : in.dims) {
    if (d.known())
      ki *= d.value;
    else if (!d.symbol.empty())
      si.push_back(d);
    else
      unknown_i = true;
  }
  for (size_t i = 0; i < out.dims.size(); ++i) {
    if (static_cast<int>(i) == minus_one) continue;
    const Dim& d = out.dims[i];
    if (d.known()) {
      ko *= d.value;
    } else if (!d.symbol.empty()) {
      auto it = std::find(si.begin(), si.end(), d);
      if (it != si.end())
        si.erase(it);
      else
        so.push_back(d);
    } else {
      unknown_o = true;
    }
  }
  if (unknown_i || unknown_o || !so.empty()) return out;  // cannot reason about the count
  if (minus_one < 0) {
    if (si.empty() && ki != ko)
      error(cat("cannot reshape ", in.str(), " (", ki, " elements) to ", out.str(), " (", ko,
                " elements)"));
    return out;
  }
  if (si.empty()) {
    if (ko == 0 || ki % ko != 0)
      error(cat("cannot reshape ", in.str(), " to ", dims_to_string(spec), ": ", ki,
                " elements do not divide into ", ko));
    out.dims[minus_one] = Dim(ki / ko);
  } else if (si.size() == 1 && ki == ko) {
    out.dims[minus_one] = si[0];
  }
  return out;
}

Shape squeeze_form(const ErrorFn& error, const Shape& in, const Ints& axes) {
  if (!in.rank_known) return Shape::unknown_rank();
  int64_t r = static_cast<int64_t>(in.rank());
  std::vector<bool> drop(r, false);
  if (axes.empty()) {
    for (int64_t i = 0; i < r; ++i) {
      if (!in.dims[i].known()) return Shape::unknown_rank();  // might be 1 or not
      drop[i] = in.dims[i].value == 1;
    }
  } else {
    for (int64_t a : axes) {
      if (a < -r || a >= r) error(cat("squeeze axis ", a, " is out of range for rank ", r));
      int64_t n = a < 0 ? a + r : a;
      if (drop[n]) error(cat("squeeze axis ", a, " is repeated"));
      if (in.dims[n].known() && in.dims[n].value != 1)
        error(cat("cannot squeeze axis ", a, " of ", in.str(), ": its size is not 1"));
      drop[n] = true;
    }
  }
  Shape out;
  for (int64_t i = 0; i < r; ++i)
    if (!drop[i]) out.dims.push_back(in.dims[i]);
  return out;
}

Shape unsqueeze_form(const ErrorFn& error, const Shape& in, const Ints& axes) {
  if (!in.rank_known) return Shape::unknown_rank();
  int64_t r = static_cast<int64_t>(in.rank() + axes.size());
  std::vector<bool> ins(r, false);
  for (int64_t a : axes) {
    if (a < -r || a >= r) error(cat("unsqueeze axis ", a, " is out of range for output rank ", r));
    int64_t n = a < 0 ? a + r : a;
    if (ins[n]) error(cat("unsqueeze axis ", a, " is repeated"));
    ins[n] = true;
  }
  Shape out;
  size_t j = 0;
  for (int64_t i = 0; i < r; ++i) out.dims.push_back(ins[i] ? Dim(1) : in.dims[j++]);
  return out;
}

Shape flatten_form(const ErrorFn& error, const Shape& in, int64_t axis) {
  if (!in.rank_known) return Shape({Dim::unknown(), Dim::unknown()});
  int64_t r = static_cast<int64_t>(in.rank());
  if (axis < -r || axis > r) error(cat("flatten axis ", axis, " is out of range for rank ", r));
  if (axis < 0) axis += r;
  std::vector<Dim> a(in.dims.begin(), in.dims.begin() + axis),
      b(in.dims.begin() + axis, in.dims.end());
  return Shape({product(a), product(b)});
}

// The output shape for input shape `in` and operand 1 (the shape, or the squeeze/unsqueeze axes
// given at run time): `spec` is its value (null when unknown), `spec_shape` its shape, `has_spec`
// whether the node has it at all.
Shape output_shape(const ReshapeAttrs& at, const Shape& in, const Tensor* spec,
                   const Shape& spec_shape, bool has_spec, const ErrorFn& error) {
  bool axes_form = at.form == "squeeze" || at.form == "unsqueeze";
  if (!at.form.empty() && !axes_form && at.form != "flatten")
    error(cat("unknown reshape form '", at.form, "'"));
  if (at.form == "flatten") return flatten_form(error, in, at.axis);
  if (axes_form && !has_spec) {
    return at.form == "squeeze" ? squeeze_form(error, in, at.axes)
                                : unsqueeze_form(error, in, at.axes);
  }
  if (!has_spec) error("the shape input is required");
  if (!spec) {
    // The operand's length gives the rank of a plain reshape and the rank change of the forms.
    if (!spec_shape.rank_known || spec_shape.rank() != 1 || !spec_shape.dims[0].known())
      return Shape::unknown_rank();
    int64_t n = spec_shape.dims[0].value;
    if (axes_form && !in.rank_known) return Shape::unknown_rank();
    int64_t r = axes_form ? static_cast<int64_t>(in.rank()) + (at.form == "squeeze" ? -n : n) : n;
    if (r < 0) error(cat("cannot squeeze ", n, " axes of ", in.str()));
    if (r > kMaxRank) error(cat("the result would have rank ", r, "; kiln supports up to ", kMaxRank));
    return Shape(std::vector<Dim>(r, Dim::unknown()));
  }
  if (spec->rank() != 1 && !(axes_form && spec->rank() == 0))
    error(cat(axes_form ? "axes" : "shape", " must be 1-D, not ", dims_to_string(spec->dims())));
  Ints v = to_int64s(*spec);
  if (at.form == "squeeze") return squeeze_form(error, in, v);
  if (at.form == "unsqueeze") return unsqueeze_form(error, in, v);
  return shape_form(error, in, v, at.allowzero != 0);
}

void infer(InferContext& ctx) {
  const auto& at = ctx.node().a<ReshapeAttrs>();
  bool has_spec = ctx.has_input(1);
  Shape spec_shape;
  if (has_spec) {
    expect_int_input(ctx, 1, at.form.empty() ? "shape" : "axes");
    spec_shape = ctx.shape(1);
  }
  ErrorFn error = [&](const std::string& m) { ctx.error(m); };
  ctx.set_output(0, ctx.dtype(0),
                 output_shape(at, known_shape(ctx, 0), ctx.value(1), spec_shape, has_spec, error));
}

void compute(const ComputeArgs& a) {
  const Tensor& x = a.in(0);
  Tensor& y = a.out(0);
  if (!y.defined()) {
    const auto& at = a.node.a<ReshapeAttrs>();
    ErrorFn error = [&](const std::string& m) { fail(StatusCode::kInvalidArgument, m); };
    Shape s = output_shape(at, Shape::from(x.dims()), a.has(1) ? &a.in(1) : nullptr, Shape(),
                           a.has(1), error);
    y = Tensor(x.dtype(), s.concrete());
  }
  KILN_EXPECT(y.numel() == x.numel(), StatusCode::kInvalidArgument, "cannot reshape ",
              dims_to_string(x.dims()), " to ", dims_to_string(y.dims()));
  if (x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
}

}  // namespace

const OpDef& kiln_op_reshape() {
  static const OpDef d{"Reshape", make_attrs_of<ReshapeAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
