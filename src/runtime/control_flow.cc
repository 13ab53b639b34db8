// Control-flow steps in an execution context. The iteration logic is the ops' own
// (ops/control_flow.h, over host tensors); here each sub-graph runs through a context of the
// engine built for it (its own steps and tactics, on the plan's device), made at the step's
// first run and kept for later runs and iterations.
//
// On a device the step first waits for the context's stream and copies its inputs to the host:
// If reads its condition there, Loop its trip count and condition, and every iteration's values
// pass through the host between sub-graph runs (each run uploads its inputs and downloads its
// outputs on the sub-graph context's stream). The outputs are then written back to device
// memory of this run. Such a step synchronises, so a plan holding one is never captured in a
// CUDA graph: the ops are data-dependent (their output shapes depend on the branch or the trip
// count), which makes the plan dynamic, and dynamic plans run step by step.
#include "runtime/control_flow.h"

#include "common/error.h"
#include "ops/control_flow.h"
#include "runtime/context_impl.h"

namespace kiln {

namespace {

class ControlFlowKernel : public Kernel {
 public:
  void run(const ComputeArgs& args) override { refuse(args.node); }
  void enqueue(const LaunchArgs& args) override { refuse(args.node); }
  bool capturable() const override { return false; }

 private:
  [[noreturn]] static void refuse(const Node& n) {
    fail(StatusCode::kInternal, n.label(), ": control-flow steps are run by the execution context");
  }
};

}  // namespace

Status ControlFlowTactic::supports(const Node& node) const {
  if (node.subgraphs.empty())
    return Status(StatusCode::kUnsupported, "not a control-flow node (no sub-graphs)");
  return Status::ok();
}

std::unique_ptr<Kernel> ControlFlowTactic::instantiate(const Node&, std::string_view) const {
  return std::make_unique<ControlFlowKernel>();
}

std::vector<Tensor> ContextImpl::run_body(size_t s, size_t k, std::vector<Tensor> inputs) {
  KILN_CHECK(s < bodies.size() && k < bodies[s].size() && s < engine->bodies.size() &&
                 k < engine->bodies[s].size(),
             "step ", s, " has no sub-graph ", k);
  std::unique_ptr<ContextImpl>& c = bodies[s][k];
  if (!c) c = make_context_impl(engine->bodies[s][k]);
  c->profiling = false;
  const Graph& g = *c->graph;
  KILN_CHECK(inputs.size() == g.inputs.size(), "sub-graph run with ", inputs.size(),
             " inputs for ", g.inputs.size());
  std::map<std::string, Tensor> in, out;
  for (size_t i = 0; i < inputs.size(); ++i) in[g.inputs[i]->name] = std::move(inputs[i]);
  if (c->dev)
    c->run_device(in, out);
  else
    c->run_host(in, out);
  std::vector<Tensor> r;
  for (const Value* v : g.outputs) r.push_back(out.at(v->name));
  return r;
}

void ContextImpl::run_control_flow_step(size_t s, const ComputeArgs& args) {
  run_control_flow(args, [&](size_t k, std::vector<Tensor> ins) {
    return run_body(s, k, std::move(ins));
  });
}

void ContextImpl::launch_control_flow(size_t s, void* strm, std::vector<void*>& ptrs) {
  const Node& n = *graph->nodes()[s];
  // The inputs on the host: everything enqueued before this step has to finish first.
  dev->synchronize(strm);
  std::vector<Tensor> host(n.inputs.size());
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const Value* v = n.inputs[i];
    if (!v) continue;
    if (v->is_constant()) {
      host[i] = v->data;
      continue;
    }
    size_t vi = index.at(v);
    host[i] = Tensor(v->dtype, shape_plan.dims[vi]);
    if (host[i].nbytes()) dev->copy_to_host(host[i].raw(), ptrs[vi], host[i].nbytes(), strm);
  }
  dev->synchronize(strm);
  std::vector<Tensor> outs(n.outputs.size());
  run_control_flow_step(s, ComputeArgs{n, host, outs});
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    KILN_CHECK(outs[k].defined(), n.label(), " did not produce output ", k);
    size_t vi = index.at(n.outputs[k]);
    void* p = outs[k].nbytes() ? dev->alloc(outs[k].nbytes()) : nullptr;
    if (p) {
      run_allocations.push_back(p);
      dev->copy_to_device(p, outs[k].raw(), outs[k].nbytes(), strm);
    }
    ptrs[vi] = p;
    shape_plan.dims[vi] = outs[k].dims();
  }
  // The host tensors die here: the uploads must be done with them.
  dev->synchronize(strm);
}

}  // namespace kiln
