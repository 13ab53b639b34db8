// kiln's direct kernels against the reference: cuda.einsum (diagonals, three or more operands,
// ellipsis broadcasting, symbolic shapes; float16/float32/float64, integers, bool),
// cuda.direct_conv (float64 and integer convolutions: 1-D/2-D/3-D, groups, strides, dilations,
// pads, auto_pad on symbolic dims, transposed with output_padding, channels-last, bias, residual,
// ReLU) and cuda.direct_matmul (integer products with broadcast batches and 1-D operands, wrap-
// around; float64 with the fused bias and activations cuBLASLt refuses); and the tactics that
// now take parameters computed at run time: cuda.resize (scales, roi), cuda.reduce (axes, empty
// axes with and without noop_with_empty_axes) and cuda.cum_sum (axis).
//
// The direct kernels sum in the reference's order with double operations rounded one at a time,
// so their float results should be the reference's bits; the tests still allow 1e-12 for float64
// (the GELUs use CUDA's erf and tanh) and 1e-3 for float16 (a last-bit difference of the double
// sum may move the rounding). Integer results must match exactly, wrap-around included. Resize,
// Reduce and CumSum keep their kernels' own tolerances (float32 within 1e-5).
#include <gtest/gtest.h>

#include <random>

#include "gpu/gpu_compare.h"
#include "ops/conv.h"
#include "ops/cum_sum.h"
#include "ops/einsum.h"
#include "ops/mat_mul.h"
#include "ops/reduce.h"
#include "ops/resize.h"

namespace kiln::testing {
namespace {

// ---- helpers ----------------------------------------------------------------------------------

double rtol_of(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return 1e-3;
    case DataType::kFloat:
      return 1e-6;
    case DataType::kDouble:
      return 1e-12;
    default:
      return 0;
  }
}
double atol_of(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return 1e-3;
    case DataType::kFloat:
      return 1e-6;
    case DataType::kDouble:
      return 1e-12;
    default:
      return 0;
  }
}

// The values of an integer tensor (axes), for traces.
Ints values_of(const Tensor& t) {
  Ints v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.get_i64(i));
  return v;
}

// An input whose declared shape is `shape` (symbolic dims allowed) and whose run-time value is t.
NodeInput shaped_value(Tensor t, Shape shape) {
  NodeInput in = NodeInput::of(std::move(t));
  in.shape = std::move(shape);
  return in;
}

// ---- Einsum -----------------------------------------------------------------------------------

constexpr const char* kEinsum = "cuda.einsum";

void check_einsum(const std::string& equation, std::vector<NodeInput> inputs, double rtol,
                  double atol) {
  SCOPED_TRACE(equation);
  auto a = std::make_unique<EinsumAttrs>();
  a->equation = equation;
  expect_gpu_matches_reference("Einsum", std::move(a), std::move(inputs), 1, kEinsum, rtol, atol);
}

void check_einsum(const std::string& equation, const std::vector<Tensor>& xs) {
  std::vector<NodeInput> ins;
  for (const Tensor& x : xs) ins.push_back(NodeInput::of(x));
  const DataType t = xs[0].dtype();
  check_einsum(equation, std::move(ins), rtol_of(t), atol_of(t));
}

TEST(CudaEinsum, DiagonalsEveryType) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1;
  for (DataType t : {DataType::kDouble, DataType::kFloat, DataType::kFloat16, DataType::kInt64,
                     DataType::kInt32, DataType::kInt8, DataType::kUInt8}) {
    SCOPED_TRACE(dtype_name(t));
    const double lo = t == DataType::kUInt8 ? 0 : -9, hi = 9;
    const bool fp = dtype_is_float(t);
    auto x = [&](Dims d) { return fp ? random_values(t, d, seed++) : random_values(t, d, seed++, lo, hi); };
    check_einsum("ii->i", {x({7, 7})});
    check_einsum("ii", {x({13, 13})});                      // trace (implicit output)
    check_einsum("...ii->...i", {x({3, 5, 5})});            // batched diagonal
    check_einsum("iji->j", {x({5, 3, 5})});                 // diagonal of non-adjacent dims
    check_einsum("iij,jk->ik", {x({4, 4, 3}), x({3, 2})});  // diagonal inside a product
    check_einsum("bii,bi->bi", {x({2, 7, 7}), x({2, 7})});
  }
}

TEST(CudaEinsum, ThreeAndMoreOperands) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 100;
  for (DataType t : {DataType::kDouble, DataType::kFloat16, DataType::kInt64}) {
    SCOPED_TRACE(dtype_name(t));
    const bool fp = dtype_is_float(t);
    auto x = [&](Dims d) { return fp ? random_values(t, d, seed++) : random_values(t, d, seed++, -7, 7); };
    check_einsum("ij,jk,kl->il", {x({3, 5}), x({5, 7}), x({7, 2})});
    check_einsum("i,i,i->", {x({11}), x({11}), x({11})});
    check_einsum("abc,cd,bd->ad", {x({2, 3, 5}), x({5, 4}), x({3, 4})});
    check_einsum("ij,jk,kl,lm->mi", {x({2, 3}), x({3, 1}), x({1, 5}), x({5, 7})});
    check_einsum("a,b,c,d,e->edcba", {x({2}), x({3}), x({1}), x({5}), x({2})});  // outer product
    check_einsum("ij,ij,ij", {x({3, 4}), x({3, 4}), x({3, 4})});  // implicit: all summed
  }
}

TEST(CudaEinsum, EllipsisBroadcasting) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 200;
  for (DataType t : {DataType::kDouble, DataType::kFloat16, DataType::kInt64}) {
    SCOPED_TRACE(dtype_name(t));
    const bool fp = dtype_is_float(t);
    auto x = [&](Dims d) { return fp ? random_values(t, d, seed++) : random_values(t, d, seed++, -7, 7); };
    // Batch dims [2, 1, 3] against [5, 1]: broadcast to [2, 5, 3].
    check_einsum("...ij,...jk->...ik", {x({2, 1, 3, 4, 5}), x({5, 1, 5, 3})});
    check_einsum("...i,i...->...", {x({3, 4, 7}), x({7, 4})});
    check_einsum("i...,...->i...", {x({3, 1, 5}), x({7, 1})});
    check_einsum("...ii,...i,j->...j", {x({1, 3, 4, 4}), x({2, 1, 4}), x({3})});
    check_einsum("...,...,...", {x({2, 3}), x({3}), x({1, 1})});  // scalars broadcast too
  }
}

TEST(CudaEinsum, SymbolicShapesEmptyAndBool) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 300;
  const DataType F = DataType::kDouble;
  // Symbolic dims: the plan is built without them and the kernel derives its space at run time.
  check_einsum(
      "bij,bjk,bkl->bil",
      {shaped_value(random_values(F, {3, 4, 5}, seed++), Shape({Dim::sym("b"), Dim(4), Dim(5)})),
       shaped_value(random_values(F, {3, 5, 2}, seed++), Shape({Dim::sym("b"), Dim(5), Dim(2)})),
       shaped_value(random_values(F, {3, 2, 7}, seed++), Shape({Dim::sym("b"), Dim(2), Dim::sym("n")}))},
      1e-12, 1e-12);
  // An empty summed axis gives zeros; an empty output gives nothing.
  check_einsum("ij,jk,k->i", {random_values(F, {3, 0}, seed++), random_values(F, {0, 4}, seed++), random_values(F, {4}, seed++)});
  check_einsum("ij,jk,k->ij",
               {random_values(F, {0, 3}, seed++), random_values(F, {3, 4}, seed++), random_values(F, {4}, seed++)});
  // Bool: any product of trues.
  const DataType B = DataType::kBool;
  check_einsum("ij,jk,kl->il", {random_values(B, {3, 5}, seed++, 0, 1), random_values(B, {5, 4}, seed++, 0, 1),
                                random_values(B, {4, 2}, seed++, 0, 1)});
  // uint64 and int16 wrap like their type.
  check_einsum("ij,jk,k->i", {random_values(DataType::kInt16, {5, 9}, seed++, -300, 300),
                              random_values(DataType::kInt16, {9, 3}, seed++, -300, 300),
                              random_values(DataType::kInt16, {3}, seed++, -300, 300)});
  check_einsum("i,i,i->", {random_values(DataType::kUInt64, {17}, seed++, 0, 1LL << 40),
                           random_values(DataType::kUInt64, {17}, seed++, 0, 1LL << 40),
                           random_values(DataType::kUInt64, {17}, seed++, 0, 1LL << 40)});
}

// ---- Conv -------------------------------------------------------------------------------------

constexpr const char* kConv = "cuda.direct_conv";

struct ConvCase {
  Ints strides, pads, dilations;
  int64_t group = 1;
  bool transposed = false;
  Ints output_padding;
  std::string activation;
  std::string auto_pad = "NOTSET";
  bool channels_last = false;
};

std::unique_ptr<ConvAttrs> conv_attrs(const ConvCase& c) {
  auto a = std::make_unique<ConvAttrs>();
  a->strides = c.strides;
  a->pads = c.pads;
  a->dilations = c.dilations;
  a->group = c.group;
  a->transposed = c.transposed;
  a->output_padding = c.output_padding;
  a->activation = c.activation;
  a->auto_pad = c.auto_pad;
  a->channels_last = c.channels_last;
  return a;
}

// The reference's output dims (Y's shape, in Y's layout) of a case.
Dims conv_out_dims(const ConvCase& c, const Tensor& x, const Tensor& w) {
  SingleNode n("Conv", conv_attrs(c), {NodeInput::of(x), NodeInput::of(w)});
  n.infer();
  return n.out(0).shape.concrete();
}

struct ConvInputs {
  bool bias = false;
  bool residual = false;
  bool constant_w = true;
};

// Random X (dims xd, in the case's layout) and W (wd), plus a bias and a residual (Y's shape) when
// asked, all from `seed`; integers in [-50, 50] ([0, 50] unsigned), floats in [-1, 1).
void check_conv(const ConvCase& c, DataType t, const Dims& xd, const Dims& wd, uint32_t seed,
                ConvInputs opt = {}) {
  SCOPED_TRACE(cat(dtype_name(t), " X ", dims_to_string(xd), " W ", dims_to_string(wd), " strides ",
                   dims_to_string(c.strides), " pads ", dims_to_string(c.pads), " dilations ",
                   dims_to_string(c.dilations), " group ", c.group,
                   c.transposed ? " transposed" : "", " output_padding ",
                   dims_to_string(c.output_padding), " ", c.activation, " ", c.auto_pad,
                   c.channels_last ? " channels_last" : "", opt.bias ? " bias" : "",
                   opt.residual ? " residual" : ""));
  const bool fp = dtype_is_float(t);
  const double lo = fp ? -1 : (dtype_is_unsigned_int(t) ? 0 : -50), hi = fp ? 1 : 50;
  const Tensor x = random_values(t, xd, 4 * seed, lo, hi);
  const Tensor w = random_values(t, wd, 4 * seed + 1, lo, hi);
  std::vector<NodeInput> ins = {NodeInput::of(x),
                                opt.constant_w ? NodeInput::constant_of(w) : NodeInput::of(w)};
  const int64_t m = c.transposed ? wd[1] * c.group : wd[0];
  if (opt.bias)
    ins.push_back(NodeInput::constant_of(random_values(t, {m}, 4 * seed + 2, lo, hi)));
  else if (opt.residual)
    ins.push_back(NodeInput::none());
  if (opt.residual)
    ins.push_back(NodeInput::of(random_values(t, conv_out_dims(c, x, w), 4 * seed + 3, lo, hi)));
  expect_gpu_matches_reference("Conv", conv_attrs(c), std::move(ins), 1, kConv, rtol_of(t),
                               atol_of(t));
}

const DataType F64 = DataType::kDouble;
constexpr ConvInputs kBias{true, false}, kResidual{false, true}, kBoth{true, true};

TEST(CudaDirectConv, Float64OneTwoThreeD) {
  KILN_REQUIRE_GPU();
  // 1-D: stride, asymmetric pads, dilation, groups.
  check_conv({{2}, {1, 2}, {3}, 1}, F64, {2, 3, 29}, {5, 3, 3}, 1000);
  check_conv({{1}, {0, 0}, {1}, 3}, F64, {1, 6, 13}, {9, 2, 5}, 1001, kBias);
  // 2-D: every attribute at once, and the awkward sizes (1, primes).
  check_conv({{2, 3}, {1, 0, 2, 1}, {2, 1}, 2}, F64, {3, 4, 17, 11}, {6, 2, 3, 2}, 1002, kBoth);
  check_conv({{1, 1}, {0, 0, 0, 0}, {1, 1}, 1}, F64, {1, 1, 1, 1}, {1, 1, 1, 1}, 1003);
  check_conv({{1, 1}, {1, 1, 1, 1}, {}, 5}, F64, {2, 5, 7, 7}, {5, 1, 3, 3}, 1004,
             kBias);  // depthwise
  // 3-D.
  check_conv({{1, 2, 1}, {1, 0, 1, 1, 2, 0}, {1, 1, 2}, 1}, F64, {2, 3, 5, 7, 6}, {4, 3, 3, 2, 3},
             1005, kBoth);
  check_conv({{2, 2, 2}, {0, 0, 0, 0, 0, 0}, {1, 1, 1}, 2}, F64, {1, 4, 5, 5, 5}, {2, 2, 2, 2, 2},
             1006);
}

TEST(CudaDirectConv, Float64EpilogueAndComputedWeights) {
  KILN_REQUIRE_GPU();
  ConvCase c{{1, 2}, {1, 1, 1, 1}, {1, 1}, 1};
  c.activation = "relu";
  uint32_t seed = 1100;
  for (bool bias : {false, true})
    for (bool residual : {false, true})
      check_conv(c, F64, {2, 3, 9, 10}, {7, 3, 3, 3}, seed++, {bias, residual});
  // W computed at run time.
  check_conv(c, F64, {1, 3, 9, 10}, {7, 3, 3, 3}, seed++, {true, false, false});
}

ConvCase transposed_case(Ints strides, Ints pads, Ints dilations, int64_t group,
                         Ints output_padding) {
  ConvCase c{std::move(strides), std::move(pads), std::move(dilations), group, true};
  c.output_padding = std::move(output_padding);
  return c;
}

TEST(CudaDirectConv, Float64Transposed) {
  KILN_REQUIRE_GPU();
  check_conv(transposed_case({2}, {1, 0}, {1}, 1, {1}), F64, {2, 3, 7}, {3, 4, 3}, 1200, kBias);
  check_conv(transposed_case({3, 2}, {1, 2, 0, 1}, {2, 1}, 2, {2, 1}), F64, {2, 4, 5, 6},
             {4, 3, 3, 2}, 1201, kBoth);
  check_conv(transposed_case({1, 1}, {0, 0, 0, 0}, {1, 1}, 1, {0, 0}), F64, {1, 2, 1, 1},
             {2, 5, 1, 1}, 1202);
  check_conv(transposed_case({2, 1, 2}, {0, 1, 1, 1, 0, 0}, {1, 2, 1}, 3, {1, 0, 1}), F64,
             {1, 3, 3, 4, 2}, {3, 2, 2, 3, 2}, 1203, kBias);
  ConvCase relu = transposed_case({2, 2}, {1, 1, 1, 1}, {1, 1}, 1, {1, 1});
  relu.activation = "relu";
  check_conv(relu, F64, {2, 3, 5, 4}, {3, 2, 3, 3}, 1204, kBoth);
}

TEST(CudaDirectConv, ChannelsLastAndAutoPadOnSymbolicDims) {
  KILN_REQUIRE_GPU();
  // X [N, H, W, C], Y and Z [N, OH, OW, M].
  ConvCase cl{{2, 1}, {1, 0, 0, 1}, {1, 2}, 2};
  cl.channels_last = true;
  check_conv(cl, F64, {2, 9, 8, 4}, {6, 2, 3, 2}, 1300, kBoth);
  ConvCase clt = transposed_case({2, 2}, {0, 1, 1, 0}, {1, 1}, 1, {1, 0});
  clt.channels_last = true;
  check_conv(clt, F64, {1, 4, 5, 3}, {3, 2, 3, 3}, 1301, kBias);
  // auto_pad stays on the node when the spatial dims are symbolic; the kernel resolves it.
  uint32_t seed = 1310;
  for (const char* mode : {"SAME_UPPER", "SAME_LOWER", "VALID"}) {
    SCOPED_TRACE(mode);
    ConvCase c{{2, 3}, {}, {1, 1}, 1};
    c.auto_pad = mode;
    const Tensor x = random_values(F64, {2, 3, 11, 13}, seed++);
    const Tensor w = random_values(F64, {4, 3, 3, 4}, seed++);
    expect_gpu_matches_reference(
        "Conv", conv_attrs(c),
        {shaped_value(x, Shape({Dim(2), Dim(3), Dim::sym("h"), Dim::sym("w")})),
         NodeInput::constant_of(w)},
        1, kConv, 1e-12, 1e-12);
  }
}

TEST(CudaDirectConv, IntegersExact) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1400;
  for (DataType t : {DataType::kInt32, DataType::kInt64, DataType::kInt8, DataType::kUInt8}) {
    SCOPED_TRACE(dtype_name(t));
    // Sums overflow the 8-bit types: they must wrap as the reference's.
    check_conv({{1, 2}, {1, 1, 0, 1}, {2, 1}, 2}, t, {2, 4, 7, 9}, {6, 2, 3, 3}, seed++, kBoth);
    check_conv(transposed_case({2}, {1, 1}, {1}, 1, {1}), t, {1, 3, 11}, {3, 5, 4}, seed++, kBias);
  }
}

// ---- MatMul -----------------------------------------------------------------------------------

constexpr const char* kMatMul = "cuda.direct_matmul";

struct MatMulCase {
  bool trans_a = false, trans_b = false;
  enum Bias { kNoBias, kConstantBias, kComputedBias } bias = kNoBias;
  bool residual = false;
  std::string activation;
};

// Random A (dims ad) and B (bd), plus a bias and a residual when asked, all from `seed`, with
// values in [lo, hi].
void check_matmul(DataType t, const Dims& ad, const Dims& bd, uint32_t seed, double lo, double hi,
                  const MatMulCase& c = {}) {
  SCOPED_TRACE(cat(dtype_name(t), " A ", dims_to_string(ad), c.trans_a ? "^T" : "", " B ",
                   dims_to_string(bd), c.trans_b ? "^T" : "", " bias ", static_cast<int>(c.bias),
                   c.residual ? " residual " : " ", c.activation));
  auto at = std::make_unique<MatMulAttrs>();
  at->trans_a = c.trans_a;
  at->trans_b = c.trans_b;
  at->activation = c.activation;
  const Tensor a = random_values(t, ad, 4 * seed, lo, hi);
  const Tensor b = random_values(t, bd, 4 * seed + 1, lo, hi);
  std::vector<NodeInput> ins = {NodeInput::of(a), NodeInput::of(b)};
  if (c.bias != MatMulCase::kNoBias || c.residual) {
    const int64_t n = c.trans_b ? bd[bd.size() - 2] : bd.back();
    Tensor bias = random_values(t, {n}, 4 * seed + 2, lo, hi);
    ins.push_back(c.bias == MatMulCase::kNoBias         ? NodeInput::none()
                  : c.bias == MatMulCase::kConstantBias ? NodeInput::constant_of(bias)
                                                        : NodeInput::of(bias));
  }
  if (c.residual) {
    SingleNode shape("MatMul", std::make_unique<MatMulAttrs>(*at),
                     {NodeInput::of(a), NodeInput::of(b)});
    shape.infer();
    ins.push_back(NodeInput::of(random_values(t, shape.out(0).shape.concrete(), 4 * seed + 3, lo, hi)));
  }
  expect_gpu_matches_reference("MatMul", std::move(at), std::move(ins), 1, kMatMul, rtol_of(t),
                               atol_of(t));
}

TEST(CudaDirectMatMul, IntegersBatchedBroadcastAndVectors) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 2000;
  for (DataType t : {DataType::kInt32, DataType::kInt64}) {
    SCOPED_TRACE(dtype_name(t));
    auto check = [&](const Dims& ad, const Dims& bd, MatMulCase c = {}) {
      check_matmul(t, ad, bd, seed++, -1000, 1000, c);
    };
    check({5, 7}, {7, 3});
    check({2, 1, 3, 4}, {3, 4, 2});  // batch [2, 1] x [3] -> [2, 3]
    check({1, 13, 1}, {5, 1, 11});   // k = 1, the batch broadcast both ways
    check({4, 3}, {5, 4}, {true, true});
    check({3, 2, 7, 4}, {2, 7, 5}, {true, false});
    check({7}, {7, 3});     // 1-D A: a row vector
    check({2, 5, 7}, {7});  // 1-D B: a column vector
    check({7}, {3, 7, 2});  // 1-D A against a batch
    check({7}, {7});        // dot product
    check({1, 1}, {1, 1});
    check({3, 0}, {0, 4});  // empty inner dim: zeros
  }
}

TEST(CudaDirectMatMul, IntegersWrapAndEpilogue) {
  KILN_REQUIRE_GPU();
  // int32 sums that overflow, int64 products that overflow, narrow types: all wrap.
  check_matmul(DataType::kInt32, {3, 37}, {37, 5}, 2100, -100000, 100000);
  check_matmul(DataType::kInt64, {2, 3}, {3, 2}, 2101, -(1LL << 40), 1LL << 40);
  check_matmul(DataType::kInt8, {4, 17}, {17, 3}, 2102, -128, 127);
  check_matmul(DataType::kUInt8, {2, 4, 9}, {9, 6}, 2103, 0, 255);
  check_matmul(DataType::kUInt32, {3, 5}, {5, 2}, 2104, 0, 4000000000LL);
  check_matmul(DataType::kInt16, {2, 3, 5}, {1, 5, 4}, 2105, -30000, 30000);
  // Bias (constant and computed) and a residual.
  MatMulCase both;
  both.bias = MatMulCase::kConstantBias;
  both.residual = true;
  check_matmul(DataType::kInt32, {2, 3, 4}, {4, 5}, 2106, -50, 50, both);
  MatMulCase computed{false, true, MatMulCase::kComputedBias};
  check_matmul(DataType::kInt32, {3, 4}, {5, 4}, 2107, -50, 50, computed);
}

TEST(CudaDirectMatMul, Float64FusedBiasAndActivations) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 2200;
  // cuBLASLt refuses a float64 product with a fused bias or activation.
  for (const char* act : {"", "relu", "gelu_erf", "gelu_tanh"}) {
    MatMulCase c;
    c.bias = MatMulCase::kConstantBias;
    c.activation = act;
    check_matmul(F64, {2, 5, 7}, {7, 3}, seed++, -2, 2, c);
    c.trans_b = true;
    c.bias = MatMulCase::kComputedBias;
    c.residual = true;
    check_matmul(F64, {3, 1, 4, 6}, {2, 5, 6}, seed++, -2, 2, c);
  }
}

// ---- Resize with run-time scales and roi -------------------------------------------------------

constexpr const char* kResize = "cuda.resize";

std::unique_ptr<ResizeAttrs> resize_attrs(const std::string& mode, const std::string& coord,
                                          const std::string& nearest = "round_prefer_floor") {
  auto a = std::make_unique<ResizeAttrs>();
  a->mode = mode;
  a->coordinate_transformation_mode = coord;
  a->nearest_mode = nearest;
  return a;
}

void check_resize(std::unique_ptr<ResizeAttrs> a, std::vector<NodeInput> ins, double rtol,
                  double atol) {
  SCOPED_TRACE(cat(a->mode, " ", a->coordinate_transformation_mode, " ", a->nearest_mode));
  expect_gpu_matches_reference("Resize", std::move(a), std::move(ins), 1, kResize, rtol, atol);
}

TEST(CudaResizeRunTime, ScalesComputedAtRunTime) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 3000;
  const DataType F = DataType::kFloat;
  for (const char* mode : {"nearest", "linear", "cubic"})
    for (const char* coord : {"half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"}) {
      Tensor x = random_values(F, {2, 3, 7, 5}, seed++);
      check_resize(
          resize_attrs(mode, coord),
          {NodeInput::of(x), NodeInput::none(), NodeInput::of(f32({4}, {1.f, 1.f, 1.5f, 0.7f}))},
          1e-5, 1e-6);
      // 3-D with an upscale on every axis, and a scale of 1 (the identity dims).
      check_resize(resize_attrs(mode, coord),
                   {NodeInput::of(random_values(F, {3, 4, 5}, seed++)), NodeInput::none(),
                    NodeInput::of(f32({3}, {2.f, 1.f, 1.75f}))},
                   1e-5, 1e-6);
    }
  // Nearest keeps integers exact; float64 scales.
  check_resize(resize_attrs("nearest", "asymmetric", "ceil"),
               {NodeInput::of(random_values(DataType::kInt64, {1, 13}, seed++, -1000, 1000)),
                NodeInput::none(), NodeInput::of(f64({2}, {1.0, 2.5}))},
               0, 0);
  // Empty run-time scales with sizes given: the sizes decide.
  check_resize(resize_attrs("linear", "half_pixel"),
               {NodeInput::of(random_values(F, {1, 2, 5, 6}, seed++)), NodeInput::none(),
                NodeInput::of(Tensor(F, {0})), NodeInput::constant_of(i64({4}, {1, 2, 3, 11}))},
               1e-5, 1e-6);
}

TEST(CudaResizeRunTime, RoiComputedAtRunTime) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 3100;
  const DataType F = DataType::kFloat;
  for (const char* mode : {"nearest", "linear", "cubic"}) {
    auto a = resize_attrs(mode, "tf_crop_and_resize");
    a->extrapolation_value = -7;
    // Sizes constant: the output shape is static and the plan is not data-dependent.
    check_resize(std::move(a),
                 {NodeInput::of(random_values(F, {1, 2, 7, 9}, seed++)),
                  NodeInput::of(f32({8}, {0, 0, 0.2f, -0.1f, 1, 1, 0.9f, 1.3f})), NodeInput::none(),
                  NodeInput::constant_of(i64({4}, {1, 2, 5, 4}))},
                 1e-5, 1e-6);
    // Both the roi and the scales at run time.
    auto b = resize_attrs(mode, "tf_crop_and_resize");
    check_resize(
        std::move(b),
        {NodeInput::of(random_values(F, {3, 8}, seed++)), NodeInput::of(f32({4}, {0, 0.1f, 1, 0.8f})),
         NodeInput::of(f32({2}, {1.f, 1.6f}))},
        1e-5, 1e-6);
  }
}

// ---- Reduce with run-time axes ----------------------------------------------------------------

constexpr const char* kReduce = "cuda.reduce";

void check_reduce(const std::string& kind, const Tensor& x, const Tensor& axes, bool keepdims,
                  bool noop, double rtol, double atol) {
  SCOPED_TRACE(cat(kind, " of ", dtype_name(x.dtype()), dims_to_string(x.dims()), " axes ",
                   dims_to_string(values_of(axes)), keepdims ? " keepdims" : "",
                   noop ? " noop_with_empty_axes" : ""));
  auto a = std::make_unique<ReduceAttrs>();
  a->kind = kind;
  a->keepdims = keepdims;
  a->noop_with_empty_axes = noop;
  expect_gpu_matches_reference("Reduce", std::move(a), {NodeInput::of(x), NodeInput::of(axes)}, 1,
                               kReduce, rtol, atol);
}

TEST(CudaReduceRunTime, AxesComputedAtRunTime) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 4000;
  const DataType F = DataType::kFloat;
  const std::vector<std::vector<int64_t>> axes_sets = {{0}, {1}, {-1}, {0, 2}, {2, 0, 1}, {1, 2}};
  for (const char* kind : {"sum", "mean", "max", "l2", "log_sum_exp"})
    for (const auto& axes : axes_sets)
      for (bool keep : {true, false})
        check_reduce(kind, random_values(F, {3, 5, 7}, seed++),
                     i64({static_cast<int64_t>(axes.size())}, axes), keep, false, 1e-5, 1e-6);
  // int32 axes, integer data, an arg reduction, a long row (split over blocks: the workspace is
  // sized before the axes are read).
  check_reduce("sum", random_values(DataType::kInt32, {4, 9, 13}, seed++, -100, 100), i32({2}, {0, 2}), true,
               false, 0, 0);
  check_reduce("argmax", random_values(F, {4, 9, 13}, seed++), i64({1}, {1}), false, false, 0, 0);
  check_reduce("argmin", random_values(DataType::kInt64, {4, 9, 13}, seed++, 0, 3), i64({1}, {-1}), true,
               false, 0, 0);
  check_reduce("sum", random_values(F, {2, 100003}, seed++, 0, 1), i64({1}, {1}), true, false, 1e-4, 1e-6);
  check_reduce("max", random_values(DataType::kDouble, {1, 1, 17}, seed++), i64({2}, {0, 1}), false, false, 0,
               0);
}

TEST(CudaReduceRunTime, EmptyAxesWithAndWithoutNoop) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 4100;
  const DataType F = DataType::kFloat;
  const Tensor none = i64({0}, {});
  for (bool keep : {true, false}) {
    // Without noop_with_empty_axes every axis is reduced; with it the node is an identity.
    check_reduce("sum", random_values(F, {3, 5, 7}, seed++), none, keep, false, 1e-5, 1e-6);
    check_reduce("prod", random_values(F, {2, 3}, seed++, 0.8, 1.25), none, keep, false, 1e-5, 1e-6);
    check_reduce("sum", random_values(F, {3, 5, 7}, seed++), none, keep, true, 0, 0);
    check_reduce("max", random_values(DataType::kInt32, {4, 1, 6}, seed++, -50, 50), none, keep, true, 0, 0);
    // A non-empty run-time axes input of a node with noop_with_empty_axes still reduces.
    check_reduce("mean", random_values(F, {4, 6, 5}, seed++), i64({1}, {1}), keep, true, 1e-5, 1e-6);
  }
}

// ---- CumSum with a run-time axis --------------------------------------------------------------

constexpr const char* kCumSum = "cuda.cum_sum";

void check_cum_sum(const Tensor& x, const Tensor& axis, bool exclusive, bool reverse, double rtol,
                   double atol) {
  SCOPED_TRACE(cat("cumsum of ", dtype_name(x.dtype()), dims_to_string(x.dims()), " axis ",
                   axis.get_i64(0), exclusive ? " exclusive" : "", reverse ? " reverse" : ""));
  auto a = std::make_unique<CumSumAttrs>();
  a->exclusive = exclusive;
  a->reverse = reverse;
  expect_gpu_matches_reference("CumSum", std::move(a), {NodeInput::of(x), NodeInput::of(axis)}, 1,
                               kCumSum, rtol, atol);
}

TEST(CudaCumSumRunTime, AxisComputedAtRunTime) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 5000;
  for (bool excl : {false, true})
    for (bool rev : {false, true}) {
      for (int64_t axis : {0, 1, 2, -1, -3})
        check_cum_sum(random_values(DataType::kFloat, {5, 37, 3}, seed++), i64({}, {axis}), excl, rev, 1e-5,
                      1e-6);
      // int32 axis of shape [1], integers that wrap, a long row, float64.
      check_cum_sum(random_values(DataType::kInt32, {3, 1031}, seed++, -2000000000LL, 2000000000LL),
                    i32({1}, {1}), excl, rev, 0, 0);
      check_cum_sum(random_values(DataType::kInt64, {13}, seed++, -1000, 1000), i64({}, {0}), excl, rev, 0,
                    0);
      check_cum_sum(random_values(DataType::kDouble, {2, 7, 1, 11}, seed++), i64({1}, {-2}), excl, rev, 1e-12,
                    1e-12);
    }
}

}  // namespace
}  // namespace kiln::testing
