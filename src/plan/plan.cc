#include <cstring>
#include <sstream>
#include <unordered_set>

#include "common/api_guard.h"
#include "common/file.h"
#include "ops/conv.h"
#include "ops/mat_mul.h"
#include "ops/plugin.h"
#include "ops/transpose.h"
#include "plan/plan_data.h"
#include "runtime/engine_impl.h"

namespace kiln {

namespace {

// Finds a `channels_last = true` attribute, whichever op declares it (Conv and Pool today), so
// that an op that learns the attribute later is shown right without a change here.
class ChannelsLastFinder : public AttrVisitor {
 public:
  bool found = false;
  void operator()(const char* n, bool& v) override {
    if (std::strcmp(n, "channels_last") == 0) found |= v;
  }
  void operator()(const char*, int64_t&) override {}
  void operator()(const char*, double&) override {}
  void operator()(const char*, std::string&) override {}
  void operator()(const char*, Ints&) override {}
  void operator()(const char*, Floats&) override {}
  void operator()(const char*, DataType&) override {}
  void operator()(const char*, Tensor&) override {}
  void operator()(const char*, expr::Program&) override {}
};

bool has_channels_last(const Node& n) {
  if (!n.attrs) return false;
  ChannelsLastFinder f;
  // accept() is non-const only because the same visitors also deserialise; this one reads.
  const_cast<Attrs&>(*n.attrs).accept(f);
  return f.found;
}

// Whether n writes its outputs channels-last. Conv and Pool say so in an attribute; the
// Pointwise and Concat nodes that ChooseLayout pulls into an NHWC region carry no attribute, but
// only region nodes read region (NHWC) values directly, since everything outside reads them
// through a Transpose; a Transpose to NHWC order is channels-last by construction.
bool writes_channels_last(const Node& n, const std::unordered_set<const Value*>& nhwc) {
  if (has_channels_last(n)) return true;
  if (n.op() == "Transpose") {
    const Value* x = n.in(0);
    return x && x->shape.rank_known && x->shape.rank() == 4 &&
           n.a<TransposeAttrs>().perm == Ints{0, 2, 3, 1};
  }
  if (n.op() == "Pointwise" || n.op() == "Concat")
    for (const Value* v : n.inputs)
      if (v && nhwc.count(v)) return true;
  return false;
}

std::string value_list(const std::vector<Value*>& vs) {
  std::string s;
  for (const Value* v : vs) {
    if (!v) continue;
    if (!s.empty()) s += ", ";
    s += v->str();
  }
  return s;
}

std::string origins_brief(const std::vector<std::string>& o) {
  std::string s;
  size_t shown = o.size() > 3 ? 2 : o.size();
  for (size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + o[i];
  if (shown < o.size()) s += ", \u2026 (+" + std::to_string(o.size() - shown) + ")";
  return s;
}

}  // namespace

std::string TensorDesc::str() const {
  std::string s = name + ": " + dtype_name(dtype) + "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ",";
    s += dims[i] >= 0 ? std::to_string(dims[i]) : (i < dim_names.size() ? dim_names[i] : "?");
  }
  return s + "]";
}

Plan::Plan(std::unique_ptr<PlanData> d) : data_(std::move(d)) {}
Plan::~Plan() = default;

namespace {

// Every plugin layer's object (sub-graphs included), from the registry and the state the plan
// stores: a plan whose plugin is not registered fails on loading, naming it, rather than at its
// first run.
void restore_plugins(const Graph& g) {
  for (const auto& n : g.nodes()) {
    if (n->op() == "Plugin") {
      try {
        plugin_of(*n);
      } catch (const Error& e) {
        throw Error(e.code(), cat("plugin layer '", n->name, "': ", e.message()));
      }
    }
    for (const auto& sg : n->subgraphs) restore_plugins(*sg);
  }
}

}  // namespace

std::shared_ptr<Plan> PlanAccess::make(std::unique_ptr<PlanData> d) {
  restore_plugins(*d->graph);
  return std::shared_ptr<Plan>(new Plan(std::move(d)));
}

std::string Plan::serialize() const { return serialize_plan(*data_); }

Status Plan::save(const std::string& path) const {
  return guard([&] { write_file(path, serialize_plan(*data_)); });
}

Status Plan::load(const std::string& path, std::shared_ptr<Plan>& out) {
  return guard([&] {
    auto f = MappedFile::open(path);
    try {
      out = PlanAccess::make(deserialize_plan(f->data(), f->size(), f));
    } catch (const Error& e) {
      throw Error(e.code(), "'" + path + "': " + e.message());
    }
  });
}

Status Plan::deserialize(std::string_view bytes, std::shared_ptr<Plan>& out) {
  return guard([&] {
    // Copy into 64-byte aligned storage so that weights can be borrowed in place.
    Tensor buf(DataType::kUInt8, {static_cast<int64_t>(bytes.size())});
    std::memcpy(buf.raw(), bytes.data(), bytes.size());
    auto keep = std::make_shared<Tensor>(buf);
    out = PlanAccess::make(deserialize_plan(buf.data<uint8_t>(), bytes.size(), keep));
  });
}

std::vector<TensorDesc> Plan::inputs() const { return describe_values(data_->graph->inputs); }
std::vector<TensorDesc> Plan::outputs() const { return describe_values(data_->graph->outputs); }
std::string Plan::device() const { return data_->info.device; }
size_t Plan::num_steps() const { return data_->steps.size(); }

std::string Plan::describe() const {
  std::ostringstream os;
  const BuildInfo& b = data_->info;
  os << "kiln plan: built by kiln " << b.kiln_version << " for " << b.device;
  if (!b.gpu_name.empty())
    os << " (" << b.gpu_name << ", compute capability " << b.compute_capability << ", CUDA "
       << b.cuda_version << ", cuDNN " << b.cudnn_version << ", cuBLASLt " << b.cublaslt_version
       << ")";
  for (const auto& [k, v] : b.extra) os << ", " << k << " " << v;
  os << "\n";
  for (const auto& d : inputs()) os << "  input  " << d.str() << "\n";
  for (const auto& d : outputs()) os << "  output " << d.str() << "\n";
  size_t weights = 0, wbytes = 0;
  for (auto& v : data_->graph->values())
    if (v->is_constant()) { ++weights; wbytes += v->data.nbytes(); }
  os << "  " << data_->steps.size() << " steps, " << weights << " constant tensors ("
     << wbytes << " bytes)\n";
  for (const PlanStep& s : steps()) {
    os << "  [" << s.index << "] " << s.op << " '" << s.name << "' -> " << s.tactic << " ("
       << s.precision << (s.layout == "-" ? "" : ", " + s.layout) << ")"
       << (s.on_host ? " [on the host]" : "");
    if (s.origins.size() != 1 || s.origins[0] != s.name) os << " covers " << origins_brief(s.origins);
    os << "\n";
  }
  return os.str();
}

const std::vector<OptimizationProfile>& Plan::profiles() const { return data_->profiles; }

namespace {
// Host steps of a step sequence and of the sub-graphs' step sequences inside it.
size_t host_steps(const std::string& device, const std::vector<Step>& steps) {
  size_t n = 0;
  for (const Step& st : steps) {
    n += step_computes_on_host(device, st.tactic);
    for (const auto& b : st.bodies) n += host_steps(device, b);
  }
  return n;
}
}  // namespace

size_t Plan::num_host_steps() const {
  // Sub-graph steps count too: a GPU result must not come from the host unnoticed.
  return host_steps(data_->info.device, data_->steps);
}

std::vector<PlanStep> Plan::steps() const {
  std::vector<PlanStep> out;
  std::unordered_set<const Value*> nhwc;
  const auto& nodes = data_->graph->nodes();
  for (size_t i = 0; i < data_->steps.size(); ++i) {
    const Step& st = data_->steps[i];
    const Node& n = *nodes[st.node];
    PlanStep p;
    p.index = i;
    p.name = n.name;
    p.op = std::string(n.op());
    p.tactic = st.tactic;
    p.on_host = step_computes_on_host(data_->info.device, st.tactic);
    p.origins = node_origins(n);
    p.inputs = value_list(n.inputs);
    p.outputs = value_list(n.outputs);
    const Value* first_float = nullptr;
    for (const Value* o : n.outputs)
      if (o && dtype_is_float(o->dtype)) { first_float = o; break; }
    const Value* shown = first_float ? first_float : (n.outputs.empty() ? nullptr : n.outputs[0]);
    p.precision = shown ? dtype_name(shown->dtype) : "-";
    // A quantized product computes in int8 (its output is float): say so, with the output type.
    if ((n.op() == "Conv" && n.a<ConvAttrs>().quantized()) ||
        (n.op() == "MatMul" && n.a<MatMulAttrs>().quantized()))
      p.precision = cat("int8->", p.precision);
    bool channels_last = writes_channels_last(n, nhwc);
    if (channels_last)
      for (const Value* o : n.outputs)
        if (o) nhwc.insert(o);
    p.layout = "-";
    if (first_float && first_float->shape.rank_known) {
      size_t r = first_float->shape.rank();
      if (channels_last && r >= 3 && r <= 5)
        p.layout = r == 3 ? "NWC" : r == 4 ? "NHWC" : "NDHWC";
      else if (r == 4)
        p.layout = "NCHW";
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace kiln
