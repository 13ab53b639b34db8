// Constant folding of one node with the reference compute, shared by the fold_constants pass and
// the importers (which fold small shape subgraphs while importing).
#pragma once
#include <cstddef>

#include "ir/graph.h"

namespace kiln {

// When every present input of n is constant (or known in shape, for ops that read only dims) and no output exceeds max_bytes, computes n with the reference compute and makes its
// outputs constant values. Returns true when it did; the caller then removes n from the graph.
// Errors of the compute (e.g. an out-of-range constant index) propagate, naming the node.
bool fold_node(Node& n, size_t max_bytes);

}  // namespace kiln
