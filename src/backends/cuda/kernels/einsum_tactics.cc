// cuda.einsum: the Einsum forms the importer does not lower (diagonals, three or more operands,
// broadcasting ellipsis, symbolic shapes) on one kiln kernel (einsum.cu), for every numeric type
// and bool, accumulating as the reference does (double for floats, wrapping uint64 for integers).
// Limits: 1 to 8 operands and at most 16 axes (distinct labels plus ellipsis dims), with every
// operand's rank known when the plan is built; anything larger is left to the host fallback.
// The iteration space is derived at each launch from the actual dims, as src/ops/einsum.cc does.
#include <algorithm>
#include <map>
#include <vector>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/einsum.h"
#include "ops/einsum.h"
#include "ops/op_util.h"

namespace kiln {
namespace cuda {
namespace {

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

bool has_ellipsis(const std::vector<int>& term) {
  return std::find(term.begin(), term.end(), kEinsumEllipsis) != term.end();
}

// Dims of operand i's ellipsis (rank - labels), or -1 when its rank cannot match its term.
int64_t ellipsis_rank(const std::vector<int>& term, size_t rank) {
  const bool ell = has_ellipsis(term);
  const int64_t n_labels = static_cast<int64_t>(term.size()) - (ell ? 1 : 0);
  const int64_t r = static_cast<int64_t>(rank) - n_labels;
  return (r == 0 || (ell && r > 0)) ? r : -1;
}

// Axes of the iteration space: the broadcast ellipsis dims plus the distinct labels.
size_t axis_count(const EinsumEquation& e, int64_t n_ell) {
  std::vector<int> labels;
  for (const auto& t : e.inputs)
    for (int l : t)
      if (l != kEinsumEllipsis && std::find(labels.begin(), labels.end(), l) == labels.end())
        labels.push_back(l);
  return static_cast<size_t>(n_ell) + labels.size();
}

Status supports(const Node& n) {
  if (n.inputs.empty()) return unsupported("no operands");
  if (n.inputs.size() > static_cast<size_t>(rk::kEinsumMaxOperands))
    return unsupported(
        cat(n.inputs.size(), " operands (takes at most ", rk::kEinsumMaxOperands, ")"));
  if (n.outputs.size() != 1 || !n.outputs[0]) return unsupported("needs one output");
  const Value* x0 = n.in(0);
  if (!x0) return unsupported("an operand is missing");
  if (!rk::einsum_supported(rk_dtype(x0->dtype)))
    return unsupported(cat("Einsum of ", dtype_name(x0->dtype), " operands"));
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const Value* v = n.in(i);
    if (!v) return unsupported("an operand is missing");
    if (v->dtype != x0->dtype) return unsupported("operands of mixed types");
    if (!v->shape.rank_known) return unsupported(cat("the rank of operand ", i, " is unknown"));
  }
  if (n.outputs[0]->dtype != x0->dtype) return unsupported("Y's type differs from the operands'");
  EinsumEquation e;
  try {
    e = parse_einsum(n.a<EinsumAttrs>().equation, n.inputs.size());
  } catch (const Error& err) {
    return unsupported(err.message());
  }
  int64_t n_ell = 0;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    int64_t r = ellipsis_rank(e.inputs[i], n.in(i)->shape.rank());
    if (r < 0) return unsupported(cat("operand ", i, "'s rank does not fit its term"));
    n_ell = std::max(n_ell, r);
  }
  const size_t axes = axis_count(e, n_ell);
  if (axes > static_cast<size_t>(rk::kEinsumMaxAxes))
    return unsupported(cat(axes, " axes (takes at most ", rk::kEinsumMaxAxes, ")"));
  return Status::ok();
}

class EinsumKernel : public Kernel {
 public:
  explicit EinsumKernel(const Node& n)
      : eq_(parse_einsum(n.a<EinsumAttrs>().equation, n.inputs.size())),
        equation_(n.a<EinsumAttrs>().equation) {}

  void enqueue(const LaunchArgs& a) override {
    const size_t n = a.inputs.size();
    KILN_CHECK(n == eq_.inputs.size() && n <= static_cast<size_t>(rk::kEinsumMaxOperands));
    // Sizes of the ellipsis dims (broadcast) and of every label, as the reference resolves them.
    std::vector<Dims> ell_dims(n);
    std::map<int, int64_t> label_size;
    for (size_t i = 0; i < n; ++i) {
      const DeviceTensor& x = a.in(i);
      KILN_CHECK(x.dense(), "cuda.einsum: strided operand");
      const auto& t = eq_.inputs[i];
      const int64_t er = ellipsis_rank(t, x.rank());
      KILN_EXPECT(er >= 0, StatusCode::kInvalidArgument, "Einsum: input ", i, " ",
                  dims_to_string(x.dims), " has rank ", x.rank(), " but its term in '", equation_,
                  "' does not");
      size_t d = 0;
      for (int l : t) {
        if (l == kEinsumEllipsis) {
          for (int64_t k = 0; k < er; ++k) ell_dims[i].push_back(x.dims[d++]);
          continue;
        }
        const int64_t s = x.dims[d++];
        auto [it, fresh] = label_size.emplace(l, s);
        KILN_EXPECT(fresh || it->second == s, StatusCode::kInvalidArgument, "Einsum: label '",
                    static_cast<char>(l < 26 ? 'a' + l : 'A' + l - 26), "' has sizes ", it->second,
                    " and ", s, " in '", equation_, "'");
      }
    }
    const Dims ell = broadcast_dims(ell_dims);
    const size_t n_ell = ell.size();
    // Axes: the ellipsis dims first, then the labels in order (as the reference numbers them).
    std::vector<int64_t> axis_size(ell.begin(), ell.end());
    std::map<int, size_t> label_axis;
    for (const auto& [l, s] : label_size) {
      label_axis[l] = axis_size.size();
      axis_size.push_back(s);
    }
    const size_t n_axes = axis_size.size();
    KILN_EXPECT(n_axes <= static_cast<size_t>(rk::kEinsumMaxAxes), StatusCode::kUnsupported,
                "cuda.einsum: ", n_axes, " axes exceed ", rk::kEinsumMaxAxes);
    std::vector<std::vector<int64_t>> stride(n, std::vector<int64_t>(n_axes, 0));
    for (size_t i = 0; i < n; ++i) {
      const DeviceTensor& x = a.in(i);
      const Ints st = strides_of(x.dims);
      const auto& t = eq_.inputs[i];
      const int64_t er = ellipsis_rank(t, x.rank());
      size_t d = 0;
      for (int l : t) {
        if (l == kEinsumEllipsis) {
          for (int64_t k = 0; k < er; ++k, ++d)
            if (x.dims[d] != 1) stride[i][n_ell - er + k] += st[d];  // size 1 broadcasts
          continue;
        }
        stride[i][label_axis.at(l)] += st[d++];  // a repeated label walks the diagonal
      }
    }
    std::vector<size_t> out_axes, red_axes;
    std::vector<bool> in_out(n_axes, false);
    for (int l : eq_.output) {
      if (l == kEinsumEllipsis) {
        for (size_t k = 0; k < n_ell; ++k) {
          out_axes.push_back(k);
          in_out[k] = true;
        }
      } else {
        out_axes.push_back(label_axis.at(l));
        in_out[label_axis.at(l)] = true;
      }
    }
    for (size_t k = 0; k < n_axes; ++k)
      if (!in_out[k]) red_axes.push_back(k);

    DeviceTensor& y = a.out(0);
    int64_t out_vol = 1;
    for (size_t ax : out_axes) out_vol *= axis_size[ax];
    KILN_CHECK(y.numel() == out_vol, "cuda.einsum: Y ", dims_to_string(y.dims), " vs ", out_vol,
               " elements");
    if (out_vol == 0) return;

    rk::EinsumProblem p;
    p.dtype = rk_dtype(y.dtype);
    p.n_inputs = static_cast<int>(n);
    p.y = y.data;
    p.n_out = static_cast<int>(out_axes.size());
    p.n_red = static_cast<int>(red_axes.size());
    for (size_t i = 0; i < n; ++i) p.x[i] = a.in(i).data;
    for (size_t j = 0; j < out_axes.size(); ++j) {
      p.out_sizes[j] = axis_size[out_axes[j]];
      for (size_t i = 0; i < n; ++i) p.out_strides[i][j] = stride[i][out_axes[j]];
    }
    for (size_t j = 0; j < red_axes.size(); ++j) {
      p.red_sizes[j] = axis_size[red_axes[j]];
      for (size_t i = 0; i < n; ++i) p.red_strides[i][j] = stride[i][red_axes[j]];
    }
    rk::launch_einsum(p, a.stream);
    check_launch("cuda.einsum");
  }

 private:
  EinsumEquation eq_;
  std::string equation_;
};

std::unique_ptr<Kernel> make(const Node& n) { return std::make_unique<EinsumKernel>(n); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_einsum() {
  static const cuda::SimpleTactic t("cuda.einsum", "Einsum", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
