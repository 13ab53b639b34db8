// The device path of ExecutionContext. For each new set of input shapes the context infers every
// value's shape once (shape planning). When all shapes are known without running (the usual
// case) it places every activation in one arena by live range (largest first, first fit), asks
// each kernel for its workspace, and from then on a run is pure enqueueing: no allocation, no
// synchronisation, and after two identical runs a CUDA graph replays the steps. Models whose
// shapes depend on data (NonZero, Unique...) run step by step instead, allocating as they go.
#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "common/log.h"
#include "ops/op.h"
#include "runtime/context_impl.h"
#include "runtime/memory_plan.h"

namespace kiln {

namespace {

constexpr size_t kAlign = 256;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

[[noreturn]] void rethrow_with_node(const Error& e, const Node& n) {
  if (!e.node().empty()) throw e;
  throw Error(e.code(), e.message(), n.label());
}

}  // namespace

ContextImpl::~ContextImpl() {
  if (!dev) return;
  try {
    if (stream) dev->synchronize(stream);
  } catch (const Error&) {
  }
  dev->destroy_graph(graph_exec);
  release_run_allocations();
  dev->free(arena);
  dev->free(workspace);
  for (void* e : events) dev->destroy_event(e);
  resources.reset();
  dev->destroy_stream(stream);
}

void ContextImpl::init_device() {
  dev = engine->device;
  stream = dev->create_stream();
  resources = dev->create_resources();
}

void ContextImpl::release_run_allocations() {
  for (void* p : run_allocations) dev->free(p);
  run_allocations.clear();
}

void ContextImpl::plan_shapes(const std::map<std::string, std::pair<DataType, Dims>>& given) {
  Graph& g = *graph;
  std::vector<std::pair<DataType, Dims>> key;
  for (const Value* v : g.inputs) key.push_back({v->dtype, v->shape.concrete()});
  if (planned && shape_plan.key == key) return;
  planned = false;
  dev->destroy_graph(graph_exec);
  graph_exec = nullptr;
  graph_key.clear();
  last_key.clear();

  ShapePlan p;
  p.key = key;
  p.is_static = true;
  const auto& nodes = g.nodes();
  for (const auto& n : nodes) {
    std::vector<const Tensor*> known(n->inputs.size(), nullptr);
    for (size_t i = 0; i < n->inputs.size(); ++i)
      if (n->inputs[i] && n->inputs[i]->is_constant()) known[i] = &n->inputs[i]->data;
    InferContext ictx(*n, known);
    try {
      n->def->infer(ictx);
    } catch (const Error& e) {
      rethrow_with_node(e, *n);
    }
    bool ok = !n->def->data_dependent_shape;
    for (const Value* o : n->outputs) ok &= o->shape.fully_known();
    if (!ok) {
      p.is_static = false;
      break;
    }
  }
  const auto& values = g.values();
  p.dims.assign(values.size(), Dims());
  p.offset.assign(values.size(), ShapePlan::kNoOffset);
  if (p.is_static) {
    for (size_t i = 0; i < values.size(); ++i)
      if (values[i]->shape.fully_known()) p.dims[i] = values[i]->shape.concrete();
    MemoryPlanRequest req;
    req.graph = &g;
    req.index = &index;
    req.dims = &p.dims;
    req.last_use = &last_use;
    // The generated pointwise kernels read every input element before writing the output
    // element of the same index, so they may run in place.
    req.in_place_ok = [&](size_t step, size_t) {
      return engine->tactics[step]->id() == "cuda.pointwise_nvrtc";
    };
    // Strided views (channel slices of NHWC tensors at batch > 1) where the kernels that write
    // or read them say they can; the cuDNN convolution prepares its strided plans here.
    req.strided_ok = [&](size_t step, const std::vector<Dims>& strides) {
      return step_accepts_strided(step, p.dims, strides);
    };
    MemoryPlan mp = plan_memory(req);
    p.offset = std::move(mp.offset);
    p.strides = std::move(mp.strides);
    p.strided = mp.strided;
    p.skip = std::move(mp.skip);
    p.note = std::move(mp.note);
    p.arena_bytes = mp.arena_bytes;
    p.naive_bytes = mp.naive_bytes;
    p.views = mp.views;
    p.in_place = mp.in_place;
    // Workspace: the largest any step asks for at these shapes.
    p.step_workspace.assign(nodes.size(), 0);
    for (size_t s = 0; s < nodes.size(); ++s) {
      if (p.skip[s]) continue;
      p.step_workspace[s] = step_workspace(s, p.dims, &p.strides);
      p.workspace_bytes = std::max(p.workspace_bytes, p.step_workspace[s]);
    }
    if (p.arena_bytes > arena_capacity) {
      dev->free(arena);
      arena = nullptr;
      arena_capacity = 0;
      arena = dev->alloc(p.arena_bytes);
      arena_capacity = p.arena_bytes;
    }
    if (p.workspace_bytes > workspace_capacity) {
      dev->free(workspace);
      workspace = nullptr;
      workspace_capacity = 0;
      workspace = dev->alloc(p.workspace_bytes);
      workspace_capacity = p.workspace_bytes;
    }
  }
  shape_plan = std::move(p);
  planned = shape_plan.is_static;   // dynamic plans are redone step by step on every run
}

namespace {

// Shape-only tensors of a step (null pointers), with strides when given.
void shape_tensors(const Node& n, const std::unordered_map<const Value*, size_t>& index,
                   const std::vector<Dims>& dims, const std::vector<Dims>* strides,
                   std::vector<DeviceTensor>& ins, std::vector<DeviceTensor>& outs) {
  auto make = [&](const Value* v) {
    size_t vi = index.at(v);
    DeviceTensor t{nullptr, v->dtype, dims[vi]};
    if (strides && vi < strides->size()) t.strides = (*strides)[vi];
    return t;
  };
  ins.assign(n.inputs.size(), DeviceTensor{});
  outs.assign(n.outputs.size(), DeviceTensor{});
  for (size_t i = 0; i < n.inputs.size(); ++i)
    if (n.inputs[i]) ins[i] = make(n.inputs[i]);
  for (size_t k = 0; k < n.outputs.size(); ++k) outs[k] = make(n.outputs[k]);
}

}  // namespace

bool ContextImpl::step_accepts_strided(size_t s, const std::vector<Dims>& dims,
                                       const std::vector<Dims>& strides) const {
  const Node& n = *graph->nodes()[s];
  std::vector<DeviceTensor> ins, outs;
  shape_tensors(n, index, dims, &strides, ins, outs);
  LaunchArgs a{n, ins, outs};
  a.resources = resources.get();
  try {
    return engine->kernels[s]->accepts_strided(a);
  } catch (const Error&) {
    return false;
  }
}

size_t ContextImpl::step_workspace(size_t s, const std::vector<Dims>& dims,
                                   const std::vector<Dims>* strides) const {
  const Node& n = *graph->nodes()[s];
  std::vector<DeviceTensor> ins, outs;
  shape_tensors(n, index, dims, strides, ins, outs);
  LaunchArgs a{n, ins, outs};
  a.resources = resources.get();
  try {
    return engine->kernels[s]->workspace_size(a);
  } catch (const Error& e) {
    rethrow_with_node(e, n);
  }
}

void ContextImpl::launch_step(size_t s, void* strm, std::vector<void*>& ptrs) {
  const Node& n = *graph->nodes()[s];
  if (!n.subgraphs.empty()) {
    try {
      launch_control_flow(s, strm, ptrs);
    } catch (const Error& e) {
      rethrow_with_node(e, n);
    }
    return;
  }
  std::vector<DeviceTensor> ins(n.inputs.size()), outs(n.outputs.size());
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const Value* v = n.inputs[i];
    if (!v) continue;
    size_t vi = index.at(v);
    ins[i] = {ptrs[vi], v->dtype, shape_plan.dims[vi]};
    if (vi < shape_plan.strides.size()) ins[i].strides = shape_plan.strides[vi];
  }
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    const Value* o = n.outputs[k];
    size_t vi = index.at(o);
    if (!n.def->data_dependent_shape) outs[k] = {ptrs[vi], o->dtype, shape_plan.dims[vi]};
    if (vi < shape_plan.strides.size()) outs[k].strides = shape_plan.strides[vi];
  }
  LaunchArgs a{n, ins, outs};
  a.stream = strm;
  a.resources = resources.get();
  a.workspace = workspace;
  a.workspace_bytes = workspace_capacity;
  a.allocate_output = [&](size_t k, const Dims& d) {
    KILN_CHECK(!shape_plan.is_static, "a static plan has no data-dependent outputs");
    const Value* o = n.outputs[k];
    size_t bytes = static_cast<size_t>(dims_volume(d)) * dtype_size(o->dtype);
    void* p = bytes ? dev->alloc(bytes) : nullptr;
    if (p) run_allocations.push_back(p);
    outs[k] = {p, o->dtype, d};
  };
  try {
    engine->kernels[s]->enqueue(a);
  } catch (const Error& e) {
    rethrow_with_node(e, n);
  }
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    size_t vi = index.at(n.outputs[k]);
    ptrs[vi] = outs[k].data;
    shape_plan.dims[vi] = outs[k].dims;
  }
}

void ContextImpl::execute(void* s, std::vector<void*>& ptrs) {
  if (shape_plan.is_static)
    execute_static(s, ptrs);
  else
    execute_dynamic(s, ptrs);
}

void ContextImpl::execute_static(void* s, std::vector<void*>& ptrs) {
  const auto& values = graph->values();
  for (size_t i = 0; i < values.size(); ++i) {
    if (ptrs[i]) continue;
    if (values[i]->is_constant())
      ptrs[i] = engine->weights[i];
    else if (shape_plan.offset[i] != ShapePlan::kNoOffset)
      ptrs[i] = static_cast<char*>(arena) + shape_plan.offset[i];
  }
  const size_t n_steps = graph->nodes().size();
  profile.clear();
  if (profiling) {
    while (events.size() < 2 * n_steps) events.push_back(dev->create_event());
    for (size_t st = 0; st < n_steps; ++st) {
      dev->record_event(events[2 * st], s);
      if (!shape_plan.skip[st]) launch_step(st, s, ptrs);
      dev->record_event(events[2 * st + 1], s);
    }
    for (size_t st = 0; st < n_steps; ++st) {
      const Node& n = *graph->nodes()[st];
      profile.push_back({n.name, std::string(n.op()), std::string(engine->tactics[st]->id()),
                         dev->elapsed_ms(events[2 * st], events[2 * st + 1]),
                         st ? dev->elapsed_ms(events[0], events[2 * st]) : 0.0});
    }
    return;
  }
  // CUDA graphs: capture on the second run with the same buffers, replay from then on. Not on
  // the legacy default stream (it cannot be captured), nor with a step that synchronises.
  bool capturable = use_graphs && !graph_failed && s != nullptr;
  for (size_t st = 0; st < n_steps; ++st)
    capturable &= shape_plan.skip[st] || engine->kernels[st]->capturable();
  std::vector<void*> key;
  if (capturable) {
    key = ptrs;
    key.push_back(workspace);
    key.push_back(s);
    if (graph_exec && key == graph_key) {
      dev->launch_graph(graph_exec, s);
      return;
    }
    if (key == last_key) {
      dev->destroy_graph(graph_exec);
      graph_exec = nullptr;
      try {
        dev->begin_capture(s);
        try {
          for (size_t st = 0; st < n_steps; ++st)
            if (!shape_plan.skip[st]) launch_step(st, s, ptrs);
        } catch (...) {
          try { dev->destroy_graph(dev->end_capture(s)); } catch (const Error&) {}
          throw;
        }
        graph_exec = dev->end_capture(s);
        graph_key = key;
        log(LogLevel::kInfo, "runtime: captured ", n_steps, " steps in a CUDA graph");
        dev->launch_graph(graph_exec, s);
        return;
      } catch (const Error& e) {
        // Retried on the next run with these buffers; after kMaxCaptureFailures, a step that
        // cannot be captured: run without graphs from now on. This run goes step by step.
        graph_failed = ++capture_failures >= kMaxCaptureFailures;
        log(LogLevel::kWarning, "runtime: CUDA graph capture failed (attempt ", capture_failures,
            " of ", kMaxCaptureFailures, "), ",
            graph_failed ? "running step by step from now on: " : "running this run step by step: ",
            e.message());
        graph_exec = nullptr;
      }
    }
    last_key = key;
  }
  for (size_t st = 0; st < n_steps; ++st)
    if (!shape_plan.skip[st]) launch_step(st, s, ptrs);
}

void ContextImpl::execute_dynamic(void* s, std::vector<void*>& ptrs) {
  Graph& g = *graph;
  const auto& values = g.values();
  shape_plan.dims.assign(values.size(), Dims());
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i]->is_constant()) ptrs[i] = engine->weights[i];
    if (values[i]->shape.fully_known()) shape_plan.dims[i] = values[i]->shape.concrete();
  }
  for (const Value* v : g.inputs) shape_plan.dims[index.at(v)] = v->shape.concrete();
  profile.clear();
  const auto run_t0 = std::chrono::steady_clock::now();
  const auto& nodes = g.nodes();
  for (size_t st = 0; st < nodes.size(); ++st) {
    Node& n = *nodes[st];
    auto t0 = std::chrono::steady_clock::now();
    std::vector<const Tensor*> known(n.inputs.size(), nullptr);
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (n.inputs[i] && n.inputs[i]->is_constant()) known[i] = &n.inputs[i]->data;
    auto infer = [&] {
      InferContext ictx(n, known);
      try {
        n.def->infer(ictx);
      } catch (const Error& e) {
        rethrow_with_node(e, n);
      }
    };
    infer();
    bool need_values = !n.def->data_dependent_shape;
    if (need_values) {
      bool all_known = true;
      for (const Value* o : n.outputs) all_known &= o->shape.fully_known();
      need_values = !all_known;
    }
    std::vector<Tensor> host(n.inputs.size());
    if (need_values) {
      // The output shape depends on an input's values (a computed shape, scales, sizes,
      // repeats, a depth): bring the small inputs to the host and infer again.
      dev->synchronize(s);
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        const Value* v = n.inputs[i];
        if (!v || v->is_constant()) continue;
        size_t vi = index.at(v);
        if (dims_volume(shape_plan.dims[vi]) > (1 << 16)) continue;
        host[i] = Tensor(v->dtype, shape_plan.dims[vi]);
        dev->copy_to_host(host[i].raw(), ptrs[vi], host[i].nbytes(), s);
        known[i] = &host[i];
      }
      dev->synchronize(s);
      infer();
    }
    for (const Value* o : n.outputs) {
      size_t vi = index.at(o);
      if (n.def->data_dependent_shape) continue;
      KILN_EXPECT(o->shape.fully_known(), StatusCode::kUnsupported, "the shape of '", o->name,
                  "' (", o->shape.str(), ") is not known at run time");
      shape_plan.dims[vi] = o->shape.concrete();
      size_t bytes = static_cast<size_t>(dims_volume(shape_plan.dims[vi])) * dtype_size(o->dtype);
      ptrs[vi] = bytes ? dev->alloc(bytes) : nullptr;
      if (ptrs[vi]) run_allocations.push_back(ptrs[vi]);
    }
    // Workspace for this step's shapes.
    {
      size_t ws = step_workspace(st, shape_plan.dims);
      if (ws > workspace_capacity) {
        // The old buffer may still be in use by enqueued work: free it after the run.
        if (workspace) run_allocations.push_back(workspace);
        workspace = nullptr;
        workspace_capacity = 0;
        workspace = dev->alloc(ws);
        workspace_capacity = ws;
      }
    }
    launch_step(st, s, ptrs);
    for (size_t k = 0; k < n.outputs.size(); ++k)
      n.outputs[k]->shape = Shape::from(shape_plan.dims[index.at(n.outputs[k])]);
    if (profiling) {
      dev->synchronize(s);
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                      .count();
      profile.push_back({n.name, std::string(n.op()), std::string(engine->tactics[st]->id()), ms,
                         std::chrono::duration<double, std::milli>(t0 - run_t0).count()});
    }
  }
}

void ContextImpl::run_device(const std::map<std::string, Tensor>& inputs,
                             std::map<std::string, Tensor>& outputs) {
  Graph& g = *graph;
  std::map<std::string, std::pair<DataType, Dims>> given;
  for (const auto& [name, t] : inputs) given[name] = {t.dtype(), t.dims()};
  set_input_shapes(given);
  plan_shapes(given);
  std::vector<void*> ptrs(g.values().size(), nullptr);
  try {
    for (const Value* v : g.inputs) {
      size_t vi = index.at(v);
      const Tensor& t = inputs.at(v->name);
      if (shape_plan.is_static) {
        ptrs[vi] = static_cast<char*>(arena) + shape_plan.offset[vi];
      } else {
        ptrs[vi] = t.nbytes() ? dev->alloc(t.nbytes()) : nullptr;
        if (ptrs[vi]) run_allocations.push_back(ptrs[vi]);
      }
      dev->copy_to_device(ptrs[vi], t.raw(), t.nbytes(), stream);
    }
    execute(stream, ptrs);
    outputs.clear();
    for (const Value* v : g.outputs) {
      size_t vi = index.at(v);
      const void* src = v->is_constant() ? engine->weights[vi] : ptrs[vi];
      Tensor t(v->dtype, shape_plan.dims[vi]);
      dev->copy_to_host(t.raw(), src, t.nbytes(), stream);
      outputs[v->name] = t;
    }
    dev->synchronize(stream);
  } catch (...) {
    try {
      dev->synchronize(stream);
    } catch (const Error&) {
    }
    release_run_allocations();
    throw;
  }
  release_run_allocations();
}

void ContextImpl::plan_enqueue_shapes() {
  const Graph& g = *graph;
  std::map<std::string, std::pair<DataType, Dims>> given;
  const Graph& declared = *engine->plan->data().graph;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const std::string& in = g.inputs[i]->name;
    auto it = enqueue_shapes.find(in);
    if (it != enqueue_shapes.end())
      given[in] = {DataType::kUndefined, it->second};
    else if (declared.inputs[i]->shape.fully_known())   // fixed shapes need no set_input_shape()
      given[in] = {DataType::kUndefined, declared.inputs[i]->shape.concrete()};
  }
  set_input_shapes(given);
  plan_shapes(given);
}

Dims ContextImpl::output_dims(const std::string& name) {
  KILN_EXPECT(dev != nullptr, StatusCode::kUnsupported,
              "output_dims() is for device engines; a CPU engine's run() returns its outputs");
  plan_enqueue_shapes();
  for (const Value* v : graph->outputs)
    if (v->name == name) {
      KILN_EXPECT(shape_plan.is_static, StatusCode::kUnsupported, "the shape of output '", name,
                  "' depends on the input data; use run()");
      return shape_plan.dims[index.at(v)];
    }
  fail(StatusCode::kInvalidArgument, "'", name, "' is not an output of the engine");
}

MemoryReport ContextImpl::memory_report() {
  KILN_EXPECT(dev != nullptr, StatusCode::kUnsupported,
              "memory reports are for device engines; a CPU engine keeps each value in its own "
              "host tensor");
  plan_enqueue_shapes();
  KILN_EXPECT(shape_plan.is_static, StatusCode::kUnsupported,
              "this plan's shapes depend on the data: its memory is allocated step by step");
  const ShapePlan& p = shape_plan;
  MemoryReport r;
  r.arena_bytes = static_cast<int64_t>(p.arena_bytes);
  r.naive_bytes = static_cast<int64_t>(p.naive_bytes);
  r.workspace_bytes = static_cast<int64_t>(p.workspace_bytes);
  r.views = p.views;
  r.strided = p.strided;
  r.in_place = p.in_place;
  for (size_t s = 0; s < graph->nodes().size(); ++s)
    r.steps.push_back({static_cast<int64_t>(p.step_workspace[s]), !p.skip[s], p.note[s]});
  return r;
}

void ContextImpl::enqueue(void* s) {
  KILN_EXPECT(dev != nullptr, StatusCode::kUnsupported,
              "enqueue() is for device engines; a CPU engine runs with run()");
  Graph& g = *graph;
  for (const Value* v : g.outputs) output_dims(v->name);   // plans shapes, checks they are static
  std::vector<void*> ptrs(g.values().size(), nullptr);
  auto address = [&](const Value* v) -> void* {
    auto it = addresses.find(v->name);
    bool empty = dims_volume(shape_plan.dims[index.at(v)]) == 0;
    KILN_EXPECT(it != addresses.end() || empty, StatusCode::kInvalidArgument, "no address set for '",
                v->name, "'; call set_tensor_address() first");
    return it == addresses.end() ? nullptr : it->second;
  };
  for (const Value* v : g.inputs) ptrs[index.at(v)] = address(v);
  // Outputs that a step produces are written straight into the caller's buffer; the others
  // (an input or a constant passed through) are copied after the steps.
  std::vector<std::pair<const Value*, void*>> copies;
  for (const Value* v : g.outputs) {
    void* dst = address(v);
    bool is_input = std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end();
    if (v->producer && !is_input)
      ptrs[index.at(v)] = dst;
    else
      copies.push_back({v, dst});
  }
  execute(s, ptrs);
  for (const auto& [v, dst] : copies) {
    size_t vi = index.at(v);
    const void* src = v->is_constant() ? engine->weights[vi] : ptrs[vi];
    dev->copy_on_device(dst, src, dims_volume(shape_plan.dims[vi]) * dtype_size(v->dtype), s);
  }
}

}  // namespace kiln
