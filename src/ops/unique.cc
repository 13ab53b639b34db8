// Unique: the distinct elements (or slices along an axis) of a tensor, with their first
// occurrences, the inverse mapping and the counts (numpy.unique). Every output length depends on
// the data, so the outputs are allocated here.
#include "ops/unique.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "ops/movement_util.h"

namespace kiln {

namespace {

constexpr size_t kMaxOutputs = 4;  // Y, indices, inverse_indices, counts

// X viewed as [outer, n, inner]: n slices along the axis (n = numel, outer = inner = 1 when
// flattened).
struct SliceView {
  int64_t outer = 1, n = 0, inner = 1;
  int64_t axis = 0;  // normalised; unused when flattened
};

// Three-way comparison in numpy's sort order: NaN above every number and equal to other NaNs;
// -0.0 equals 0.0. Integers compare in their own type, so 64-bit values stay exact.
template <class T>
int compare(T a, T b) {
  auto ka = sort_key(a), kb = sort_key(b);
  if constexpr (std::is_floating_point_v<decltype(ka)>) {
    bool na = std::isnan(ka), nb = std::isnan(kb);
    if (na || nb) return na == nb ? 0 : (na ? 1 : -1);
  }
  return ka < kb ? -1 : (kb < ka ? 1 : 0);
}

// One distinct slice: where it first occurs and how often.
struct Group {
  int64_t first = 0;
  int64_t count = 0;
};

// Groups the n slices of v; inverse[i] receives the group of slice i. Groups come out in sorted
// order (slices compared lexicographically) or in order of first occurrence.
std::vector<Group> group_slices(const Tensor& x, const SliceView& v, bool sorted,
                                std::vector<int64_t>& inverse) {
  std::vector<int64_t> order(static_cast<size_t>(v.n));
  std::iota(order.begin(), order.end(), 0);
  // cmp(i, j) compares slice i with slice j element by element in row-major order of the other
  // dims (numpy moves the axis to the front and compares the flattened rows).
  auto sort_and_split = [&]<class T>() {
    const T* p = x.data<T>();
    auto cmp = [&](int64_t i, int64_t j) {
      for (int64_t o = 0; o < v.outer; ++o) {
        const T* a = p + (o * v.n + i) * v.inner;
        const T* b = p + (o * v.n + j) * v.inner;
        for (int64_t k = 0; k < v.inner; ++k)
          if (int c = compare(a[k], b[k])) return c;
      }
      return 0;
    };
    // Stable, so the first slice of each run of equal ones is its first occurrence.
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t i, int64_t j) { return cmp(i, j) < 0; });
    std::vector<Group> groups;
    for (size_t s = 0; s < order.size(); ++s) {
      if (s == 0 || cmp(order[s - 1], order[s]) != 0) groups.push_back({order[s], 0});
      ++groups.back().count;
      inverse[order[s]] = static_cast<int64_t>(groups.size()) - 1;
    }
    return groups;
  };
  inverse.assign(static_cast<size_t>(v.n), 0);
  std::vector<Group> groups = dispatch_dtype(x.dtype(), sort_and_split);
  if (sorted) return groups;
  // First-occurrence order: renumber the groups by their first index.
  std::vector<int64_t> by_first(groups.size());
  std::iota(by_first.begin(), by_first.end(), 0);
  std::sort(by_first.begin(), by_first.end(),
            [&](int64_t a, int64_t b) { return groups[a].first < groups[b].first; });
  std::vector<int64_t> rank(groups.size());
  std::vector<Group> reordered(groups.size());
  for (size_t r = 0; r < by_first.size(); ++r) {
    rank[by_first[r]] = static_cast<int64_t>(r);
    reordered[r] = groups[by_first[r]];
  }
  for (int64_t& g : inverse) g = rank[g];
  return reordered;
}

void infer(InferContext& ctx) {
  const auto& at = ctx.node().a<UniqueAttrs>();
  DataType dt = ctx.dtype(0);
  if (!dtype_is_supported(dt)) ctx.error(cat("Unique does not take ", dtype_name(dt), " input"));
  size_t n_out = ctx.node().outputs.size();
  if (n_out == 0 || n_out > kMaxOutputs)
    ctx.error(cat("Unique has 1 to ", kMaxOutputs, " outputs, not ", n_out));
  Shape in = known_shape(ctx, 0);
  Shape y;
  Dim n = Dim::unknown();  // slices of X: the length of inverse_indices
  if (!at.has_axis) {
    y = Shape({Dim::unknown()});
    if (auto v = in.volume()) n = Dim(*v);
  } else if (!in.rank_known) {
    y = Shape::unknown_rank();
  } else {
    int64_t r = static_cast<int64_t>(in.rank());
    if (at.axis < -r || at.axis >= r)
      ctx.error(cat("axis ", at.axis, " is out of range for input of rank ", r));
    int64_t axis = at.axis < 0 ? at.axis + r : at.axis;
    y = in;
    n = in.dims[axis];
    y.dims[axis] = Dim::unknown();
  }
  ctx.set_output(0, dt, y);
  ctx.set_output(1, DataType::kInt64, Shape({Dim::unknown()}));
  ctx.set_output(2, DataType::kInt64, Shape({n}));
  ctx.set_output(3, DataType::kInt64, Shape({Dim::unknown()}));
}

void compute(const ComputeArgs& a) {
  const auto& at = a.node.a<UniqueAttrs>();
  const Tensor& x = a.in(0);
  SliceView v;
  Dims y_dims;
  if (!at.has_axis) {
    v.n = x.numel();
  } else {
    int64_t r = static_cast<int64_t>(x.rank());
    if (at.axis < -r || at.axis >= r)
      fail(StatusCode::kInvalidArgument, "axis ", at.axis, " is out of range for input of shape ",
           dims_to_string(x.dims()));
    v.axis = at.axis < 0 ? at.axis + r : at.axis;
    v.n = x.dim(v.axis);
    for (int64_t k = 0; k < v.axis; ++k) v.outer *= x.dim(k);
    for (int64_t k = v.axis + 1; k < r; ++k) v.inner *= x.dim(k);
  }
  std::vector<int64_t> inverse;
  std::vector<Group> groups = group_slices(x, v, at.sorted, inverse);
  auto u = static_cast<int64_t>(groups.size());
  if (at.has_axis) {
    y_dims = x.dims();
    y_dims[v.axis] = u;
  } else {
    y_dims = {u};
  }

  Tensor& y = output_tensor(a, 0, x.dtype(), y_dims);
  size_t chunk = static_cast<size_t>(v.inner) * dtype_size(x.dtype());
  if (chunk > 0) {
    const auto* src = static_cast<const char*>(x.raw());
    auto* dst = static_cast<char*>(y.raw());
    for (int64_t o = 0; o < v.outer; ++o)
      for (const Group& g : groups) {
        std::memcpy(dst, src + (o * v.n + g.first) * chunk, chunk);
        dst += chunk;
      }
  }
  size_t n_out = std::min(a.outputs.size(), kMaxOutputs);
  if (n_out > 1) {
    int64_t* p = output_tensor(a, 1, DataType::kInt64, {u}).data<int64_t>();
    for (int64_t g = 0; g < u; ++g) p[g] = groups[g].first;
  }
  if (n_out > 2) {
    int64_t* p = output_tensor(a, 2, DataType::kInt64, {v.n}).data<int64_t>();
    std::copy(inverse.begin(), inverse.end(), p);
  }
  if (n_out > 3) {
    int64_t* p = output_tensor(a, 3, DataType::kInt64, {u}).data<int64_t>();
    for (int64_t g = 0; g < u; ++g) p[g] = groups[g].count;
  }
}

}  // namespace

const OpDef& kiln_op_unique() {
  static const OpDef d{"Unique", make_attrs_of<UniqueAttrs>, infer, compute, true};
  return d;
}

}  // namespace kiln
