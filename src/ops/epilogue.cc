#include "ops/epilogue.h"

#include <cmath>
#include <span>

#include "common/error.h"
#include "expr/eval.h"

namespace kiln {

using expr::Op;

bool is_conv_activation(const std::string& act) { return act.empty() || act == "relu"; }

bool is_matmul_activation(const std::string& act) {
  return act.empty() || act == "relu" || act == "gelu_erf" || act == "gelu_tanh";
}

double apply_activation(const std::string& act, double x) {
  if (act.empty()) return x;
  if (act == "relu") return x > 0 || std::isnan(x) ? x : 0.0;
  if (act == "gelu_erf") return 0.5 * x * (1.0 + std::erf(x * M_SQRT1_2));
  if (act == "gelu_tanh") {
    const double k = std::sqrt(2.0 / M_PI);
    return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
  }
  fail(StatusCode::kInvalidModel, "unknown fused activation '", act, "'");
}

std::string epilogue_program_problem(const expr::Program& p, DataType t) {
  if (p.input_types.size() != 1)
    return cat("the epilogue program has ", p.input_types.size(), " inputs; it must have one");
  if (p.input_types[0] != t)
    return cat("the epilogue program reads ", dtype_name(p.input_types[0]), " but the output is ",
               dtype_name(t));
  if (p.outputs.size() != 1)
    return cat("the epilogue program has ", p.outputs.size(), " outputs; it must have one");
  for (size_t i = 0; i < p.code.size(); ++i) {
    const expr::Instr& in = p.code[i];
    if (in.op >= Op::kCount) return cat("instruction ", i, " has an unknown op");
    if (in.op == Op::kInput && in.a != 0) return cat("instruction ", i, " reads input ", in.a);
    const int ar = expr::op_arity(in.op);
    auto bad = [&](int32_t r) { return r < 0 || static_cast<size_t>(r) >= i; };
    if ((ar >= 1 && bad(in.a)) || (ar >= 2 && bad(in.b)) || (ar >= 3 && bad(in.c)))
      return cat("instruction ", i, " reads a register that is not computed before it");
  }
  const int32_t o = p.outputs[0];
  if (o < 0 || static_cast<size_t>(o) >= p.code.size())
    return "the epilogue program's output register is out of range";
  if (p.code[o].dtype != t)
    return cat("the epilogue program writes ", dtype_name(p.code[o].dtype), " but the output is ",
               dtype_name(t));
  return {};
}

void apply_epilogue_program(const expr::Program& p, Tensor& y) {
  const std::string why = epilogue_program_problem(p, y.dtype());
  KILN_EXPECT(why.empty(), StatusCode::kInvalidModel, why);
  // A copy of the input: evaluate() promises nothing about reading and writing one buffer.
  const Tensor in = y.clone();
  expr::evaluate(p, std::span<const Tensor>(&in, 1), std::span<Tensor>(&y, 1));
}

expr::Program activation_program(const std::string& act, DataType t) {
  KILN_CHECK(!act.empty() && is_matmul_activation(act), "activation_program('", act, "')");
  expr::Program p;
  p.input_types = {t};
  // float16 / bfloat16 compute in float32, as every fused kernel does.
  const DataType m = t == DataType::kFloat16 || t == DataType::kBFloat16 ? DataType::kFloat : t;
  int32_t x = p.input(0);
  if (m != t) x = p.cast(x, m);
  int32_t y;
  if (act == "relu") {
    y = p.unary(Op::kRelu, x);
  } else {
    int32_t inner;
    if (act == "gelu_tanh") {
      const int32_t x3 = p.binary(Op::kMul, p.binary(Op::kMul, x, x), x);
      const int32_t s = p.binary(Op::kAdd, x, p.binary(Op::kMul, p.constant(m, 0.044715), x3));
      inner = p.unary(Op::kTanh, p.binary(Op::kMul, p.constant(m, std::sqrt(2.0 / M_PI)), s));
    } else {
      inner = p.unary(Op::kErf, p.binary(Op::kMul, x, p.constant(m, M_SQRT1_2)));
    }
    const int32_t half = p.binary(Op::kMul, p.constant(m, 0.5), x);
    y = p.binary(Op::kMul, half, p.binary(Op::kAdd, p.constant(m, 1), inner));
  }
  if (m != t) y = p.cast(y, t);
  p.outputs = {y};
  return p;
}

expr::Program compose_programs(const expr::Program& first, const expr::Program& then) {
  KILN_CHECK(first.input_types.size() == 1 && first.outputs.size() == 1 &&
                 then.input_types.size() == 1 && then.outputs.size() == 1,
             "compose_programs takes one-input, one-output programs");
  const int32_t mid = first.outputs[0];
  KILN_CHECK(first.code[mid].dtype == then.input_types[0], "compose_programs: ",
             dtype_name(first.code[mid].dtype), " output feeds a ",
             dtype_name(then.input_types[0]), " input");
  expr::Program p = first;
  std::vector<int32_t> map(then.code.size(), -1);
  for (size_t i = 0; i < then.code.size(); ++i) {
    expr::Instr in = then.code[i];
    if (in.op == Op::kInput) {
      map[i] = mid;  // then's input is first's output register
      continue;
    }
    const int ar = expr::op_arity(in.op);
    if (ar >= 1) in.a = map[in.a];
    if (ar >= 2) in.b = map[in.b];
    if (ar >= 3) in.c = map[in.c];
    map[i] = static_cast<int32_t>(p.code.size());
    p.code.push_back(in);
  }
  p.outputs = {map[then.outputs[0]]};
  return p;
}

}  // namespace kiln
