// Element-wise ONNX ops: math, activations, comparisons, logic, Cast/CastLike, Where, Clip and the
// variadic Sum/Mean/Max/Min. All lower to Pointwise programs.
#include <cmath>

#include "onnx/importer.h"
#include "onnx/importers/shape_helpers.h"

namespace kiln::onnx {

namespace {

using expr::Op;
using expr::Program;

// Builds a program over all node inputs; `body` receives the input registers and returns the
// output register.
// `required`: how many leading inputs must be present (body may index them unchecked).
template <class F>
void lower(ImportContext& c, F&& body, size_t required = 1) {
  for (size_t i = 0; i < required; ++i) c.input(i);  // throws "input i is required but missing"
  Program p;
  std::vector<Value*> ins;
  std::vector<int32_t> regs;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    if (!c.has_input(i)) { regs.push_back(-1); continue; }
    Value* v = c.input(i);
    if (!dtype_is_supported(v->dtype))
      c.unsupported(cat("input ", i, " has unsupported type ", dtype_name(v->dtype)));
    p.input_types.push_back(v->dtype);
    ins.push_back(v);
    regs.push_back(p.input(static_cast<int32_t>(ins.size() - 1)));
  }
  p.outputs = {body(p, regs)};
  c.set_output(0, c.pointwise(p, ins));
}

void unary_op(ImportContext& c, Op op) {
  lower(c, [&](Program& p, const std::vector<int32_t>& r) { return p.unary(op, r[0]); });
}
// Before opset 7, binary ops did not broadcast numpy-style: with broadcast=1, B's dims match a
// contiguous run of A's dims starting at `axis` (default: A's last dims, which numpy's alignment
// already gives); with broadcast=0 the shapes are equal. B gets trailing 1s so that numpy's
// alignment puts its dims where the old rule does.
void legacy_broadcast(ImportContext& c) {
  if (c.opset() >= 7 || c.attr_int("broadcast", 0) == 0 || !c.has_attr("axis")) return;
  Value* a = c.input(0);
  Value* b = c.input(1);
  if (!a->shape.rank_known || !b->shape.rank_known)
    c.unsupported("legacy broadcasting with an axis needs operands of known rank");
  const int64_t ra = static_cast<int64_t>(a->shape.rank()), rb = static_cast<int64_t>(b->shape.rank());
  int64_t axis = c.attr_int("axis", 0);
  if (axis < 0) axis += ra;
  if (axis < 0 || axis + rb > ra)
    c.invalid(cat("legacy broadcast axis ", c.attr_int("axis", 0), " does not fit B ",
                  b->shape.str(), " into A ", a->shape.str()));
  Ints trailing;
  for (int64_t i = rb; i < ra - axis; ++i) trailing.push_back(i);
  if (!trailing.empty()) c.replace_input(1, reshape_form(c, b, "unsqueeze", trailing));
}

void binary_op(ImportContext& c, Op op) {
  legacy_broadcast(c);
  if (c.input(0)->dtype != c.input(1)->dtype && op != Op::kShl && op != Op::kShr)
    c.invalid(cat("operand types differ: ", dtype_name(c.input(0)->dtype), " and ",
                  dtype_name(c.input(1)->dtype)));
  lower(c, [&](Program& p, const std::vector<int32_t>& r) { return p.binary(op, r[0], r[1]); }, 2);
}

#define UNARY(NAME, OP) \
  void imp_##NAME(ImportContext& c) { unary_op(c, Op::OP); }
#define BINARY(NAME, OP) \
  void imp_##NAME(ImportContext& c) { binary_op(c, Op::OP); }

UNARY(Neg, kNeg) UNARY(Abs, kAbs) UNARY(Sign, kSign) UNARY(Not, kNot) UNARY(Exp, kExp)
UNARY(Log, kLog) UNARY(Sqrt, kSqrt) UNARY(Reciprocal, kReciprocal) UNARY(Sin, kSin)
UNARY(Cos, kCos) UNARY(Tan, kTan) UNARY(Asin, kAsin) UNARY(Acos, kAcos) UNARY(Atan, kAtan)
UNARY(Sinh, kSinh) UNARY(Cosh, kCosh) UNARY(Tanh, kTanh) UNARY(Asinh, kAsinh) UNARY(Acosh, kAcosh)
UNARY(Atanh, kAtanh) UNARY(Erf, kErf) UNARY(Floor, kFloor) UNARY(Ceil, kCeil) UNARY(Round, kRound)
UNARY(Sigmoid, kSigmoid) UNARY(Softplus, kSoftplus) UNARY(IsNaN, kIsNaN) UNARY(Relu, kRelu)
UNARY(BitwiseNot, kBitNot)
BINARY(Add, kAdd) BINARY(Sub, kSub) BINARY(Mul, kMul) BINARY(Div, kDiv) BINARY(And, kAnd)
BINARY(Or, kOr) BINARY(Xor, kXor) BINARY(Equal, kEq) BINARY(Less, kLt) BINARY(LessOrEqual, kLe)
BINARY(Greater, kGt) BINARY(GreaterOrEqual, kGe) BINARY(BitwiseAnd, kBitAnd)
BINARY(BitwiseOr, kBitOr) BINARY(BitwiseXor, kBitXor)
#undef UNARY
#undef BINARY

void imp_Pow(ImportContext& c) {
  legacy_broadcast(c);
  // Pow allows an exponent of another type; compute in the base's type.
  DataType t = c.input(0)->dtype;
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    int32_t e = r[1];
    if (dtype_is_float(t) && !dtype_is_float(p.type_of(e))) e = p.cast(e, t);
    if (dtype_is_float(t) && p.type_of(e) != t) e = p.cast(e, DataType::kDouble);
    return p.binary(Op::kPow, r[0], e, t);
  }, 2);
}

void imp_Mod(ImportContext& c) {
  bool fmod = c.attr_int("fmod", 0) != 0;
  if (!fmod && dtype_is_float(c.input(0)->dtype))
    c.invalid("Mod with fmod=0 is not defined for floating-point inputs");
  binary_op(c, fmod ? Op::kFMod : Op::kMod);
}

void imp_BitShift(ImportContext& c) {
  std::string dir = c.attr_string("direction", "");
  if (dir != "LEFT" && dir != "RIGHT") c.invalid("direction must be LEFT or RIGHT");
  binary_op(c, dir == "LEFT" ? Op::kShl : Op::kShr);
}

void imp_IsInf(ImportContext& c) {
  bool pos = c.attr_int("detect_positive", 1) != 0, neg = c.attr_int("detect_negative", 1) != 0;
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    int32_t a = p.unary(Op::kIsPosInf, r[0]), b = p.unary(Op::kIsNegInf, r[0]);
    if (pos && neg) return p.binary(Op::kOr, a, b);
    if (pos) return a;
    if (neg) return b;
    return p.binary(Op::kAnd, a, b);  // always false
  });
}

void imp_Cast(ImportContext& c) {
  auto to = static_cast<DataType>(c.attr_int("to", 0));
  if (to == DataType::kString) c.deliberately_unsupported("Cast to string");
  if (!dtype_is_supported(to)) c.unsupported(cat("Cast to ", dtype_name(to), " is not supported"));
  lower(c, [&](Program& p, const std::vector<int32_t>& r) { return p.unary(Op::kCast, r[0], to); });
}

void imp_CastLike(ImportContext& c) {
  DataType to = c.input(1)->dtype;
  if (!dtype_is_supported(to)) c.unsupported(cat("CastLike to ", dtype_name(to)));
  Value* x = c.input(0);
  if (!dtype_is_supported(x->dtype)) c.unsupported(cat("CastLike from ", dtype_name(x->dtype)));
  c.set_output(0, c.unary(Op::kCast, x, to));
}

void imp_Where(ImportContext& c) {
  lower(c, [&](Program& p, const std::vector<int32_t>& r) { return p.select(r[0], r[1], r[2]); }, 3);
}

void imp_Clip(ImportContext& c) {
  DataType t = c.input(0)->dtype;
  if (c.opset() < 11) {
    double lo = c.attr_float("min", -INFINITY), hi = c.attr_float("max", INFINITY);
    lower(c, [&](Program& p, const std::vector<int32_t>& r) {
      int32_t x = p.binary(Op::kMax, r[0], p.constant(t, lo));
      return p.binary(Op::kMin, x, p.constant(t, hi));
    });
    return;
  }
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    int32_t x = r[0];
    if (r.size() > 1 && r[1] >= 0) x = p.binary(Op::kMax, x, r[1]);
    if (r.size() > 2 && r[2] >= 0) x = p.binary(Op::kMin, x, r[2]);
    return x;
  });
}

void variadic(ImportContext& c, Op op, bool mean) {
  if (c.num_inputs() == 0) c.invalid("needs at least one input");
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    int32_t acc = r[0];
    for (size_t i = 1; i < r.size(); ++i) acc = p.binary(op, acc, r[i]);
    if (mean) acc = p.binary(Op::kDiv, acc, p.constant(p.type_of(acc), double(r.size())));
    if (r.size() == 1) acc = p.binary(Op::kAdd, acc, p.constant(p.type_of(acc), 0));
    return acc;
  });
}
void imp_Sum(ImportContext& c) { variadic(c, Op::kAdd, false); }
void imp_Mean(ImportContext& c) { variadic(c, Op::kAdd, true); }
void imp_Max(ImportContext& c) { variadic(c, Op::kMax, false); }
void imp_Min(ImportContext& c) { variadic(c, Op::kMin, false); }

// Activations with attributes.
void imp_LeakyRelu(ImportContext& c) {
  double alpha = c.attr_float("alpha", 0.01);
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    DataType t = p.type_of(r[0]);
    int32_t zero = p.constant(t, 0);
    return p.select(p.binary(Op::kLt, r[0], zero), p.binary(Op::kMul, r[0], p.constant(t, alpha)),
                    r[0]);
  });
}

void imp_PRelu(ImportContext& c) {
  // Before opset 7 a 1-D slope of X's channel count is per channel (axis 1), not aligned with
  // X's last axis as numpy would align it.
  if (c.opset() < 7) {
    Value* x = c.input(0);
    Value* s = c.input(1);
    if (x->shape.rank_known && x->shape.rank() > 2 && s->shape.rank_known && s->shape.rank() == 1 &&
        !(s->shape[0].known() && s->shape[0].value == 1)) {
      Ints trailing;
      for (int64_t i = 1; i < static_cast<int64_t>(x->shape.rank()) - 1; ++i) trailing.push_back(i);
      c.replace_input(1, reshape_form(c, s, "unsqueeze", trailing));
    }
  }
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    int32_t zero = p.constant(p.type_of(r[0]), 0);
    return p.select(p.binary(Op::kLt, r[0], zero), p.binary(Op::kMul, r[0], r[1]), r[0]);
  }, 2);
}

void imp_Elu(ImportContext& c) {
  double alpha = c.attr_float("alpha", 1.0);
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    DataType t = p.type_of(r[0]);
    int32_t neg = p.binary(Op::kMul, p.constant(t, alpha),
                           p.binary(Op::kSub, p.unary(Op::kExp, r[0]), p.constant(t, 1)));
    return p.select(p.binary(Op::kLt, r[0], p.constant(t, 0)), neg, r[0]);
  });
}

void imp_Celu(ImportContext& c) {
  double alpha = c.attr_float("alpha", 1.0);
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    DataType t = p.type_of(r[0]);
    // max(0,x) + min(0, alpha*(exp(x/alpha)-1))
    int32_t e = p.binary(Op::kSub, p.unary(Op::kExp, p.binary(Op::kDiv, r[0], p.constant(t, alpha))),
                         p.constant(t, 1));
    int32_t neg = p.binary(Op::kMin, p.constant(t, 0), p.binary(Op::kMul, p.constant(t, alpha), e));
    return p.binary(Op::kAdd, p.binary(Op::kMax, p.constant(t, 0), r[0]), neg);
  });
}

void imp_Selu(ImportContext& c) {
  double alpha = c.attr_float("alpha", 1.67326319217681884765625);
  double gamma = c.attr_float("gamma", 1.05070102214813232421875);
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    DataType t = p.type_of(r[0]);
    int32_t neg = p.binary(Op::kMul, p.constant(t, alpha),
                           p.binary(Op::kSub, p.unary(Op::kExp, r[0]), p.constant(t, 1)));
    int32_t v = p.select(p.binary(Op::kLe, r[0], p.constant(t, 0)), neg, r[0]);
    return p.binary(Op::kMul, p.constant(t, gamma), v);
  });
}

void imp_ThresholdedRelu(ImportContext& c) {
  double alpha = c.attr_float("alpha", 1.0);
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    DataType t = p.type_of(r[0]);
    return p.select(p.binary(Op::kGt, r[0], p.constant(t, alpha)), r[0], p.constant(t, 0));
  });
}

void imp_HardSigmoid(ImportContext& c) {
  double alpha = c.attr_float("alpha", 0.2), beta = c.attr_float("beta", 0.5);
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    DataType t = p.type_of(r[0]);
    int32_t v = p.binary(Op::kAdd, p.binary(Op::kMul, r[0], p.constant(t, alpha)), p.constant(t, beta));
    return p.binary(Op::kMin, p.binary(Op::kMax, v, p.constant(t, 0)), p.constant(t, 1));
  });
}

void imp_HardSwish(ImportContext& c) {
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    DataType t = p.type_of(r[0]);
    int32_t v = p.binary(Op::kAdd, p.binary(Op::kMul, r[0], p.constant(t, 1.0 / 6)), p.constant(t, 0.5));
    v = p.binary(Op::kMin, p.binary(Op::kMax, v, p.constant(t, 0)), p.constant(t, 1));
    return p.binary(Op::kMul, r[0], v);
  });
}

void imp_Softsign(ImportContext& c) {
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    DataType t = p.type_of(r[0]);
    return p.binary(Op::kDiv, r[0], p.binary(Op::kAdd, p.constant(t, 1), p.unary(Op::kAbs, r[0])));
  });
}

void imp_Shrink(ImportContext& c) {
  double bias = c.attr_float("bias", 0.0), lambd = c.attr_float("lambd", 0.5);
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    DataType t = p.type_of(r[0]);
    int32_t x = r[0];
    int32_t lo = p.binary(Op::kLt, x, p.constant(t, -lambd));
    int32_t hi = p.binary(Op::kGt, x, p.constant(t, lambd));
    int32_t zero = p.constant(t, 0);
    return p.select(lo, p.binary(Op::kAdd, x, p.constant(t, bias)),
                    p.select(hi, p.binary(Op::kSub, x, p.constant(t, bias)), zero));
  });
}

void imp_Gelu(ImportContext& c) {
  std::string approx = c.attr_string("approximate", "none");
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    DataType t = p.type_of(r[0]);
    int32_t x = r[0];
    int32_t inner;
    if (approx == "tanh") {
      int32_t x3 = p.binary(Op::kMul, p.binary(Op::kMul, x, x), x);
      int32_t s = p.binary(Op::kAdd, x, p.binary(Op::kMul, p.constant(t, 0.044715), x3));
      inner = p.unary(Op::kTanh, p.binary(Op::kMul, p.constant(t, std::sqrt(2.0 / M_PI)), s));
    } else {
      inner = p.unary(Op::kErf, p.binary(Op::kMul, x, p.constant(t, M_SQRT1_2)));
    }
    int32_t half = p.binary(Op::kMul, p.constant(t, 0.5), x);
    return p.binary(Op::kMul, half, p.binary(Op::kAdd, p.constant(t, 1), inner));
  });
}

void imp_Mish(ImportContext& c) {
  lower(c, [&](Program& p, const std::vector<int32_t>& r) {
    return p.binary(Op::kMul, r[0], p.unary(Op::kTanh, p.unary(Op::kSoftplus, r[0])));
  });
}

void imp_Identity(ImportContext& c) { c.set_output(0, c.input(0)); }

void imp_Dropout(ImportContext& c) {
  // Inference: identity; the optional mask is all true.
  if (c.opset() >= 12 && c.has_input(2)) {
    const Tensor* tm = c.constant_input(2);
    if (!tm || tm->get_i64(0) != 0)
      c.deliberately_unsupported("Dropout in training mode is random; kiln runs inference only");
  }
  Value* x = c.input(0);
  c.set_output(0, x);
  if (c.wants_output(1)) {
    Program p;
    p.input_types = {x->dtype};
    int32_t in = p.input(0);
    p.outputs = {p.binary(Op::kEq, in, in)};  // NaN-safe "true" would need more; use or-isnan
    p.outputs[0] = p.binary(Op::kOr, p.outputs[0], p.unary(Op::kIsNaN, in));
    c.set_output(1, c.pointwise(p, {x}));
  }
}

}  // namespace

const ImporterList& kiln_import_elementwise() {
  static const ImporterList l{{
      {"Neg", imp_Neg}, {"Abs", imp_Abs}, {"Sign", imp_Sign}, {"Not", imp_Not}, {"Exp", imp_Exp},
      {"Log", imp_Log}, {"Sqrt", imp_Sqrt}, {"Reciprocal", imp_Reciprocal}, {"Sin", imp_Sin},
      {"Cos", imp_Cos}, {"Tan", imp_Tan}, {"Asin", imp_Asin}, {"Acos", imp_Acos},
      {"Atan", imp_Atan}, {"Sinh", imp_Sinh}, {"Cosh", imp_Cosh}, {"Tanh", imp_Tanh},
      {"Asinh", imp_Asinh}, {"Acosh", imp_Acosh}, {"Atanh", imp_Atanh}, {"Erf", imp_Erf},
      {"Floor", imp_Floor}, {"Ceil", imp_Ceil}, {"Round", imp_Round}, {"Sigmoid", imp_Sigmoid},
      {"Softplus", imp_Softplus}, {"IsNaN", imp_IsNaN}, {"Relu", imp_Relu},
      {"BitwiseNot", imp_BitwiseNot}, {"Add", imp_Add}, {"Sub", imp_Sub}, {"Mul", imp_Mul},
      {"Div", imp_Div}, {"And", imp_And}, {"Or", imp_Or}, {"Xor", imp_Xor}, {"Equal", imp_Equal},
      {"Less", imp_Less}, {"LessOrEqual", imp_LessOrEqual}, {"Greater", imp_Greater},
      {"GreaterOrEqual", imp_GreaterOrEqual}, {"BitwiseAnd", imp_BitwiseAnd},
      {"BitwiseOr", imp_BitwiseOr}, {"BitwiseXor", imp_BitwiseXor}, {"Pow", imp_Pow},
      {"Mod", imp_Mod}, {"BitShift", imp_BitShift}, {"IsInf", imp_IsInf}, {"Cast", imp_Cast},
      {"CastLike", imp_CastLike}, {"Where", imp_Where}, {"Clip", imp_Clip}, {"Sum", imp_Sum},
      {"Mean", imp_Mean}, {"Max", imp_Max}, {"Min", imp_Min}, {"LeakyRelu", imp_LeakyRelu},
      {"PRelu", imp_PRelu}, {"Elu", imp_Elu}, {"Celu", imp_Celu}, {"Selu", imp_Selu},
      {"ThresholdedRelu", imp_ThresholdedRelu}, {"HardSigmoid", imp_HardSigmoid},
      {"HardSwish", imp_HardSwish}, {"Softsign", imp_Softsign}, {"Shrink", imp_Shrink},
      {"Gelu", imp_Gelu}, {"Mish", imp_Mish}, {"Identity", imp_Identity}, {"Dropout", imp_Dropout},
  }};
  return l;
}

}  // namespace kiln::onnx
