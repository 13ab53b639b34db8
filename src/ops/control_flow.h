// Control flow: If, Loop and Scan. Each node holds its sub-graphs (Node::subgraphs) and reads
// nothing of the graph around it implicitly: the importer turns every outer value a sub-graph
// reads into a captured input, one node input and one sub-graph input each (an outer constant is
// copied into the sub-graph instead).
//
//   If    inputs: cond (bool, one element), captured values. subgraphs: then, else; both take the
//         captured values as their inputs, in the node's order, and have one output per node
//         output.
//   Loop  inputs: M (int64 trip count, may be absent), cond (bool, may be absent), num_carried
//         initial values, captured values. subgraphs: body, whose inputs are the iteration
//         number (int64 scalar), the condition (bool scalar), the carried values and the captured
//         values, and whose outputs are the next condition, the carried values and the scan
//         outputs. Node outputs: the final carried values, then each scan output's per-iteration
//         values stacked along a new axis 0.
//   Scan  inputs: the initial states, num_scan_inputs scan inputs, num_captures captured values.
//         subgraphs: body, with inputs the states, one slice of each scan input (the scan axis
//         removed) and the captured values; outputs the next states and one slice of each scan
//         output. `batched` is Scan-8: every state and scan input has a leading batch axis, the
//         scan axis is 1, and the body runs per batch row.
//
// The output shapes of all three depend on data (the branch taken, the trip count), so the ops
// are data-dependent: a plan holding one runs step by step, and on a GPU never in one CUDA graph.
// The iteration logic is written once, over host tensors, with the sub-graph runs left to a
// BodyRunner: the reference runs sub-graphs node by node with the reference computes; the
// runtime runs each sub-graph's own plan steps (runtime/control_flow.cc).
#pragma once
#include <functional>
#include <vector>

#include "ir/attrs.h"
#include "ir/graph.h"

namespace kiln {

struct ComputeArgs;

struct IfAttrs : AttrsOf<IfAttrs> {
  template <class V> void reflect(V&) {}
};

struct LoopAttrs : AttrsOf<LoopAttrs> {
  Int num_carried = 0;
  template <class V> void reflect(V& v) { v("num_carried", num_carried); }
};

struct ScanAttrs : AttrsOf<ScanAttrs> {
  Int num_scan_inputs = 0;
  Int num_captures = 0;
  Ints scan_input_axes;         // per scan input; empty: all 0
  Ints scan_input_directions;   // 0 forward, 1 reverse; empty: all forward
  Ints scan_output_axes;        // per scan output; empty: all 0
  Ints scan_output_directions;  // 1: the first iteration's slice goes last
  bool batched = false;         // Scan-8 (see above)
  template <class V>
  void reflect(V& v) {
    v("num_scan_inputs", num_scan_inputs);
    v("num_captures", num_captures);
    v("scan_input_axes", scan_input_axes);
    v("scan_input_directions", scan_input_directions);
    v("scan_output_axes", scan_output_axes);
    v("scan_output_directions", scan_output_directions);
    v("batched", batched);
  }
};

// Runs sub-graph `body` (an index into Node::subgraphs) on host tensors, one per sub-graph input,
// and returns one tensor per sub-graph output.
using BodyRunner = std::function<std::vector<Tensor>(size_t body, std::vector<Tensor> inputs)>;

// If, Loop or Scan (by the node's op) over host tensors: outputs arrive undefined and are
// allocated here.
void run_control_flow(const ComputeArgs& args, const BodyRunner& run);

// The reference run of a graph: each node's reference compute in order (nested control flow
// included). The graph is copied first: inference writes the run's shapes into it.
std::vector<Tensor> run_graph_reference(const Graph& g, const std::vector<Tensor>& inputs);

// Shape inference helpers shared by the three ops.
// Sets sub-graph input i (from `first` on) to the dtypes and shapes of node inputs
// [from, from + count), then infers the sub-graph.
void bind_subgraph_inputs(Graph& sub, size_t first, const Node& n, size_t from, size_t count);
// The shape both a and b fit: equal dims stay, differing dims become unknown, differing ranks
// an unknown rank.
Shape merge_shapes(const Shape& a, const Shape& b);

// Host tensor helpers: the slice at index i of axis `axis` (the axis removed), and the stacking
// of equally shaped parts along a new axis `axis` of the result.
Tensor slice_axis(const Tensor& t, int64_t axis, int64_t i);
Tensor stack_axis(const std::vector<Tensor>& parts, int64_t axis, DataType dtype,
                  const Dims& part_dims);

}  // namespace kiln
