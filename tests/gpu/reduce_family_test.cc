// kiln's own reduction-family kernels against the reference: cuda.reduce, cuda.softmax,
// cuda.normalization, cuda.pool, cuda.cum_sum and cuda.top_k. Every kind and mode, axis
// combinations that take each kernel mapping (rows, columns, general; warp / block per row;
// split reductions), awkward sizes (1, primes, > 1024, > 65536, > 65535 * 256 elements), empty
// tensors, NaN / inf / ties, float16 / bfloat16 / float64 and the integer types the tactics take.
// Integer outputs must match exactly; float32 within 1e-5 (1e-4 for long sums, which the GPU
// accumulates in float and the reference in double), float16 within 1e-2, bfloat16 within 3e-2.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gpu/gpu_compare.h"
#include "ops/cum_sum.h"
#include "ops/normalization.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#include "ops/top_k.h"

namespace kiln::testing {
namespace {

// ---- helpers ----------------------------------------------------------------------------------

double rtol_of(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return 1e-2;
    case DataType::kBFloat16:
      return 3e-2;
    case DataType::kDouble:
      return 1e-9;
    case DataType::kFloat:
      return 1e-5;
    default:
      return 0;
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
    case DataType::kFloat:
      return 1e-6;
    default:
      return 0;
  }
}

// The same values as float32 (small integers make ties).
Tensor as_float(const Tensor& t) {
  Tensor r(DataType::kFloat, t.dims());
  for (int64_t i = 0; i < t.numel(); ++i) r.set_f64(i, t.get_f64(i));
  return r;
}

// ---- Reduce -----------------------------------------------------------------------------------

constexpr const char* kReduce = "cuda.reduce";

std::unique_ptr<ReduceAttrs> reduce_attrs(const std::string& kind, Ints axes, bool keepdims = true,
                                          bool last = false) {
  auto a = std::make_unique<ReduceAttrs>();
  a->kind = kind;
  a->axes = std::move(axes);
  a->keepdims = keepdims;
  a->select_last_index = last;
  return a;
}

// Inputs that keep every kind well-conditioned: positive for log_sum, near 1 for prod.
Tensor reduce_input(const std::string& kind, DataType t, const Dims& d, uint32_t seed) {
  if (kind == "log_sum") return random_values(t, d, seed, 0.1, 2);
  if (kind == "prod") return random_values(t, d, seed, 0.8, 1.25);
  return random_values(t, d, seed, -2, 2);
}

void check_reduce(const std::string& kind, const Tensor& x, Ints axes, bool keepdims, double rtol,
                  double atol, bool last = false) {
  SCOPED_TRACE(cat(kind, " of ", dtype_name(x.dtype()), dims_to_string(x.dims()), " axes ",
                   dims_to_string(axes), keepdims ? " keepdims" : "", last ? " last" : ""));
  expect_gpu_matches_reference("Reduce", reduce_attrs(kind, axes, keepdims, last),
                               {NodeInput::of(x)}, 1, kReduce, rtol, atol);
}

const char* kValueKinds[] = {"sum", "mean", "max",     "min",         "prod",
                             "l1",  "l2",   "log_sum", "log_sum_exp", "sum_square"};

TEST(CudaReduce, EveryKindEveryAxisPatternFloat32) {
  KILN_REQUIRE_GPU();
  // [3, 5, 7]: rows (last axes), columns (middle / first axes), general ({0, 2}), everything.
  const std::vector<Ints> axes_sets = {{}, {0}, {1}, {2}, {-1}, {0, 2}, {1, 2}, {0, 1}, {0, 1, 2}};
  uint32_t seed = 1;
  for (const char* kind : kValueKinds)
    for (const Ints& axes : axes_sets)
      for (bool keep : {true, false})
        check_reduce(kind, reduce_input(kind, DataType::kFloat, {3, 5, 7}, seed++), axes, keep,
                     1e-5, 1e-6);
  for (const char* kind : {"argmax", "argmin"})
    for (int64_t axis : {0, 1, 2, -1})
      for (bool keep : {true, false})
        for (bool last : {false, true})
          check_reduce(kind, random_values(DataType::kFloat, {3, 5, 7}, seed++), {axis}, keep, 0, 0, last);
}

TEST(CudaReduce, FourDimensionalGeneralPatterns) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 100;
  for (const Ints& axes : std::vector<Ints>{{0, 2}, {1, 3}, {0, 1, 3}, {0, 3}, {1, 2}, {2, 3}})
    for (const char* kind : {"sum", "max", "log_sum_exp", "l2"})
      check_reduce(kind, random_values(DataType::kFloat, {4, 6, 5, 3}, seed++), axes, true, 1e-5, 1e-6);
  // Size-1 axes between reduced ones merge away; a wide general case with > 32 reduced elements.
  check_reduce("sum", random_values(DataType::kFloat, {3, 1, 40, 1, 2, 9}, seed++), {0, 2, 5}, false, 1e-5,
               1e-6);
  check_reduce("mean", random_values(DataType::kFloat, {70, 3, 50}, seed++), {0, 2}, true, 1e-5, 1e-6);
}

TEST(CudaReduce, HalfBFloatAndDouble) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 200;
  for (DataType t : {DataType::kFloat16, DataType::kBFloat16, DataType::kDouble})
    for (const char* kind : kValueKinds)
      for (const Ints& axes : std::vector<Ints>{{-1}, {1}, {0, 2}})
        check_reduce(kind, reduce_input(kind, t, {4, 33, 65}, seed++), axes, true, rtol_of(t),
                     atol_of(t));
  for (DataType t : {DataType::kFloat16, DataType::kBFloat16, DataType::kDouble})
    for (const char* kind : {"argmax", "argmin"})
      check_reduce(kind, random_values(t, {4, 33, 65}, seed++), {1}, false, 0, 0);
}

TEST(CudaReduce, IntegersExact) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 300;
  for (DataType t : {DataType::kInt8, DataType::kUInt8, DataType::kInt32, DataType::kInt64}) {
    const double lo = t == DataType::kUInt8 ? 0 : -100, hi = 100;
    // Sums and products wrap like the type: the reference and the GPU must wrap alike.
    for (const char* kind : {"sum", "mean", "max", "min", "prod"})
      for (const Ints& axes : std::vector<Ints>{{-1}, {0}, {0, 2}, {}})
        check_reduce(kind, random_values(t, {5, 9, 13}, seed++, lo, hi), axes, true, 0, 0);
    for (const char* kind : {"argmax", "argmin"})
      for (bool last : {false, true})
        check_reduce(kind, random_values(t, {5, 9, 13}, seed++, 0, 3), {1}, true, 0, 0, last);  // ties
  }
}

TEST(CudaReduce, LongRowsSplitAcrossBlocks) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 400;
  // Few long rows: R split over blocks, partial states combined by a second kernel.
  for (const char* kind : {"sum", "mean", "max", "min", "log_sum_exp", "l2", "argmax", "argmin"}) {
    const bool arg = std::string(kind).rfind("arg", 0) == 0;
    check_reduce(kind, random_values(DataType::kFloat, {3, 70001}, seed++, 0, 1), {-1}, true, arg ? 0 : 1e-4,
                 arg ? 0 : 1e-6);
    check_reduce(kind, random_values(DataType::kFloat, {2, 5003, 3}, seed++, 0, 1), {1}, false,
                 arg ? 0 : 1e-4, arg ? 0 : 1e-6);
    check_reduce(kind, random_values(DataType::kFloat, {1031}, seed++, 0, 1), {0}, false, arg ? 0 : 1e-5,
                 arg ? 0 : 1e-6);
  }
  check_reduce("sum", random_values(DataType::kFloat16, {2, 100000}, seed++, 0, 1), {-1}, true, 1e-2, 1e-2);
  check_reduce("max", random_values(DataType::kInt32, {4, 100003}, seed++, -1000000, 1000000), {-1}, true, 0,
               0);
  // More than 65535 * 256 elements reduced to one value.
  check_reduce("sum", random_values(DataType::kFloat, {17000003}, seed++, 0, 1), {}, false, 1e-4, 1e-6);
  check_reduce("argmax", random_values(DataType::kFloat, {17000003}, seed++, 0, 1), {0}, false, 0, 0);
}

TEST(CudaReduce, ManySmallRowsAndWideColumns) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 500;
  // Global-average-pool shapes, rows of 1, columns of every width class.
  check_reduce("mean", random_values(DataType::kFloat, {128, 512, 7, 7}, seed++), {2, 3}, true, 1e-5, 1e-6);
  check_reduce("mean", random_values(DataType::kFloat16, {8, 7, 7, 96}, seed++), {1, 2}, true, 1e-2, 1e-2);
  check_reduce("sum", random_values(DataType::kFloat, {1000, 1}, seed++), {1}, true, 1e-5, 1e-6);
  for (int64_t inner : {2, 3, 31, 32, 33, 1000})
    check_reduce("sum", random_values(DataType::kFloat, {5, 37, inner}, seed++), {1}, true, 1e-5, 1e-6);
  check_reduce("max", random_values(DataType::kFloat, {40, 2}, seed++), {0}, true, 0, 0);
}

TEST(CudaReduce, SpecialValues) {
  KILN_REQUIRE_GPU();
  Tensor x =
      f32({4, 5}, {1,         NAN,       3,         NAN,       2,  // NaN: sticky, first / last
                   -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY,
                   INFINITY,  1,         2,         INFINITY,  0,  // +inf, ties
                   5,         5,         -1,        5,         -1});
  for (const char* kind : {"max", "min", "sum", "log_sum_exp", "mean"})
    check_reduce(kind, x, {1}, true, 1e-6, 1e-6);
  for (const char* kind : {"argmax", "argmin"})
    for (bool last : {false, true}) check_reduce(kind, x, {1}, false, 0, 0, last);
}

TEST(CudaReduce, EmptyNoopAndAxesInput) {
  KILN_REQUIRE_GPU();
  // Empty reductions: sum 0, prod 1, max -inf, mean NaN, log_sum -inf.
  for (const char* kind : {"sum", "prod", "max", "min", "mean", "log_sum", "log_sum_exp", "l2"})
    check_reduce(kind, Tensor(DataType::kFloat, {0, 5}), {0}, true, 0, 0);
  check_reduce("max", Tensor(DataType::kInt32, {3, 0}), {1}, false, 0, 0);
  // Empty output: nothing to launch.
  check_reduce("sum", Tensor(DataType::kFloat, {0, 5}), {1}, true, 0, 0);
  // noop_with_empty_axes: an identity.
  auto a = reduce_attrs("sum", {});
  a->noop_with_empty_axes = true;
  expect_gpu_matches_reference("Reduce", std::move(a),
                               {NodeInput::of(random_values(DataType::kFloat, {3, 4}, 7))}, 1, kReduce, 0, 0);
  // Axes as a constant input (int64 and int32).
  expect_gpu_matches_reference("Reduce", reduce_attrs("sum", {}),
                               {NodeInput::of(random_values(DataType::kFloat, {3, 4, 5}, 8)), c64({0, -1})},
                               1, kReduce, 1e-5, 1e-6);
  expect_gpu_matches_reference(
      "Reduce", reduce_attrs("max", {}, false),
      {NodeInput::of(random_values(DataType::kFloat, {3, 4, 5}, 9)), NodeInput::constant_of(i32({1}, {1}))},
      1, kReduce, 0, 0);
  // A scalar.
  check_reduce("sum", f32({}, {2.5f}), {}, true, 0, 0);
}

// ---- Softmax ----------------------------------------------------------------------------------

constexpr const char* kSoftmax = "cuda.softmax";

void check_softmax(const std::string& mode, const Tensor& x, int64_t axis, bool legacy = false,
                   double rtol = -1, double atol = -1) {
  SCOPED_TRACE(cat(mode, " of ", dtype_name(x.dtype()), dims_to_string(x.dims()), " axis ", axis,
                   legacy ? " legacy" : ""));
  auto a = std::make_unique<SoftmaxAttrs>();
  a->mode = mode;
  a->axis = axis;
  a->legacy_2d = legacy;
  const DataType t = x.dtype();
  expect_gpu_matches_reference("Softmax", std::move(a), {NodeInput::of(x)}, 1, kSoftmax,
                               rtol >= 0 ? rtol : rtol_of(t), atol >= 0 ? atol : atol_of(t));
}

TEST(CudaSoftmax, ModesAxesAndLegacy) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 600;
  for (const char* mode : {"softmax", "log_softmax", "hardmax"}) {
    for (int64_t axis : {-1, 0, 1, 2})
      check_softmax(mode, random_values(DataType::kFloat, {4, 7, 9}, seed++, -3, 3), axis);
    check_softmax(mode, random_values(DataType::kFloat, {4, 7, 9}, seed++, -3, 3), 1, true);
    check_softmax(mode, random_values(DataType::kFloat, {2, 3, 40, 50}, seed++, -3, 3), 1, true);
  }
}

TEST(CudaSoftmax, RowLengthsAcrossKernels) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 700;
  // Per-thread (<= 4), warp with 1..32 values per lane, block per row (> 1024), very long rows.
  for (int64_t n : {1, 3, 4, 5, 31, 32, 33, 100, 257, 768, 1000, 1024, 1025, 4097, 70001})
    for (const char* mode : {"softmax", "log_softmax", "hardmax"})
      check_softmax(mode, random_values(DataType::kFloat, {n > 4097 ? 3 : 37, n}, seed++, -5, 5), -1);
  for (DataType t : {DataType::kFloat16, DataType::kBFloat16, DataType::kDouble})
    for (int64_t n : {77, 768, 3000})
      for (const char* mode : {"softmax", "log_softmax"})
        check_softmax(mode, random_values(t, {12, n}, seed++, -5, 5), -1);
  // BERT attention scores: [batch, heads, seq, seq] in float16.
  check_softmax("softmax", random_values(DataType::kFloat16, {2, 12, 128, 128}, seed++, -8, 8), -1);
  // Column softmax with long columns.
  check_softmax("softmax", random_values(DataType::kFloat, {2, 5000, 3}, seed++, -5, 5), 1);
}

TEST(CudaSoftmax, SpecialValuesAndEmpty) {
  KILN_REQUIRE_GPU();
  Tensor x = f32({5, 4}, {1,         NAN,       3,         2,          // NaN row
                          INFINITY,  1,         2,         3,          // +inf row
                          -INFINITY, -INFINITY, -INFINITY, -INFINITY,  // all -inf
                          7,         7,         7,         7,          // ties
                          -INFINITY, 0,         1,         -INFINITY});
  for (const char* mode : {"softmax", "log_softmax", "hardmax"}) {
    check_softmax(mode, x, -1, false, 1e-6, 1e-7);
    check_softmax(mode, x, 0, false, 1e-6, 1e-7);
  }
  // The same rows in a block-per-row length.
  Tensor big = random_values(DataType::kFloat, {3, 2000}, 11, -2, 2);
  big.set_f64(17, NAN);
  big.set_f64(2000 + 5, INFINITY);
  for (int64_t j = 0; j < 2000; ++j) big.set_f64(4000 + j, -INFINITY);
  for (const char* mode : {"softmax", "log_softmax", "hardmax"}) check_softmax(mode, big, -1);
  check_softmax("softmax", Tensor(DataType::kFloat, {0, 7}), -1);
}

// ---- Normalization ----------------------------------------------------------------------------

constexpr const char* kNorm = "cuda.normalization";

std::unique_ptr<NormalizationAttrs> norm_attrs(const std::string& kind, int64_t axis = -1,
                                               int64_t groups = 1) {
  auto a = std::make_unique<NormalizationAttrs>();
  a->kind = kind;
  a->axis = axis;
  a->num_groups = groups;
  return a;
}

void check_norm(std::unique_ptr<NormalizationAttrs> a, std::vector<NodeInput> ins,
                size_t n_outputs = 1, double rtol = 1e-5, double atol = 1e-5) {
  SCOPED_TRACE(cat(a->kind, " of ", dtype_name(ins[0].dtype), ins[0].shape.str()));
  expect_gpu_matches_reference("Normalization", std::move(a), std::move(ins), n_outputs, kNorm,
                               rtol, atol);
}

TEST(CudaNormalization, LayerAndRms) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 800;
  const DataType f = DataType::kFloat;
  for (int64_t L : {1, 5, 32, 33, 768, 1024, 1025, 4099, 70001}) {
    const int64_t rows = L > 5000 ? 3 : 37;
    check_norm(
        norm_attrs("layer"),
        {NodeInput::of(random_values(f, {rows, L}, seed++, -3, 5)),
         NodeInput::constant_of(random_values(f, {L}, seed++)), NodeInput::constant_of(random_values(f, {L}, seed++))},
        3);
    check_norm(norm_attrs("rms"), {NodeInput::of(random_values(f, {rows, L}, seed++, -3, 5)),
                                   NodeInput::constant_of(random_values(f, {L}, seed++))});
  }
  // Normalizing two axes, parameters over both; a scalar-broadcast scale; no parameters.
  check_norm(
      norm_attrs("layer", 1),
      {NodeInput::of(random_values(f, {8, 17, 33}, seed++)), NodeInput::constant_of(random_values(f, {17, 33}, seed++)),
       NodeInput::constant_of(random_values(f, {1, 33}, seed++))},
      3);
  check_norm(norm_attrs("layer", -1), {NodeInput::of(random_values(f, {8, 17, 33}, seed++)),
                                       NodeInput::constant_of(random_values(f, {1}, seed++))});
  check_norm(norm_attrs("layer", 0), {NodeInput::of(random_values(f, {6, 5, 4}, seed++))}, 3);
  // Parameters that vary across rows (per element).
  check_norm(norm_attrs("layer", -1),
             {NodeInput::of(random_values(f, {8, 17, 33}, seed++)), NodeInput::of(random_values(f, {17, 1}, seed++)),
              NodeInput::of(random_values(f, {8, 17, 33}, seed++))});
  // BERT: [batch * seq, hidden] in float16 and bfloat16 with same-type parameters.
  for (DataType t : {DataType::kFloat16, DataType::kBFloat16})
    check_norm(norm_attrs("layer"),
               {NodeInput::of(random_values(t, {2, 128, 768}, seed++, -3, 3)),
                NodeInput::constant_of(random_values(t, {768}, seed++)),
                NodeInput::constant_of(random_values(t, {768}, seed++))},
               1, rtol_of(t), atol_of(t));
  check_norm(norm_attrs("layer"),
             {NodeInput::of(random_values(DataType::kDouble, {9, 3000}, seed++)),
              NodeInput::constant_of(random_values(DataType::kDouble, {3000}, seed++))},
             3, 1e-9, 1e-9);
}

TEST(CudaNormalization, InstanceAndGroup) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 900;
  const DataType f = DataType::kFloat;
  check_norm(norm_attrs("instance"), {NodeInput::of(random_values(f, {2, 3, 5, 7}, seed++)),
                                      NodeInput::constant_of(random_values(f, {3}, seed++)),
                                      NodeInput::constant_of(random_values(f, {3}, seed++))});
  check_norm(norm_attrs("instance"), {NodeInput::of(random_values(f, {1, 2, 300, 301}, seed++)),
                                      NodeInput::constant_of(random_values(f, {2}, seed++)),
                                      NodeInput::constant_of(random_values(f, {2}, seed++))});
  check_norm(norm_attrs("instance"),
             {NodeInput::of(random_values(f, {3, 4}, seed++)), NodeInput::constant_of(random_values(f, {4}, seed++)),
              NodeInput::constant_of(random_values(f, {4}, seed++))});
  // Per-channel parameters (rows span several channels) and per-group ones.
  check_norm(norm_attrs("group", -1, 3), {NodeInput::of(random_values(f, {2, 6, 4, 5}, seed++)),
                                          NodeInput::constant_of(random_values(f, {6}, seed++)),
                                          NodeInput::constant_of(random_values(f, {6}, seed++))});
  check_norm(norm_attrs("group", -1, 3), {NodeInput::of(random_values(f, {2, 6, 4, 5}, seed++)),
                                          NodeInput::constant_of(random_values(f, {3}, seed++)),
                                          NodeInput::constant_of(random_values(f, {3}, seed++))});
  check_norm(norm_attrs("group", -1, 4), {NodeInput::of(random_values(f, {2, 32, 40, 40}, seed++)),
                                          NodeInput::constant_of(random_values(f, {32}, seed++)),
                                          NodeInput::constant_of(random_values(f, {32}, seed++))});
  check_norm(norm_attrs("group", -1, 2),
             {NodeInput::of(random_values(DataType::kFloat16, {2, 8, 9, 9}, seed++)),
              NodeInput::constant_of(random_values(DataType::kFloat16, {8}, seed++)),
              NodeInput::constant_of(random_values(DataType::kFloat16, {8}, seed++))},
             1, 1e-2, 1e-2);
}

TEST(CudaNormalization, BatchAndLrn) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1000;
  const DataType f = DataType::kFloat;
  auto bn = [&](DataType xt, DataType pt, Dims x, Dims p, double tol) {
    check_norm(
        norm_attrs("batch"),
        {NodeInput::of(random_values(xt, x, seed++, -3, 3)), NodeInput::constant_of(random_values(pt, p, seed++)),
         NodeInput::constant_of(random_values(pt, p, seed++)), NodeInput::constant_of(random_values(pt, p, seed++)),
         NodeInput::constant_of(random_values(pt, p, seed++, 0.5, 2))},
        1, tol, tol);
  };
  bn(f, f, {2, 3, 4, 5}, {3}, 1e-5);    // planes of 20: flat kernel
  bn(f, f, {4, 16, 9, 9}, {16}, 1e-5);  // planes of 81: plane kernel
  bn(f, f, {2, 3, 4}, {3, 4}, 1e-5);    // spatial = 0 style parameters
  bn(f, f, {2, 3, 4, 5}, {3, 1, 1}, 1e-5);
  bn(f, f, {7, 5}, {5}, 1e-5);                         // [N, C]
  bn(DataType::kFloat16, f, {2, 8, 7, 7}, {8}, 1e-2);  // float16 X, float32 parameters
  bn(DataType::kDouble, DataType::kDouble, {2, 3, 5}, {3}, 1e-9);
  // Parameters in different layouts: per element.
  check_norm(norm_attrs("batch"),
             {NodeInput::of(random_values(f, {2, 3, 4}, seed++)), NodeInput::none(), NodeInput::none(),
              NodeInput::constant_of(random_values(f, {3, 4}, seed++)),
              NodeInput::constant_of(random_values(f, {3}, seed++, 0.5, 2))});
  for (int64_t size : {1, 3, 4, 5}) {
    auto a = norm_attrs("lrn");
    a->size = size;
    a->alpha = 0.01;
    a->beta = 0.75;
    a->lrn_bias = 1.5;
    check_norm(std::move(a), {NodeInput::of(random_values(f, {2, 7, 5, 4}, seed++, -3, 3))});
  }
  auto a = norm_attrs("lrn");
  a->size = 5;
  check_norm(std::move(a), {NodeInput::of(random_values(DataType::kFloat16, {2, 16, 9, 9}, seed++, -3, 3))},
             1, 1e-2, 1e-2);
}

// ---- Pool -------------------------------------------------------------------------------------

constexpr const char* kPool = "cuda.pool";

struct PoolCase {
  std::string kind = "max";
  Ints kernel, strides, pads, dilations;
  bool ceil_mode = false, count_include_pad = false, global = false, channels_last = false;
  std::string auto_pad = "NOTSET";
  int64_t storage_order = 0;
  double p = 2;
};

std::unique_ptr<PoolAttrs> pool_attrs(const PoolCase& c) {
  auto a = std::make_unique<PoolAttrs>();
  a->kind = c.kind;
  a->kernel = c.kernel;
  a->strides = c.strides;
  a->pads = c.pads;
  a->dilations = c.dilations;
  a->ceil_mode = c.ceil_mode;
  a->count_include_pad = c.count_include_pad;
  a->global = c.global;
  a->channels_last = c.channels_last;
  a->auto_pad = c.auto_pad;
  a->storage_order = c.storage_order;
  a->p = c.p;
  return a;
}

void check_pool(const PoolCase& c, const Tensor& x, size_t n_outputs = 1) {
  SCOPED_TRACE(cat(c.kind, " pool of ", dtype_name(x.dtype()), dims_to_string(x.dims()), " kernel ",
                   dims_to_string(c.kernel), c.channels_last ? " NHWC" : "",
                   c.global ? " global" : ""));
  const DataType t = x.dtype();
  expect_gpu_matches_reference("Pool", pool_attrs(c), {NodeInput::of(x)}, n_outputs, kPool,
                               rtol_of(t), atol_of(t));
}

TEST(CudaPool, MaxAvgLp2dChannelsFirst) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1100;
  const DataType f = DataType::kFloat;
  std::vector<PoolCase> cases;
  for (const char* kind : {"max", "avg", "lp"}) {
    PoolCase c;
    c.kind = kind;
    c.kernel = {3, 3};
    c.strides = {2, 2};
    c.pads = {1, 1, 1, 1};
    cases.push_back(c);
    c.ceil_mode = true;
    c.pads = {0, 1, 1, 0};
    cases.push_back(c);
    c.count_include_pad = true;
    cases.push_back(c);
    c.ceil_mode = false;
    c.kernel = {2, 3};
    c.dilations = {2, 1};
    c.strides = {1, 2};
    cases.push_back(c);
    c = PoolCase{};
    c.kind = kind;
    c.kernel = {3, 2};
    c.auto_pad = "SAME_UPPER";
    c.strides = {2, 2};
    cases.push_back(c);
  }
  for (const PoolCase& c : cases) check_pool(c, random_values(f, {2, 3, 17, 19}, seed++, -3, 3));
  PoolCase lp3;
  lp3.kind = "lp";
  lp3.p = 3;
  lp3.kernel = {2, 2};
  check_pool(lp3, random_values(f, {2, 3, 9, 8}, seed++, -3, 3));
  // ResNet's stem pool, float16.
  PoolCase stem;
  stem.kernel = {3, 3};
  stem.strides = {2, 2};
  stem.pads = {1, 1, 1, 1};
  check_pool(stem, random_values(DataType::kFloat16, {4, 64, 112, 112}, seed++, -3, 3));
  PoolCase avg = stem;
  avg.kind = "avg";
  check_pool(avg, random_values(DataType::kBFloat16, {2, 8, 15, 15}, seed++, -3, 3));
  check_pool(avg, random_values(DataType::kDouble, {2, 8, 15, 15}, seed++, -3, 3));
}

TEST(CudaPool, MaxIndicesAndIntegers) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1200;
  PoolCase c;
  c.kernel = {3, 3};
  c.strides = {2, 2};
  c.pads = {1, 1, 1, 1};
  for (int64_t order : {0, 1}) {
    c.storage_order = order;
    check_pool(c, random_values(DataType::kFloat, {2, 3, 11, 13}, seed++, -3, 3), 2);
    // Ties (small integers as floats): the first maximum in window order.
    check_pool(c, as_float(random_values(DataType::kInt32, {2, 3, 11, 13}, seed++, 0, 2)), 2);
  }
  for (DataType t : {DataType::kInt8, DataType::kUInt8, DataType::kInt32, DataType::kInt64}) {
    c.storage_order = 0;
    check_pool(c, random_values(t, {2, 3, 11, 13}, seed++, t == DataType::kUInt8 ? 0 : -100, 100), 2);
  }
  // NaN: the first NaN in the window wins.
  Tensor x = random_values(DataType::kFloat, {1, 1, 6, 6}, seed++, -3, 3);
  x.set_f64(7, NAN);
  x.set_f64(20, NAN);
  check_pool(c, x, 2);
}

TEST(CudaPool, OneAndThreeSpatialAxes) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1300;
  for (const char* kind : {"max", "avg", "lp"}) {
    PoolCase c;
    c.kind = kind;
    c.kernel = {4};
    c.strides = {3};
    c.pads = {2, 1};
    c.count_include_pad = true;
    check_pool(c, random_values(DataType::kFloat, {3, 5, 29}, seed++, -3, 3));
    c.kernel = {2, 3, 2};
    c.strides = {1, 2, 2};
    c.pads = {1, 0, 1, 0, 1, 1};
    c.count_include_pad = false;
    c.ceil_mode = true;
    check_pool(c, random_values(DataType::kFloat, {2, 3, 5, 7, 6}, seed++, -3, 3));
  }
}

TEST(CudaPool, ChannelsLast) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1400;
  for (const char* kind : {"max", "avg", "lp"}) {
    PoolCase c;
    c.kind = kind;
    c.kernel = {3, 3};
    c.strides = {2, 2};
    c.pads = {1, 1, 1, 1};
    c.channels_last = true;
    check_pool(c, random_values(DataType::kFloat, {2, 17, 19, 5}, seed++, -3, 3));
    c.ceil_mode = true;
    c.count_include_pad = true;
    check_pool(c, random_values(DataType::kFloat16, {2, 17, 19, 64}, seed++, -3, 3));
  }
  // The 16-byte vector kernel (2-D max/avg, channels a multiple of 16 bytes): float32 with 4
  // channels per thread, dilation and uneven pads; bfloat16 without pads.
  for (const char* kind : {"max", "avg"}) {
    PoolCase c;
    c.kind = kind;
    c.kernel = {3, 2};
    c.strides = {2, 3};
    c.dilations = {2, 1};
    c.pads = {2, 1, 1, 0};
    c.channels_last = true;
    check_pool(c, random_values(DataType::kFloat, {3, 9, 11, 12}, seed++, -3, 3));
    PoolCase b;
    b.kind = kind;
    b.kernel = {2, 2};
    b.strides = {2, 2};
    b.channels_last = true;
    check_pool(b, random_values(DataType::kBFloat16, {1, 7, 8, 24}, seed++, -3, 3));
  }
  PoolCase c;
  c.kernel = {2, 2, 2};
  c.channels_last = true;
  check_pool(c, random_values(DataType::kInt8, {2, 4, 5, 6, 3}, seed++, -100, 100));
}

TEST(CudaPool, Global) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1500;
  for (const char* kind : {"avg", "max", "lp"})
    for (double p : {1.0, 2.0, 3.0}) {
      if (std::string(kind) != "lp" && p != 1.0) continue;
      PoolCase c;
      c.kind = kind;
      c.global = true;
      c.p = p;
      check_pool(c, random_values(DataType::kFloat, {4, 64, 7, 7}, seed++, -3, 3));
      check_pool(c, random_values(DataType::kFloat, {3, 5, 1000}, seed++, -3, 3));
      c.channels_last = true;
      check_pool(c, random_values(DataType::kFloat, {4, 7, 7, 64}, seed++, -3, 3));
      check_pool(c, random_values(DataType::kFloat16, {8, 7, 7, 2048}, seed++, -3, 3));
    }
  PoolCase c;
  c.global = true;
  check_pool(c, random_values(DataType::kFloat, {2, 3, 5, 5}, seed++, -3, 3), 2);  // with Indices
  check_pool(c, random_values(DataType::kInt32, {2, 3, 5, 5}, seed++, -100, 100));
}

// ---- CumSum -----------------------------------------------------------------------------------

constexpr const char* kCumSum = "cuda.cum_sum";

void check_cum_sum(const Tensor& x, int64_t axis, bool exclusive, bool reverse, double rtol,
                   double atol, bool axis32 = false) {
  SCOPED_TRACE(cat("cumsum of ", dtype_name(x.dtype()), dims_to_string(x.dims()), " axis ", axis,
                   exclusive ? " exclusive" : "", reverse ? " reverse" : ""));
  auto a = std::make_unique<CumSumAttrs>();
  a->exclusive = exclusive;
  a->reverse = reverse;
  NodeInput ax = axis32 ? NodeInput::constant_of(i32({}, {static_cast<int32_t>(axis)}))
                        : NodeInput::constant_of(i64({}, {axis}));
  expect_gpu_matches_reference("CumSum", std::move(a), {NodeInput::of(x), ax}, 1, kCumSum, rtol,
                               atol);
}

TEST(CudaCumSum, EveryModeAxisAndType) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1600;
  for (bool excl : {false, true})
    for (bool rev : {false, true}) {
      for (int64_t axis : {0, 1, -1})
        check_cum_sum(random_values(DataType::kFloat, {5, 37, 3}, seed++), axis, excl, rev, 1e-5, 1e-6);
      check_cum_sum(random_values(DataType::kFloat, {3, 70001}, seed++), 1, excl, rev, 1e-5, 1e-5);   // block
      check_cum_sum(random_values(DataType::kFloat, {2000, 333}, seed++), 1, excl, rev, 1e-5, 1e-5);  // warp
      check_cum_sum(random_values(DataType::kFloat, {100003}, seed++), 0, excl, rev, 1e-5, 1e-5, true);
      check_cum_sum(random_values(DataType::kFloat16, {7, 300}, seed++), 1, excl, rev, 1e-2, 2e-2);
      check_cum_sum(random_values(DataType::kBFloat16, {7, 300}, seed++), 0, excl, rev, 3e-2, 6e-2);
      check_cum_sum(random_values(DataType::kDouble, {7, 3000}, seed++), 1, excl, rev, 1e-12, 1e-12);
      for (DataType t : {DataType::kInt32, DataType::kInt64, DataType::kUInt32, DataType::kUInt64})
        check_cum_sum(random_values(t, {6, 5001}, seed++, 0, 1000000), 1, excl, rev, 0, 0);
    }
  check_cum_sum(Tensor(DataType::kFloat, {0, 4}), 1, false, false, 0, 0);
}

// ---- TopK -------------------------------------------------------------------------------------

constexpr const char* kTopK = "cuda.top_k";

void check_top_k(const Tensor& x, int64_t k, int64_t axis, bool largest,
                 bool k_at_run_time = false) {
  SCOPED_TRACE(cat("top ", k, largest ? " largest" : " smallest", " of ", dtype_name(x.dtype()),
                   dims_to_string(x.dims()), " axis ", axis));
  auto a = std::make_unique<TopKAttrs>();
  a->axis = axis;
  a->largest = largest;
  NodeInput kin =
      k_at_run_time ? NodeInput::of(i64({1}, {k})) : NodeInput::constant_of(i64({1}, {k}));
  expect_gpu_matches_reference("TopK", std::move(a), {NodeInput::of(x), kin}, 2, kTopK, 0, 0);
}

TEST(CudaTopK, SharedMemoryAndRadixPaths) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1700;
  for (bool largest : {true, false}) {
    check_top_k(random_values(DataType::kFloat, {4, 37}, seed++), 5, -1, largest);
    check_top_k(random_values(DataType::kFloat, {37, 6}, seed++), 3, 0, largest);
    check_top_k(random_values(DataType::kFloat, {3, 1}, seed++), 1, 1, largest);
    check_top_k(random_values(DataType::kFloat, {5, 2048}, seed++), 2048, 1, largest);      // whole rows
    check_top_k(random_values(DataType::kFloat, {3, 3001}, seed++), 17, 1, largest);        // segmented radix
    check_top_k(random_values(DataType::kFloat, {100003}, seed++), 10, 0, largest);         // one segment
    check_top_k(random_values(DataType::kFloat, {2, 3000, 3}, seed++), 50, 1, largest);     // inner > 1
    check_top_k(random_values(DataType::kFloat, {4, 37}, seed++), 0, -1, largest);          // k = 0
    check_top_k(random_values(DataType::kFloat, {4, 1000}, seed++), 7, -1, largest, true);  // K at run time
    for (DataType t : {DataType::kFloat16, DataType::kBFloat16, DataType::kDouble})
      for (int64_t n : {129, 5000}) check_top_k(random_values(t, {3, n}, seed++), 9, -1, largest);
    for (DataType t : {DataType::kInt8, DataType::kUInt8, DataType::kInt32, DataType::kInt64})
      for (int64_t n : {129, 5000})
        check_top_k(random_values(t, {3, n}, seed++, t == DataType::kUInt8 ? 0 : -100, 100), 9, -1, largest);
  }
}

TEST(CudaTopK, TiesNaNAndSignedZero) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1800;
  for (int64_t n : {40, 4000}) {
    // Few distinct values: ties everywhere must keep index order; NaN is the largest; -0 == +0.
    Tensor x = random_values(DataType::kInt32, {3, n}, seed++, -3, 3);
    Tensor xf = as_float(x);
    for (int64_t i = 0; i < xf.numel(); i += 11) xf.set_f64(i, NAN);
    for (int64_t i = 5; i < xf.numel(); i += 13) xf.set_f64(i, -0.0);
    for (int64_t i = 7; i < xf.numel(); i += 29) xf.set_f64(i, i % 2 ? INFINITY : -INFINITY);
    for (bool largest : {true, false}) {
      check_top_k(xf, n / 2, -1, largest);
      check_top_k(x, n / 3, -1, largest);
    }
  }
}

}  // namespace
}  // namespace kiln::testing
