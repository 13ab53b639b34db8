// cuda.nll_loss and cuda.det against the reference computes (ops/nll_loss.cc, ops/det.cc).
// NllLoss: every reduction with and without class weights and ignore_index (inside and outside
// [0, C)), int32 and int64 targets, extra spatial axes, sums over one, several and the most
// partial blocks, every element ignored, empty batches, and bitwise-repeatable sums. Det: sizes
// on both sides of the shared-memory limit (32), batches of every rank, pivoting, singular, NaN
// and infinite matrices, 0 x 0 matrices and empty batches. Both kernels compute in double as the
// references do, so float32 results must match to the last bit or two (1e-5), float64 within
// 1e-10, float16 / bfloat16 within their rounding (1e-2 / 3e-2).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>

#include "gpu/gpu_compare.h"
#include "ops/nll_loss.h"

namespace kiln::testing {
namespace {

// A tensor of type t holding the given values (rounded to t).
Tensor values(DataType t, Dims d, const std::vector<double>& v) {
  Tensor x(t, std::move(d));
  EXPECT_EQ(static_cast<size_t>(x.numel()), v.size());
  for (int64_t i = 0; i < x.numel(); ++i) x.set_f64(i, v[static_cast<size_t>(i)]);
  return x;
}

double rtol_of(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return 1e-2;
    case DataType::kBFloat16:
      return 3e-2;
    case DataType::kDouble:
      return 1e-10;
    default:
      return 1e-5;
  }
}
double atol_of(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return 1e-2;
    case DataType::kBFloat16:
      return 3e-2;
    case DataType::kDouble:
      return 1e-12;
    default:
      return 1e-6;
  }
}

const DataType kFloatTypes[] = {DataType::kFloat, DataType::kFloat16, DataType::kBFloat16,
                                DataType::kDouble};

// ---- NllLoss ----------------------------------------------------------------------------------

constexpr const char* kNll = "cuda.nll_loss";

std::unique_ptr<NllLossAttrs> nll_attrs(const std::string& reduction,
                                        std::optional<int64_t> ignore) {
  auto a = std::make_unique<NllLossAttrs>();
  a->reduction = reduction;
  a->has_ignore_index = ignore.has_value();
  a->ignore_index = ignore.value_or(0);
  return a;
}

// Targets for input dims [N, C, d...]: classes in [0, C), about a fifth of them replaced by the
// ignore index when there is one.
Tensor nll_targets(DataType tt, const Dims& x_dims, uint32_t seed, std::optional<int64_t> ignore,
                   double ignored_fraction = 0.2) {
  Dims d = x_dims;
  const int64_t c = d[1];
  d.erase(d.begin() + 1);
  Tensor t(tt, d);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> cls(0, c > 0 ? c - 1 : 0);
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t i = 0; i < t.numel(); ++i) {
    int64_t v = cls(rng);
    if (ignore && u(rng) < ignored_fraction) v = *ignore;
    t.set_i64(i, v);
  }
  return t;
}

// Log-probabilities in [-4, 0) (the usual input) and weights in [0.1, 2).
void check_nll(const Tensor& x, const Tensor& target, const std::optional<Tensor>& weight,
               const std::string& reduction, std::optional<int64_t> ignore, double rtol,
               double atol) {
  SCOPED_TRACE(cat(dtype_name(x.dtype()), dims_to_string(x.dims()), " target ",
                   dtype_name(target.dtype()), " ", reduction, weight ? " weighted" : "",
                   ignore ? cat(" ignore ", *ignore) : std::string()));
  std::vector<NodeInput> ins = {NodeInput::of(x), NodeInput::of(target)};
  if (weight) ins.push_back(NodeInput::of(*weight));
  expect_gpu_matches_reference("NllLoss", nll_attrs(reduction, ignore), std::move(ins), 1, kNll,
                               rtol, atol);
}

TEST(CudaNllLoss, EveryReductionWeightAndIgnoreIndexFloat32) {
  KILN_REQUIRE_GPU();
  const std::vector<Dims> shapes = {{7, 5}, {3, 4, 6, 5}, {2, 3, 1, 1, 4}, {1, 1}};
  const std::vector<std::optional<int64_t>> ignores = {std::nullopt, -1, 2, 0};
  uint32_t seed = 11;
  for (const Dims& d : shapes)
    for (DataType tt : {DataType::kInt64, DataType::kInt32})
      for (const char* red : {"none", "sum", "mean"})
        for (bool weighted : {false, true})
          for (const auto& ignore : ignores) {
            Tensor x = random_values(DataType::kFloat, d, seed++, -4, 0);
            Tensor t = nll_targets(tt, d, seed++, ignore);
            std::optional<Tensor> w;
            if (weighted) w = random_values(DataType::kFloat, {d[1]}, seed++, 0.1, 2);
            check_nll(x, t, w, red, ignore, 1e-5, 1e-6);
          }
}

TEST(CudaNllLoss, Float16BFloat16Float64) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 101;
  for (DataType dt : kFloatTypes)
    for (const char* red : {"none", "sum", "mean"})
      for (bool weighted : {false, true}) {
        const Dims d = {6, 7, 9};
        Tensor x = random_values(dt, d, seed++, -4, 0);
        Tensor t = nll_targets(DataType::kInt64, d, seed++, -100);
        std::optional<Tensor> w;
        if (weighted) w = random_values(dt, {7}, seed++, 0.1, 2);
        check_nll(x, t, w, red, -100, rtol_of(dt), atol_of(dt));
      }
}

// Element counts of one partial block (4096), just over it, many, and beyond the most partials
// (1024 x 4096), which makes each block add several grid strides.
TEST(CudaNllLoss, LongSums) {
  KILN_REQUIRE_GPU();
  const std::vector<Dims> shapes = {{4096, 3}, {4, 10, 1031}, {2, 3, 70001}, {3, 2, 1500007}};
  uint32_t seed = 201;
  for (const Dims& d : shapes)
    for (DataType dt : {DataType::kFloat, DataType::kDouble})
      for (const char* red : {"sum", "mean", "none"}) {
        Tensor x = random_values(dt, d, seed++, -4, 0);
        Tensor t = nll_targets(DataType::kInt64, d, seed++, 1, 0.1);
        check_nll(x, t, random_values(dt, {d[1]}, seed++, 0.1, 2), red, 1, rtol_of(dt), atol_of(dt));
      }
}

TEST(CudaNllLoss, EveryElementIgnoredAndEmptyBatches) {
  KILN_REQUIRE_GPU();
  // Every target ignored: none gives zeros, sum 0, mean 0 / 0 = NaN (as the reference).
  for (const char* red : {"none", "sum", "mean"}) {
    Tensor x = random_values(DataType::kFloat, {5, 4, 3}, 301, -4, 0);
    Tensor t = nll_targets(DataType::kInt64, {5, 4, 3}, 302, 3, 1.0);
    check_nll(x, t, std::nullopt, red, 3, 1e-5, 1e-6);
    check_nll(x, t, random_values(DataType::kFloat, {4}, 303, 0.1, 2), red, 3, 1e-5, 1e-6);
  }
  // No elements at all (N = 0, or an empty spatial axis): sum 0, mean NaN, none empty.
  for (const Dims& d : std::vector<Dims>{{0, 3}, {2, 3, 0}})
    for (const char* red : {"none", "sum", "mean"}) {
      Tensor x(DataType::kFloat, d);
      Tensor t = nll_targets(DataType::kInt64, d, 304, std::nullopt);
      check_nll(x, t, std::nullopt, red, std::nullopt, 1e-5, 1e-6);
    }
}

// The same sum twice gives the same bits: the reduction order does not depend on the run.
TEST(CudaNllLoss, SumsAreRepeatable) {
  KILN_REQUIRE_GPU();
  const Dims d = {3, 5, 400009};
  Tensor x = random_values(DataType::kFloat, d, 401, -4, 0);
  Tensor t = nll_targets(DataType::kInt32, d, 402, 4);
  Tensor w = random_values(DataType::kFloat, {5}, 403, 0.1, 2);
  for (const char* red : {"sum", "mean"}) {
    SCOPED_TRACE(red);
    auto run = [&] {
      return run_on_device("NllLoss", nll_attrs(red, 4),
                           {NodeInput::of(x), NodeInput::of(t), NodeInput::of(w)});
    };
    DeviceRun a = run(), b = run();
    EXPECT_EQ(a.tactic, kNll);
    ASSERT_EQ(a.device.size(), 1u);
    ASSERT_EQ(b.device.size(), 1u);
    EXPECT_EQ(std::memcmp(a.device[0].raw(), b.device[0].raw(), a.device[0].nbytes()), 0)
        << a.device[0].get_f64(0) << " then " << b.device[0].get_f64(0);
    expect_close(a.device[0], a.reference[0], 1e-5, 1e-6, red);
  }
}

// ---- Det --------------------------------------------------------------------------------------

constexpr const char* kDet = "cuda.det";

void check_det(const Tensor& x, double rtol, double atol) {
  SCOPED_TRACE(cat("Det of ", dtype_name(x.dtype()), dims_to_string(x.dims())));
  expect_gpu_matches_reference("Det", nullptr, {NodeInput::of(x)}, 1, kDet, rtol, atol);
}

// Entries of variance e / M keep |det| near 1 (log|det| ~ 0 on average) for every size.
Tensor det_input(DataType t, Dims batch, int64_t m, uint32_t seed) {
  const double a = std::sqrt(3.0 * std::exp(1.0) / static_cast<double>(m > 0 ? m : 1));
  batch.push_back(m);
  batch.push_back(m);
  return random_values(t, batch, seed, -a, a);
}

TEST(CudaDet, EverySizeAndBatchRankFloat32Float64) {
  KILN_REQUIRE_GPU();
  const std::vector<Dims> batches = {{}, {5}, {2, 3}};
  uint32_t seed = 501;
  for (int64_t m : {1, 2, 3, 4, 5, 7, 8, 16, 31, 32, 33, 40, 64, 100})
    for (const Dims& b : batches)
      for (DataType dt : {DataType::kFloat, DataType::kDouble})
        check_det(det_input(dt, b, m, seed++), dt == DataType::kDouble ? 1e-10 : 1e-5, 0);
}

TEST(CudaDet, Float16BFloat16) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 601;
  for (DataType dt : {DataType::kFloat16, DataType::kBFloat16})
    for (int64_t m : {1, 2, 3, 6, 13, 33})
      check_det(det_input(dt, {4}, m, seed++), rtol_of(dt), atol_of(dt));
}

TEST(CudaDet, PivotingSingularNanAndInfinite) {
  KILN_REQUIRE_GPU();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<std::vector<double>> m3 = {
      {0, 2, -1, 3, 1, 4, -2, 5, 0.5},       // zero first pivot: a row swap
      {1, 2, 3, 2, 4, 6, 7, 8, 9},           // two proportional rows: singular
      {0, 0, 1, 0, 1, 0, 1, 0, 0},           // a permutation: -1
      {1, 0, 0, 0, 1, 0, 0, 0, 1},           // identity
      {0, 0, 0, 0, 0, 0, 0, 0, 0},           // zero
      {1, 2, 3, -1, 5, 6, 1, -8, 9},         // tied pivot magnitudes: the first row stays
      {nan, 2, 3, 4, 5, 6, 7, 8, 9},         // NaN pivot candidate in place
      {1, 2, 3, nan, 5, 6, 7, 8, 9},         // NaN below the pivot: never chosen
      {nan, 2, 3, nan, 5, 6, nan, 8, 9},     // a NaN column
      {1, 2, 3, inf, 5, 6, 7, 8, 9},         // an infinite pivot
      {1, 2, 3, 4, inf, 6, 7, 8, -inf},      // infinities later
      {0, 0, 5, 0, 3, 1, 2, 1, 1},           // two swaps
      {1e-300, 1, 0, 1, 1e-300, 0, 0, 0, 1}  // tiny pivots
  };
  for (DataType dt : {DataType::kDouble, DataType::kFloat})
    for (const auto& v : m3) check_det(values(dt, {3, 3}, v), 1e-12, 0);
  // All of them as one batch.
  std::vector<double> all;
  for (const auto& v : m3) all.insert(all.end(), v.begin(), v.end());
  check_det(values(DataType::kDouble, {static_cast<int64_t>(m3.size()), 3, 3}, all), 1e-12, 0);
  // A 40 x 40 (workspace path) with a zero first column below a zero pivot: singular.
  Tensor s = det_input(DataType::kDouble, {}, 40, 701);
  for (int64_t i = 0; i < 40; ++i) s.set_f64(i * 40, 0);
  check_det(s, 1e-12, 0);
}

TEST(CudaDet, EmptyMatricesAndBatches) {
  KILN_REQUIRE_GPU();
  check_det(Tensor(DataType::kFloat, {4, 0, 0}), 0, 0);  // determinants of 0 x 0 matrices: 1
  check_det(Tensor(DataType::kFloat, {0, 0}), 0, 0);
  check_det(Tensor(DataType::kFloat, {0, 3, 3}), 0, 0);  // no matrices
  check_det(Tensor(DataType::kDouble, {2, 0, 40, 40}), 0, 0);
}

TEST(CudaDet, LargeBatchesAndMatrices) {
  KILN_REQUIRE_GPU();
  check_det(det_input(DataType::kFloat, {70001}, 2, 801), 1e-5, 0);
  check_det(det_input(DataType::kDouble, {1000, 3}, 3, 802), 1e-10, 0);
  check_det(det_input(DataType::kDouble, {3}, 129, 803), 1e-10, 0);
  check_det(det_input(DataType::kFloat, {2}, 200, 804), 1e-5, 0);
  check_det(det_input(DataType::kDouble, {600}, 48, 805), 1e-10, 0);
}

}  // namespace
}  // namespace kiln::testing
