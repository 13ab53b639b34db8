#include "ops/infer.h"

#include "common/error.h"
#include "ops/op.h"

namespace kiln {

void infer_node(Node& n) {
  InferContext ctx(n);
  try {
    n.def->infer(ctx);
  } catch (const Error& e) {
    if (!e.node().empty()) throw;
    throw Error(e.code(), e.message(), n.name + " (" + std::string(n.op()) + ")");
  }
}

void infer_graph(Graph& g) {
  for (auto& n : g.nodes()) infer_node(*n);
}

}  // namespace kiln
