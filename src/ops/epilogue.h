// The fused epilogues of Conv and MatMul, shared by their reference computes, the passes that
// build them and the backends that run them.
//
// A fused op computes Y = epilogue(act(op(...) + B + Z)), where act is a named activation
// (ConvAttrs / MatMulAttrs::activation) applied to the sum before it is rounded to Y's type, and
// `epilogue` an optional one-input program (expr/program.h) applied to the rounded Y, element by
// element, exactly as the Pointwise node it replaces would read it.
#pragma once
#include <string>

#include "expr/program.h"
#include "kiln/types.h"

namespace kiln {

// Named activations. Conv takes "" and "relu"; MatMul also takes the two GELUs:
//   relu       max(x, 0); NaN passes through
//   gelu_erf   0.5 x (1 + erf(x / sqrt(2)))                         (ONNX Gelu, approximate none)
//   gelu_tanh  0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))    (ONNX Gelu, approximate tanh)
bool is_conv_activation(const std::string& act);
bool is_matmul_activation(const std::string& act);
// The activation in double (the references accumulate in double). `act` must be a known name.
double apply_activation(const std::string& act, double x);

// Whether an op carries an epilogue program (an empty Program means none).
inline bool has_epilogue_program(const expr::Program& p) {
  return !p.code.empty() || !p.input_types.empty() || !p.outputs.empty();
}

// Empty when `p` can be the epilogue of an op whose output has type `t`: exactly one input and one
// output, both of type t, instructions well formed (operands are earlier registers). Otherwise
// what is wrong, for an error message.
std::string epilogue_program_problem(const expr::Program& p, DataType t);

// y = p(y), element by element (the reference; p must pass epilogue_program_problem).
void apply_epilogue_program(const expr::Program& p, Tensor& y);

// `act` (one of the names above, not "") as a one-input program on type t whose math runs in
// float32 for float16/bfloat16 (as the fused kernels compute it), for backends that run the
// activation as part of the epilogue program.
expr::Program activation_program(const std::string& act, DataType t);

// then(first(x)): both one-input, one-output programs, first's output type being then's input.
expr::Program compose_programs(const expr::Program& first, const expr::Program& then);

}  // namespace kiln
