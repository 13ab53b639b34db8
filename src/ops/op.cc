#include "ops/op.h"

#include <unordered_map>

#include "common/error.h"
#include "ops/registry_gen.h"

namespace kiln {

const Value& InferContext::input(size_t i) const {
  if (!has_input(i)) error(cat("input ", i, " is required but missing"));
  return *node_.inputs[i];
}

const Tensor* InferContext::value(size_t i) const {
  if (!has_input(i)) return nullptr;
  if (known_[i]) return known_[i];
  const Value* v = node_.inputs[i];
  return v->is_constant() ? &v->data : nullptr;
}

void InferContext::set_output(size_t i, DataType dtype, Shape shape) {
  if (i >= node_.outputs.size()) return;  // optional output not requested
  Value* v = node_.outputs[i];
  v->dtype = dtype;
  v->shape = std::move(shape);
}

void InferContext::error(const std::string& msg) const {
  throw Error(StatusCode::kInvalidModel, msg, node_.name + " (" + std::string(node_.op()) + ")");
}

namespace {
const std::unordered_map<std::string_view, const OpDef*>& table() {
  static const auto t = [] {
    std::unordered_map<std::string_view, const OpDef*> m;
    for (const OpDef* d : generated_op_defs()) m[d->name] = d;
    return m;
  }();
  return t;
}
}  // namespace

const OpDef* find_op(std::string_view name) {
  auto it = table().find(name);
  return it == table().end() ? nullptr : it->second;
}

const OpDef& op_def(std::string_view name) {
  const OpDef* d = find_op(name);
  KILN_CHECK(d != nullptr, "unknown canonical op '", std::string(name), "'");
  return *d;
}

}  // namespace kiln
