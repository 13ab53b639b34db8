// ONNX If (opsets 1, 11, 13, 16), Loop (1, 11, 13, 16) and Scan (8, 9, 11, 16), for tensors:
// sequence- and optional-typed branches and bodies (If-13/16, Loop-13/16) are deliberately
// unsupported. Sub-graphs are imported with the model's opsets; the outer values they read
// become captured inputs (ops/control_flow.h).
#include "ops/control_flow.h"

#include "onnx/importer.h"
#include "ops/infer.h"

namespace kiln::onnx {

namespace {

// Adds the control-flow node with `n_out` outputs and binds the ONNX outputs to them.
void add_node(ImportContext& c, const std::string& op, std::vector<Value*> ins,
              std::unique_ptr<Attrs> attrs, std::vector<Subgraph*> subs, size_t n_out) {
  if (c.num_outputs() > n_out)
    c.invalid(cat(op, " names ", c.num_outputs(), " outputs, but its sub-graph gives ", n_out));
  Graph& g = c.graph();
  const NodeProto& p = c.proto();
  std::string base = !p.name.empty() ? p.name : p.output.empty() ? op : p.output[0];
  std::vector<Value*> outs;
  for (size_t i = 0; i < n_out; ++i) outs.push_back(g.add_value(base + "/" + op));
  Node* n = g.add_node(op, std::move(ins), outs, std::move(attrs), g.unique_name(base + "/" + op));
  for (Subgraph* s : subs) n->subgraphs.push_back(std::move(s->graph));
  infer_node(*n);
  for (size_t i = 0; i < c.num_outputs(); ++i) c.set_output(i, outs[i]);
}

void check_tensor_io(ImportContext& c) {
  for (size_t i = 0; i < c.num_inputs(); ++i)
    if (c.has_input(i) && c.input(i)->dtype == DataType::kUndefined)
      c.deliberately_unsupported(cat("input ", i, " is not a tensor (sequence or optional)"));
  c.check_input_types();
}

void imp_If(ImportContext& c) {
  check_tensor_io(c);
  Value* cond = c.input(0);
  if (cond->dtype != DataType::kBool)
    c.invalid(cat("the condition is ", dtype_name(cond->dtype), ", not bool"));
  Subgraph t = c.import_subgraph("then_branch");
  Subgraph e = c.import_subgraph("else_branch");
  if (t.graph->inputs.size() != t.captured.size() || e.graph->inputs.size() != e.captured.size())
    c.invalid("If branches take no inputs");
  if (t.graph->outputs.size() != e.graph->outputs.size())
    c.invalid(cat("the then branch has ", t.graph->outputs.size(), " outputs and the else branch ",
                  e.graph->outputs.size()));
  std::vector<Value*> ins = {cond};
  for (Value* v : unify_captures({&t, &e})) ins.push_back(v);
  const size_t n_out = t.graph->outputs.size();
  add_node(c, "If", std::move(ins), std::make_unique<IfAttrs>(), {&t, &e}, n_out);
}

void imp_Loop(ImportContext& c) {
  check_tensor_io(c);
  if (c.num_inputs() < 2) c.invalid("Loop has the inputs M, cond and the carried values");
  const size_t nc = c.num_inputs() - 2;
  std::vector<std::pair<DataType, Shape>> types = {{DataType::kInt64, Shape(std::vector<Dim>{})},
                                                   {DataType::kBool, Shape(std::vector<Dim>{})}};
  for (size_t i = 0; i < nc; ++i) types.push_back({c.input(2 + i)->dtype, c.input(2 + i)->shape});
  Subgraph b = c.import_subgraph("body", types);
  if (b.graph->inputs.size() - b.captured.size() != 2 + nc)
    c.invalid(cat("the body takes ", b.graph->inputs.size() - b.captured.size(),
                  " inputs; with ", nc, " carried values it should take ", 2 + nc));
  if (b.graph->outputs.size() < 1 + nc)
    c.invalid(cat("the body gives ", b.graph->outputs.size(), " outputs for ", nc,
                  " carried values and the condition"));
  if (Value* m = c.input_or_null(0); m && m->dtype != DataType::kInt64)
    c.invalid("the trip count M is not int64");
  if (Value* k = c.input_or_null(1); k && k->dtype != DataType::kBool)
    c.invalid("the condition is not bool");
  std::vector<Value*> ins = {c.input_or_null(0), c.input_or_null(1)};
  for (size_t i = 0; i < nc; ++i) ins.push_back(c.input(2 + i));
  for (Value* v : unify_captures({&b})) ins.push_back(v);
  auto a = std::make_unique<LoopAttrs>();
  a->num_carried = static_cast<int64_t>(nc);
  const size_t n_out = b.graph->outputs.size() - 1;
  add_node(c, "Loop", std::move(ins), std::move(a), {&b}, n_out);
}

void import_scan(ImportContext& c, bool batched) {
  check_tensor_io(c);
  const size_t first = batched ? 1 : 0;   // Scan-8 starts with sequence_lens
  if (batched && c.has_input(0))
    c.unsupported("Scan-8 with sequence_lens (rows of different lengths) is not supported");
  auto a = std::make_unique<ScanAttrs>();
  a->batched = batched;
  a->num_scan_inputs = c.attr_int("num_scan_inputs", -1);
  const int64_t total = static_cast<int64_t>(c.num_inputs() - first);
  if (a->num_scan_inputs < 1 || a->num_scan_inputs > total)
    c.invalid(cat("num_scan_inputs ", a->num_scan_inputs, " does not fit ", total, " inputs"));
  const size_t m = static_cast<size_t>(a->num_scan_inputs);
  auto check_len = [&](const Ints& v, size_t n, const char* what) {
    if (!v.empty() && v.size() != n)
      c.invalid(cat(what, " has ", v.size(), " entries for ", n));
    return v;
  };
  if (batched) {
    a->scan_input_directions = check_len(c.attr_ints("directions"), m, "directions");
  } else {
    a->scan_input_axes = check_len(c.attr_ints("scan_input_axes"), m, "scan_input_axes");
    a->scan_input_directions =
        check_len(c.attr_ints("scan_input_directions"), m, "scan_input_directions");
    a->scan_output_axes = c.attr_ints("scan_output_axes");
    a->scan_output_directions = c.attr_ints("scan_output_directions");
  }
  for (int64_t d : a->scan_input_directions)
    if (d != 0 && d != 1) c.invalid("scan directions are 0 or 1");
  for (int64_t d : a->scan_output_directions)
    if (d != 0 && d != 1) c.invalid("scan directions are 0 or 1");
  std::vector<std::pair<DataType, Shape>> types;   // the scan slices' shapes: inference's
  for (size_t i = first; i < c.num_inputs(); ++i)
    types.push_back({c.input(i)->dtype, !batched && i - first < static_cast<size_t>(total) - m
                                            ? c.input(i)->shape
                                            : Shape::unknown_rank()});
  Subgraph b = c.import_subgraph("body", types);
  if (b.graph->inputs.size() - b.captured.size() != static_cast<size_t>(total))
    c.invalid(cat("the body takes ", b.graph->inputs.size() - b.captured.size(), " inputs for ",
                  total, " states and scan inputs"));
  const size_t ns = static_cast<size_t>(total) - m;
  if (b.graph->outputs.size() < ns)
    c.invalid(cat("the body gives ", b.graph->outputs.size(), " outputs for ", ns, " states"));
  const size_t n_scan_out = b.graph->outputs.size() - ns;
  check_len(a->scan_output_axes, n_scan_out, "scan_output_axes");
  check_len(a->scan_output_directions, n_scan_out, "scan_output_directions");
  std::vector<Value*> ins;
  for (size_t i = first; i < c.num_inputs(); ++i) ins.push_back(c.input(i));
  std::vector<Value*> caps = unify_captures({&b});
  a->num_captures = static_cast<int64_t>(caps.size());
  for (Value* v : caps) ins.push_back(v);
  const size_t n_out = b.graph->outputs.size();
  add_node(c, "Scan", std::move(ins), std::move(a), {&b}, n_out);
}

void imp_Scan8(ImportContext& c) { import_scan(c, true); }
void imp_Scan(ImportContext& c) { import_scan(c, false); }

}  // namespace

const ImporterList& kiln_import_control_flow() {
  static const ImporterList l{{
      {"If", imp_If, 1},
      {"Loop", imp_Loop, 1},
      {"Scan", imp_Scan8, 8, 8},
      {"Scan", imp_Scan, 9},
  }};
  return l;
}

}  // namespace kiln::onnx
