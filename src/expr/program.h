// The scalar expression language of Pointwise nodes and fused epilogues: a small SSA program.
// Register i holds the result of instruction i. Loads read program inputs with numpy
// broadcasting; every instruction has a result dtype, and results are rounded to it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/types.h"

namespace kiln::expr {

enum class Op : uint8_t {
  // leaves
  kInput,     // a = program input index
  kConst,     // value in fconst (float dtypes) or iconst
  // unary
  kCast, kNeg, kAbs, kSign, kNot, kBitNot, kExp, kLog, kSqrt, kRsqrt, kReciprocal, kSin, kCos, kTan,
  kAsin, kAcos, kAtan, kSinh, kCosh, kTanh, kAsinh, kAcosh, kAtanh, kErf, kFloor, kCeil, kRound,
  kSigmoid, kSoftplus, kIsNaN, kIsPosInf, kIsNegInf, kRelu,
  // binary
  kAdd, kSub, kMul, kDiv, kPow, kMin, kMax, kMod, kFMod, kAnd, kOr, kXor, kBitAnd, kBitOr, kBitXor,
  kShl, kShr, kEq, kNe, kLt, kLe, kGt, kGe,
  // ternary
  kSelect,    // a ? b : c
  kCount
};

const char* op_name(Op op);
int op_arity(Op op);  // 0 for leaves

struct Instr {
  Op op = Op::kConst;
  DataType dtype = DataType::kFloat;
  int32_t a = -1, b = -1, c = -1;
  double fconst = 0;
  int64_t iconst = 0;
};

struct Program {
  std::vector<DataType> input_types;  // dtype of each program input
  std::vector<Instr> code;
  std::vector<int32_t> outputs;       // registers that are node outputs, in order

  // Builders: each appends an instruction and returns its register.
  int32_t input(int32_t index);
  int32_t constant(DataType dtype, double value);
  int32_t constant_int(DataType dtype, int64_t value);  // exact for 64-bit integers
  int32_t unary(Op op, int32_t a, DataType dtype = DataType::kUndefined);    // dtype: default a's
  int32_t binary(Op op, int32_t a, int32_t b, DataType dtype = DataType::kUndefined);
  int32_t select(int32_t cond, int32_t a, int32_t b);
  int32_t cast(int32_t a, DataType to);
  DataType type_of(int32_t reg) const { return code[reg].dtype; }

  std::string str() const;
  bool operator==(const Program& o) const;
};

// Binary ops that produce bool regardless of operand type.
bool is_comparison(Op op);
// Ops whose result is bool (comparisons, IsNaN/IsInf, Not, logical And/Or/Xor).
bool yields_bool(Op op);

}  // namespace kiln::expr
