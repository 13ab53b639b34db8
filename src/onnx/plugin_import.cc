#include "onnx/plugin_import.h"

#include "ops/plugin.h"

namespace kiln::onnx {

namespace {

std::string version_attr(const NodeProto& np) {
  const AttributeProto* a = np.attr("plugin_version");
  return a && a->type == AttributeProto::Type::kString ? a->s : std::string();
}

}  // namespace

std::shared_ptr<const PluginCreator> plugin_for(const std::string& domain, const NodeProto& np) {
  return plugin_registry().find(np.op_type, version_attr(np), domain);
}

void import_plugin(ImportContext& ctx, const PluginCreator& creator) {
  using T = AttributeProto::Type;
  PluginFields fields;
  for (const AttributeProto& a : ctx.proto().attribute) {
    if (a.name == "plugin_version") continue;
    switch (a.type) {
      case T::kInt: fields.set_int(a.name, a.i); break;
      case T::kFloat: fields.set_float(a.name, a.f); break;
      case T::kString: fields.set_string(a.name, a.s); break;
      case T::kInts: fields.set_ints(a.name, a.ints); break;
      case T::kFloats: fields.set_floats(a.name, {a.floats.begin(), a.floats.end()}); break;
      case T::kTensor: {
        const Tensor* t = ctx.attr_tensor(a.name);
        if (!t || !t->defined()) ctx.unsupported(cat("attribute '", a.name, "' is not a numeric tensor"));
        fields.set_tensor(a.name, t->dtype(), t->dims(),
                          std::string(static_cast<const char*>(t->raw()), t->nbytes()));
        break;
      }
      default:
        ctx.unsupported(cat("attribute '", a.name, "' is of a kind a plugin field cannot hold"));
    }
  }
  std::unique_ptr<Plugin> p;
  Status st = creator.create(fields, p);
  if (!st.is_ok() || !p)
    ctx.invalid(cat("plugin ", plugin_label(creator.name(), creator.version(), creator.plugin_namespace()),
                    " refused the node's attributes: ", st.is_ok() ? "no object returned" : st.message()));
  const size_t nout = static_cast<size_t>(std::max<int32_t>(p->build().num_outputs(), 0));
  if (ctx.num_outputs() > nout)
    ctx.invalid(cat("the node names ", ctx.num_outputs(), " outputs; the plugin has ", nout));
  std::vector<Value*> ins;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) ins.push_back(ctx.input_or_null(i));
  auto outs = ctx.add("Plugin", std::move(ins), plugin_attrs(std::shared_ptr<const Plugin>(std::move(p))), nout);
  for (size_t i = 0; i < ctx.num_outputs(); ++i)
    if (ctx.wants_output(i)) ctx.set_output(i, outs[i]);
}

}  // namespace kiln::onnx
