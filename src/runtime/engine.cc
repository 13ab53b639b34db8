#include <chrono>
#include <set>
#include <unordered_map>

#include "common/api_guard.h"
#include "ops/op.h"
#include "runtime/engine_impl.h"

namespace kiln {

std::vector<TensorDesc> describe_values(const std::vector<Value*>& values) {
  std::vector<TensorDesc> out;
  for (const Value* v : values) {
    TensorDesc d;
    d.name = v->name;
    d.dtype = v->dtype;
    if (v->shape.rank_known)
      for (const Dim& dim : v->shape.dims) {
        d.dims.push_back(dim.known() ? dim.value : -1);
        d.dim_names.push_back(dim.known() ? "" : (dim.symbol.empty() ? "?" : dim.symbol));
      }
    out.push_back(std::move(d));
  }
  return out;
}

Engine::~Engine() = default;

Status Engine::create(std::shared_ptr<const Plan> plan, std::shared_ptr<Engine>& out) {
  return guard([&] {
    KILN_EXPECT(plan != nullptr, StatusCode::kInvalidArgument, "Engine::create: plan is null");
    const PlanData& pd = plan->data();
    const Backend* b = find_backend(pd.info.device);
    KILN_EXPECT(b != nullptr, StatusCode::kIncompatible, "the plan targets device '",
                pd.info.device, "', which this build of kiln or this machine does not provide");
    auto impl = std::make_shared<EngineImpl>();
    impl->plan = plan;
    impl->backend = b;
    for (const Step& s : pd.steps) {
      const Node& n = *pd.graph->nodes()[s.node];
      const Tactic* t = b->find_tactic(s.tactic);
      KILN_EXPECT(t != nullptr, StatusCode::kIncompatible, "step ", n.label(), " uses tactic '",
                  s.tactic, "', which this build of kiln does not have; rebuild the plan");
      impl->tactics.push_back(t);
      impl->kernels.push_back(t->instantiate(n, s.state));
    }
    std::shared_ptr<Engine> e(new Engine());
    e->impl_ = std::move(impl);
    out = std::move(e);
  });
}

std::vector<TensorDesc> Engine::inputs() const { return impl_->plan->inputs(); }
std::vector<TensorDesc> Engine::outputs() const { return impl_->plan->outputs(); }
std::string Engine::device() const { return impl_->plan->device(); }

struct ContextImpl {
  std::shared_ptr<const EngineImpl> engine;
  std::unique_ptr<Graph> graph;                 // private copy: run-time shapes are inferred here
  std::unordered_map<const Value*, size_t> index;
  std::vector<size_t> last_use;                 // per value: last step that reads it
  bool profiling = false;
  std::vector<StepTiming> profile;

  void run(const std::map<std::string, Tensor>& inputs, std::map<std::string, Tensor>& outputs);
};

Status Engine::create_context(std::unique_ptr<ExecutionContext>& out) const {
  return guard([&] {
    auto c = std::make_unique<ContextImpl>();
    c->engine = impl_;
    c->graph = impl_->plan->data().graph->clone();
    const Graph& g = *c->graph;
    for (size_t i = 0; i < g.values().size(); ++i) c->index[g.values()[i].get()] = i;
    c->last_use.assign(g.values().size(), 0);
    for (size_t s = 0; s < g.nodes().size(); ++s)
      for (Value* v : g.nodes()[s]->inputs)
        if (v) c->last_use[c->index[v]] = s;
    for (Value* v : g.outputs) c->last_use[c->index[v]] = SIZE_MAX;
    std::unique_ptr<ExecutionContext> ctx(new ExecutionContext());
    ctx->impl_ = std::move(c);
    out = std::move(ctx);
  });
}

ExecutionContext::~ExecutionContext() = default;

void ExecutionContext::set_profiling(bool on) { impl_->profiling = on; }
const std::vector<StepTiming>& ExecutionContext::last_profile() const { return impl_->profile; }

Status ExecutionContext::run(const std::map<std::string, Tensor>& inputs,
                             std::map<std::string, Tensor>& outputs) {
  return guard([&] { impl_->run(inputs, outputs); });
}

namespace {

std::string names_of(const std::vector<Value*>& vs) {
  std::string s;
  for (const Value* v : vs) s += (s.empty() ? "'" : ", '") + v->name + "'";
  return s;
}

}  // namespace

void ContextImpl::run(const std::map<std::string, Tensor>& inputs,
                      std::map<std::string, Tensor>& outputs) {
  Graph& g = *graph;
  const PlanData& pd = engine->plan->data();
  std::vector<Tensor> slots(g.values().size());

  // Validate the inputs: names, dtypes, ranks, fixed dims, and consistent symbolic dims.
  for (const auto& [name, t] : inputs) {
    bool found = false;
    for (Value* v : g.inputs) found |= v->name == name;
    KILN_EXPECT(found, StatusCode::kInvalidArgument, "unknown input '", name,
                "'; the engine's inputs are ", names_of(g.inputs));
  }
  std::map<std::string, int64_t> symbols;
  const Graph& declared = *pd.graph;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    Value* v = g.inputs[i];
    const Value* decl = declared.inputs[i];
    auto it = inputs.find(v->name);
    KILN_EXPECT(it != inputs.end(), StatusCode::kInvalidArgument, "input '", v->name,
                "' is missing; the engine's inputs are ", names_of(g.inputs));
    const Tensor& t = it->second;
    KILN_EXPECT(t.dtype() == decl->dtype, StatusCode::kInvalidArgument, "input '", v->name,
                "' has type ", dtype_name(t.dtype()), " but the engine expects ",
                dtype_name(decl->dtype));
    if (decl->shape.rank_known) {
      KILN_EXPECT(t.rank() == decl->shape.rank(), StatusCode::kInvalidArgument, "input '",
                  v->name, "' has shape ", dims_to_string(t.dims()), " but the engine expects ",
                  decl->shape.str());
      for (size_t d = 0; d < t.rank(); ++d) {
        const Dim& dd = decl->shape.dims[d];
        if (dd.known()) {
          KILN_EXPECT(t.dim(d) == dd.value, StatusCode::kInvalidArgument, "input '", v->name,
                      "' has shape ", dims_to_string(t.dims()), " but the engine expects ",
                      decl->shape.str(), " (dimension ", d, ")");
        } else if (!dd.symbol.empty()) {
          auto [sit, inserted] = symbols.emplace(dd.symbol, t.dim(d));
          KILN_EXPECT(inserted || sit->second == t.dim(d), StatusCode::kInvalidArgument,
                      "dimension '", dd.symbol, "' is ", sit->second, " in one input and ",
                      t.dim(d), " in input '", v->name, "'");
        }
      }
    }
    v->shape = Shape::from(t.dims());
    slots[index[v]] = t;
  }
  for (auto& v : g.values())
    if (v->is_constant()) slots[index[v.get()]] = v->data;

  profile.clear();
  const auto& nodes = g.nodes();
  for (size_t s = 0; s < nodes.size(); ++s) {
    Node& n = *nodes[s];
    auto t0 = std::chrono::steady_clock::now();
    std::vector<Tensor> ins(n.inputs.size());
    std::vector<const Tensor*> known(n.inputs.size(), nullptr);
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (!n.inputs[i]) continue;
      ins[i] = slots[index[n.inputs[i]]];
      KILN_CHECK(ins[i].defined(), "input '", n.inputs[i]->name, "' of ", n.label(),
                 " was not computed");
      known[i] = &ins[i];
    }
    InferContext ictx(n, known);
    try {
      n.def->infer(ictx);
    } catch (const Error& e) {
      throw Error(e.code(), e.message(), n.name + " (" + std::string(n.op()) + ")");
    }
    std::vector<Tensor> outs(n.outputs.size());
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      Value* o = n.outputs[k];
      if (!n.def->data_dependent_shape && o->shape.fully_known())
        outs[k] = Tensor(o->dtype, o->shape.concrete());
    }
    ComputeArgs args{n, ins, outs};
    try {
      engine->kernels[s]->run(args);
    } catch (const Error& e) {
      if (!e.node().empty()) throw;
      throw Error(e.code(), e.message(), n.name + " (" + std::string(n.op()) + ")");
    }
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      KILN_CHECK(outs[k].defined(), n.label(), " did not produce output ", k);
      // Data-dependent outputs learn their shape only now; consumers' infer() reads it.
      n.outputs[k]->shape = Shape::from(outs[k].dims());
      slots[index[n.outputs[k]]] = std::move(outs[k]);
    }
    // Release what no later step reads.
    for (Value* v : n.inputs)
      if (v && !v->is_constant() && last_use[index[v]] == s) slots[index[v]] = Tensor();
    if (profiling) {
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                      .count();
      profile.push_back({n.name, std::string(n.op()), std::string(engine->tactics[s]->id()), ms});
    }
  }
  outputs.clear();
  for (Value* v : g.outputs) outputs[v->name] = slots[index[v]];
}

}  // namespace kiln
