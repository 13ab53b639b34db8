// Plugin: a layer computed by a plugin object. Shapes and types come from the object's build
// capability; its DimExpr output shapes are evaluated here, to numbers where the input dims are
// known and to symbols where they are not.
#include "ops/plugin.h"

#include <cstring>

#include "common/error.h"
#include "ops/op.h"

namespace kiln {

std::string plugin_label(const std::string& name, const std::string& version, const std::string& ns) {
  return cat("'", name, "' (version ", version.empty() ? "any" : version, ", namespace '", ns, "')");
}

std::string plugin_label(const PluginAttrs& a) {
  return plugin_label(a.plugin_name, a.plugin_version, a.plugin_namespace);
}

std::unique_ptr<Plugin> clone_plugin_of(const Node& n) {
  std::unique_ptr<Plugin> p = plugin_of(n).clone();
  KILN_EXPECT(p != nullptr, StatusCode::kInternal, "plugin ", plugin_label(n.a<PluginAttrs>()),
              " returned no clone");
  return p;
}

const Plugin& plugin_of(const Node& n) {
  // The object is a cache of what the reflected attributes say: filling it in does not change the
  // node's meaning.
  auto& a = const_cast<PluginAttrs&>(n.a<PluginAttrs>());
  if (a.instance) return *a.instance;
  auto creator = plugin_registry().find(a.plugin_name, a.plugin_version, a.plugin_namespace);
  if (!creator)
    fail(StatusCode::kIncompatible, "plugin ", plugin_label(a),
         " is not registered in this process; load the library that provides it (kiln --plugin "
         "LIB.so, or kiln::load_plugin_library(\"LIB.so\"))");
  std::unique_ptr<Plugin> p;
  std::string_view state;
  if (a.state.defined()) state = std::string_view(static_cast<const char*>(a.state.raw()), a.state.nbytes());
  Status st = creator->deserialize(state, p);
  if (!st.is_ok() || !p)
    fail(st.is_ok() ? StatusCode::kInternal : st.code(), "plugin ", plugin_label(a),
         " could not restore its state: ", st.is_ok() ? "no object returned" : st.message());
  a.instance = std::move(p);
  return *a.instance;
}

std::unique_ptr<PluginAttrs> plugin_attrs(std::shared_ptr<const Plugin> p) {
  auto a = std::make_unique<PluginAttrs>();
  a->plugin_name = p->core().name();
  a->plugin_version = p->core().version();
  a->plugin_namespace = p->core().plugin_namespace();
  std::string bytes = p->runtime().serialize();
  a->state = Tensor(DataType::kUInt8, {static_cast<int64_t>(bytes.size())});
  if (!bytes.empty()) std::memcpy(a->state.raw(), bytes.data(), bytes.size());
  a->instance = std::move(p);
  return a;
}

namespace {

Shape permuted(const Shape& s, const Ints& perm) {
  Shape o = s;
  for (size_t i = 0; i < perm.size(); ++i) o.dims[i] = s.dims[perm[i]];
  return o;
}

// An expression's value: a number, a symbolic text, or unknown.
struct Eval {
  enum { kKnown, kSymbol, kUnknown } state = kUnknown;
  int64_t value = 0;
  std::string text;
};

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

Eval evaluate(const DimExpr& e, const std::vector<Shape>& ins, const std::string& where) {
  using K = DimExpr::Kind;
  Eval r;
  switch (e.kind()) {
    case K::kConstant:
      r.state = Eval::kKnown;
      r.value = e.value();
      return r;
    case K::kInput: {
      int32_t i = e.input_index(), ax = e.axis();
      if (i < 0 || static_cast<size_t>(i) >= ins.size() || ax < 0 ||
          static_cast<size_t>(ax) >= ins[i].rank())
        fail(StatusCode::kInvalidModel, where, " refers to dim ", ax, " of input ", i,
             ", which does not exist");
      const Dim& d = ins[i].dims[ax];
      if (d.known()) {
        r.state = Eval::kKnown;
        r.value = d.value;
      } else if (!d.symbol.empty()) {
        r.state = Eval::kSymbol;
        r.text = d.symbol;
      }
      return r;
    }
    default:
      break;
  }
  Eval a = evaluate(e.lhs(), ins, where), b = evaluate(e.rhs(), ins, where);
  if (a.state == Eval::kUnknown || b.state == Eval::kUnknown) return r;
  if (a.state == Eval::kKnown && b.state == Eval::kKnown) {
    r.state = Eval::kKnown;
    int64_t x = a.value, y = b.value;
    if ((e.kind() == K::kFloorDiv || e.kind() == K::kCeilDiv) && y == 0)
      fail(StatusCode::kInvalidModel, where, " divides by zero");
    switch (e.kind()) {
      case K::kAdd: r.value = x + y; break;
      case K::kSub: r.value = x - y; break;
      case K::kMul: r.value = x * y; break;
      case K::kFloorDiv: r.value = floor_div(x, y); break;
      case K::kCeilDiv: r.value = -floor_div(-x, y); break;
      case K::kMax: r.value = std::max(x, y); break;
      case K::kMin: r.value = std::min(x, y); break;
      default: break;
    }
    return r;
  }
  auto text = [](const Eval& v) { return v.state == Eval::kKnown ? std::to_string(v.value) : v.text; };
  r.state = Eval::kSymbol;
  switch (e.kind()) {
    case K::kAdd: r.text = cat("(", text(a), "+", text(b), ")"); break;
    case K::kSub: r.text = cat("(", text(a), "-", text(b), ")"); break;
    case K::kMul: r.text = cat(text(a), "*", text(b)); break;
    case K::kFloorDiv: r.text = cat("floor(", text(a), "/", text(b), ")"); break;
    case K::kCeilDiv: r.text = cat("ceil(", text(a), "/", text(b), ")"); break;
    case K::kMax: r.text = cat("max(", text(a), ",", text(b), ")"); break;
    case K::kMin: r.text = cat("min(", text(a), ",", text(b), ")"); break;
    default: break;
  }
  return r;
}

void infer(InferContext& ctx) {
  const Node& n = ctx.node();
  const auto& a = n.a<PluginAttrs>();
  const Plugin& p = plugin_of(n);
  const std::string label = cat("plugin ", plugin_label(a));
  std::vector<PluginTensorDesc> descs(n.inputs.size());
  std::vector<Shape> shapes(n.inputs.size());
  std::vector<DataType> dtypes(n.inputs.size(), DataType::kUndefined);
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    if (!ctx.has_input(i)) continue;
    Shape s = ctx.shape(i);
    if (!s.rank_known) ctx.error(cat(label, ": the rank of input ", i, " is not known"));
    if (a.layout(i) == PluginLayout::kChannelsLast) s = permuted(s, kFromChannelsLast);
    descs[i].dtype = dtypes[i] = ctx.dtype(i);
    descs[i].layout = a.layout(i);
    for (const Dim& d : s.dims) descs[i].dims.push_back(d.known() ? d.value : -1);
    shapes[i] = std::move(s);
  }
  const PluginBuild& b = p.build();
  const size_t nout = static_cast<size_t>(b.num_outputs());
  if (n.outputs.size() != nout)
    ctx.error(cat(label, " has ", nout, " outputs, but the layer has ", n.outputs.size()));
  std::vector<DataType> out_types;
  Status st = b.output_dtypes(dtypes, out_types);
  if (!st.is_ok()) ctx.error(cat(label, ": ", st.message()));
  std::vector<ShapeExpr> out_shapes;
  st = b.output_shapes(descs, out_shapes);
  if (!st.is_ok()) ctx.error(cat(label, ": ", st.message()));
  if (out_types.size() != nout || out_shapes.size() != nout)
    ctx.error(cat(label, " gave ", out_types.size(), " output types and ", out_shapes.size(),
                  " output shapes for its ", nout, " outputs"));
  for (size_t k = 0; k < nout; ++k) {
    Shape o;
    for (size_t d = 0; d < out_shapes[k].size(); ++d) {
      std::string where = cat(label, ": output ", k, " dim ", d);
      Eval e;
      try {
        e = evaluate(out_shapes[k][d], shapes, where);
      } catch (const Error& err) {
        ctx.error(err.message());
      }
      if (e.state == Eval::kKnown && e.value < 0)
        ctx.error(cat(where, " is negative (", e.value, ")"));
      if (e.state == Eval::kKnown) o.dims.push_back(Dim(e.value));
      else if (e.state == Eval::kSymbol) o.dims.push_back(Dim::sym(e.text));
      else o.dims.push_back(Dim::unknown());
    }
    if (a.layout(n.inputs.size() + k) == PluginLayout::kChannelsLast) {
      if (o.rank() != 4) ctx.error(cat(label, ": channels-last output ", k, " is not 4-D"));
      o = permuted(o, kToChannelsLast);
    }
    ctx.set_output(k, out_types[k], std::move(o));
  }
}

}  // namespace

const OpDef& kiln_op_plugin() {
  static const OpDef d{"Plugin", make_attrs_of<PluginAttrs>, infer, nullptr};
  return d;
}

}  // namespace kiln
