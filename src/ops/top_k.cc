// TopK: the k largest or smallest elements along one axis, with their indices.
#include "ops/top_k.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "ops/op_util.h"

namespace kiln {

namespace {

int64_t k_of(const Tensor& t) {
  if (t.numel() != 1 || t.rank() > 1)
    fail(StatusCode::kInvalidModel, "K must hold exactly one value, got shape ",
         dims_to_string(t.dims()));
  int64_t k = t.get_i64(0);
  if (k < 0) fail(StatusCode::kInvalidModel, "K must not be negative, got ", k);
  return k;
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<TopKAttrs>();
  DataType t = ctx.dtype(0);
  if (!dtype_is_supported(t) || t == DataType::kBool)
    ctx.error(cat("TopK does not take ", dtype_name(t), " input"));
  DataType kt = ctx.dtype(1);
  if (kt != DataType::kInt64 && kt != DataType::kInt32)
    ctx.error(cat("K must be int64, got ", dtype_name(kt)));
  const Shape& s = ctx.shape(0);
  if (!s.rank_known) {
    ctx.set_output(0, t, Shape::unknown_rank());
    ctx.set_output(1, DataType::kInt64, Shape::unknown_rank());
    return;
  }
  int64_t axis = normalize_axis(a.axis, static_cast<int64_t>(s.rank()), "TopK axis");
  Shape out = s;
  if (const Tensor* kv = ctx.value(1)) {
    int64_t k = k_of(*kv);
    if (s[axis].known() && k > s[axis].value)
      ctx.error(cat("K = ", k, " exceeds the size ", s[axis].value, " of axis ", axis));
    out.dims[axis] = Dim(k);
  } else {
    out.dims[axis] = Dim::unknown();
  }
  ctx.set_output(0, t, out);
  ctx.set_output(1, DataType::kInt64, out);
}

// Total order in which NaN is larger than every number.
template <class K>
bool less(K a, K b) {
  if constexpr (std::is_floating_point_v<K>) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
  }
  return a < b;
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<TopKAttrs>();
  const Tensor& x = args.in(0);
  Tensor& values = args.out(0);
  Tensor& indices = args.out(1);
  const Dims& d = x.dims();
  int64_t rank = static_cast<int64_t>(d.size());
  int64_t axis = normalize_axis(a.axis, rank, "TopK axis");
  int64_t k = k_of(args.in(1));
  int64_t n = d[axis];
  if (k > n)
    fail(StatusCode::kInvalidArgument, "K = ", k, " exceeds the size ", n, " of axis ", axis);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= d[i];
  for (int64_t i = axis + 1; i < rank; ++i) inner *= d[i];
  dispatch_dtype(x.dtype(), [&]<class T>() {
    const T* xp = x.data<T>();
    T* vp = values.data<T>();
    int64_t* ip = indices.data<int64_t>();
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t in = 0; in < inner; ++in) {
        const T* row = xp + o * n * inner + in;
        std::iota(order.begin(), order.end(), 0);
        auto cmp = [&](int64_t i, int64_t j) {
          auto ki = sort_key(row[i * inner]), kj = sort_key(row[j * inner]);
          if (a.largest ? less(kj, ki) : less(ki, kj)) return true;
          if (less(ki, kj) || less(kj, ki)) return false;
          return i < j;  // equal: smaller index first
        };
        std::partial_sort(order.begin(), order.begin() + k, order.end(), cmp);
        for (int64_t j = 0; j < k; ++j) {
          int64_t dst = (o * k + j) * inner + in;
          vp[dst] = row[order[j] * inner];
          ip[dst] = order[j];
        }
      }
  });
}

}  // namespace

const OpDef& kiln_op_top_k() {
  static const OpDef d{"TopK", make_attrs_of<TopKAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
