#include "ops/op_util.h"

namespace kiln {

std::vector<int64_t> strides_of(const Dims& d) {
  std::vector<int64_t> s(d.size(), 1);
  for (int64_t i = static_cast<int64_t>(d.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * d[i + 1];
  return s;
}

std::vector<int64_t> to_int64s(const Tensor& t) {
  std::vector<int64_t> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.get_i64(i);
  return v;
}

std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.get_f64(i);
  return v;
}

const Tensor* value_or_unknown(InferContext& ctx, size_t i, DataType out_dtype, size_t out_index) {
  const Tensor* t = ctx.value(i);
  if (!t) ctx.set_output(out_index, out_dtype, Shape::unknown_rank());
  return t;
}

}  // namespace kiln
