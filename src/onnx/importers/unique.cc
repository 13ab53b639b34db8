// ONNX Unique (opset 11), lowered to the canonical Unique op with as many outputs as the model
// asks for (Y, indices, inverse_indices, counts).
#include "ops/unique.h"

#include "onnx/importer.h"
#include "onnx/importers/shape_helpers.h"

namespace kiln::onnx {

namespace {

constexpr size_t kMaxOutputs = 4;

void imp_Unique(ImportContext& c) {
  Value* x = c.input(0);
  if (x->dtype == DataType::kString) c.deliberately_unsupported("Unique of strings");
  if (!dtype_is_supported(x->dtype))
    c.unsupported(cat("Unique of ", dtype_name(x->dtype), " is not supported"));
  if (c.num_outputs() > kMaxOutputs)
    c.invalid(cat("Unique has at most ", kMaxOutputs, " outputs, not ", c.num_outputs()));
  auto a = std::make_unique<UniqueAttrs>();
  a->sorted = c.attr_int("sorted", 1) != 0;
  if (c.has_attr("axis")) {
    a->has_axis = true;
    a->axis = c.attr_int("axis", 0);
    const Shape& s = x->shape;
    auto r = static_cast<int64_t>(s.rank());
    if (s.rank_known && (a->axis < -r || a->axis >= r))
      c.invalid(cat("axis ", a->axis, " is out of range for input of rank ", r));
  }
  // Only the outputs up to the last one the model names; unnamed ones before it stay unbound.
  size_t n_out = 1;
  for (size_t i = 1; i < kMaxOutputs; ++i)
    if (c.wants_output(i)) n_out = i + 1;
  auto outs = add_folded(c, "Unique", {x}, std::move(a), n_out);
  for (size_t i = 0; i < n_out; ++i)
    if (c.wants_output(i)) c.set_output(i, outs[i]);
}

}  // namespace

const ImporterList& kiln_import_unique() {
  static const ImporterList l{{
      {"Unique", imp_Unique, 11},
  }};
  return l;
}

}  // namespace kiln::onnx
