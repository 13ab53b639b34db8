// Einsum: the reference Einstein summation. See einsum.h for the semantics.
//
// Every distinct label (and every ellipsis dim) becomes one axis of an iteration space; each
// input gets a stride per axis (0 where it lacks the axis or broadcasts it, the sum of its strides
// where a label repeats, which walks a diagonal). The output axes are iterated outside, the summed
// axes inside, with the summed axes' offsets tabulated once.
#include "ops/einsum.h"

#include <algorithm>
#include <map>

#include "ops/accumulate.h"
#include "ops/op_util.h"

namespace kiln {

namespace {

constexpr int kEllipsis = kEinsumEllipsis;
using Equation = EinsumEquation;

int label_id(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return 26 + (c - 'A');
  return -2;
}

std::vector<int> parse_term(const std::string& t, const std::string& eq) {
  std::vector<int> out;
  bool ell = false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '.') {
      KILN_EXPECT(t.compare(i, 3, "...") == 0 && !ell, StatusCode::kInvalidModel,
                  "Einsum: equation '", eq, "' has a malformed or repeated ellipsis in '", t, "'");
      ell = true;
      out.push_back(kEllipsis);
      i += 2;
      continue;
    }
    int id = label_id(t[i]);
    KILN_EXPECT(id >= 0, StatusCode::kInvalidModel, "Einsum: equation '", eq,
                "' has the character '", t[i], "'; labels must be letters");
    out.push_back(id);
  }
  return out;
}

}  // namespace

EinsumEquation parse_einsum(const std::string& equation, size_t n_inputs) {
  std::string eq;
  for (char c : equation)
    if (c != ' ' && c != '\t') eq += c;
  size_t arrow = eq.find("->");
  std::string lhs = eq.substr(0, arrow);
  Equation e;
  size_t pos = 0;
  while (true) {
    size_t comma = lhs.find(',', pos);
    e.inputs.push_back(parse_term(lhs.substr(pos, comma - pos), equation));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  KILN_EXPECT(e.inputs.size() == n_inputs, StatusCode::kInvalidModel, "Einsum: equation '",
              equation, "' has ", e.inputs.size(), " input terms but the node has ", n_inputs,
              " inputs");
  std::map<int, int> count;
  bool any_ell = false;
  for (const auto& t : e.inputs)
    for (int l : t) {
      if (l == kEllipsis)
        any_ell = true;
      else
        ++count[l];
    }
  if (arrow != std::string::npos) {
    e.output = parse_term(eq.substr(arrow + 2), equation);
    std::vector<int> seen;
    for (int l : e.output) {
      if (l == kEllipsis) continue;
      KILN_EXPECT(count.count(l) && std::find(seen.begin(), seen.end(), l) == seen.end(),
                  StatusCode::kInvalidModel, "Einsum: equation '", equation,
                  "': every output label must occur once in the output and in some input");
      seen.push_back(l);
    }
  } else {
    if (any_ell) e.output.push_back(kEllipsis);
    for (auto& [l, n] : count)  // std::map iterates labels in order: a-z, then A-Z
      if (n == 1) e.output.push_back(l);
  }
  return e;
}

namespace {

Equation parse(const std::string& equation, size_t n) { return parse_einsum(equation, n); }

// Sizes of the ellipsis dims and of every label, from the input shapes (rank known).
struct Sizes {
  std::vector<Dim> ell;  // broadcast ellipsis dims
  std::map<int, Dim> label;
};

Sizes resolve_sizes(const Equation& e, const std::vector<const Shape*>& shapes,
                    const std::string& equation) {
  Sizes s;
  std::vector<Shape> ell_shapes;
  for (size_t i = 0; i < e.inputs.size(); ++i) {
    const auto& t = e.inputs[i];
    const Shape& sh = *shapes[i];
    bool has_ell = std::count(t.begin(), t.end(), kEllipsis) > 0;
    int64_t n_labels = static_cast<int64_t>(t.size()) - (has_ell ? 1 : 0);
    int64_t ell_rank = static_cast<int64_t>(sh.rank()) - n_labels;
    KILN_EXPECT(ell_rank == 0 || (has_ell && ell_rank > 0), StatusCode::kInvalidModel,
                "Einsum: input ", i, " ", sh.str(), " has rank ", sh.rank(), " but its term in '",
                equation, "' names ", n_labels, " dims");
    Shape ell;
    size_t d = 0;
    for (int l : t) {
      if (l == kEllipsis) {
        for (int64_t k = 0; k < ell_rank; ++k) ell.dims.push_back(sh[d++]);
        continue;
      }
      const Dim& dim = sh[d++];
      auto it = s.label.find(l);
      if (it == s.label.end() || (!it->second.known() && dim.known())) {
        s.label[l] = dim;
      } else if (dim.known() && it->second.known() && dim.value != it->second.value) {
        fail(StatusCode::kInvalidModel, "Einsum: label '",
             static_cast<char>(l < 26 ? 'a' + l : 'A' + l - 26), "' has sizes ", it->second.value,
             " and ", dim.value, " in '", equation, "'");
      }
    }
    ell_shapes.push_back(ell);
  }
  s.ell = broadcast_shapes(ell_shapes).dims;
  return s;
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<EinsumAttrs>();
  if (ctx.num_inputs() == 0) ctx.error("Einsum needs at least one input");
  DataType t = ctx.dtype(0);
  if (!dtype_is_supported(t)) ctx.error(cat("input 0 has unsupported type ", dtype_name(t)));
  std::vector<const Shape*> shapes;
  bool ranks = true;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (ctx.dtype(i) != t)
      ctx.error(
          cat("input ", i, " is ", dtype_name(ctx.dtype(i)), " but input 0 is ", dtype_name(t)));
    shapes.push_back(&ctx.shape(i));
    ranks = ranks && ctx.shape(i).rank_known;
  }
  Equation e = parse(a.equation, ctx.num_inputs());
  if (!ranks) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return;
  }
  Sizes s = resolve_sizes(e, shapes, a.equation);
  Shape out;
  for (int l : e.output) {
    if (l == kEllipsis)
      out.dims.insert(out.dims.end(), s.ell.begin(), s.ell.end());
    else
      out.dims.push_back(s.label[l]);
  }
  ctx.set_output(0, t, std::move(out));
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<EinsumAttrs>();
  size_t n = args.inputs.size();
  Equation e = parse(a.equation, n);
  std::vector<Shape> shapes;
  for (size_t i = 0; i < n; ++i) shapes.push_back(Shape::from(args.in(i).dims()));
  std::vector<const Shape*> sp;
  for (auto& s : shapes) sp.push_back(&s);
  Sizes sz = resolve_sizes(e, sp, a.equation);
  // Axes: ellipsis dims first, then labels.
  size_t n_ell = sz.ell.size();
  std::vector<int64_t> axis_size;
  for (const Dim& d : sz.ell) axis_size.push_back(d.value);
  std::map<int, size_t> label_axis;
  for (auto& [l, d] : sz.label) {
    label_axis[l] = axis_size.size();
    axis_size.push_back(d.value);
  }
  size_t n_axes = axis_size.size();
  // Per input, the stride of each axis.
  std::vector<std::vector<int64_t>> stride(n, std::vector<int64_t>(n_axes, 0));
  for (size_t i = 0; i < n; ++i) {
    const Tensor& x = args.in(i);
    Ints st = strides_of(x.dims());
    const auto& t = e.inputs[i];
    int64_t ell_rank = static_cast<int64_t>(x.rank()) - static_cast<int64_t>(t.size()) +
                       (std::count(t.begin(), t.end(), kEllipsis) ? 1 : 0);
    size_t d = 0;
    for (int l : t) {
      if (l == kEllipsis) {
        for (int64_t k = 0; k < ell_rank; ++k, ++d) {
          size_t axis = n_ell - ell_rank + k;
          if (x.dim(d) != 1) stride[i][axis] += st[d];
        }
        continue;
      }
      stride[i][label_axis[l]] += st[d++];
    }
  }
  std::vector<size_t> out_axes, red_axes;
  std::vector<bool> in_out(n_axes, false);
  for (int l : e.output) {
    if (l == kEllipsis) {
      for (size_t k = 0; k < n_ell; ++k) {
        out_axes.push_back(k);
        in_out[k] = true;
      }
    } else {
      out_axes.push_back(label_axis[l]);
      in_out[label_axis[l]] = true;
    }
  }
  for (size_t k = 0; k < n_axes; ++k)
    if (!in_out[k]) red_axes.push_back(k);
  // Offsets of every point of a sub-space (given axes) for every input.
  auto offsets = [&](const std::vector<size_t>& axes) {
    int64_t vol = 1;
    for (size_t ax : axes) vol *= axis_size[ax];
    std::vector<std::vector<int64_t>> off(n, std::vector<int64_t>(vol, 0));
    for (int64_t p = 0; p < vol; ++p) {
      int64_t rem = p;
      for (size_t j = axes.size(); j-- > 0;) {
        int64_t c = rem % axis_size[axes[j]];
        rem /= axis_size[axes[j]];
        for (size_t i = 0; i < n; ++i) off[i][p] += c * stride[i][axes[j]];
      }
    }
    return off;
  };
  auto out_off = offsets(out_axes), red_off = offsets(red_axes);
  Tensor& y = args.out(0);
  int64_t out_vol = out_off.empty() ? 1 : static_cast<int64_t>(out_off[0].size());
  int64_t red_vol = red_off.empty() ? 1 : static_cast<int64_t>(red_off[0].size());
  KILN_CHECK(y.numel() == out_vol);
  dispatch_acc(y.dtype(), [&]<class Acc>() {
    std::vector<std::vector<Acc>> xs;
    for (size_t i = 0; i < n; ++i) xs.push_back(load_acc<Acc>(args.in(i)));
    std::vector<Acc> yv(out_vol, Acc(0));
    for (int64_t o = 0; o < out_vol; ++o) {
      Acc acc = 0;
      for (int64_t r = 0; r < red_vol; ++r) {
        Acc prod = 1;
        for (size_t i = 0; i < n; ++i) prod *= xs[i][out_off[i][o] + red_off[i][r]];
        acc += prod;
      }
      yv[o] = acc;
    }
    store_acc(yv.data(), y);
  });
}

}  // namespace

const OpDef& kiln_op_einsum() {
  static const OpDef d{"Einsum", make_attrs_of<EinsumAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
