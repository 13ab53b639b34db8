// CPU interpretation of a Pointwise program over tensors, with numpy broadcasting.
#pragma once
#include <span>

#include "expr/program.h"

namespace kiln::expr {

// outputs[k] must be allocated with the broadcast shape and program.code[outputs[k]].dtype.
void evaluate(const Program& program, std::span<const Tensor> inputs, std::span<Tensor> outputs);

}  // namespace kiln::expr
