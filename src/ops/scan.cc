// Scan: runs its body once per slice of its scan inputs (ops/control_flow.h).
#include "common/error.h"
#include "ops/control_flow.h"
#include "ops/infer.h"
#include "ops/op.h"

namespace kiln {

namespace {

int64_t at_or(const Ints& v, size_t i, int64_t d) { return i < v.size() ? v[i] : d; }

void infer(InferContext& c) {
  Node& n = c.node();
  if (n.subgraphs.size() != 1) c.error("Scan needs one body");
  const ScanAttrs& at = n.a<ScanAttrs>();
  const size_t m = static_cast<size_t>(at.num_scan_inputs);
  const size_t ncap = static_cast<size_t>(at.num_captures);
  if (n.inputs.size() < m + ncap) c.error("Scan has fewer inputs than scan inputs");
  const size_t ns = n.inputs.size() - m - ncap;
  Graph& body = *n.subgraphs[0];
  if (body.inputs.size() != n.inputs.size() || body.outputs.size() < ns ||
      n.outputs.size() != body.outputs.size())
    c.error(cat("the body has ", body.inputs.size(), " inputs and ", body.outputs.size(),
                " outputs, which do not fit the node's ", n.inputs.size(), " inputs and ",
                n.outputs.size(), " outputs"));
  const size_t lead = at.batched ? 1 : 0;
  auto strip = [&](Shape s) {
    if (lead && s.rank_known && s.rank() >= 1) s.dims.erase(s.dims.begin());
    return s;
  };
  Dim batch = Dim::unknown();
  Dim len = Dim::unknown();
  for (size_t i = 0; i < ns + m; ++i) {
    const Value* v = n.inputs[i];
    if (!v) c.error("Scan inputs may not be omitted");
    if (lead && v->shape.rank_known && v->shape.rank() >= 1) batch = v->shape.dims[0];
    Shape s = strip(v->shape);
    if (i >= ns && s.rank_known) {
      int64_t ax = normalize_axis(at_or(at.scan_input_axes, i - ns, 0),
                                  static_cast<int64_t>(s.rank()), "scan_input_axes");
      len = s.dims[ax];
      s.dims.erase(s.dims.begin() + ax);
    } else if (i >= ns) {
      s = Shape::unknown_rank();
    }
    body.inputs[i]->dtype = v->dtype;
    body.inputs[i]->shape = s;
  }
  bind_subgraph_inputs(body, ns + m, n, ns + m, ncap);
  infer_graph(body);
  for (size_t k = 0; k < body.outputs.size(); ++k) {
    const Value* o = body.outputs[k];
    Shape s = o->shape;
    if (k < ns) {
      s = merge_shapes(strip(n.inputs[k]->shape), s);
    } else if (s.rank_known) {
      int64_t ax = normalize_axis(at_or(at.scan_output_axes, k - ns, 0),
                                  static_cast<int64_t>(s.rank()) + 1, "scan_output_axes");
      s.dims.insert(s.dims.begin() + ax, len);
    }
    if (lead && s.rank_known) s.dims.insert(s.dims.begin(), batch);
    c.set_output(k, o->dtype, s);
  }
}

void compute(const ComputeArgs& a) {
  run_control_flow(a, [&](size_t body, std::vector<Tensor> ins) {
    return run_graph_reference(*a.node.subgraphs.at(body), ins);
  });
}

}  // namespace

const OpDef& kiln_op_scan() {
  static const OpDef d{"Scan", make_attrs_of<ScanAttrs>, infer, compute,
                       /*data_dependent_shape=*/true};
  return d;
}

}  // namespace kiln
