// Einsum: numpy-style Einstein summation over any number of inputs of one dtype, with ellipsis
// broadcasting, repeated labels within a term (diagonals) and the implicit output form (labels
// that occur once, in alphabetical order, after the ellipsis dims). The reference computes it
// directly; a pass may later rewrite common forms into MatMul/Transpose/Reduce for speed.
#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

struct EinsumAttrs : AttrsOf<EinsumAttrs> {
  std::string equation;
  template <class V>
  void reflect(V& v) {
    v("equation", equation);
  }
};

}  // namespace kiln
