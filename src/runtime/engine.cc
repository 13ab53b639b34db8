// Engine and ExecutionContext. Host engines (cpu) run each step on host tensors. Device engines
// (cuda) keep the weights on the device once per engine; each context owns a stream, library
// handles and an activation arena planned from live ranges for the current input shapes, and
// enqueues every step asynchronously (see device_context.cc).
#include <chrono>
#include <set>
#include <unordered_map>

#include "common/api_guard.h"
#include "ops/op.h"
#include "runtime/context_impl.h"

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

EngineImpl::~EngineImpl() {
  kernels.clear();  // kernels may own device memory: release it before the weights
  if (device)
    for (void* p : weights) device->free(p);
}

Engine::~Engine() = default;

namespace {

// The device a plan was built for must be the one it runs on: kernels compiled for one
// architecture, algorithms tuned for one GPU, and library versions are all baked into the plan.
void check_device_matches(const BuildInfo& b, const DeviceInfo& d) {
  std::string diff;
  auto cmp = [&](const char* what, const std::string& built, const std::string& here) {
    if (built != here) diff += cat("\n  ", what, ": plan built with '", built, "', this machine has '", here, "'");
  };
  cmp("GPU", b.gpu_name, d.gpu_name);
  cmp("compute capability", b.compute_capability, d.compute_capability);
  cmp("CUDA runtime", b.cuda_version, d.cuda_version);
  cmp("cuDNN", b.cudnn_version, d.cudnn_version);
  cmp("cuBLASLt", b.cublaslt_version, d.cublaslt_version);
  KILN_EXPECT(diff.empty(), StatusCode::kIncompatible,
              "the plan was built for another GPU or library version; rebuild it on this machine:",
              diff);
}

}  // namespace

std::shared_ptr<EngineImpl> make_engine_impl(std::shared_ptr<const Plan> plan) {
  const PlanData& pd = plan->data();
  const Backend* b = find_backend(pd.info.device);
  if (!b && pd.info.device == "cuda")
    fail(StatusCode::kIncompatible, "the plan targets the GPU, which is not available: ",
         cuda_unavailable_reason());
  KILN_EXPECT(b != nullptr, StatusCode::kIncompatible, "the plan targets device '",
              pd.info.device, "', which this build of kiln or this machine does not provide");
  auto impl = std::make_shared<EngineImpl>();
  impl->plan = plan;
  impl->backend = b;
  impl->device = b->device();
  if (impl->device) check_device_matches(pd.info, impl->device->info());
  const Graph& g = *pd.graph;
  if (impl->device) {
    // Weights: every constant a step reads, uploaded once, shared by all contexts.
    std::unordered_map<const Value*, size_t> index;
    for (size_t i = 0; i < g.values().size(); ++i) index[g.values()[i].get()] = i;
    impl->weights.assign(g.values().size(), nullptr);
    auto upload = [&](const Value* v) {
      size_t i = index.at(v);
      if (impl->weights[i] || !v->is_constant() || v->data.nbytes() == 0) return;
      impl->weights[i] = impl->device->alloc(v->data.nbytes());
      impl->device->copy_to_device(impl->weights[i], v->data.raw(), v->data.nbytes(), nullptr);
      impl->weight_bytes += v->data.nbytes();
    };
    for (const auto& n : g.nodes())
      for (const Value* v : n->inputs)
        if (v) upload(v);
    for (const Value* v : g.outputs) upload(v);
    impl->device->synchronize(nullptr);
  }
  for (const Step& s : pd.steps) {
    const Node& n = *g.nodes()[s.node];
    const Tactic* t = b->find_tactic(s.tactic);
    KILN_EXPECT(t != nullptr, StatusCode::kIncompatible, "step ", n.label(), " uses tactic '",
                s.tactic, "', which this build of kiln does not have; rebuild the plan");
    // A tactic reads its node's attributes as its op's: one of another op would misread them.
    KILN_EXPECT(t->op().empty() || t->op() == n.op(), StatusCode::kCorruptPlan, "step ",
                n.label(), " names tactic '", s.tactic, "', which implements ", t->op(),
                ", not ", n.op());
    impl->tactics.push_back(t);
    try {
      impl->kernels.push_back(t->instantiate(n, s.state));
    } catch (const Error& e) {
      if (!e.node().empty()) throw;
      throw Error(e.code(), e.message(), n.label());
    }
    // Control flow: each sub-graph is a plan of its own (same device, its own steps).
    std::vector<std::shared_ptr<const EngineImpl>> bodies;
    KILN_EXPECT(s.bodies.size() == n.subgraphs.size(), StatusCode::kCorruptPlan, "step ",
                n.label(), " has ", s.bodies.size(), " step sequences for ",
                n.subgraphs.size(), " sub-graphs");
    for (size_t k = 0; k < n.subgraphs.size(); ++k) {
      auto sub = std::make_unique<PlanData>();
      sub->info = pd.info;
      sub->graph = n.subgraphs[k]->clone();
      sub->steps = s.bodies[k];
      sub->keepalive = pd.keepalive;
      bodies.push_back(make_engine_impl(PlanAccess::make(std::move(sub))));
    }
    impl->bodies.push_back(std::move(bodies));
  }
  return impl;
}

Status Engine::create(std::shared_ptr<const Plan> plan, std::shared_ptr<Engine>& out) {
  return guard([&] {
    KILN_EXPECT(plan != nullptr, StatusCode::kInvalidArgument, "Engine::create: plan is null");
    std::shared_ptr<Engine> e(new Engine());
    e->impl_ = make_engine_impl(std::move(plan));
    out = std::move(e);
  });
}

std::vector<TensorDesc> Engine::inputs() const { return impl_->plan->inputs(); }
std::vector<TensorDesc> Engine::outputs() const { return impl_->plan->outputs(); }
std::string Engine::device() const { return impl_->plan->device(); }

std::unique_ptr<ContextImpl> make_context_impl(std::shared_ptr<const EngineImpl> engine) {
  auto c = std::make_unique<ContextImpl>();
  c->engine = engine;
  const auto& impl_ = c->engine;
  c->graph = impl_->plan->data().graph->clone();
  const Graph& g = *c->graph;
  for (size_t i = 0; i < g.values().size(); ++i) c->index[g.values()[i].get()] = i;
  c->last_use.assign(g.values().size(), 0);
  for (size_t s = 0; s < g.nodes().size(); ++s)
    for (Value* v : g.nodes()[s]->inputs)
      if (v) c->last_use[c->index[v]] = s;
  for (Value* v : g.outputs) c->last_use[c->index[v]] = SIZE_MAX;
  if (impl_->device) c->init_device();
  if (!impl_->plan->data().profiles.empty()) c->select_profile(0);
  c->bodies.resize(impl_->bodies.size());
  for (size_t s = 0; s < impl_->bodies.size(); ++s) c->bodies[s].resize(impl_->bodies[s].size());
  return c;
}

Status Engine::create_context(std::unique_ptr<ExecutionContext>& out) const {
  return guard([&] {
    std::unique_ptr<ExecutionContext> ctx(new ExecutionContext());
    ctx->impl_ = make_context_impl(impl_);
    out = std::move(ctx);
  });
}

ExecutionContext::~ExecutionContext() = default;

void ExecutionContext::set_profiling(bool on) { impl_->profiling = on; }
const std::vector<StepTiming>& ExecutionContext::last_profile() const { return impl_->profile; }
void ExecutionContext::set_cuda_graphs(bool on) { impl_->use_graphs = on; }
Status ExecutionContext::set_optimization_profile(size_t index) {
  return guard([&] { impl_->select_profile(index); });
}
size_t ExecutionContext::optimization_profile() const { return impl_->opt_profile; }

Status ExecutionContext::memory_report(MemoryReport& out) {
  return guard([&] { out = impl_->memory_report(); });
}

Status ExecutionContext::run(const std::map<std::string, Tensor>& inputs,
                             std::map<std::string, Tensor>& outputs) {
  return guard([&] {
    if (impl_->engine->device)
      impl_->run_device(inputs, outputs);
    else
      impl_->run_host(inputs, outputs);
  });
}

Status ExecutionContext::set_input_shape(const std::string& name, const Dims& dims) {
  return guard([&] {
    impl_->find_input(name);
    impl_->enqueue_shapes[name] = dims;
  });
}

Status ExecutionContext::output_dims(const std::string& name, Dims& out) {
  return guard([&] { out = impl_->output_dims(name); });
}

Status ExecutionContext::set_tensor_address(const std::string& name, void* ptr) {
  return guard([&] {
    const Graph& g = *impl_->graph;
    bool found = false;
    for (const Value* v : g.inputs) found |= v->name == name;
    for (const Value* v : g.outputs) found |= v->name == name;
    KILN_EXPECT(found, StatusCode::kInvalidArgument, "'", name,
                "' is neither an input nor an output of the engine");
    impl_->addresses[name] = ptr;
  });
}

Status ExecutionContext::enqueue(void* stream) {
  return guard([&] { impl_->enqueue(stream); });
}

namespace {

std::string names_of(const std::vector<Value*>& vs) {
  std::string s;
  for (const Value* v : vs) s += (s.empty() ? "'" : ", '") + v->name + "'";
  return s;
}

}  // namespace

Value* ContextImpl::find_input(const std::string& name) const {
  for (Value* v : graph->inputs)
    if (v->name == name) return v;
  fail(StatusCode::kInvalidArgument, "unknown input '", name, "'; the engine's inputs are ",
       names_of(graph->inputs));
}

void ContextImpl::set_input_shapes(const std::map<std::string, std::pair<DataType, Dims>>& given) {
  Graph& g = *graph;
  for (const auto& [name, t] : given) find_input(name);
  std::map<std::string, int64_t> symbols;
  const Graph& declared = *engine->plan->data().graph;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    Value* v = g.inputs[i];
    const Value* decl = declared.inputs[i];
    auto it = given.find(v->name);
    KILN_EXPECT(it != given.end(), StatusCode::kInvalidArgument, "input '", v->name,
                "' is missing; the engine's inputs are ", names_of(g.inputs));
    const auto& [dtype, dims] = it->second;
    if (dtype != DataType::kUndefined)
      KILN_EXPECT(dtype == decl->dtype, StatusCode::kInvalidArgument, "input '", v->name,
                  "' has type ", dtype_name(dtype), " but the engine expects ",
                  dtype_name(decl->dtype));
    for (int64_t d : dims)
      KILN_EXPECT(d >= 0, StatusCode::kInvalidArgument, "input '", v->name,
                  "' has a negative dimension: ", dims_to_string(dims));
    if (decl->shape.rank_known) {
      KILN_EXPECT(dims.size() == decl->shape.rank(), StatusCode::kInvalidArgument, "input '",
                  v->name, "' has shape ", dims_to_string(dims), " but the engine expects ",
                  decl->shape.str());
      for (size_t d = 0; d < dims.size(); ++d) {
        const Dim& dd = decl->shape.dims[d];
        if (dd.known()) {
          KILN_EXPECT(dims[d] == dd.value, StatusCode::kInvalidArgument, "input '", v->name,
                      "' has shape ", dims_to_string(dims), " but the engine expects ",
                      decl->shape.str(), " (dimension ", d, ")");
        } else if (!dd.symbol.empty()) {
          auto [sit, inserted] = symbols.emplace(dd.symbol, dims[d]);
          KILN_EXPECT(inserted || sit->second == dims[d], StatusCode::kInvalidArgument,
                      "dimension '", dd.symbol, "' is ", sit->second, " in one input and ",
                      dims[d], " in input '", v->name, "'");
        }
      }
    }
    v->shape = Shape::from(dims);
  }
  const auto& profiles = engine->plan->data().profiles;
  if (profiles.empty()) return;
  const OptimizationProfile& p = profiles[opt_profile];
  for (const Value* v : g.inputs) {
    // A profile bounds every dynamic input (the plan reader checks it); fixed inputs it may
    // leave out were checked against their fixed dims above.
    auto lo = p.min.find(v->name), hi = p.max.find(v->name);
    if (lo == p.min.end() || hi == p.max.end()) continue;
    const Dims dims = v->shape.concrete();
    const auto& mn = lo->second;
    const auto& mx = hi->second;
    for (size_t d = 0; d < dims.size(); ++d)
      KILN_EXPECT(dims[d] >= mn[d] && dims[d] <= mx[d], StatusCode::kInvalidArgument, "input '",
                  v->name, "' has shape ", dims_to_string(dims), ", outside optimization profile ",
                  opt_profile, " (min ", dims_to_string(mn), ", max ", dims_to_string(mx),
                  "): dimension ", d, " must be in [", mn[d], ", ", mx[d], "]");
  }
}

void ContextImpl::select_profile(size_t index) {
  const auto& profiles = engine->plan->data().profiles;
  KILN_EXPECT(index < profiles.size(), StatusCode::kInvalidArgument, "optimization profile ",
              index, " does not exist: the plan has ", profiles.size());
  opt_profile = index;
  if (!dev) return;
  // Plan the max shapes now, so that the arena and workspace have their size before any run: the
  // shapes inside the bounds reuse them (a smaller shape whose plan needed more would grow them
  // once, at its first run).
  std::map<std::string, std::pair<DataType, Dims>> given;
  const Graph& declared = *engine->plan->data().graph;
  for (size_t i = 0; i < graph->inputs.size(); ++i) {
    const std::string& name = graph->inputs[i]->name;
    auto it = profiles[index].max.find(name);
    given[name] = {DataType::kUndefined, it != profiles[index].max.end()
                                             ? it->second
                                             : declared.inputs[i]->shape.concrete()};
  }
  set_input_shapes(given);
  plan_shapes(given);
}

void ContextImpl::run_host(const std::map<std::string, Tensor>& inputs,
                           std::map<std::string, Tensor>& outputs) {
  Graph& g = *graph;
  std::vector<Tensor> slots(g.values().size());
  std::map<std::string, std::pair<DataType, Dims>> given;
  for (const auto& [name, t] : inputs) given[name] = {t.dtype(), t.dims()};
  set_input_shapes(given);
  for (Value* v : g.inputs) slots[index[v]] = inputs.at(v->name);
  for (auto& v : g.values())
    if (v->is_constant()) slots[index[v.get()]] = v->data;

  profile.clear();
  const auto run_t0 = std::chrono::steady_clock::now();
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
      if (!n.subgraphs.empty())
        run_control_flow_step(s, args);
      else
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
      profile.push_back({n.name, std::string(n.op()), std::string(engine->tactics[s]->id()), ms,
                         std::chrono::duration<double, std::milli>(t0 - run_t0).count()});
    }
  }
  outputs.clear();
  for (Value* v : g.outputs) outputs[v->name] = slots[index[v]];
}

}  // namespace kiln
