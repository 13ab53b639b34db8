// Einsum: numpy-style Einstein summation over any number of inputs of one dtype, with ellipsis
// broadcasting, repeated labels within a term (diagonals) and the implicit output form (labels
// that occur once, in alphabetical order, after the ellipsis dims). The reference computes it
// directly. The ONNX importer lowers the common forms (one or two operands, no diagonals, known
// shapes) to Reduce/Transpose/Reshape/MatMul instead, and keeps this op for the rest.
#pragma once
#include <string>
#include <vector>

#include "ir/attrs.h"

namespace kiln {

struct EinsumAttrs : AttrsOf<EinsumAttrs> {
  std::string equation;
  template <class V>
  void reflect(V& v) {
    v("equation", equation);
  }
};

// A parsed equation. Labels are 0..51 (a-z, A-Z); kEinsumEllipsis stands for "...". The output
// is explicit, or the implicit one (ellipsis, then labels occurring once, alphabetically).
constexpr int kEinsumEllipsis = -1;
struct EinsumEquation {
  std::vector<std::vector<int>> inputs;
  std::vector<int> output;
};
// Throws kInvalidModel naming the problem (bad character, term count, unknown output label).
EinsumEquation parse_einsum(const std::string& equation, size_t n_inputs);

}  // namespace kiln
