// Helpers the tests share: tensors from literals, input patterns and random inputs, and
// expectations on values and errors. The op tests live in kiln::testing, so they use these (and
// single_node.h's) without declarations.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "kiln/types.h"

namespace kiln::testing {

// Tensors from literals, one builder per type: f32({2, 3}, {...}), i64({}, {7}).
template <class T, DataType kType>
struct TensorOf {
  Tensor operator()(Dims d, std::vector<T> v) const { return Tensor::from_vector(kType, d, v); }
};
inline constexpr TensorOf<float, DataType::kFloat> f32;
inline constexpr TensorOf<double, DataType::kDouble> f64;
inline constexpr TensorOf<int64_t, DataType::kInt64> i64;
inline constexpr TensorOf<int32_t, DataType::kInt32> i32;
inline constexpr TensorOf<uint8_t, DataType::kUInt8> u8;
inline constexpr TensorOf<int8_t, DataType::kInt8> s8;

// offset, offset + scale, offset + 2 * scale, ... (n values).
inline std::vector<float> iota_f(int n, float scale = 1, float offset = 0) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = i * scale + offset;
  return v;
}
// Uniform float32 values in [lo, hi).
inline Tensor random_tensor(Dims d, std::mt19937& rng, float lo = -1, float hi = 1) {
  Tensor t(DataType::kFloat, d);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}
// v[i] = ((i * a) % m - o) * s: small exact float32 values with no simple structure, as the numpy
// generators that produced the expectations of several tests.
inline Tensor pattern(Dims d, int a, int m, int o, float s) {
  std::vector<float> v(dims_volume(d));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((int(i) * a) % m - o) * s;
  return f32(std::move(d), v);
}

// Compares any numeric tensor with expected values (as double), relative + absolute tolerance.
inline void expect_values(const Tensor& t, const Dims& dims, const std::vector<double>& want,
                          double rtol = 1e-5, double atol = 1e-6) {
  ASSERT_EQ(dims_to_string(t.dims()), dims_to_string(dims));
  ASSERT_EQ(static_cast<size_t>(t.numel()), want.size());
  for (int64_t i = 0; i < t.numel(); ++i) {
    double got = t.get_f64(i), w = want[i];
    if (std::isnan(w)) {
      EXPECT_TRUE(std::isnan(got)) << "element " << i;
      continue;
    }
    if (std::isinf(w)) {
      EXPECT_EQ(got, w) << "element " << i;
      continue;
    }
    EXPECT_NEAR(got, w, atol + rtol * std::fabs(w)) << "element " << i;
  }
}
// Exact comparison through int64 (integer outputs).
inline void expect_ints(const Tensor& t, const Dims& dims, const std::vector<int64_t>& want) {
  ASSERT_EQ(dims_to_string(t.dims()), dims_to_string(dims));
  ASSERT_EQ(static_cast<size_t>(t.numel()), want.size());
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.get_i64(i), want[i]) << "element " << i;
}

// Expects a kiln::Error whose message contains `needle`.
template <class F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an error mentioning '" << needle << "'";
  } catch (const Error& e) {
    std::string full = e.node() + ": " + e.message();
    EXPECT_NE(full.find(needle), std::string::npos) << full;
  }
}

}  // namespace kiln::testing
