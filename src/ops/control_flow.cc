// The iteration logic of If, Loop and Scan over host tensors (see control_flow.h), and the
// reference run of a sub-graph.
#include "ops/control_flow.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "ops/infer.h"
#include "ops/op.h"

namespace kiln {

namespace {

bool truth(const Tensor& t, const char* what) {
  KILN_EXPECT(t.defined() && t.numel() == 1, StatusCode::kInvalidArgument, what,
              " must hold one element, got ", t.defined() ? dims_to_string(t.dims()) : "none");
  return t.get_f64(0) != 0;
}

// Dims of a sub-graph output when the graph knows them (for a stack of zero parts).
Dims known_dims(const Value* v) {
  if (v->shape.fully_known()) return v->shape.concrete();
  return {};
}

void run_if(const ComputeArgs& a, const BodyRunner& run) {
  const bool c = truth(a.in(0), "If's condition");
  std::vector<Tensor> ins(a.inputs.begin() + 1, a.inputs.end());
  std::vector<Tensor> outs = run(c ? 0 : 1, std::move(ins));
  KILN_EXPECT(outs.size() == a.outputs.size(), StatusCode::kInvalidModel, "If's ",
              c ? "then" : "else", " branch gives ", outs.size(), " outputs for ", a.outputs.size());
  for (size_t k = 0; k < outs.size(); ++k) a.out(k) = std::move(outs[k]);
}

void run_loop(const ComputeArgs& a, const BodyRunner& run) {
  const Node& n = a.node;
  const size_t nc = static_cast<size_t>(n.a<LoopAttrs>().num_carried);
  const Graph& body = *n.subgraphs.at(0);
  const size_t n_scan = body.outputs.size() - 1 - nc;
  int64_t trip = INT64_MAX;
  if (a.has(0)) {
    KILN_EXPECT(a.in(0).numel() == 1, StatusCode::kInvalidArgument,
                "Loop's trip count must hold one element");
    trip = a.in(0).get_i64(0);
  }
  bool go = a.has(1) ? truth(a.in(1), "Loop's condition") : true;
  std::vector<Tensor> carried(a.inputs.begin() + 2, a.inputs.begin() + 2 + nc);
  std::vector<Tensor> captured(a.inputs.begin() + 2 + nc, a.inputs.end());
  std::vector<std::vector<Tensor>> scans(n_scan);
  for (int64_t i = 0; i < trip && go; ++i) {
    std::vector<Tensor> ins;
    ins.push_back(Tensor::from_vector(DataType::kInt64, {}, std::vector<int64_t>{i}));
    Tensor cond(DataType::kBool, {});
    cond.set_f64(0, 1);
    ins.push_back(cond);
    for (const Tensor& t : carried) ins.push_back(t);
    for (const Tensor& t : captured) ins.push_back(t);
    std::vector<Tensor> outs = run(0, std::move(ins));
    KILN_CHECK(outs.size() == 1 + nc + n_scan, "Loop body gave ", outs.size(), " outputs");
    go = truth(outs[0], "Loop's body condition");
    for (size_t k = 0; k < nc; ++k) carried[k] = std::move(outs[1 + k]);
    for (size_t k = 0; k < n_scan; ++k) {
      if (!scans[k].empty())
        KILN_EXPECT(outs[1 + nc + k].dims() == scans[k][0].dims(), StatusCode::kInvalidArgument,
                    "Loop scan output ", k, " changes shape from ",
                    dims_to_string(scans[k][0].dims()), " to ",
                    dims_to_string(outs[1 + nc + k].dims()), " between iterations");
      scans[k].push_back(std::move(outs[1 + nc + k]));
    }
  }
  for (size_t k = 0; k < nc; ++k) a.out(k) = carried[k];
  for (size_t k = 0; k < n_scan; ++k) {
    const Value* bo = body.outputs[1 + nc + k];
    Dims part = scans[k].empty() ? known_dims(bo) : scans[k][0].dims();
    a.out(nc + k) = stack_axis(scans[k], 0, bo->dtype, part);
  }
}

// One Scan-9 run over unbatched tensors: `states` and `scan_ins` as the node gives them.
std::vector<Tensor> scan_once(const Node& n, std::vector<Tensor> states,
                              const std::vector<Tensor>& scan_ins,
                              const std::vector<Tensor>& captured, const BodyRunner& run) {
  const ScanAttrs& at = n.a<ScanAttrs>();
  const Graph& body = *n.subgraphs.at(0);
  const size_t ns = states.size(), m = scan_ins.size();
  const size_t n_out_scan = body.outputs.size() - ns;
  auto at_or = [](const Ints& v, size_t i, int64_t d) { return i < v.size() ? v[i] : d; };
  std::vector<int64_t> axes(m);
  int64_t len = -1;
  for (size_t j = 0; j < m; ++j) {
    axes[j] = normalize_axis(at_or(at.scan_input_axes, j, 0),
                             static_cast<int64_t>(scan_ins[j].rank()), "scan_input_axes");
    int64_t l = scan_ins[j].dim(axes[j]);
    KILN_EXPECT(len < 0 || l == len, StatusCode::kInvalidArgument, "Scan input ", j,
                " has sequence length ", l, " where another has ", len);
    len = l;
  }
  if (len < 0) len = 0;
  std::vector<std::vector<Tensor>> scans(n_out_scan);
  for (int64_t t = 0; t < len; ++t) {
    std::vector<Tensor> ins = states;
    for (size_t j = 0; j < m; ++j) {
      int64_t pos = at_or(at.scan_input_directions, j, 0) ? len - 1 - t : t;
      ins.push_back(slice_axis(scan_ins[j], axes[j], pos));
    }
    for (const Tensor& c : captured) ins.push_back(c);
    std::vector<Tensor> outs = run(0, std::move(ins));
    KILN_CHECK(outs.size() == body.outputs.size(), "Scan body gave ", outs.size(), " outputs");
    for (size_t k = 0; k < ns; ++k) states[k] = std::move(outs[k]);
    for (size_t k = 0; k < n_out_scan; ++k) {
      if (!scans[k].empty())
        KILN_EXPECT(outs[ns + k].dims() == scans[k][0].dims(), StatusCode::kInvalidArgument,
                    "Scan output ", k, " changes shape between iterations");
      scans[k].push_back(std::move(outs[ns + k]));
    }
  }
  std::vector<Tensor> result = std::move(states);
  for (size_t k = 0; k < n_out_scan; ++k) {
    const Value* bo = body.outputs[ns + k];
    Dims part = scans[k].empty() ? known_dims(bo) : scans[k][0].dims();
    if (at_or(at.scan_output_directions, k, 0)) std::reverse(scans[k].begin(), scans[k].end());
    int64_t axis = normalize_axis(at_or(at.scan_output_axes, k, 0),
                                  static_cast<int64_t>(part.size()) + 1, "scan_output_axes");
    result.push_back(stack_axis(scans[k], axis, bo->dtype, part));
  }
  return result;
}

void run_scan(const ComputeArgs& a, const BodyRunner& run) {
  const Node& n = a.node;
  const ScanAttrs& at = n.a<ScanAttrs>();
  const size_t m = static_cast<size_t>(at.num_scan_inputs);
  const size_t nc = static_cast<size_t>(at.num_captures);
  KILN_CHECK(a.inputs.size() >= m + nc, "Scan has too few inputs");
  const size_t ns = a.inputs.size() - m - nc;
  std::vector<Tensor> states(a.inputs.begin(), a.inputs.begin() + ns);
  std::vector<Tensor> scan_ins(a.inputs.begin() + ns, a.inputs.begin() + ns + m);
  std::vector<Tensor> captured(a.inputs.begin() + ns + m, a.inputs.end());
  if (!at.batched) {
    std::vector<Tensor> r = scan_once(n, std::move(states), scan_ins, captured, run);
    for (size_t k = 0; k < r.size(); ++k) a.out(k) = std::move(r[k]);
    return;
  }
  // Scan-8: one run per batch row, the results stacked back along axis 0.
  int64_t batch = -1;
  for (const Tensor& t : a.inputs.subspan(0, ns + m)) {
    KILN_EXPECT(t.rank() >= 1, StatusCode::kInvalidArgument, "Scan-8 inputs have a batch axis");
    KILN_EXPECT(batch < 0 || t.dim(0) == batch, StatusCode::kInvalidArgument,
                "Scan-8 inputs disagree on the batch size");
    batch = t.dim(0);
  }
  std::vector<std::vector<Tensor>> rows(a.outputs.size());
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Tensor> s, x;
    for (const Tensor& t : states) s.push_back(slice_axis(t, 0, b));
    for (const Tensor& t : scan_ins) x.push_back(slice_axis(t, 0, b));
    std::vector<Tensor> r = scan_once(n, std::move(s), x, captured, run);
    for (size_t k = 0; k < r.size(); ++k) rows[k].push_back(std::move(r[k]));
  }
  for (size_t k = 0; k < rows.size(); ++k) {
    const Value* bo = n.subgraphs[0]->outputs[k];
    Dims part = rows[k].empty() ? known_dims(bo) : rows[k][0].dims();
    a.out(k) = stack_axis(rows[k], 0, bo->dtype, part);
  }
}

}  // namespace

void run_control_flow(const ComputeArgs& args, const BodyRunner& run) {
  std::string_view op = args.node.op();
  if (op == "If") return run_if(args, run);
  if (op == "Loop") return run_loop(args, run);
  if (op == "Scan") return run_scan(args, run);
  fail(StatusCode::kInternal, "run_control_flow: ", args.node.label(), " is not control flow");
}

std::vector<Tensor> run_graph_reference(const Graph& graph, const std::vector<Tensor>& inputs) {
  std::unique_ptr<Graph> g = graph.clone();
  KILN_CHECK(inputs.size() == g->inputs.size(), "sub-graph run with ", inputs.size(),
             " inputs for ", g->inputs.size());
  std::unordered_map<const Value*, Tensor> slots;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Value* v = g->inputs[i];
    v->shape = Shape::from(inputs[i].dims());
    slots[v] = inputs[i];
  }
  for (auto& v : g->values())
    if (v->is_constant()) slots[v.get()] = v->data;
  for (auto& np : g->nodes()) {
    Node& n = *np;
    std::vector<Tensor> ins(n.inputs.size());
    std::vector<const Tensor*> known(n.inputs.size(), nullptr);
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (!n.inputs[i]) continue;
      ins[i] = slots.at(n.inputs[i]);
      known[i] = &ins[i];
    }
    InferContext ictx(n, known);
    std::vector<Tensor> outs(n.outputs.size());
    try {
      n.def->infer(ictx);
      for (size_t k = 0; k < n.outputs.size(); ++k) {
        Value* o = n.outputs[k];
        if (!n.def->data_dependent_shape && o->shape.fully_known())
          outs[k] = Tensor(o->dtype, o->shape.concrete());
      }
      n.def->compute(ComputeArgs{n, ins, outs});
    } catch (const Error& e) {
      if (!e.node().empty()) throw;
      throw Error(e.code(), e.message(), n.label());
    }
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      KILN_CHECK(outs[k].defined(), n.label(), " did not produce output ", k);
      n.outputs[k]->shape = Shape::from(outs[k].dims());
      slots[n.outputs[k]] = std::move(outs[k]);
    }
  }
  std::vector<Tensor> out;
  for (Value* v : g->outputs) out.push_back(slots.at(v));
  return out;
}

void bind_subgraph_inputs(Graph& sub, size_t first, const Node& n, size_t from, size_t count) {
  KILN_EXPECT(first + count <= sub.inputs.size() && from + count <= n.inputs.size(),
              StatusCode::kInvalidModel, n.label(), ": its sub-graph has ", sub.inputs.size(),
              " inputs, which do not match the node's ", n.inputs.size());
  for (size_t i = 0; i < count; ++i) {
    Value* s = sub.inputs[first + i];
    const Value* v = n.inputs[from + i];
    if (!v) continue;
    s->dtype = v->dtype;
    s->shape = v->shape;
  }
}

Shape merge_shapes(const Shape& a, const Shape& b) {
  if (!a.rank_known || !b.rank_known || a.rank() != b.rank()) return Shape::unknown_rank();
  Shape s = a;
  for (size_t i = 0; i < s.rank(); ++i)
    if (!(a.dims[i] == b.dims[i])) s.dims[i] = Dim::unknown();
  return s;
}

Tensor slice_axis(const Tensor& t, int64_t axis, int64_t i) {
  Dims d = t.dims();
  KILN_CHECK(axis >= 0 && axis < static_cast<int64_t>(d.size()) && i >= 0 && i < d[axis]);
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= d[k];
  for (size_t k = axis + 1; k < d.size(); ++k) inner *= d[k];
  const int64_t n = d[axis];
  Dims od = d;
  od.erase(od.begin() + axis);
  Tensor out(t.dtype(), od);
  const size_t es = dtype_size(t.dtype());
  const auto* src = static_cast<const char*>(t.raw());
  auto* dst = static_cast<char*>(out.raw());
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + o * inner * es, src + ((o * n + i) * inner) * es, inner * es);
  return out;
}

Tensor stack_axis(const std::vector<Tensor>& parts, int64_t axis, DataType dtype,
                  const Dims& part_dims) {
  Dims od = part_dims;
  KILN_CHECK(axis >= 0 && axis <= static_cast<int64_t>(od.size()));
  const int64_t n = static_cast<int64_t>(parts.size());
  od.insert(od.begin() + axis, n);
  Tensor out(dtype, od);
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= part_dims[k];
  for (size_t k = axis; k < part_dims.size(); ++k) inner *= part_dims[k];
  const size_t es = dtype_size(dtype);
  auto* dst = static_cast<char*>(out.raw());
  for (int64_t p = 0; p < n; ++p) {
    KILN_CHECK(parts[p].dims() == part_dims && parts[p].dtype() == dtype, "stacking parts of ",
               "different shapes or types");
    const auto* src = static_cast<const char*>(parts[p].raw());
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + ((o * n + p) * inner) * es, src + o * inner * es, inner * es);
  }
  return out;
}

}  // namespace kiln
