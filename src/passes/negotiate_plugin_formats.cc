// NegotiatePluginFormats: each Plugin node's input and output formats (dtype, layout), agreed
// with the plugin and its neighbours. See pass.h for the contract.
//
// The plugin is asked in position order (PluginBuild::supports_format, TensorRT's order too), for
// the device the target runs plugins on. An input is offered its current dtype first (what the
// neighbour already writes, so that no Cast is needed), then the other types of its kind
// (float32, float16, bfloat16, float64; or int64, int32), each linear first and then, for a 4-D
// value, channels-last. The outputs are offered the dtypes output_dtypes() gives for the chosen
// input dtypes. Where the choice differs from the graph, a Cast (a Pointwise program, as the
// importer builds one) and a Transpose go in front of an input, and behind an output, so that
// every reader still sees the value it saw.
#include <map>

#include "common/error.h"
#include "ops/infer.h"
#include "ops/plugin.h"
#include "ops/pointwise.h"
#include "ops/transpose.h"
#include "passes/pass.h"

namespace kiln {

namespace {

constexpr DataType kFloatOrder[] = {DataType::kFloat, DataType::kFloat16, DataType::kBFloat16,
                                    DataType::kDouble};
constexpr DataType kIntOrder[] = {DataType::kInt64, DataType::kInt32};

class Negotiator {
 public:
  Negotiator(Graph& g, PassContext& ctx) : g_(g), ctx_(ctx), device_(ctx.target->plugin_device()) {}

  void run() {
    std::vector<Node*> plugins;
    for (auto& n : g_.nodes())
      if (n->op() == "Plugin") plugins.push_back(n.get());
    for (Node* n : plugins) negotiate(n);
    if (!plugins.empty()) g_.toposort();
    ctx_.stats["negotiate_plugin_formats.plugins"] += static_cast<int64_t>(plugins.size());
    ctx_.stats["negotiate_plugin_formats.reformats"] += reformats_;
  }

 private:
  void negotiate(Node* n) {
    const Plugin& p = plugin_of(*n);
    auto& a = n->a<PluginAttrs>();
    const std::string label = cat("plugin layer '", n->name, "': plugin ", plugin_label(a));
    const char* dev = device_ == PluginDevice::kGpu ? "GPU" : "CPU";
    KILN_EXPECT(p.runtime().runs_on(device_), StatusCode::kUnsupported, label, " has no ", dev,
                " implementation, and the plan is for '", ctx_.target->name(),
                "'; build for a device the plugin implements");
    const size_t nin = n->inputs.size(), nout = n->outputs.size();
    std::vector<PluginFormat> f(nin + nout);
    auto accepted = [&](size_t pos) {
      return p.build().supports_format(pos, std::span<const PluginFormat>(f.data(), pos + 1), nin,
                                       device_);
    };
    auto offer = [&](size_t pos, const std::vector<DataType>& dtypes, bool rank4) {
      for (DataType t : dtypes)
        for (PluginLayout l : {PluginLayout::kLinear, PluginLayout::kChannelsLast}) {
          if (l == PluginLayout::kChannelsLast && !rank4) continue;
          f[pos] = {t, l};
          if (accepted(pos)) return true;
        }
      return false;
    };
    std::vector<DataType> in_types(nin, DataType::kUndefined);
    for (size_t i = 0; i < nin; ++i) {
      const Value* v = n->inputs[i];
      if (!v) {
        f[i] = {DataType::kUndefined, PluginLayout::kLinear};
        continue;
      }
      std::vector<DataType> order{v->dtype};
      if (dtype_is_float(v->dtype)) order.insert(order.end(), std::begin(kFloatOrder), std::end(kFloatOrder));
      else if (dtype_is_signed_int(v->dtype)) order.insert(order.end(), std::begin(kIntOrder), std::end(kIntOrder));
      KILN_EXPECT(offer(i, order, v->shape.rank_known && v->shape.rank() == 4),
                  StatusCode::kUnsupported, label, " accepts no format for input ", i, " (",
                  dtype_name(v->dtype), ") on the ", dev);
      in_types[i] = f[i].dtype;
    }
    std::vector<DataType> out_types;
    Status st = p.build().output_dtypes(in_types, out_types);
    KILN_EXPECT(st.is_ok() && out_types.size() == nout, StatusCode::kUnsupported, label,
                ": no output types for the negotiated input types: ", st.message());
    for (size_t k = 0; k < nout; ++k) {
      const Value* o = n->outputs[k];
      KILN_EXPECT(offer(nin + k, {out_types[k]}, o->shape.rank_known && o->shape.rank() == 4),
                  StatusCode::kUnsupported, label, " accepts no format for output ", k, " (",
                  dtype_name(out_types[k]), ") on the ", dev);
    }
    // Rewrite: inputs first (cast, then store channels-last), then the outputs.
    Ints layouts(nin + nout, 0);
    bool any_layout = false;
    for (size_t i = 0; i < nin; ++i) {
      Value* v = n->inputs[i];
      if (!v) continue;
      if (f[i].dtype != v->dtype) v = cast(v, f[i].dtype);
      if (f[i].layout == PluginLayout::kChannelsLast) {
        v = transpose(v, kToChannelsLast);
        layouts[i] = 1;
        any_layout = true;
      }
      if (v != n->inputs[i]) g_.set_input(n, i, v);
    }
    std::vector<Value*> wanted(n->outputs.begin(), n->outputs.end());
    std::vector<std::pair<DataType, Shape>> before;
    for (Value* o : wanted) before.emplace_back(o->dtype, o->shape);
    for (size_t k = 0; k < nout; ++k)
      if (f[nin + k].layout == PluginLayout::kChannelsLast) {
        layouts[nin + k] = 1;
        any_layout = true;
      }
    if (any_layout) a.layouts = layouts;
    // The node writes fresh values where its output differs from what readers expect.
    for (size_t k = 0; k < nout; ++k)
      if (f[nin + k].dtype != before[k].first || layouts[nin + k]) {
        Value* fresh = g_.add_value(wanted[k]->name + "/plugin");
        wanted[k]->producer = nullptr;
        n->outputs[k] = fresh;
        fresh->producer = n;
      }
    infer_node(*n);
    for (size_t k = 0; k < nout; ++k) {
      Value* o = n->outputs[k];
      if (o == wanted[k]) continue;
      Value* v = o;
      if (layouts[nin + k]) v = transpose(v, kFromChannelsLast);
      add_cast(v, wanted[k], before[k].first);
    }
  }

  Value* cast(Value* v, DataType to) {
    auto key = std::make_pair(v, to);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    Value* out = g_.add_value(cat(v->name, "/", dtype_name(to)), to, v->shape);
    add_cast(v, out, to);
    cache_[key] = out;
    return out;
  }

  // `to` written from `from` by a Cast (a copy when the types agree).
  void add_cast(Value* from, Value* to, DataType dtype) {
    auto a = std::make_unique<PointwiseAttrs>();
    a->program.input_types = {from->dtype};
    a->program.outputs = {from->dtype == dtype ? a->program.input(0)
                                               : a->program.cast(a->program.input(0), dtype)};
    Node* c = g_.add_node("Pointwise", {from}, {to}, std::move(a), g_.unique_name(to->name + "/cast"));
    infer_node(*c);
    ++reformats_;
  }

  Value* transpose(Value* v, const Ints& perm) {
    auto a = std::make_unique<TransposeAttrs>();
    a->perm = perm;
    Value* out = g_.add_value(v->name + "/transposed");
    Node* t = g_.add_node("Transpose", {v}, {out}, std::move(a), g_.unique_name(out->name));
    infer_node(*t);
    ++reformats_;
    return out;
  }

  Graph& g_;
  PassContext& ctx_;
  PluginDevice device_;
  std::map<std::pair<Value*, DataType>, Value*> cache_;
  int64_t reformats_ = 0;
};

}  // namespace

void NegotiatePluginFormats::run(Graph& g, PassContext& ctx) const { Negotiator(g, ctx).run(); }

}  // namespace kiln
