// GPU tests of the data-movement and indexing tactics (src/backends/cuda/kernels/movement*,
// indexing*, resize*, shape_ops*, quantize*): each case runs one node on the CUDA backend and
// compares it with the reference compute. Random data of awkward sizes and several element
// types; negative axes and indices; empty tensors; one case larger than 65535 * 256 elements.
// Pure data movement must match exactly (tolerance 0).
#include <limits>
#include <numeric>
#include <random>

#include "gpu/gpu_compare.h"
#include "ops/concat.h"
#include "ops/constant_of_shape.h"
#include "ops/dequantize_linear.h"
#include "ops/gather.h"
#include "ops/gather_elements.h"
#include "ops/gather_nd.h"
#include "ops/max_unpool.h"
#include "ops/one_hot.h"
#include "ops/pad.h"
#include "ops/quantize_linear.h"
#include "ops/reshape.h"
#include "ops/resize.h"
#include "ops/reverse_sequence.h"
#include "ops/scatter_elements.h"
#include "ops/scatter_nd.h"
#include "ops/shape.h"
#include "ops/transpose.h"
#include "ops/trilu.h"
#include "ops/window_function.h"

namespace kiln::testing {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

const DataType kMoveTypes[] = {DataType::kFloat, DataType::kFloat16, DataType::kInt64,
                               DataType::kInt32, DataType::kUInt8,   DataType::kBool};

// Random values of any element type: floats in [-10, 10), signed ints in [-100, 100], unsigned
// ints in [0, 200], bools 0/1.
Tensor rand_t(DataType t, Dims d, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor x(t, std::move(d));
  std::uniform_real_distribution<double> u(-10, 10);
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (dtype_is_float(t))
      x.set_f64(i, u(rng));
    else if (t == DataType::kBool)
      x.set_i64(i, rng() & 1);
    else if (dtype_is_unsigned_int(t))
      x.set_i64(i, static_cast<int64_t>(rng() % 201));
    else
      x.set_i64(i, static_cast<int64_t>(rng() % 201) - 100);
  }
  return x;
}

// Indices in [lo, hi] (negative ones count from the end).
Tensor rand_idx(DataType t, Dims d, int64_t lo, int64_t hi, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor x(t, std::move(d));
  for (int64_t i = 0; i < x.numel(); ++i)
    x.set_i64(i, lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1)));
  return x;
}

NodeInput in(Tensor t) { return NodeInput::of(std::move(t)); }
NodeInput cin(Tensor t) { return NodeInput::constant_of(std::move(t)); }
NodeInput i64_scalar(int64_t v) { return NodeInput::constant_of(i64({}, {v})); }

void expect_exact(const std::string& op, std::unique_ptr<Attrs> attrs, std::vector<NodeInput> ins,
                  const std::string& tactic) {
  expect_gpu_matches_reference(op, std::move(attrs), std::move(ins), 1, tactic, 0, 0);
}

template <class A>
std::unique_ptr<A> attrs(A a) {
  return std::make_unique<A>(std::move(a));
}

// ---- Reshape ----

TEST(GpuReshape, CopiesEveryType) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes)
    expect_exact("Reshape", attrs(ReshapeAttrs{}), {in(rand_t(t, {3, 5, 7}, 1)), c64({5, -1})},
                 "cuda.reshape");
}

TEST(GpuReshape, SqueezeFormAndEmpty) {
  KILN_REQUIRE_GPU();
  ReshapeAttrs sq;
  sq.form = "squeeze";
  sq.axes = {-2};
  expect_exact("Reshape", attrs(sq), {in(rand_t(DataType::kFloat, {4, 1, 3}, 2))}, "cuda.reshape");
  ReshapeAttrs zero;
  zero.allowzero = 1;
  expect_exact("Reshape", attrs(zero), {in(rand_t(DataType::kFloat, {0, 4}, 3)), c64({4, 0})},
               "cuda.reshape");
}

// ---- Transpose ----

std::unique_ptr<TransposeAttrs> perm(Ints p) {
  TransposeAttrs a;
  a.perm = std::move(p);
  return attrs(a);
}

TEST(GpuTranspose, NchwToNhwcTiled) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes)
    expect_exact("Transpose", perm({0, 2, 3, 1}), {in(rand_t(t, {2, 37, 19, 23}, 4))},
                 "cuda.transpose");
}

TEST(GpuTranspose, NhwcToNchwTiled) {
  KILN_REQUIRE_GPU();
  for (DataType t : {DataType::kFloat, DataType::kFloat16, DataType::kBFloat16, DataType::kDouble})
    expect_exact("Transpose", perm({0, 3, 1, 2}), {in(rand_t(t, {3, 17, 29, 40}, 5))},
                 "cuda.transpose");
}

// Transposes that also cast and pad (the layout pass's edge reformats) run on cuda.reformat:
// its per-pixel kernel for NCHW -> NHWC with up to 8 output channels (the stem: 3 planes padded
// to 4 and cast to float16), and its generic kernel for the rest.
std::unique_ptr<TransposeAttrs> reformat(Ints p, DataType to, Ints pad_end) {
  TransposeAttrs a;
  a.perm = std::move(p);
  a.to = to;
  a.pad_end = std::move(pad_end);
  return attrs(a);
}

TEST(GpuReformat, CastsAndPadsIntoChannelsLast) {
  KILN_REQUIRE_GPU();
  const Ints nhwc = {0, 2, 3, 1};
  expect_exact("Transpose", reformat(nhwc, DataType::kFloat16, {0, 0, 0, 1}),
               {in(rand_t(DataType::kFloat, {2, 3, 13, 17}, 40))}, "cuda.reformat");
  expect_exact("Transpose", reformat(nhwc, DataType::kBFloat16, {0, 0, 0, 3}),
               {in(rand_t(DataType::kFloat, {3, 5, 7, 9}, 41))}, "cuda.reformat");
  expect_exact("Transpose", reformat(nhwc, DataType::kFloat, {}),
               {in(rand_t(DataType::kFloat16, {2, 3, 5, 6}, 42))}, "cuda.reformat");
  expect_exact("Transpose", reformat(nhwc, DataType::kFloat16, {}),
               {in(rand_t(DataType::kFloat, {2, 12, 5, 5}, 43))}, "cuda.reformat");
  expect_exact("Transpose", reformat({0, 3, 1, 2}, DataType::kFloat, {}),
               {in(rand_t(DataType::kFloat16, {2, 7, 5, 3}, 44))}, "cuda.reformat");
}

TEST(GpuTranspose, ThreeChannelsCopiesDirectly) {
  KILN_REQUIRE_GPU();
  expect_exact("Transpose", perm({0, 2, 3, 1}), {in(rand_t(DataType::kFloat, {2, 3, 31, 33}, 6))},
               "cuda.transpose");
  expect_exact("Transpose", perm({0, 3, 1, 2}), {in(rand_t(DataType::kUInt8, {2, 31, 33, 3}, 7))},
               "cuda.transpose");
}

TEST(GpuTranspose, InnermostKeptIsWidened) {
  KILN_REQUIRE_GPU();
  // Attention heads: [B, S, H, D] -> [B, H, S, D]; rows of D move in wide units.
  expect_exact("Transpose", perm({0, 2, 1, 3}),
               {in(rand_t(DataType::kFloat16, {2, 13, 12, 64}, 8))}, "cuda.transpose");
  expect_exact("Transpose", perm({1, 0, 2}), {in(rand_t(DataType::kFloat, {33, 65, 7}, 9))},
               "cuda.transpose");
}

TEST(GpuTranspose, GeneralPermutations) {
  KILN_REQUIRE_GPU();
  expect_exact("Transpose", perm({2, 1, 0}), {in(rand_t(DataType::kInt32, {7, 11, 13}, 10))},
               "cuda.transpose");
  expect_exact("Transpose", perm({3, 0, 5, 1, 4, 2}),
               {in(rand_t(DataType::kFloat, {2, 3, 4, 5, 3, 2}, 11))}, "cuda.transpose");
  expect_exact("Transpose", perm({}), {in(rand_t(DataType::kInt64, {4, 1, 6}, 12))},
               "cuda.transpose");
  expect_exact("Transpose", perm({1, 0}), {in(rand_t(DataType::kFloat, {1, 1}, 13))},
               "cuda.transpose");
  expect_exact("Transpose", perm({2, 0, 1}), {in(rand_t(DataType::kFloat, {0, 5, 3}, 14))},
               "cuda.transpose");
}

TEST(GpuTranspose, LargerThanOneGridRow) {
  KILN_REQUIRE_GPU();
  // 16.8M elements > 65535 * 256: grid-stride loops and 64-bit offsets.
  expect_exact("Transpose", perm({0, 2, 1}), {in(rand_t(DataType::kFloat, {4, 2049, 2053}, 15))},
               "cuda.transpose");
}

// ---- Slice ----

TEST(GpuSlice, StepsAndNegativeStarts) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes) {
    expect_exact(
        "Slice", nullptr,
        {in(rand_t(t, {5, 7, 9}, 16)), c64({-1, 1}), c64({kMin, 100}), c64({0, 2}), c64({-2, 3})},
        "cuda.slice");
    expect_exact(
        "Slice", nullptr,
        {in(rand_t(t, {5, 7}, 17)), c64({-2, -1}), c64({-6, -8}), c64({0, -1}), c64({-1, -3})},
        "cuda.slice");
  }
}

TEST(GpuSlice, ContiguousRowsAndEmpty) {
  KILN_REQUIRE_GPU();
  expect_exact("Slice", nullptr,
               {in(rand_t(DataType::kFloat16, {4, 64}, 18)), c64({8}), c64({40}), c64({1})},
               "cuda.slice");
  expect_exact(
      "Slice", nullptr,
      {in(rand_t(DataType::kFloat, {6, 10, 32}, 19)), c64({1, 0}), c64({kMax, 3}), c64({0, 1})},
      "cuda.slice");
  expect_exact("Slice", nullptr, {in(rand_t(DataType::kFloat, {5, 7}, 20)), c64({9}), c64({12})},
               "cuda.slice");
}

TEST(GpuSlice, OperandsComputedAtRunTime) {
  KILN_REQUIRE_GPU();
  // Starts and steps on the device: resolved by a one-thread kernel.
  expect_exact("Slice", nullptr,
               {in(rand_t(DataType::kFloat, {5, 7, 9}, 21)), in(i64({2}, {-1, 1})),
                in(i64({2}, {kMin, 100})), in(i32({2}, {0, -1})), in(i64({2}, {-2, 3}))},
               "cuda.slice");
  // Only the ends computed: the host-resolved path with run-time output dims.
  expect_exact("Slice", nullptr,
               {in(rand_t(DataType::kInt64, {3, 11}, 22)), c64({2}), in(i64({1}, {-3})), c64({1})},
               "cuda.slice");
}

// ---- Concat ----

std::unique_ptr<ConcatAttrs> concat_axis(int64_t axis) {
  ConcatAttrs a;
  a.axis = axis;
  return attrs(a);
}

TEST(GpuConcat, AxesAndTypes) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes) {
    expect_exact("Concat", concat_axis(1),
                 {in(rand_t(t, {2, 3, 5}, 23)), in(rand_t(t, {2, 1, 5}, 24)),
                  in(rand_t(t, {2, 0, 5}, 25)), in(rand_t(t, {2, 4, 5}, 26))},
                 "cuda.concat");
    expect_exact("Concat", concat_axis(-1), {in(rand_t(t, {3, 7}, 27)), in(rand_t(t, {3, 2}, 28))},
                 "cuda.concat");
  }
  // Aligned rows: wide units.
  expect_exact(
      "Concat", concat_axis(1),
      {in(rand_t(DataType::kFloat16, {8, 16}, 29)), in(rand_t(DataType::kFloat16, {8, 32}, 30))},
      "cuda.concat");
  expect_exact(
      "Concat", concat_axis(0),
      {in(rand_t(DataType::kFloat, {3, 4}, 31)), cin(rand_t(DataType::kFloat, {2, 4}, 32))},
      "cuda.concat");
}

TEST(GpuConcat, ManyInputs) {
  KILN_REQUIRE_GPU();
  std::vector<NodeInput> ins;
  for (int i = 0; i < 41; ++i)
    ins.push_back(in(rand_t(DataType::kInt32, {3, 1 + i % 4, 2}, 40 + i)));
  expect_exact("Concat", concat_axis(1), ins, "cuda.concat");
}

// ---- Pad ----

std::unique_ptr<PadAttrs> pad_mode(const std::string& m) {
  PadAttrs a;
  a.mode = m;
  return attrs(a);
}

TEST(GpuPad, ConstantWithValueAndCrop) {
  KILN_REQUIRE_GPU();
  expect_exact(
      "Pad", pad_mode("constant"),
      {in(rand_t(DataType::kFloat, {3, 4, 5}, 50)), c64({1, 0, 2, 0, 3, 1}), cin(f32({}, {1.5f}))},
      "cuda.pad");
  for (DataType t : kMoveTypes)
    expect_exact("Pad", pad_mode("constant"),
                 {in(rand_t(t, {3, 4, 5}, 51)), c64({-1, 2, 0, 1, -2, 3})}, "cuda.pad");
  expect_exact("Pad", pad_mode("constant"),
               {in(rand_t(DataType::kInt64, {0, 3}, 52)), c64({1, 0, 2, 1})}, "cuda.pad");
}

TEST(GpuPad, ReflectAndEdge) {
  KILN_REQUIRE_GPU();
  for (DataType t : {DataType::kFloat, DataType::kFloat16, DataType::kUInt8}) {
    // Pads longer than the dim repeat the mirror.
    expect_exact("Pad", pad_mode("reflect"), {in(rand_t(t, {3, 4}, 53)), c64({5, 2, 4, 7})},
                 "cuda.pad");
    expect_exact("Pad", pad_mode("edge"), {in(rand_t(t, {2, 3, 4}, 54)), c64({0, 2, 3, 1, 0, 2})},
                 "cuda.pad");
  }
  expect_exact("Pad", pad_mode("reflect"),
               {in(rand_t(DataType::kFloat, {1, 5}, 55)), c64({2, 1, 3, 2})}, "cuda.pad");
}

TEST(GpuPad, AxesAndRunTimePads) {
  KILN_REQUIRE_GPU();
  expect_exact(
      "Pad", pad_mode("constant"),
      {in(rand_t(DataType::kFloat, {2, 3, 4}, 56)), c64({2, 3}), NodeInput::none(), c64({-1})},
      "cuda.pad");
  expect_exact("Pad", pad_mode("edge"),
               {in(rand_t(DataType::kInt32, {2, 3, 4}, 57)), in(i64({4}, {1, -1, 2, 2})),
                NodeInput::none(), in(i64({2}, {-1, 0}))},
               "cuda.pad");
}

// ---- Tile / Expand ----

TEST(GpuTile, Repeats) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes)
    expect_exact("Tile", nullptr, {in(rand_t(t, {2, 3, 5}, 60)), c64({2, 1, 3})}, "cuda.tile");
  expect_exact("Tile", nullptr, {in(rand_t(DataType::kFloat16, {1, 8}, 61)), c64({3, 4})},
               "cuda.tile");
  expect_exact("Tile", nullptr, {in(rand_t(DataType::kFloat, {2, 3}, 62)), c64({0, 2})},
               "cuda.tile");
  expect_exact("Tile", nullptr, {in(rand_t(DataType::kFloat, {2, 3}, 63)), in(i64({2}, {2, 2}))},
               "cuda.tile");
}

TEST(GpuExpand, Broadcasts) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes) {
    expect_exact("Expand", nullptr, {in(rand_t(t, {3, 1, 5}, 64)), c64({2, 3, 4, 5})},
                 "cuda.expand");
    expect_exact("Expand", nullptr, {in(rand_t(t, {4, 1}, 65)), c64({4, 6})}, "cuda.expand");
  }
  expect_exact("Expand", nullptr, {in(i64({1}, {-42})), c64({7, 9})}, "cuda.expand");
  expect_exact("Expand", nullptr, {in(rand_t(DataType::kFloat16, {2, 1, 8}, 67)), c64({1, 3, 1})},
               "cuda.expand");
  expect_exact("Expand", nullptr, {in(rand_t(DataType::kFloat, {2, 1}, 68)), c64({0, 2, 3})},
               "cuda.expand");
}

// ---- Trilu / ReverseSequence ----

TEST(GpuTrilu, UpperAndLower) {
  KILN_REQUIRE_GPU();
  for (int upper = 0; upper < 2; ++upper)
    for (int64_t k : {int64_t{-2}, int64_t{0}, int64_t{3}, int64_t{1} << 40, -(int64_t{1} << 40)})
      for (DataType t : {DataType::kFloat, DataType::kFloat16, DataType::kInt64}) {
        TriluAttrs a;
        a.upper = upper;
        expect_exact("Trilu", attrs(a), {in(rand_t(t, {2, 3, 5, 7}, 70)), i64_scalar(k)},
                     "cuda.trilu");
      }
  TriluAttrs a;
  expect_exact("Trilu", attrs(a), {in(rand_t(DataType::kUInt8, {6, 4}, 71))}, "cuda.trilu");
}

TEST(GpuReverseSequence, BothAxisOrders) {
  KILN_REQUIRE_GPU();
  ReverseSequenceAttrs tb;  // time 0, batch 1
  expect_exact("ReverseSequence", attrs(tb),
               {in(rand_t(DataType::kFloat, {5, 4, 3}, 72)), in(i64({4}, {5, 3, 0, 1}))},
               "cuda.reverse_sequence");
  ReverseSequenceAttrs bt;
  bt.batch_axis = 0;
  bt.time_axis = 1;
  expect_exact("ReverseSequence", attrs(bt),
               {in(rand_t(DataType::kFloat16, {3, 6, 2, 4}, 73)), in(i64({3}, {6, 1, 3}))},
               "cuda.reverse_sequence");
  expect_exact("ReverseSequence", attrs(bt),
               {in(rand_t(DataType::kInt64, {2, 7}, 74)), in(i64({2}, {4, 7}))},
               "cuda.reverse_sequence");
}

// ---- Gather family ----

std::unique_ptr<GatherAttrs> gather_axis(int64_t axis) {
  GatherAttrs a;
  a.axis = axis;
  return attrs(a);
}

TEST(GpuGather, EmbeddingLookup) {
  KILN_REQUIRE_GPU();
  // BERT-like: a [vocab, hidden] table, [batch, seq] ids (some negative).
  for (DataType t : {DataType::kFloat, DataType::kFloat16})
    expect_exact(
        "Gather", gather_axis(0),
        {cin(rand_t(t, {1000, 768}, 80)), in(rand_idx(DataType::kInt64, {2, 37}, -1000, 999, 81))},
        "cuda.gather");
  expect_exact("Gather", gather_axis(0),
               {in(rand_t(DataType::kFloat, {4000, 1024}, 82)),
                in(rand_idx(DataType::kInt32, {8, 513}, -4000, 3999, 83))},
               "cuda.gather");
}

TEST(GpuGather, AxesTypesAndScalars) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes) {
    expect_exact("Gather", gather_axis(1),
                 {in(rand_t(t, {3, 5, 7}, 84)), in(rand_idx(DataType::kInt32, {4}, -5, 4, 85))},
                 "cuda.gather");
    expect_exact("Gather", gather_axis(-1),
                 {in(rand_t(t, {3, 5, 7}, 86)), in(rand_idx(DataType::kInt64, {2, 3}, -7, 6, 87))},
                 "cuda.gather");
  }
  expect_exact("Gather", gather_axis(0), {in(rand_t(DataType::kFloat, {6, 3}, 88)), i64_scalar(-2)},
               "cuda.gather");
  expect_exact("Gather", gather_axis(0),
               {in(rand_t(DataType::kFloat, {6, 3}, 89)), in(Tensor(DataType::kInt64, {0, 2}))},
               "cuda.gather");
}

TEST(GpuGatherElements, Axes) {
  KILN_REQUIRE_GPU();
  GatherElementsAttrs a1;
  a1.axis = 1;
  GatherElementsAttrs am;
  am.axis = -1;
  for (DataType t : kMoveTypes) {
    expect_exact(
        "GatherElements", attrs(a1),
        {in(rand_t(t, {4, 5, 6}, 90)), in(rand_idx(DataType::kInt64, {4, 3, 6}, -5, 4, 91))},
        "cuda.gather_elements");
    expect_exact(
        "GatherElements", attrs(am),
        {in(rand_t(t, {4, 5, 6}, 92)), in(rand_idx(DataType::kInt32, {2, 5, 9}, -6, 5, 93))},
        "cuda.gather_elements");
  }
}

TEST(GpuGatherND, TuplesAndBatchDims) {
  KILN_REQUIRE_GPU();
  GatherNDAttrs b0, b1;
  b1.batch_dims = 1;
  for (DataType t : {DataType::kFloat, DataType::kUInt8, DataType::kInt64}) {
    expect_exact("GatherND", attrs(b0),
                 {in(rand_t(t, {3, 4, 5}, 94)), in(i64({3, 2}, {0, 1, -1, -4, 2, 3}))},
                 "cuda.gather_nd");
    expect_exact(
        "GatherND", attrs(b1),
        {in(rand_t(t, {3, 4, 5}, 95)), in(rand_idx(DataType::kInt64, {3, 2, 1}, -4, 3, 96))},
        "cuda.gather_nd");
    expect_exact("GatherND", attrs(b0),
                 {in(rand_t(t, {3, 4}, 97)), in(rand_idx(DataType::kInt64, {5, 2}, -3, 2, 98))},
                 "cuda.gather_nd");
  }
  expect_exact("GatherND", attrs(b0),
               {in(rand_t(DataType::kFloat16, {6, 2, 64}, 99)),
                in(rand_idx(DataType::kInt64, {7, 2}, -2, 1, 100))},
               "cuda.gather_nd");
}

// ---- Scatter family ----

// Indices for ScatterElements with no repeats along `axis`: per position of the other axes, the
// first dims[axis] entries of a permutation, some negative.
Tensor unique_elements_idx(const Dims& dims, int64_t axis, int64_t axis_len, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor t(DataType::kInt64, dims);
  int64_t inner = 1, outer = 1;
  for (size_t k = axis + 1; k < dims.size(); ++k) inner *= dims[k];
  for (int64_t k = 0; k < axis; ++k) outer *= dims[k];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      std::vector<int64_t> p(axis_len);
      std::iota(p.begin(), p.end(), 0);
      std::shuffle(p.begin(), p.end(), rng);
      for (int64_t j = 0; j < dims[axis]; ++j)
        t.set_i64((o * dims[axis] + j) * inner + i, (j % 2) ? p[j] - axis_len : p[j]);
    }
  return t;
}

// Tolerance of an atomic reduction against the sequential reference: exact for integers, min and
// max; float sums and products round in another order.
double reduce_tol(DataType t, const std::string& r) {
  if (!dtype_is_float(t) || r == "max" || r == "min") return 0;
  return t == DataType::kFloat16 ? 1e-2 : 1e-3;
}

// Float16 products of a few values of up to 10 overflow in one order and not in another.
bool skip_reduce(DataType t, const std::string& r) { return t == DataType::kFloat16 && r == "mul"; }

std::unique_ptr<ScatterElementsAttrs> scatter_el(int64_t axis, const std::string& r) {
  ScatterElementsAttrs a;
  a.axis = axis;
  a.reduction = r;
  return attrs(a);
}

TEST(GpuScatterElements, NoneWithDistinctIndices) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes)
    expect_exact("ScatterElements", scatter_el(1, "none"),
                 {in(rand_t(t, {3, 7, 4}, 110)), in(unique_elements_idx({3, 5, 4}, 1, 7, 111)),
                  in(rand_t(t, {3, 5, 4}, 112))},
                 "cuda.scatter_elements");
  expect_exact(
      "ScatterElements", scatter_el(-1, "none"),
      {in(rand_t(DataType::kFloat, {3, 9}, 113)), in(unique_elements_idx({2, 4}, 1, 9, 114)),
       in(rand_t(DataType::kFloat, {2, 4}, 115))},
      "cuda.scatter_elements");
}

TEST(GpuScatterElements, Reductions) {
  KILN_REQUIRE_GPU();
  // Repeated indices: combined atomically in some order; exact for integers, min and max.
  for (const char* r : {"add", "mul", "max", "min"})
    for (DataType t : {DataType::kFloat, DataType::kFloat16, DataType::kInt64, DataType::kInt32,
                       DataType::kUInt8, DataType::kInt8, DataType::kDouble, DataType::kBool}) {
      if (skip_reduce(t, r)) continue;
      expect_gpu_matches_reference(
          "ScatterElements", scatter_el(0, r),
          {in(rand_t(t, {5, 6}, 116)), in(rand_idx(DataType::kInt64, {9, 6}, -5, 4, 117)),
           in(rand_t(t, {9, 6}, 118))},
          1, "cuda.scatter_elements", reduce_tol(t, r), reduce_tol(t, r));
    }
}

std::unique_ptr<ScatterNDAttrs> scatter_nd(const std::string& r) {
  ScatterNDAttrs a;
  a.reduction = r;
  return attrs(a);
}

TEST(GpuScatterND, NoneAndReductions) {
  KILN_REQUIRE_GPU();
  for (DataType t : kMoveTypes)
    expect_exact("ScatterND", scatter_nd("none"),
                 {in(rand_t(t, {4, 5, 6}, 120)), in(i64({3, 2}, {0, 1, -1, -5, 2, 3})),
                  in(rand_t(t, {3, 6}, 121))},
                 "cuda.scatter_nd");
  for (const char* r : {"add", "mul", "max", "min"})
    for (DataType t : {DataType::kFloat, DataType::kInt64, DataType::kUInt8, DataType::kFloat16}) {
      if (skip_reduce(t, r)) continue;
      expect_gpu_matches_reference(
          "ScatterND", scatter_nd(r),
          {in(rand_t(t, {4, 5, 6}, 122)), in(rand_idx(DataType::kInt64, {7, 1}, -4, 3, 123)),
           in(rand_t(t, {7, 5, 6}, 124))},
          1, "cuda.scatter_nd", reduce_tol(t, r), reduce_tol(t, r));
    }
}

// Repeated targets. Reduction none keeps the last update (the reference's order) through a mark
// pass into the workspace; the single pass runs where repeats are impossible (one update per
// position of the other axes, or one update in all). The reductions combine atomically.
TEST(GpuScatterElements, Duplicates) {
  KILN_REQUIRE_GPU();
  // The per-op test's case: three targets hit twice each, every reduction (exact: small integers).
  for (const char* r : {"none", "add", "mul", "max", "min"})
    for (int64_t axis : {1, -1})
      expect_exact("ScatterElements", scatter_el(axis, r),
                   {in(f32({3, 4}, iota_f(12))), in(i64({3, 2}, {1, 1, 0, 3, 3, -4})),
                    in(f32({3, 2}, {10, 20, 30, 40, 50, 60}))},
                   "cuda.scatter_elements");
  for (DataType t : kMoveTypes)
    for (DataType it : {DataType::kInt64, DataType::kInt32}) {
      expect_exact("ScatterElements", scatter_el(0, "none"),
                   {in(rand_t(t, {5, 7, 3}, 130)), in(rand_idx(it, {11, 6, 3}, -5, 4, 131)),
                    in(rand_t(t, {11, 6, 3}, 132))},
                   "cuda.scatter_elements");
      expect_exact("ScatterElements", scatter_el(-1, "none"),
                   {in(rand_t(t, {4, 3}, 133)), in(rand_idx(it, {4, 17}, -3, 2, 134)),
                    in(rand_t(t, {4, 17}, 135))},
                   "cuda.scatter_elements");
    }
  // Every update aims at one element (the winner is the last of 1000).
  expect_exact("ScatterElements", scatter_el(0, "none"),
               {in(rand_t(DataType::kFloat, {1}, 136)), in(rand_idx(DataType::kInt64, {1000}, -1, 0, 137)),
                in(rand_t(DataType::kFloat, {1000}, 138))},
               "cuda.scatter_elements");
  // One update per row (single pass), one update in all, no updates.
  expect_exact("ScatterElements", scatter_el(1, "none"),
               {in(rand_t(DataType::kFloat16, {6, 9}, 139)), in(rand_idx(DataType::kInt32, {5, 1}, -9, 8, 140)),
                in(rand_t(DataType::kFloat16, {5, 1}, 141))},
               "cuda.scatter_elements");
  expect_exact("ScatterElements", scatter_el(0, "none"),
               {in(rand_t(DataType::kInt64, {7}, 142)), in(i64({1}, {-2})), in(rand_t(DataType::kInt64, {1}, 143))},
               "cuda.scatter_elements");
  expect_exact("ScatterElements", scatter_el(0, "none"),
               {in(rand_t(DataType::kFloat, {4, 3}, 144)), in(i64({0, 3}, {})),
                in(rand_t(DataType::kFloat, {0, 3}, 145))},
               "cuda.scatter_elements");
  // Reductions with int32 indices.
  for (const char* r : {"add", "mul", "max", "min"})
    for (DataType t : {DataType::kFloat, DataType::kInt32, DataType::kBool}) {
      expect_gpu_matches_reference(
          "ScatterElements", scatter_el(1, r),
          {in(rand_t(t, {3, 4, 5}, 146)), in(rand_idx(DataType::kInt32, {3, 9, 5}, -4, 3, 147)),
           in(rand_t(t, {3, 9, 5}, 148))},
          1, "cuda.scatter_elements", reduce_tol(t, r), reduce_tol(t, r));
    }
}

TEST(GpuScatterElements, NoneLargerThanOneGridRow) {
  KILN_REQUIRE_GPU();
  // 16.8M updates > 65535 * 256, each target hit about twice: grid-stride loops in both passes.
  expect_exact("ScatterElements", scatter_el(1, "none"),
               {in(rand_t(DataType::kFloat, {2, 8400000}, 149)),
                in(rand_idx(DataType::kInt64, {2, 8400000}, -8400000, 8399999, 150)),
                in(rand_t(DataType::kFloat, {2, 8400000}, 151))},
               "cuda.scatter_elements");
}

TEST(GpuScatterND, Duplicates) {
  KILN_REQUIRE_GPU();
  // The per-op test's case: tuples 0 and 2 both address slice 1; every reduction.
  std::vector<int64_t> d(24), u(18);
  std::iota(d.begin(), d.end(), 0);
  std::iota(u.begin(), u.end(), 100);
  for (const char* r : {"none", "add", "mul", "max", "min"})
    expect_exact("ScatterND", scatter_nd(r),
                 {in(i64({4, 3, 2}, d)), in(i64({3, 1}, {1, 3, 1})), in(i64({3, 3, 2}, u))},
                 "cuda.scatter_nd");
  for (DataType t : kMoveTypes) {
    // Slices of 30 elements (moved in wider units where they line up), of 8, and scalars.
    expect_exact("ScatterND", scatter_nd("none"),
                 {in(rand_t(t, {4, 5, 6}, 152)), in(rand_idx(DataType::kInt64, {9, 1}, -4, 3, 153)),
                  in(rand_t(t, {9, 5, 6}, 154))},
                 "cuda.scatter_nd");
    expect_exact("ScatterND", scatter_nd("none"),
                 {in(rand_t(t, {3, 4, 8}, 155)),
                  in(rand_idx(DataType::kInt64, {2, 7, 2}, -3, 2, 156)),
                  in(rand_t(t, {2, 7, 8}, 157))},
                 "cuda.scatter_nd");
    expect_exact("ScatterND", scatter_nd("none"),
                 {in(rand_t(t, {5, 3}, 158)), in(rand_idx(DataType::kInt64, {20, 2}, -3, 2, 159)),
                  in(rand_t(t, {20}, 160))},
                 "cuda.scatter_nd");
  }
  // One tuple (single pass), no tuples.
  expect_exact("ScatterND", scatter_nd("none"),
               {in(rand_t(DataType::kFloat, {4, 5}, 161)), in(i64({1, 1}, {-1})),
                in(rand_t(DataType::kFloat, {1, 5}, 162))},
               "cuda.scatter_nd");
  expect_exact("ScatterND", scatter_nd("none"),
               {in(rand_t(DataType::kFloat, {4, 5}, 163)), in(i64({0, 1}, {})),
                in(rand_t(DataType::kFloat, {0, 5}, 164))},
               "cuda.scatter_nd");
  // Reductions with repeated scalar targets.
  for (const char* r : {"add", "mul", "max", "min"})
    for (DataType t : {DataType::kFloat, DataType::kInt32, DataType::kDouble}) {
      expect_gpu_matches_reference(
          "ScatterND", scatter_nd(r),
          {in(rand_t(t, {5, 3}, 165)), in(rand_idx(DataType::kInt64, {20, 2}, -3, 2, 166)),
           in(rand_t(t, {20}, 167))},
          1, "cuda.scatter_nd", reduce_tol(t, r), reduce_tol(t, r));
    }
}

TEST(GpuScatterND, NoneLargerThanOneGridRow) {
  KILN_REQUIRE_GPU();
  // 17.4M updated elements > 65535 * 256 in odd slices (4-byte units), rows hit about once each.
  expect_exact("ScatterND", scatter_nd("none"),
               {in(rand_t(DataType::kFloat, {70001, 241}, 168)),
                in(rand_idx(DataType::kInt64, {72000, 1}, -70001, 70000, 169)),
                in(rand_t(DataType::kFloat, {72000, 241}, 170))},
               "cuda.scatter_nd");
}

// ---- MaxUnpool ----

TEST(GpuMaxUnpool, DefaultAndLargerOutput) {
  KILN_REQUIRE_GPU();
  MaxUnpoolAttrs a;
  a.kernel = {2, 2};
  a.strides = {2, 2};
  // X [1, 2, 2, 3] unpools to [1, 2, 4, 6]; distinct flat indices into that shape.
  Tensor ind(DataType::kInt64, {1, 2, 2, 3});
  std::vector<int64_t> pos(48);
  std::iota(pos.begin(), pos.end(), 0);
  std::shuffle(pos.begin(), pos.end(), std::mt19937(190));
  for (int64_t i = 0; i < 12; ++i) ind.set_i64(i, pos[i]);
  for (DataType t : {DataType::kFloat, DataType::kFloat16, DataType::kInt64})
    expect_exact("MaxUnpool", attrs(a), {in(rand_t(t, {1, 2, 2, 3}, 191)), in(ind)},
                 "cuda.max_unpool");
  expect_exact("MaxUnpool", attrs(a),
               {in(rand_t(DataType::kFloat, {1, 2, 2, 3}, 192)), in(ind), c64({1, 2, 5, 7})},
               "cuda.max_unpool");
}

// ---- OneHot ----

TEST(GpuOneHot, AxesAndIndexTypes) {
  KILN_REQUIRE_GPU();
  OneHotAttrs last, first;
  first.axis = 0;
  expect_exact("OneHot", attrs(last),
               {in(rand_idx(DataType::kInt64, {3, 4}, -10, 12, 130)), i64_scalar(10),
                in(f32({2}, {0.5f, 3.0f}))},
               "cuda.one_hot");
  expect_exact(
      "OneHot", attrs(first),
      {in(rand_idx(DataType::kInt32, {5}, -7, 6, 131)), i64_scalar(7), in(i64({2}, {-1, 9}))},
      "cuda.one_hot");
  expect_exact("OneHot", attrs(last),
               {in(f32({2, 3}, {0.7f, -1.2f, 2.9f, 11.0f, 3.0f, -0.0f})), cin(f32({}, {4.0f})),
                in(u8({2}, {0, 1}))},
               "cuda.one_hot");
}

// ---- Resize ----

std::unique_ptr<ResizeAttrs> resize(const std::string& mode, const std::string& coord,
                                    const std::string& nearest = "round_prefer_floor") {
  ResizeAttrs a;
  a.mode = mode;
  a.coordinate_transformation_mode = coord;
  a.nearest_mode = nearest;
  return attrs(a);
}

NodeInput scales(std::vector<float> s) {
  const int64_t n = static_cast<int64_t>(s.size());
  return cin(f32({n}, std::move(s)));
}

TEST(GpuResize, NearestModes) {
  KILN_REQUIRE_GPU();
  for (DataType t : {DataType::kFloat, DataType::kUInt8, DataType::kInt64, DataType::kBool})
    expect_exact("Resize", resize("nearest", "asymmetric", "floor"),
                 {in(rand_t(t, {2, 3, 5, 7}, 140)), NodeInput::none(), scales({1, 1, 2, 2})},
                 "cuda.resize");
  for (const char* nm : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"})
    for (const char* c : {"half_pixel", "align_corners", "tf_half_pixel_for_nn", "asymmetric"})
      expect_exact("Resize", resize("nearest", c, nm),
                   {in(rand_t(DataType::kFloat, {1, 3, 6, 5}, 141)), NodeInput::none(),
                    NodeInput::none(), c64({1, 3, 9, 13})},
                   "cuda.resize");
  // Opset 11 style: empty roi and scales constants, then sizes.
  expect_exact("Resize", resize("nearest", "half_pixel"),
               {in(rand_t(DataType::kFloat16, {2, 4, 7}, 142)), cin(Tensor(DataType::kFloat, {0})),
                cin(Tensor(DataType::kFloat, {0})), c64({2, 3, 4})},
               "cuda.resize");
}

TEST(GpuResize, Linear4D5DAndLowRank) {
  KILN_REQUIRE_GPU();
  for (const char* c : {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"}) {
    expect_gpu_matches_reference("Resize", resize("linear", c),
                                 {in(rand_t(DataType::kFloat, {2, 3, 5, 7}, 143)),
                                  NodeInput::none(), scales({1, 1, 2, 1.5f})},
                                 1, "cuda.resize", 1e-5, 1e-5);
    expect_gpu_matches_reference("Resize", resize("linear", c),
                                 {in(rand_t(DataType::kFloat, {1, 2, 11, 9}, 144)),
                                  NodeInput::none(), scales({1, 1, 0.6f, 0.5f})},
                                 1, "cuda.resize", 1e-5, 1e-5);
  }
  // Trilinear, 5-D, with sizes.
  expect_gpu_matches_reference("Resize", resize("linear", "half_pixel"),
                               {in(rand_t(DataType::kFloat, {1, 2, 3, 4, 5}, 145)),
                                NodeInput::none(), NodeInput::none(), c64({1, 2, 7, 5, 9})},
                               1, "cuda.resize", 1e-5, 1e-5);
  expect_gpu_matches_reference("Resize", resize("linear", "align_corners"),
                               {in(rand_t(DataType::kFloat, {3, 10}, 146)), NodeInput::none(),
                                NodeInput::none(), c64({5, 17})},
                               1, "cuda.resize", 1e-5, 1e-5);
  expect_gpu_matches_reference(
      "Resize", resize("linear", "half_pixel"),
      {in(rand_t(DataType::kFloat16, {1, 3, 8, 8}, 147)), NodeInput::none(), scales({1, 1, 2, 2})},
      1, "cuda.resize", 2e-3, 2e-2);
  // Integers round half to even and saturate as the reference.
  expect_exact(
      "Resize", resize("linear", "asymmetric"),
      {in(rand_t(DataType::kUInt8, {1, 1, 5, 6}, 148)), NodeInput::none(), scales({1, 1, 2, 2})},
      "cuda.resize");
}

TEST(GpuResize, CubicAndCropAndResize) {
  KILN_REQUIRE_GPU();
  for (bool exclude : {false, true}) {
    ResizeAttrs a;
    a.mode = "cubic";
    a.exclude_outside = exclude;
    a.cubic_coeff_a = exclude ? -0.5 : -0.75;
    expect_gpu_matches_reference("Resize", attrs(a),
                                 {in(rand_t(DataType::kFloat, {1, 2, 6, 7}, 149)),
                                  NodeInput::none(), scales({1, 1, 1.7f, 0.8f})},
                                 1, "cuda.resize", 1e-5, 1e-5);
  }
  for (const char* m : {"nearest", "linear"}) {
    ResizeAttrs a;
    a.mode = m;
    a.coordinate_transformation_mode = "tf_crop_and_resize";
    a.extrapolation_value = -7.5;
    expect_gpu_matches_reference("Resize", attrs(a),
                                 {in(rand_t(DataType::kFloat, {1, 1, 6, 8}, 150)),
                                  cin(f32({8}, {0, 0, -0.2f, 0.1f, 1, 1, 0.9f, 1.3f})),
                                  NodeInput::none(), c64({1, 1, 5, 7})},
                                 1, "cuda.resize", 1e-5, 1e-5);
  }
}

// ---- Shape-like ops ----

TEST(GpuShapeOps, ShapeAndSize) {
  KILN_REQUIRE_GPU();
  ShapeAttrs all, part;
  part.start = 1;
  part.end = -1;
  expect_exact("Shape", attrs(all), {in(rand_t(DataType::kFloat, {2, 3, 5, 7}, 160))},
               "cuda.shape");
  expect_exact("Shape", attrs(part), {in(rand_t(DataType::kUInt8, {2, 3, 5, 7}, 161))},
               "cuda.shape");
  expect_exact("Size", nullptr, {in(rand_t(DataType::kInt64, {4, 9}, 162))}, "cuda.size");
}

TEST(GpuShapeOps, ConstantOfShape) {
  KILN_REQUIRE_GPU();
  ConstantOfShapeAttrs a;
  a.value = i64({1}, {-7});
  expect_exact("ConstantOfShape", attrs(a), {c64({3, 5, 2})}, "cuda.constant_of_shape");
  ConstantOfShapeAttrs h;
  h.value = Tensor(DataType::kFloat16, {1});
  h.value.set_f64(0, 2.5);
  expect_exact("ConstantOfShape", attrs(h), {in(i64({2}, {7, 3}))}, "cuda.constant_of_shape");
  ConstantOfShapeAttrs f;
  f.value = f32({1}, {0.25f});
  expect_exact("ConstantOfShape", attrs(f), {c64({0, 4})}, "cuda.constant_of_shape");
}

TEST(GpuShapeOps, Range) {
  KILN_REQUIRE_GPU();
  // Float operands must be constants: a dynamic plan infers shapes from integer values only.
  expect_exact("Range", nullptr,
               {cin(f32({}, {1.5f})), cin(f32({}, {20.0f})), cin(f32({}, {0.7f}))}, "cuda.range");
  expect_exact("Range", nullptr, {in(i32({}, {10})), in(i32({}, {-7})), in(i32({}, {-3}))},
               "cuda.range");
  expect_exact("Range", nullptr, {in(i64({}, {5})), in(i64({}, {5})), in(i64({}, {1}))},
               "cuda.range");
  expect_exact("Range", nullptr, {cin(f64({}, {-1.0})), cin(f64({}, {1.0})), cin(f64({}, {0.1}))},
               "cuda.range");
}

TEST(GpuShapeOps, WindowFunction) {
  KILN_REQUIRE_GPU();
  for (const char* kind : {"hann", "hamming", "blackman"})
    for (bool periodic : {true, false}) {
      WindowFunctionAttrs a;
      a.kind = kind;
      a.periodic = periodic;
      // The device's cos may differ from the host's in the last bit of a double.
      expect_gpu_matches_reference("WindowFunction", attrs(a), {in(i64({}, {17}))}, 1,
                                   "cuda.window_function", 1e-6, 1e-7);
    }
  WindowFunctionAttrs h;
  h.output_dtype = DataType::kFloat16;
  expect_gpu_matches_reference("WindowFunction", attrs(h), {in(i32({}, {9}))}, 1,
                               "cuda.window_function", 1e-3, 1e-4);
}

// ---- Quantization ----

std::unique_ptr<QuantizeLinearAttrs> qattrs(int64_t axis, DataType out) {
  QuantizeLinearAttrs a;
  a.axis = axis;
  a.output_dtype = out;
  return attrs(a);
}

TEST(GpuQuantize, PerTensorTiesAndSaturation) {
  KILN_REQUIRE_GPU();
  // Multiples of scale / 2: exact ties, rounded half to even; large values saturate; NaN -> zp.
  std::vector<float> v;
  for (int i = -300; i < 300; ++i) v.push_back(i * 0.25f);
  v.push_back(std::numeric_limits<float>::quiet_NaN());
  v.push_back(1e9f);
  Tensor x = f32({static_cast<int64_t>(v.size())}, v);
  expect_exact("QuantizeLinear", qattrs(1, DataType::kUInt8),
               {in(x), cin(f32({}, {0.5f})), cin(u8({}, {3}))}, "cuda.quantize_linear");
  expect_exact("QuantizeLinear", qattrs(1, DataType::kInt8),
               {in(x), in(f32({1}, {0.5f})), in(s8({1}, {-4}))}, "cuda.quantize_linear");
  Tensor zp16(DataType::kInt16, {});
  zp16.set_i64(0, -100);
  expect_exact("QuantizeLinear", qattrs(1, DataType::kInt16),
               {in(x), cin(f32({}, {0.01f})), cin(zp16)}, "cuda.quantize_linear");
  expect_exact("QuantizeLinear", qattrs(1, DataType::kUInt8),
               {in(rand_t(DataType::kFloat16, {7, 9}, 170)), cin(f32({}, {0.1f}))},
               "cuda.quantize_linear");
  expect_exact("QuantizeLinear", qattrs(1, DataType::kUInt16),
               {in(rand_t(DataType::kInt32, {11}, 171)), cin(f32({}, {0.3f}))},
               "cuda.quantize_linear");
  // float16 to int8 per tensor: the eight-at-a-time path, its ties, saturation and NaN, and a
  // tail of n % 8 elements through the generic kernel.
  Tensor h(DataType::kFloat16, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) h.set_f64(static_cast<int64_t>(i), v[i]);
  ASSERT_NE(h.numel() % 8, 0);
  expect_exact("QuantizeLinear", qattrs(1, DataType::kInt8),
               {in(h), cin(f32({}, {0.5f})), cin(s8({}, {-2}))}, "cuda.quantize_linear");
  expect_exact("QuantizeLinear", qattrs(1, DataType::kInt8),
               {in(rand_t(DataType::kFloat16, {3, 8, 8, 16}, 174)), cin(f32({}, {0.013f}))},
               "cuda.quantize_linear");
}

TEST(GpuQuantize, PerAxis) {
  KILN_REQUIRE_GPU();
  expect_exact("QuantizeLinear", qattrs(1, DataType::kInt8),
               {in(rand_t(DataType::kFloat, {2, 5, 3, 3}, 172)),
                cin(f32({5}, {0.05f, 0.1f, 0.2f, 0.03f, 1.0f})), cin(s8({5}, {0, -3, 7, 1, -128}))},
               "cuda.quantize_linear");
  expect_exact("QuantizeLinear", qattrs(-1, DataType::kUInt8),
               {in(rand_t(DataType::kDouble, {4, 3}, 173)), cin(f64({3}, {0.1, 0.07, 0.3})),
                cin(u8({3}, {128, 0, 255}))},
               "cuda.quantize_linear");
}

TEST(GpuDequantize, PerTensorAndPerAxis) {
  KILN_REQUIRE_GPU();
  DequantizeLinearAttrs t0, ax0, axm;
  ax0.axis = 0;
  axm.axis = -1;
  expect_exact(
      "DequantizeLinear", attrs(t0),
      {in(rand_t(DataType::kUInt8, {3, 17}, 180)), cin(f32({}, {0.02f})), cin(u8({}, {128}))},
      "cuda.dequantize_linear");
  expect_exact("DequantizeLinear", attrs(ax0),
               {in(rand_t(DataType::kInt8, {3, 5}, 181)), cin(f32({3}, {0.5f, 0.25f, 3.0f})),
                cin(s8({3}, {-1, 0, 5}))},
               "cuda.dequantize_linear");
  Tensor hs(DataType::kFloat16, {4});
  for (int i = 0; i < 4; ++i) hs.set_f64(i, 0.125 * (i + 1));
  expect_exact("DequantizeLinear", attrs(axm), {in(rand_t(DataType::kInt32, {2, 4}, 182)), cin(hs)},
               "cuda.dequantize_linear");
  expect_exact("DequantizeLinear", attrs(t0),
               {in(rand_t(DataType::kInt16, {9}, 183)), cin(f64({}, {0.001}))},
               "cuda.dequantize_linear");
}

}  // namespace
}  // namespace kiln::testing
