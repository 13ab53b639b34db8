// cuda.pointwise_nvrtc against the reference (expr/eval.cc): programs built as the ONNX importers
// build them, every dtype family, broadcasting of every kind (same shape, row, column, scalar,
// NCHW bias, both sides, rank 8), awkward sizes (1, 7, 1023, 2^20+3, > 65535*256), empty tensors.
// Integer and bool outputs must match exactly; float outputs within a tolerance per dtype (the
// GPU computes float16/bfloat16/float32 in float, the reference in double).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "gpu/gpu_compare.h"
#include "ops/pointwise.h"

namespace kiln {
const Tactic& kiln_cuda_tactic_pointwise_nvrtc();
}

namespace kiln::testing {
namespace {

using expr::Op;
using expr::Program;

constexpr const char* kTactic = "cuda.pointwise_nvrtc";

const DataType kFloatTypes[] = {DataType::kFloat, DataType::kFloat16, DataType::kBFloat16,
                                DataType::kDouble};
const DataType kIntTypes[] = {DataType::kInt8,  DataType::kUInt8,  DataType::kInt16,
                              DataType::kUInt16, DataType::kInt32, DataType::kUInt32,
                              DataType::kInt64, DataType::kUInt64};
const DataType kAllTypes[] = {
    DataType::kFloat,  DataType::kFloat16, DataType::kBFloat16, DataType::kDouble, DataType::kInt8,
    DataType::kUInt8,  DataType::kInt16,   DataType::kUInt16,   DataType::kInt32,  DataType::kUInt32,
    DataType::kInt64,  DataType::kUInt64,  DataType::kBool};

bool is_64bit_int(DataType t) { return t == DataType::kInt64 || t == DataType::kUInt64; }

// Random values a type can hold. Floats: uniform in [lo, hi), and with `specials` every 17th
// element one of NaN, +-inf, +-0 and values beyond the integer ranges. Integers: the full range
// for types of 32 bits or less; +-2^40 for 64-bit types (the reference's int64 arithmetic must
// not overflow: that is undefined in C++), with 0, 1 and -1 mixed in.
Tensor values(DataType t, const Dims& d, uint32_t seed, double lo = -4, double hi = 4,
              bool specials = true) {
  std::mt19937_64 rng(seed);
  Tensor x(t, d);
  const double sp[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 3e9, -3e9, 1e20, -1e20, 70000.0,
                       -129.5, 255.5, 1e-8, 0.5, -0.5, 2.5};
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (dtype_is_float(t)) {
      double v = u(rng);
      if (specials && i % 17 == 3) v = sp[(i / 17) % (sizeof sp / sizeof sp[0])];
      x.set_f64(i, v);
    } else if (t == DataType::kBool) {
      x.set_i64(i, static_cast<int64_t>(rng() & 1));
    } else {
      int64_t v = static_cast<int64_t>(rng());
      if (is_64bit_int(t)) v >>= 23;
      if (t == DataType::kUInt64 && v < 0) v = -v;
      if (i % 13 == 5) v = 0;
      if (i % 19 == 7) v = -1;
      if (i % 23 == 11) v = 1;
      x.set_i64(i, v);
    }
  }
  return x;
}

// Integers in [lo, hi] (exponents, shift counts, small operands).
Tensor ints(DataType t, const Dims& d, uint32_t seed, int64_t lo, int64_t hi) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> u(lo, hi);
  Tensor x(t, d);
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (dtype_is_float(t)) x.set_f64(i, static_cast<double>(u(rng)));
    else x.set_i64(i, u(rng));
  }
  return x;
}

std::unique_ptr<Attrs> attrs_of(const Program& p) {
  auto a = std::make_unique<PointwiseAttrs>();
  a->program = p;
  return a;
}

struct Tol {
  double rtol, atol;
};
// One or two ulps of each float type, and absolute slack near zero where a sum cancels.
Tol tolerance(DataType t) {
  switch (t) {
    case DataType::kDouble: return {1e-12, 1e-14};
    case DataType::kFloat16: return {4e-3, 1e-3};
    case DataType::kBFloat16: return {3e-2, 1e-2};
    default: return {1e-5, 1e-6};
  }
}

// Runs the program on the GPU and on the reference; checks the tactic and every output.
void check(const Program& p, std::vector<Tensor> ins, const std::string& what,
           std::vector<bool> constant = {}) {
  std::vector<NodeInput> in;
  for (size_t i = 0; i < ins.size(); ++i)
    in.push_back(i < constant.size() && constant[i] ? NodeInput::constant_of(ins[i])
                                                    : NodeInput::of(ins[i]));
  DeviceRun r;
  try {
    r = run_on_device("Pointwise", attrs_of(p), in, p.outputs.size());
  } catch (const Error& e) {
    FAIL() << what << ": " << e.message();
  }
  EXPECT_EQ(r.tactic, kTactic) << what << ": program " << p.str();
  ASSERT_EQ(r.device.size(), r.reference.size()) << what;
  for (size_t k = 0; k < r.device.size(); ++k) {
    const Tensor& g = r.device[k];
    const Tensor& w = r.reference[k];
    std::string label = cat(what, " output ", k, " (", dtype_name(w.dtype()), ")");
    ASSERT_EQ(g.dtype(), w.dtype()) << label;
    ASSERT_EQ(dims_to_string(g.dims()), dims_to_string(w.dims())) << label;
    if (dtype_is_float(w.dtype())) {
      Tol tol = tolerance(w.dtype());
      expect_close(g, w, tol.rtol, tol.atol, label);
      continue;
    }
    // Integers and bools: bit-exact.
    if (std::memcmp(g.raw(), w.raw(), w.nbytes()) == 0) continue;
    int reported = 0;
    for (int64_t i = 0; i < w.numel() && reported < 5; ++i)
      if (g.get_i64(i) != w.get_i64(i)) {
        ++reported;
        ADD_FAILURE() << label << ": element " << i << " is " << g.get_i64(i) << ", reference "
                      << w.get_i64(i) << "; inputs:" << [&] {
                           std::string s;
                           for (const Tensor& t : ins)
                             s += cat(" ", t.numel() == w.numel() ? t.get_f64(i) : NAN);
                           return s;
                         }();
      }
  }
}

Program binary_program(Op op, DataType a, DataType b) {
  Program p;
  p.input_types = {a, b};
  p.outputs = {p.binary(op, p.input(0), p.input(1))};
  return p;
}

// --- Shapes and sizes --------------------------------------------------------------------------

TEST(PointwiseGpu, SameShapeAddAtOddSizes) {
  KILN_REQUIRE_GPU();
  Program p = binary_program(Op::kAdd, DataType::kFloat, DataType::kFloat);
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1023}, (int64_t{1} << 20) + 3})
    check(p, {values(DataType::kFloat, {n}, 1), values(DataType::kFloat, {n}, 2)},
          cat("add [", n, "]"));
  check(p, {values(DataType::kFloat, {3, 5, 7}, 3), values(DataType::kFloat, {3, 5, 7}, 4)},
        "add [3,5,7]");
}

TEST(PointwiseGpu, LargeFlatAndStrided) {
  KILN_REQUIRE_GPU();
  // More than 65535 * 256 elements: the grid-stride loops must cover all of them.
  const int64_t n = (int64_t{1} << 24) + 7;
  Program p = binary_program(Op::kMul, DataType::kFloat, DataType::kFloat);
  check(p, {values(DataType::kFloat, {n}, 5, -4, 4, false), values(DataType::kFloat, {n}, 6, -4, 4, false)},
        "mul flat 2^24+7");
  check(p, {values(DataType::kFloat, {4099, 4097}, 7, -4, 4, false),
            values(DataType::kFloat, {4097}, 8, -4, 4, false)},
        "mul row broadcast [4099,4097]");
}

TEST(PointwiseGpu, Broadcasting) {
  KILN_REQUIRE_GPU();
  const DataType F = DataType::kFloat;
  Program add = binary_program(Op::kAdd, F, F);
  check(add, {values(F, {37, 129}, 1), values(F, {129}, 2)}, "row");
  check(add, {values(F, {37, 129}, 3), values(F, {37, 1}, 4)}, "column");
  check(add, {values(F, {1023}, 5), values(F, {}, 6)}, "rank-0 scalar");
  check(add, {values(F, {}, 6), values(F, {1023}, 5)}, "scalar first");
  check(add, {values(F, {1, 1}, 7), values(F, {33, 65}, 8)}, "[1,1] scalar");
  check(add, {values(F, {2, 19, 7, 9}, 9), values(F, {1, 19, 1, 1}, 10)}, "NCHW bias");
  check(add, {values(F, {2, 19, 7, 9}, 9), values(F, {1, 19, 1, 1}, 10)}, "NCHW constant bias",
        {false, true});
  check(add, {values(F, {5, 1}, 11), values(F, {1, 7}, 12)}, "both sides");
  check(add, {values(F, {3, 1, 4, 1, 2, 1, 3, 2}, 13), values(F, {1, 2, 1, 3, 1, 2, 1, 1}, 14)},
        "rank 8");
  check(add, {values(F, {3, 4, 5}, 15), values(F, {3, 1, 5}, 16)}, "middle dim");
  check(add, {values(F, {}, 17), values(F, {}, 18)}, "rank-0 output");
  Program sub = binary_program(Op::kSub, DataType::kInt32, DataType::kInt32);
  check(sub, {values(DataType::kInt32, {5, 1}, 19), values(DataType::kInt32, {1, 7}, 20)},
        "int32 both sides");
  // Three inputs broadcast differently (Where over a bool mask).
  Program where;
  where.input_types = {DataType::kBool, F, F};
  where.outputs = {where.select(where.input(0), where.input(1), where.input(2))};
  check(where, {values(DataType::kBool, {3, 1, 5}, 21), values(F, {1, 4, 5}, 22), values(F, {}, 23)},
        "where [3,1,5] [1,4,5] []");
  check(where, {values(DataType::kBool, {1001}, 24), values(F, {1001}, 25), values(F, {1001}, 26)},
        "where same shape");
}

TEST(PointwiseGpu, EmptyTensors) {
  KILN_REQUIRE_GPU();
  const DataType F = DataType::kFloat;
  Program add = binary_program(Op::kAdd, F, F);
  check(add, {values(F, {0, 5}, 1), values(F, {5}, 2)}, "[0,5] + [5]");
  check(add, {values(F, {0}, 3), values(F, {0}, 4)}, "[0] + [0]");
  check(add, {values(F, {4, 0, 3}, 5), values(F, {}, 6)}, "[4,0,3] + scalar");
}

// --- Float types ------------------------------------------------------------------------------

// Every float unary op of one input: one output per op.
Program float_unary_program(DataType t) {
  Program p;
  p.input_types = {t};
  int32_t x = p.input(0);
  for (int o = static_cast<int>(Op::kNeg); o <= static_cast<int>(Op::kRelu); ++o) {
    Op op = static_cast<Op>(o);
    if (op == Op::kBitNot) continue;
    p.outputs.push_back(p.unary(op, x));
  }
  return p;
}

TEST(PointwiseGpu, FloatUnaryOpsOnEveryFloatType) {
  KILN_REQUIRE_GPU();
  for (DataType t : kFloatTypes) {
    check(float_unary_program(t), {values(t, {1031}, 31, -3, 3)},
          cat("unary ", dtype_name(t)));
    // Domains of asin/acos/atanh/acosh/log: (-1, 1) and (1, 10).
    check(float_unary_program(t), {values(t, {257}, 32, -0.999, 0.999, false)},
          cat("unary (-1,1) ", dtype_name(t)));
    check(float_unary_program(t), {values(t, {257}, 33, 1.001, 10, false)},
          cat("unary (1,10) ", dtype_name(t)));
  }
}

Program float_binary_program(DataType t) {
  Program p;
  p.input_types = {t, t};
  int32_t a = p.input(0), b = p.input(1);
  for (Op op : {Op::kAdd, Op::kSub, Op::kMul, Op::kDiv, Op::kPow, Op::kMin, Op::kMax, Op::kFMod,
                Op::kMod, Op::kEq, Op::kNe, Op::kLt, Op::kLe, Op::kGt, Op::kGe, Op::kAnd, Op::kOr,
                Op::kXor})
    p.outputs.push_back(p.binary(op, a, b));
  return p;
}

TEST(PointwiseGpu, FloatBinaryOpsOnEveryFloatType) {
  KILN_REQUIRE_GPU();
  for (DataType t : kFloatTypes) {
    check(float_binary_program(t), {values(t, {1031}, 41), values(t, {1031}, 42)},
          cat("binary ", dtype_name(t)));
    check(float_binary_program(t), {values(t, {33, 31}, 43), values(t, {31}, 44)},
          cat("binary row ", dtype_name(t)));
    // Pow with integral exponents of negative bases.
    check(float_binary_program(t), {values(t, {515}, 45, -3, 3, false), ints(t, {515}, 46, -3, 4)},
          cat("binary integral exponents ", dtype_name(t)));
  }
}

TEST(PointwiseGpu, Float16InputsAtOddSizes) {
  KILN_REQUIRE_GPU();
  const DataType H = DataType::kFloat16;
  Program add = binary_program(Op::kAdd, H, H);
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{9}, int64_t{1023}, (int64_t{1} << 20) + 3})
    check(add, {values(H, {n}, 51), values(H, {n}, 52)}, cat("f16 add [", n, "]"));
  // Sigmoid in float16, and a float16 + float32 sum computed in float32.
  Program sig;
  sig.input_types = {H};
  sig.outputs = {sig.unary(Op::kSigmoid, sig.input(0))};
  check(sig, {values(H, {4097}, 53, -8, 8)}, "f16 sigmoid");
  Program mixed;
  mixed.input_types = {H, DataType::kFloat};
  mixed.outputs = {mixed.binary(Op::kAdd, mixed.cast(mixed.input(0), DataType::kFloat), mixed.input(1))};
  check(mixed, {values(H, {2, 3, 67}, 54), values(DataType::kFloat, {3, 1}, 55)}, "f16 + f32");
  check(mixed, {values(H, {1000}, 56), values(DataType::kFloat, {1000}, 57)}, "f16 + f32 flat");
}

// Gelu as imp_Gelu builds it (erf form), HardSwish and LeakyRelu: multi-instruction programs
// with constants, in float32, float16 and bfloat16.
TEST(PointwiseGpu, ImporterActivations) {
  KILN_REQUIRE_GPU();
  for (DataType t : {DataType::kFloat, DataType::kFloat16, DataType::kBFloat16}) {
    Program gelu;
    gelu.input_types = {t};
    int32_t x = gelu.input(0);
    int32_t inner = gelu.unary(Op::kErf, gelu.binary(Op::kMul, x, gelu.constant(t, M_SQRT1_2)));
    int32_t half = gelu.binary(Op::kMul, gelu.constant(t, 0.5), x);
    gelu.outputs = {gelu.binary(Op::kMul, half, gelu.binary(Op::kAdd, gelu.constant(t, 1), inner))};
    check(gelu, {values(t, {7, 129}, 61, -5, 5)}, cat("gelu ", dtype_name(t)));

    Program hs;
    hs.input_types = {t};
    int32_t y = hs.input(0);
    int32_t v = hs.binary(Op::kAdd, hs.binary(Op::kMul, y, hs.constant(t, 1.0 / 6)), hs.constant(t, 0.5));
    v = hs.binary(Op::kMin, hs.binary(Op::kMax, v, hs.constant(t, 0)), hs.constant(t, 1));
    hs.outputs = {hs.binary(Op::kMul, y, v)};
    check(hs, {values(t, {1023}, 62, -6, 6)}, cat("hardswish ", dtype_name(t)));

    Program lr;
    lr.input_types = {t};
    int32_t z = lr.input(0);
    lr.outputs = {lr.select(lr.binary(Op::kLt, z, lr.constant(t, 0)),
                            lr.binary(Op::kMul, z, lr.constant(t, 0.01)), z)};
    check(lr, {values(t, {2, 3, 5, 7}, 63)}, cat("leaky relu ", dtype_name(t)));
  }
}

// Two outputs of different types (DynamicQuantizeLinear's second program), over broadcast inputs.
TEST(PointwiseGpu, MultiInputMultiOutput) {
  KILN_REQUIRE_GPU();
  const DataType F = DataType::kFloat, U8 = DataType::kUInt8;
  auto clamp255 = [](Program& p, int32_t v) {
    return p.binary(Op::kMin, p.binary(Op::kMax, v, p.constant(F, 0)), p.constant(F, 255));
  };
  Program q;
  q.input_types = {F, F, U8};
  int32_t zp = q.cast(q.input(2), F);
  int32_t v = q.unary(Op::kRound, q.binary(Op::kDiv, q.input(0), q.input(1)));
  v = clamp255(q, q.binary(Op::kAdd, v, zp));
  v = q.select(q.binary(Op::kEq, q.input(1), q.constant(F, 0)), zp, v);
  q.outputs = {q.cast(v, U8), v, q.binary(Op::kGt, v, q.constant(F, 100))};
  check(q, {values(F, {3, 1001}, 71, -300, 300), values(F, {}, 72, 0.5, 2), values(U8, {}, 73)},
        "quantize scalar params");
  check(q, {values(F, {3, 1001}, 74, -300, 300), values(F, {3, 1}, 75, 0.5, 2), values(U8, {1001}, 76)},
        "quantize broadcast params");
  // A chain over five inputs of three types.
  Program c;
  c.input_types = {F, DataType::kFloat16, DataType::kInt32, DataType::kBool, DataType::kDouble};
  int32_t a = c.input(0);
  int32_t h = c.cast(c.input(1), F);
  int32_t i = c.cast(c.input(2), F);
  int32_t s = c.binary(Op::kAdd, c.binary(Op::kMul, a, h), c.unary(Op::kTanh, i));
  s = c.select(c.input(3), s, c.unary(Op::kNeg, s));
  int32_t d = c.binary(Op::kMul, c.cast(s, DataType::kDouble), c.input(4));
  c.outputs = {s, d, c.cast(d, DataType::kInt64)};
  check(c, {values(F, {4, 6, 10}, 77), values(DataType::kFloat16, {6, 1}, 78),
            values(DataType::kInt32, {10}, 79), values(DataType::kBool, {4, 1, 1}, 80),
            values(DataType::kDouble, {}, 81)},
        "five inputs");
}

// --- Integer types ----------------------------------------------------------------------------

TEST(PointwiseGpu, IntegerArithmeticOnEveryIntegerType) {
  KILN_REQUIRE_GPU();
  for (DataType t : kIntTypes) {
    Program p;
    p.input_types = {t, t};
    int32_t a = p.input(0), b = p.input(1);
    for (Op op : {Op::kAdd, Op::kSub, Op::kMul, Op::kDiv, Op::kMin, Op::kMax, Op::kFMod, Op::kMod,
                  Op::kBitAnd, Op::kBitOr, Op::kBitXor, Op::kEq, Op::kNe, Op::kLt, Op::kLe,
                  Op::kGt, Op::kGe, Op::kAnd, Op::kOr, Op::kXor})
      p.outputs.push_back(p.binary(op, a, b));
    // Float functions of integers truncate their double result: only correctly rounded ones
    // (sqrt, 1/x) and sigmoid (far from integers) give the same integers as the host's libm.
    for (Op op : {Op::kNeg, Op::kAbs, Op::kSign, Op::kNot, Op::kBitNot, Op::kRelu, Op::kFloor,
                  Op::kSqrt, Op::kReciprocal, Op::kSigmoid})
      p.outputs.push_back(p.unary(op, a));
    check(p, {values(t, {1031}, 91), values(t, {1031}, 92)}, cat("int ops ", dtype_name(t)));
    check(p, {values(t, {17, 61}, 93), values(t, {17, 1}, 94)}, cat("int ops column ", dtype_name(t)));
    // Small operands: exact products, -1 divisors, x / 0.
    check(p, {ints(t, {515}, 95, -20, 20), ints(t, {515}, 96, -3, 3)}, cat("int small ", dtype_name(t)));
  }
}

TEST(PointwiseGpu, IntegerPowAndShifts) {
  KILN_REQUIRE_GPU();
  for (DataType t : kIntTypes) {
    bool is_signed = dtype_is_signed_int(t);
    Program pw = binary_program(Op::kPow, t, t);
    // Exponents up to 12 keep 9^e inside int64 (the reference's int64 overflow is undefined).
    check(pw, {ints(t, {1031}, 101, is_signed ? -9 : 0, 9), ints(t, {1031}, 102, 0, 12)},
          cat("pow ", dtype_name(t)));
    if (is_signed)  // negative exponents go through pow() in double
      check(pw, {ints(t, {257}, 103, -5, 5), ints(t, {257}, 104, -3, 6)},
            cat("pow negative exponents ", dtype_name(t)));
    Program sh;
    sh.input_types = {t, t};
    sh.outputs = {sh.binary(Op::kShl, sh.input(0), sh.input(1)),
                  sh.binary(Op::kShr, sh.input(0), sh.input(1))};
    check(sh, {values(t, {1031}, 105), ints(t, {1031}, 106, 0, 70)}, cat("shift ", dtype_name(t)));
  }
  // Pow of an integer base and a float exponent (imp_Pow keeps the base's type): integral
  // exponents (exact powers), and random ones whose powers are not near integers.
  Program pf;
  pf.input_types = {DataType::kInt32, DataType::kFloat};
  pf.outputs = {pf.binary(Op::kPow, pf.input(0), pf.input(1), DataType::kInt32)};
  check(pf, {ints(DataType::kInt32, {515}, 107, -7, 7), ints(DataType::kFloat, {515}, 108, -3, 4)},
        "pow int32 ^ integral float");
  check(pf, {ints(DataType::kInt32, {515}, 109, -7, 7),
             values(DataType::kFloat, {515}, 110, -2, 3, false)},
        "pow int32 ^ float");
  // BitShift with a narrower shift-count type.
  Program sh;
  sh.input_types = {DataType::kUInt32, DataType::kUInt8};
  sh.outputs = {sh.binary(Op::kShl, sh.input(0), sh.input(1)), sh.binary(Op::kShr, sh.input(0), sh.input(1))};
  check(sh, {values(DataType::kUInt32, {300}, 111), ints(DataType::kUInt8, {300}, 112, 0, 40)},
        "shift u32 by u8");
}

TEST(PointwiseGpu, BoolLogic) {
  KILN_REQUIRE_GPU();
  const DataType B = DataType::kBool;
  Program p;
  p.input_types = {B, B};
  int32_t a = p.input(0), b = p.input(1);
  p.outputs = {p.binary(Op::kAnd, a, b), p.binary(Op::kOr, a, b), p.binary(Op::kXor, a, b),
               p.unary(Op::kNot, a),     p.binary(Op::kEq, a, b), p.binary(Op::kLt, a, b),
               p.select(a, b, p.unary(Op::kNot, b)), p.unary(Op::kBitNot, a),
               p.binary(Op::kAdd, a, b)};
  check(p, {values(B, {1, 1031}, 111), values(B, {1031}, 112)}, "bool same shape");
  check(p, {values(B, {31, 1}, 113), values(B, {1, 33}, 114)}, "bool both sides");
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{9}, int64_t{100003}})
    check(p, {values(B, {n}, 115), values(B, {n}, 116)}, cat("bool [", n, "]"));
}

// --- Casts ------------------------------------------------------------------------------------

// From every type to every type: NaN and out-of-range floats to integers (0 and saturation, then
// wrapping), rounding to float16/bfloat16, int64 through double to float, anything to bool.
TEST(PointwiseGpu, CastsBetweenEveryPairOfTypes) {
  KILN_REQUIRE_GPU();
  for (DataType from : kAllTypes) {
    Program p;
    p.input_types = {from};
    for (DataType to : kAllTypes) p.outputs.push_back(p.unary(Op::kCast, p.input(0), to));
    check(p, {values(from, {1031}, 121, -300, 300)}, cat("cast from ", dtype_name(from)));
    check(p, {values(from, {9}, 122, -1e10, 1e10)}, cat("cast large from ", dtype_name(from)));
  }
}

// --- Plans ------------------------------------------------------------------------------------

// A state built on this GPU but claiming another architecture is refused with kIncompatible.
TEST(PointwiseGpu, StateForAnotherArchitectureIsIncompatible) {
  KILN_REQUIRE_GPU();
  Program p = binary_program(Op::kAdd, DataType::kFloat, DataType::kFloat);
  SingleNode n("Pointwise", attrs_of(p),
               {NodeInput::shaped(DataType::kFloat, Shape::from({4})),
                NodeInput::shaped(DataType::kFloat, Shape::from({4}))});
  n.infer();
  auto g = n.graph_for_build();
  const Node& node = *g->nodes()[0];
  const Tactic& t = kiln_cuda_tactic_pointwise_nvrtc();
  ASSERT_TRUE(t.supports(node).is_ok());
  std::string state = t.prepare(node);
  EXPECT_NE(t.instantiate(node, state), nullptr);
  ASSERT_GE(state.size(), 12u);
  uint32_t sm = 0;
  std::memcpy(&sm, state.data() + 8, 4);  // magic, version, then the device's architecture
  uint32_t other = sm == 80 ? 90 : 80;
  std::memcpy(state.data() + 8, &other, 4);
  try {
    t.instantiate(node, state);
    FAIL() << "expected kIncompatible";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kIncompatible) << e.message();
    EXPECT_NE(e.message().find("sm_" + std::to_string(other)), std::string::npos) << e.message();
  }
}

}  // namespace
}  // namespace kiln::testing
