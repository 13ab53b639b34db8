// Shape and type inference over nodes and graphs.
#pragma once
#include "ir/graph.h"

namespace kiln {

// Runs the op's infer() on one node (constant inputs' values are known to it).
void infer_node(Node& n);
// Infers every node in order; throws kInvalidModel naming the node on inconsistency.
void infer_graph(Graph& g);

}  // namespace kiln
