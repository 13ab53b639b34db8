// The pointwise code generator without a GPU: generated modules compile with NVRTC for sm_90 (NVRTC
// needs no device), the tactic accepts and rejects what it says, and a damaged kernel state is a
// clear error. The kernels themselves run in pointwise_test.cc.
#include <gtest/gtest.h>

#ifdef KILN_HAVE_CUDA

#include <cmath>

#include "backends/cuda/codegen/nvrtc.h"
#include "backends/cuda/codegen/pointwise_codegen.h"
#include "ops/pointwise.h"
#include "../ops/single_node.h"
#include "runtime/backend.h"

namespace kiln {
const Tactic& kiln_cuda_tactic_pointwise_nvrtc();
}

namespace kiln::testing {
namespace {

using expr::Op;
using expr::Program;

constexpr int kSm90 = 90;

const DataType kAllTypes[] = {
    DataType::kFloat,  DataType::kFloat16, DataType::kBFloat16, DataType::kDouble, DataType::kInt8,
    DataType::kUInt8,  DataType::kInt16,   DataType::kUInt16,   DataType::kInt32,  DataType::kUInt32,
    DataType::kInt64,  DataType::kUInt64,  DataType::kBool};

bool int_only(Op op) {
  return op == Op::kBitNot || op == Op::kBitAnd || op == Op::kBitOr || op == Op::kBitXor ||
         op == Op::kShl || op == Op::kShr;
}

// Generates and compiles; the CUBIN is an ELF file.
void expect_compiles(const Program& p, int rank, const std::string& what) {
  std::string why = cuda::pointwise_codegen_unsupported(p, rank);
  ASSERT_TRUE(why.empty()) << what << ": " << why;
  cuda::PointwiseSource s = cuda::generate_pointwise_source(p, rank);
  for (const char* k : cuda::kPointwiseKernelNames)
    EXPECT_NE(s.source.find(std::string("extern \"C\" __global__ void __launch_bounds__(256) ") + k),
              std::string::npos)
        << what << " lacks kernel " << k;
  std::string cubin;
  try {
    cubin = cuda::nvrtc_compile_cubin(s.source, kSm90, what);
  } catch (const Error& e) {
    ADD_FAILURE() << what << ": " << e.message() << "\nsource:\n" << s.source;
    return;
  }
  ASSERT_GT(cubin.size(), 4u) << what;
  EXPECT_EQ(cubin.substr(0, 4), std::string("\x7f" "ELF")) << what;
}

// Every unary op and every cast, on every type: one program per input type.
TEST(PointwiseCodegen, EveryUnaryOpAndCastOnEveryTypeCompiles) {
  for (DataType t : kAllTypes) {
    Program p;
    p.input_types = {t};
    int32_t x = p.input(0);
    for (int o = static_cast<int>(Op::kNeg); o <= static_cast<int>(Op::kRelu); ++o) {
      Op op = static_cast<Op>(o);
      if (int_only(op) && dtype_is_float(t)) continue;
      p.outputs.push_back(p.unary(op, x));
    }
    for (DataType to : kAllTypes) p.outputs.push_back(p.unary(Op::kCast, x, to));
    expect_compiles(p, 3, std::string("unary_") + dtype_name(t));
  }
}

// Every binary op, select and a constant, on every type.
TEST(PointwiseCodegen, EveryBinaryOpOnEveryTypeCompiles) {
  for (DataType t : kAllTypes) {
    Program p;
    p.input_types = {t, t, DataType::kBool};
    int32_t a = p.input(0), b = p.input(1);
    for (int o = static_cast<int>(Op::kAdd); o <= static_cast<int>(Op::kGe); ++o) {
      Op op = static_cast<Op>(o);
      if (int_only(op) && dtype_is_float(t)) continue;
      p.outputs.push_back(p.binary(op, a, b));
    }
    p.outputs.push_back(p.select(p.input(2), a, p.binary(Op::kMul, b, p.constant_int(t, -3))));
    expect_compiles(p, 4, std::string("binary_") + dtype_name(t));
  }
}

// The programs the importers make with mixed operand types, ranks 0 and 8, many inputs.
TEST(PointwiseCodegen, ImporterShapedProgramsCompile) {
  {  // Pow of an int32 base and a float exponent (imp_Pow keeps the base's type).
    Program p;
    p.input_types = {DataType::kInt32, DataType::kFloat};
    p.outputs = {p.binary(Op::kPow, p.input(0), p.input(1), DataType::kInt32)};
    expect_compiles(p, 1, "pow_int_float");
  }
  {  // Pow of a float32 base and a float64 exponent.
    Program p;
    p.input_types = {DataType::kFloat, DataType::kDouble};
    p.outputs = {p.binary(Op::kPow, p.input(0), p.input(1), DataType::kFloat)};
    expect_compiles(p, 2, "pow_f32_f64");
  }
  {  // BitShift with operands of two unsigned types.
    Program p;
    p.input_types = {DataType::kUInt8, DataType::kUInt32};
    p.outputs = {p.binary(Op::kShl, p.input(0), p.input(1)),
                 p.binary(Op::kShr, p.input(0), p.input(1))};
    expect_compiles(p, 3, "shift_mixed");
  }
  {  // Gelu in float16, and a scalar (rank 0) output.
    Program p;
    DataType t = DataType::kFloat16;
    p.input_types = {t};
    int32_t x = p.input(0);
    int32_t e = p.unary(Op::kErf, p.binary(Op::kMul, x, p.constant(t, M_SQRT1_2)));
    p.outputs = {p.binary(Op::kMul, p.binary(Op::kMul, p.constant(t, 0.5), x),
                          p.binary(Op::kAdd, p.constant(t, 1), e))};
    expect_compiles(p, 0, "gelu_f16_rank0");
  }
  {  // Sum of 12 inputs of two types, rank 8, two outputs of different sizes.
    Program p;
    for (int i = 0; i < 12; ++i) p.input_types.push_back(i % 2 ? DataType::kFloat16 : DataType::kFloat);
    int32_t acc = p.input(0);
    for (int i = 1; i < 12; ++i) acc = p.binary(Op::kAdd, acc, p.cast(p.input(i), DataType::kFloat));
    p.outputs = {acc, p.cast(acc, DataType::kUInt8)};
    expect_compiles(p, 8, "sum12_rank8");
  }
  {  // No inputs at all: a constant.
    Program p;
    p.outputs = {p.constant(DataType::kFloat, 2.5)};
    expect_compiles(p, 0, "constant_only");
  }
}

TEST(PointwiseCodegen, VectorWidthIs16BytesOfTheWidestOperandAtMost8) {
  Program p;
  p.input_types = {DataType::kFloat16};
  p.outputs = {p.input(0)};
  EXPECT_EQ(cuda::pointwise_vector_width(p), 8);
  p.outputs = {p.cast(p.input(0), DataType::kFloat)};
  EXPECT_EQ(cuda::pointwise_vector_width(p), 4);
  p.outputs = {p.cast(p.input(0), DataType::kInt64)};
  EXPECT_EQ(cuda::pointwise_vector_width(p), 2);
  Program b;
  b.input_types = {DataType::kBool};
  b.outputs = {b.unary(Op::kNot, b.input(0))};
  EXPECT_EQ(cuda::pointwise_vector_width(b), 8);
}

// The host side of a launch: kernel choice, coalesced dims and strides (fake, never dereferenced
// pointers).
TEST(PointwiseCodegen, LaunchPlanning) {
  cuda::PointwiseParamLayout l;
  l.max_rank = 4;
  l.inputs = 2;
  l.outputs = 1;
  const std::vector<size_t> f32s = {4, 4}, f32 = {4};
  void* out = reinterpret_cast<void*>(uintptr_t{0x10000});
  const void* a = reinterpret_cast<const void*>(uintptr_t{0x20000});
  const void* b = reinterpret_cast<const void*>(uintptr_t{0x30000});
  const void* odd = reinterpret_cast<const void*>(uintptr_t{0x30004});

  // Same shape and aligned: the vector kernel, 4 elements per item.
  cuda::PointwiseLaunch L =
      cuda::plan_pointwise_launch(l, 4, f32s, f32, {{3, 7}, {3, 7}}, {3, 7}, {a, b}, {out});
  EXPECT_EQ(L.kernel, cuda::kPwVec);
  EXPECT_EQ(L.items, 6);
  EXPECT_EQ(L.params[l.step(0)], 1);
  EXPECT_EQ(L.params[l.in(1)], 0x30000);
  EXPECT_EQ(L.params[l.out(0)], 0x10000);
  // A scalar operand keeps the flat kernels; a misaligned full operand the scalar one.
  L = cuda::plan_pointwise_launch(l, 4, f32s, f32, {{3, 7}, {}}, {3, 7}, {a, b}, {out});
  EXPECT_EQ(L.kernel, cuda::kPwVec);
  EXPECT_EQ(L.params[l.step(1)], 0);
  L = cuda::plan_pointwise_launch(l, 4, f32s, f32, {{3, 7}, {1, 1}}, {3, 7}, {a, odd}, {out});
  EXPECT_EQ(L.kernel, cuda::kPwVec);  // the misaligned one is a scalar: it does not matter
  L = cuda::plan_pointwise_launch(l, 4, f32s, f32, {{3, 7}, {3, 7}}, {3, 7}, {a, odd}, {out});
  EXPECT_EQ(L.kernel, cuda::kPwFlat);
  EXPECT_EQ(L.items, 21);
  // NCHW bias [1,19,1,1] over [2,19,7,9]: dims [2, 19, 63], bias strides [0, 1, 0].
  L = cuda::plan_pointwise_launch(l, 4, f32s, f32, {{2, 19, 7, 9}, {1, 19, 1, 1}}, {2, 19, 7, 9},
                                  {a, b}, {out});
  EXPECT_EQ(L.kernel, cuda::kPwStrided32);
  ASSERT_EQ(L.rank, 3u);
  EXPECT_EQ(L.params[l.rank()], 3);
  EXPECT_EQ(L.params[l.dim(0)], 1);
  EXPECT_EQ(L.params[l.dim(1)], 2);
  EXPECT_EQ(L.params[l.dim(2)], 19);
  EXPECT_EQ(L.params[l.dim(3)], 63);
  EXPECT_EQ(L.params[l.stride(0, 1)], 19 * 63);
  EXPECT_EQ(L.params[l.stride(0, 2)], 63);
  EXPECT_EQ(L.params[l.stride(0, 3)], 1);
  EXPECT_EQ(L.params[l.stride(1, 1)], 0);
  EXPECT_EQ(L.params[l.stride(1, 2)], 1);
  EXPECT_EQ(L.params[l.stride(1, 3)], 0);
  // Beyond 2^31 elements: 64-bit index math.
  L = cuda::plan_pointwise_launch(l, 4, f32s, f32, {{65536, 32769}, {32769}}, {65536, 32769},
                                  {a, b}, {out});
  EXPECT_EQ(L.kernel, cuda::kPwStrided64);
  // Empty: nothing to launch.
  L = cuda::plan_pointwise_launch(l, 4, f32s, f32, {{0, 7}, {7}}, {0, 7}, {a, b}, {out});
  EXPECT_EQ(L.items, 0);
  // Shapes that do not broadcast are a bug upstream.
  EXPECT_THROW(cuda::plan_pointwise_launch(l, 4, f32s, f32, {{3, 7}, {2, 7}}, {3, 7}, {a, b}, {out}),
               Error);
}

TEST(PointwiseCodegen, RejectsWhatTheReferenceLeavesToRegisterBits) {
  {
    Program p;  // a float compared with an integer
    p.input_types = {DataType::kFloat, DataType::kInt32};
    p.outputs = {p.binary(Op::kEq, p.input(0), p.input(1))};
    EXPECT_NE(cuda::pointwise_codegen_unsupported(p, 1).find("comparison"), std::string::npos);
  }
  {
    Program p;  // select between float32 and float64
    p.input_types = {DataType::kFloat, DataType::kDouble};
    p.outputs = {p.select(p.input(0), p.input(0), p.input(1))};
    EXPECT_NE(cuda::pointwise_codegen_unsupported(p, 1).find("select"), std::string::npos);
  }
  {
    Program p;  // an fp8 register
    p.input_types = {DataType::kFloat};
    p.outputs = {p.cast(p.input(0), DataType::kFloat8E4M3FN)};
    EXPECT_FALSE(cuda::pointwise_codegen_unsupported(p, 1).empty());
  }
  {
    Program p;  // rank 9
    p.input_types = {DataType::kFloat};
    p.outputs = {p.unary(Op::kRelu, p.input(0))};
    EXPECT_FALSE(cuda::pointwise_codegen_unsupported(p, 9).empty());
    EXPECT_TRUE(cuda::pointwise_codegen_unsupported(p, 8).empty());
  }
  {
    Program p;  // parameters beyond 4 KiB
    for (int i = 0; i < 64; ++i) p.input_types.push_back(DataType::kFloat);
    p.outputs = {p.input(0)};
    EXPECT_NE(cuda::pointwise_codegen_unsupported(p, 8).find("exceed"), std::string::npos);
  }
}

TEST(PointwiseCodegen, IdenticalSourcesCompileOnce) {
  Program p;
  p.input_types = {DataType::kFloat};
  p.outputs = {p.unary(Op::kTanh, p.binary(Op::kMul, p.input(0), p.constant(DataType::kFloat, 7)))};
  cuda::PointwiseSource s = cuda::generate_pointwise_source(p, 2);
  std::string a = cuda::nvrtc_compile_cubin(s.source, kSm90, "first");
  size_t hits = cuda::nvrtc_cache_hits();
  std::string b = cuda::nvrtc_compile_cubin(s.source, kSm90, "second");
  EXPECT_EQ(cuda::nvrtc_cache_hits(), hits + 1);
  EXPECT_EQ(a, b);
}

TEST(PointwiseCodegen, CompileErrorsCarryNvrtcsLog) {
  try {
    cuda::nvrtc_compile_cubin("extern \"C\" __global__ void k() { undeclared_thing(); }", kSm90,
                              "broken");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInternal);
    EXPECT_NE(e.message().find("undeclared_thing"), std::string::npos) << e.message();
  }
}

std::unique_ptr<Attrs> pointwise_attrs(const Program& p) {
  auto a = std::make_unique<PointwiseAttrs>();
  a->program = p;
  return a;
}

// A Pointwise node over float32 inputs of the given shapes, with inferred output shapes.
std::unique_ptr<Graph> pointwise_graph(const Program& p, std::vector<NodeInput> inputs) {
  SingleNode n("Pointwise", pointwise_attrs(p), std::move(inputs), p.outputs.size());
  n.infer();
  return n.graph_for_build();
}

TEST(PointwiseCodegen, TacticSupportsPointwiseUpToRank8) {
  const Tactic& t = kiln_cuda_tactic_pointwise_nvrtc();
  EXPECT_EQ(t.id(), "cuda.pointwise_nvrtc");
  Program p;
  p.input_types = {DataType::kFloat, DataType::kFloat};
  p.outputs = {p.binary(Op::kAdd, p.input(0), p.input(1))};
  auto g = pointwise_graph(p, {NodeInput::shaped(DataType::kFloat, Shape::from({2, 3, 4})),
                               NodeInput::shaped(DataType::kFloat, Shape::from({4}))});
  Status s = t.supports(*g->nodes()[0]);
  EXPECT_TRUE(s.is_ok()) << s.message();

  auto g9 = pointwise_graph(p, {NodeInput::shaped(DataType::kFloat, Shape::from({1, 1, 1, 1, 1, 1, 1, 1, 2})),
                                NodeInput::shaped(DataType::kFloat, Shape::from({2}))});
  s = t.supports(*g9->nodes()[0]);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("rank 9"), std::string::npos) << s.message();
}

TEST(PointwiseCodegen, DamagedStateIsACorruptPlanAndANewerVersionIncompatible) {
  const Tactic& t = kiln_cuda_tactic_pointwise_nvrtc();
  Program p;
  p.input_types = {DataType::kFloat};
  p.outputs = {p.unary(Op::kRelu, p.input(0))};
  auto g = pointwise_graph(p, {NodeInput::shaped(DataType::kFloat, Shape::from({5}))});
  const Node& n = *g->nodes()[0];
  auto expect_code = [&](const std::string& state, StatusCode code, const char* what) {
    try {
      t.instantiate(n, state);
      ADD_FAILURE() << what << ": expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << what << ": " << e.message();
    }
  };
  expect_code("", StatusCode::kCorruptPlan, "empty");
  expect_code("garbage state bytes", StatusCode::kCorruptPlan, "garbage");
  std::string v2("KPW1\x02\0\0\0", 8);
  expect_code(v2 + std::string(64, '\0'), StatusCode::kIncompatible, "version 2");
  std::string v1("KPW1\x01\0\0\0", 8);
  expect_code(v1 + std::string(8, '\0'), StatusCode::kCorruptPlan, "truncated");
}

}  // namespace
}  // namespace kiln::testing

#endif  // KILN_HAVE_CUDA
