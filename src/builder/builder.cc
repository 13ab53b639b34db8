#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>

#include "builder/autotuner.h"
#include "quant/calibrate.h"
#include "builder/build_plan.h"
#include "builder/timing_cache.h"
#include "common/api_guard.h"
#include "common/file.h"
#include "common/log.h"
#include "kiln/builder.h"
#include "kiln/network.h"
#include "onnx/importer.h"
#include "onnx/model.h"
#include "ops/infer.h"
#include "passes/pass.h"
#include "plan/plan_data.h"
#include "runtime/backend.h"

namespace kiln {

namespace {

std::string resolve_device(const std::string& requested) {
  if (requested.empty()) return find_backend("cuda") ? "cuda" : "cpu";
  KILN_EXPECT(requested == "cpu" || requested == "cuda", StatusCode::kInvalidArgument,
              "unknown device '", requested, "' (use cpu or cuda)");
  if (requested == "cuda")
    KILN_EXPECT(find_backend("cuda") != nullptr, StatusCode::kInvalidArgument,
                "device 'cuda' is not available: ", cuda_unavailable_reason());
  return requested;
}

void apply_input_shapes(Graph& g, const BuildOptions& o) {
  for (const auto& [name, dims] : o.input_shapes) {
    Value* v = nullptr;
    for (Value* in : g.inputs)
      if (in->name == name) v = in;
    if (!v) {
      std::string names;
      for (Value* in : g.inputs) names += (names.empty() ? "'" : ", '") + in->name + "'";
      fail(StatusCode::kInvalidArgument, "--shapes names input '", name,
           "', which the model does not have; its inputs are ", names);
    }
    if (v->shape.rank_known)
      KILN_EXPECT(v->shape.rank() == dims.size(), StatusCode::kInvalidArgument, "input '", name,
                  "' has rank ", v->shape.rank(), " (", v->shape.str(), ") but the given shape ",
                  dims_to_string(dims), " has rank ", dims.size());
    for (size_t i = 0; i < dims.size(); ++i) {
      KILN_EXPECT(dims[i] >= 0, StatusCode::kInvalidArgument, "shape for input '", name,
                  "' must not have negative dims, got ", dims_to_string(dims));
      if (v->shape.rank_known && v->shape.dims[i].known())
        KILN_EXPECT(v->shape.dims[i].value == dims[i], StatusCode::kInvalidArgument, "input '",
                    name, "' has fixed shape ", v->shape.str(), "; cannot build it as ",
                    dims_to_string(dims));
    }
    v->shape = Shape::from(dims);
  }
}

std::string dims_text(const std::vector<int64_t>& d) { return dims_to_string(d); }

// Checks the optimization profiles against the graph's inputs and makes the graph fit them: a dim
// that every profile fixes to one value (min == max) becomes that value; any other stays (or
// becomes) symbolic. Returns the profiles completed with the fixed inputs they left out.
std::vector<OptimizationProfile> apply_profiles(Graph& g, const BuildOptions& o) {
  std::vector<OptimizationProfile> out = o.profiles;
  if (out.empty()) return out;
  for (size_t k = 0; k < out.size(); ++k) {
    OptimizationProfile& p = out[k];
    auto where = [&](const std::string& name) { return cat("optimization profile ", k, ", input '", name, "'"); };
    for (const auto* m : {&p.min, &p.opt, &p.max})
      for (const auto& [name, dims] : *m) {
        KILN_EXPECT(p.min.count(name) && p.opt.count(name) && p.max.count(name),
                    StatusCode::kInvalidArgument, where(name),
                    ": give its min, opt and max shapes (--min-shapes, --opt-shapes, --max-shapes)");
        KILN_EXPECT(!o.input_shapes.count(name), StatusCode::kInvalidArgument, where(name),
                    ": an input is either fixed (--shapes) or bounded by profiles, not both");
        const Value* v = nullptr;
        for (const Value* in : g.inputs)
          if (in->name == name) v = in;
        KILN_EXPECT(v != nullptr, StatusCode::kInvalidArgument, where(name),
                    ": the model has no such input");
        KILN_EXPECT(!v->shape.rank_known || dims.size() == v->shape.rank(),
                    StatusCode::kInvalidArgument, where(name), ": shape ", dims_text(dims),
                    " has rank ", dims.size(), " but the input is ", v->shape.str());
      }
    for (const auto& [name, mn] : p.min) {
      const auto& op = p.opt.at(name);
      const auto& mx = p.max.at(name);
      KILN_EXPECT(op.size() == mn.size() && mx.size() == mn.size(), StatusCode::kInvalidArgument,
                  where(name), ": min, opt and max have different ranks");
      const Value* v = nullptr;
      for (const Value* in : g.inputs)
        if (in->name == name) v = in;
      for (size_t d = 0; d < mn.size(); ++d) {
        KILN_EXPECT(mn[d] >= 0 && mn[d] <= op[d] && op[d] <= mx[d], StatusCode::kInvalidArgument,
                    where(name), ": needs min <= opt <= max in every dimension, got min ",
                    dims_text(mn), ", opt ", dims_text(op), ", max ", dims_text(mx));
        const Dim& gd = v->shape.dims[d];
        KILN_EXPECT(!gd.known() || (mn[d] == gd.value && mx[d] == gd.value),
                    StatusCode::kInvalidArgument, where(name), ": dimension ", d,
                    " is fixed to ", gd.value, " in the model");
      }
    }
  }
  for (Value* v : g.inputs) {
    bool bounded = out[0].min.count(v->name) > 0;
    for (const auto& p : out)
      KILN_EXPECT(p.min.count(v->name) == static_cast<size_t>(bounded) || v->shape.fully_known(),
                  StatusCode::kInvalidArgument, "input '", v->name,
                  "' is dynamic: every optimization profile must bound it");
    if (!bounded) {
      KILN_EXPECT(v->shape.fully_known() || o.input_shapes.count(v->name),
                  StatusCode::kInvalidArgument, "input '", v->name, "' has dynamic dims (",
                  v->shape.str(), ") that no optimization profile bounds");
      continue;
    }
    const size_t rank = out[0].min.at(v->name).size();
    std::vector<Dim> dims(rank);
    for (size_t d = 0; d < rank; ++d) {
      bool fixed = true;
      int64_t val = out[0].min.at(v->name)[d];
      for (const auto& p : out)
        fixed &= p.min.at(v->name)[d] == val && p.max.at(v->name)[d] == val;
      const Dim old = v->shape.rank_known ? v->shape.dims[d] : Dim();
      dims[d] = fixed ? Dim(val)
                      : Dim::sym(!old.symbol.empty() ? old.symbol : cat(v->name, ".", d));
    }
    v->shape = Shape(std::move(dims));
  }
  // Fixed inputs a profile left out: bounded by their one shape, so that every profile names
  // every input and a context checks them all alike.
  for (auto& p : out)
    for (const Value* v : g.inputs)
      if (!p.min.count(v->name) && v->shape.fully_known()) {
        p.min[v->name] = p.opt[v->name] = p.max[v->name] = v->shape.concrete();
      }
  return out;
}

}  // namespace

// Shared by every build entry point: optimise the graph and choose a tactic per node.
namespace {

std::unique_ptr<PlanData> build_plan_impl(std::unique_ptr<Graph> g, const BuildOptions& o,
                                          std::vector<std::string>* calibration_targets) {
  auto report = [&](const std::string& s) {
    if (o.progress) o.progress(s);
    log(LogLevel::kInfo, "build: ", s);
  };
  KILN_EXPECT(o.opt_level >= 0 && o.opt_level <= 3, StatusCode::kInvalidArgument,
              "opt level ", o.opt_level, " does not exist (0, 1, 2 or 3)");
  std::string device = resolve_device(o.device);
  const Backend& backend = *find_backend(device);
  if (o.device.empty() && device == "cpu")
    report(cat("no GPU to build for (", cuda_unavailable_reason(), "); building for the CPU"));
  // INT8 scales (calibrated, or from the calibration cache) of the model as imported.
  std::map<std::string, double> scales;
  if (o.fp8 && backend.device()) {
    // Hopper's and Ada's tensor cores read float8; older cards have no FP8 tactic. And this
    // version has no CUDA tactic for float8 products at all: said plainly, rather than building
    // a plan whose float8 layers would run on the host.
    const std::string cc = backend.device()->info().compute_capability;
    const double v = std::atof(cc.c_str());
    KILN_EXPECT(v >= 8.9, StatusCode::kUnsupported, "FP8 needs compute capability 8.9 or newer (",
                backend.device()->info().gpu_name, " has ", cc, ")");
    KILN_EXPECT(false, StatusCode::kUnsupported,
                "FP8 plans build for the CPU only in this version (--device cpu): the CUDA "
                "backend has no float8 convolution or matrix-product tactic yet");
  }
  const bool quantize = o.int8 || o.fp8;
  if (quantize && !calibration_targets) scales = int8_scales(*g, o, report);
  // Marked outputs after calibration, whose cache belongs to the model as imported.
  if (!o.mark_outputs.empty()) {
    const bool all = std::find(o.mark_outputs.begin(), o.mark_outputs.end(), "*") != o.mark_outputs.end();
    std::vector<Value*> marked;
    if (all) {
      for (const auto& n : g->nodes())
        for (Value* v : n->outputs)
          if (v && !v->is_constant()) marked.push_back(v);
    } else {
      for (const std::string& name : o.mark_outputs) {
        Value* v = g->find_value(name);
        KILN_EXPECT(v && !v->is_constant() && v->producer, StatusCode::kInvalidArgument,
                    "cannot mark '", name, "' as an output: the model computes no tensor of that name");
        marked.push_back(v);
      }
    }
    for (Value* v : marked)
      if (!g->is_graph_output(v) && !g->is_graph_input(v)) g->outputs.push_back(v);
  }
  apply_input_shapes(*g, o);
  std::vector<OptimizationProfile> profiles = apply_profiles(*g, o);
  for (const std::string& id : o.excluded_tactics)
    KILN_EXPECT(backend.find_tactic(id) != nullptr, StatusCode::kInvalidArgument,
                "cannot exclude tactic '", id, "': the ", device, " backend has no such tactic");

  auto t0 = std::chrono::steady_clock::now();
  size_t before = g->nodes().size();
  PassContext pc;
  pc.opt_level = o.opt_level;
  pc.progress = o.progress;
  pc.target = &backend_traits(device);
  pc.fp16 = o.fp16;
  pc.tf32 = o.tf32;
  pc.layer_precisions = o.layer_precisions;
  if (calibration_targets) {
    // The graph as InsertQuantization would see it: its targets' inputs become outputs too.
    pc.stop_before_quantization = true;
    run_pipeline(*g, pc);
    pc.stop_before_quantization = false;
    for (Node* n : quantization_targets(*g, pc)) {
      Value* x = n->in(0);
      if (std::find(calibration_targets->begin(), calibration_targets->end(), x->name) !=
          calibration_targets->end())
        continue;
      calibration_targets->push_back(x->name);
      if (!g->is_graph_input(x) && !g->is_graph_output(x)) g->outputs.push_back(x);
    }
  }
  if (quantize && !calibration_targets) pc.activation_scales = &scales;
  if (o.fp8) pc.quantized_type = DataType::kFloat8E4M3FN;
  run_pipeline(*g, pc);
  verify_graph(*g);
  report(cat("optimized: ", before, " -> ", g->nodes().size(), " nodes"));
  KILN_EXPECT(o.precision_constraints == "prefer" || o.precision_constraints == "obey",
              StatusCode::kInvalidArgument, "precision constraints are 'prefer' or 'obey', not '",
              o.precision_constraints, "'");
  if (std::vector<std::string> unmet = unmet_layer_precisions(*g, pc); !unmet.empty()) {
    std::string list;
    for (const std::string& u : unmet) list += "\n  " + u;
    KILN_EXPECT(o.precision_constraints != "obey", StatusCode::kInvalidArgument,
                "--layer-precision cannot be obeyed:", list);
    for (const std::string& u : unmet) {
      log(LogLevel::kWarning, "layer precision: ", u);
      report("layer precision (preferred, not obeyed): " + u);
    }
  }

  // Tuning (BuildOptions::opt_level): level 2 times the candidates of the tactic the heuristic
  // picks on a device backend, level 3 also on the CPU and across every tactic that supports a
  // step. Candidates are timed at the tuning shapes: the first profile's opt shapes when there
  // are profiles (a copy of the graph inferred at them), else the graph's own fixed shapes.
  const bool tune = o.opt_level >= 3 || (o.opt_level == 2 && backend.device() != nullptr);
  const bool every_tactic = o.opt_level >= 3;
  TimingCache cache(Autotuner::device_identity(backend));
  bool rewrite_cache = false;
  if (!o.timing_cache.empty()) {
    TimingCache::Load l = cache.load(o.timing_cache);
    if (!l.problem.empty()) {
      log(LogLevel::kWarning, "timing cache ", o.timing_cache, " ignored: ", l.problem,
          "; it will be rewritten");
      report(cat("timing cache ", o.timing_cache, " ignored: ", l.problem));
      rewrite_cache = true;
    } else if (l.read) {
      report(cat("timing cache ", o.timing_cache, ": ", cache.size(), " entries"));
    }
  }
  KILN_EXPECT(o.max_workspace_mib >= 0 && o.max_workspace_mib <= (int64_t{1} << 24),
              StatusCode::kInvalidArgument, "workspace of ", o.max_workspace_mib,
              " MiB: give a size from 1 MiB to 16 TiB, or 0 for each tactic's own bound");
  TacticLimits limits;
  limits.max_workspace = static_cast<size_t>(o.max_workspace_mib) << 20;
  Autotuner tuner(backend, &cache, limits);
  std::unique_ptr<Graph> at_opt;
  if (tune && !profiles.empty()) {
    at_opt = g->clone();
    for (Value* v : at_opt->inputs) v->shape = Shape::from(profiles[0].opt.at(v->name));
    infer_graph(*at_opt);
  }
  auto tuning_node = [&](size_t idx) -> const Node* {
    const Node* n = at_opt ? at_opt->nodes()[idx].get() : g->nodes()[idx].get();
    for (const Value* v : n->inputs)
      if (v && !v->shape.fully_known()) return nullptr;
    for (const Value* v : n->outputs)
      if (!v->shape.fully_known()) return nullptr;
    return n->def && n->def->data_dependent_shape ? nullptr : n;
  };

  auto plan = std::make_unique<PlanData>();
  size_t i = 0;
  const size_t total = g->nodes().size();
  int64_t tuned_steps = 0;
  auto last_report = std::chrono::steady_clock::now();
  // One step per node: the heuristic's tactic, or the tuned one. `tn` is the node at the
  // tuning shapes (null: not tuned).
  auto choose_step = [&](const Node& n, const Node* tn, size_t idx) -> Step {
    const Tactic* t = &backend.choose(n, o.excluded_tactics);
    std::string choice;
    if (tn) {
      // The heuristic's tactic, or (level 3) the fastest of every tactic that supports the
      // node; a tactic without candidates is timed as it is.
      std::vector<const Tactic*> tactics = {t};
      if (every_tactic) {
        tactics.clear();
        for (const Tactic* c : backend.tactics())
          if (Backend::considers(*c, n, o.excluded_tactics) && !c->computes_on_host() &&
              c->supports(n).is_ok())
            tactics.push_back(c);
        if (tactics.empty()) tactics = {t};
      }
      double best = 0;
      bool any = false;
      for (const Tactic* c : tactics) {
        TuneResult r = tuner.tune(*c, *tn, every_tactic);
        if (r.timed == 0 && !r.cached) continue;  // nothing to choose
        if (!any || r.ms < best) {
          best = r.ms;
          t = c;
          choice = r.choice;
          any = true;
        }
      }
      tuned_steps += any;
    }
    return {idx, std::string(t->id()), t->prepare_choice(n, choice, limits)};
  };
  // Control flow: each sub-graph gets its own step sequence, chosen like the plan's (tuned where
  // its shapes are fully known at build time).
  std::function<std::vector<std::vector<Step>>(const Node&)> body_steps =
      [&](const Node& n) {
        std::vector<std::vector<Step>> bodies;
        for (const auto& sg : n.subgraphs) {
          std::vector<Step> steps;
          size_t k = 0;
          for (const auto& sn : sg->nodes()) {
            bool known = tune && !sn->def->data_dependent_shape;
            for (const Value* v : sn->inputs)
              if (v && !v->shape.fully_known()) known = false;
            for (const Value* v : sn->outputs)
              if (!v->shape.fully_known()) known = false;
            try {
              Step st = choose_step(*sn, known ? sn.get() : nullptr, k++);
              st.bodies = body_steps(*sn);
              steps.push_back(std::move(st));
            } catch (const Error& e) {
              if (!e.node().empty()) throw;
              throw Error(e.code(), e.message(), cat(sn->label(), " in a sub-graph of ", n.label()));
            }
          }
          bodies.push_back(std::move(steps));
        }
        return bodies;
      };
  for (auto& n : g->nodes()) {
    try {
      Step st = choose_step(*n, tune ? tuning_node(i) : nullptr, i);
      st.bodies = body_steps(*n);
      plan->steps.push_back(std::move(st));
    } catch (const Error& e) {
      if (!e.node().empty()) throw;
      throw Error(e.code(), e.message(), n->label());
    }
    ++i;
    // Preparing GPU steps compiles kernels and tuning times them: say how far along the build
    // is every few seconds.
    auto now = std::chrono::steady_clock::now();
    if (now - last_report > std::chrono::seconds(2) && i < total) {
      report(cat("prepared ", i, "/", total, " steps (", tuner.timed(), " candidates timed, ",
                 tuner.cache_hits(), " results from the timing cache, ", tuner.reused(),
                 " repeated steps)"));
      last_report = now;
    }
  }
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  report(cat("tactics chosen for ", plan->steps.size(), " steps on ", device, " in ",
             static_cast<int64_t>(ms), " ms"));
  if (tune)
    report(cat("tuned ", tuned_steps, " steps: ", tuner.timed(), " candidates timed, ",
               tuner.cache_hits(), " results from the timing cache, ", tuner.reused(),
               " repeated steps"));
  if (!o.timing_cache.empty() && (cache.added() > 0 || rewrite_cache)) {
    cache.save(o.timing_cache);
    report(cat("timing cache ", o.timing_cache, ": wrote ", cache.size(), " entries"));
  }
  plan->info.kiln_version = KILN_VERSION;
  plan->info.device = device;
  if (const DeviceApi* d = backend.device()) {
    DeviceInfo di = d->info();
    plan->info.gpu_name = di.gpu_name;
    plan->info.compute_capability = di.compute_capability;
    plan->info.cuda_version = di.cuda_version;
    plan->info.cudnn_version = di.cudnn_version;
    plan->info.cublaslt_version = di.cublaslt_version;
  }
  if (o.fp16) plan->info.extra["precision"] = "fp16";
  if (o.tf32) plan->info.extra["tf32"] = "on";
  plan->graph = std::move(g);
  plan->profiles = std::move(profiles);
  return plan;
}

}  // namespace

std::unique_ptr<PlanData> build_plan(std::unique_ptr<Graph> g, const BuildOptions& o) {
  return build_plan_impl(std::move(g), o, nullptr);
}

std::unique_ptr<PlanData> build_calibration_plan(std::unique_ptr<Graph> g, const BuildOptions& o,
                                                 std::vector<std::string>& targets) {
  return build_plan_impl(std::move(g), o, &targets);
}

Builder::Builder(BuildOptions options) : options_(std::move(options)) {}

namespace {
Status build_from_model(const onnx::ModelProto& m, const BuildOptions& o,
                        std::shared_ptr<Plan>& out) {
  if (o.progress) o.progress(cat("imported model (opset ", m.default_opset(), ", producer '",
                                 m.producer_name, "')"));
  auto g = onnx::import_model_or_throw(m);
  if (o.progress) o.progress(cat("imported ", g->nodes().size(), " canonical nodes"));
  out = PlanAccess::make(build_plan(std::move(g), o));
  return Status::ok();
}
}  // namespace

Status Builder::build_from_onnx(const std::string& path, std::shared_ptr<Plan>& out) const {
  return guard([&] {
    if (options_.progress) options_.progress("reading " + path);
    onnx::ModelProto m = onnx::read_model(path);
    Status s = build_from_model(m, options_, out);
    if (!s) throw Error(s.code(), s.message());
  });
}

Status Builder::build_from_onnx_bytes(std::string_view bytes, std::shared_ptr<Plan>& out) const {
  return guard([&] {
    auto copy = std::make_shared<std::string>(bytes);
    onnx::ModelProto m = onnx::parse_model(reinterpret_cast<const uint8_t*>(copy->data()),
                                           copy->size(), copy, "");
    Status s = build_from_model(m, options_, out);
    if (!s) throw Error(s.code(), s.message());
  });
}

Status Builder::build(const Network& network, std::shared_ptr<Plan>& out) const {
  return guard([&] {
    KILN_EXPECT(network.first_error().empty(), StatusCode::kInvalidArgument,
                "the network is invalid: ", network.first_error());
    KILN_EXPECT(!network.graph().outputs.empty(), StatusCode::kInvalidArgument,
                "the network has no outputs; call mark_output()");
    out = PlanAccess::make(build_plan(network.graph().clone(), options_));
  });
}

Status inspect_onnx(const std::string& path, ModelInfo& info) {
  return guard([&] {
    onnx::ModelProto m = onnx::read_model(path);
    info = ModelInfo();
    info.producer = m.producer_name;
    info.opset = m.default_opset();
    const onnx::GraphProto& gp = *m.graph;
    info.num_nodes = gp.node.size();
    info.num_weights = gp.initializer.size();
    for (const auto& t : gp.initializer) info.weight_bytes += t->value.defined() ? t->value.nbytes() : 0;
    for (const auto& n : gp.node) info.onnx_op_histogram[n.op_type]++;
    onnx::ImportResult r = onnx::import_model(m);
    for (const auto& p : r.problems)
      info.unsupported.push_back(cat("node '", p.node_name, "' op ", p.op_type, " (opset ", p.opset,
                                     "): ", p.reason));
    auto tdesc = [](const onnx::ValueInfoProto& v) {
      TensorDesc d;
      d.name = v.name;
      d.dtype = v.type.elem_type;
      for (const auto& dim : v.type.shape) {
        d.dims.push_back(dim.has_value ? dim.value : -1);
        d.dim_names.push_back(dim.has_value ? "" : (dim.param.empty() ? "?" : dim.param));
      }
      return d;
    };
    std::set<std::string> inits;
    for (const auto& t : gp.initializer) inits.insert(t->name);
    for (const auto& v : gp.input)
      if (!inits.count(v.name)) info.inputs.push_back(tdesc(v));
    for (const auto& v : gp.output) info.outputs.push_back(tdesc(v));
  });
}

std::string version() { return KILN_VERSION; }

}  // namespace kiln
