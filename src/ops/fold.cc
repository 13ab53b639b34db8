#include "ops/fold.h"

#include <algorithm>

#include "common/error.h"
#include "ops/op.h"

namespace kiln {

bool fold_node(Node& n, size_t max_bytes) {
  if (!n.def->compute) return false;  // no reference (Plugin): it runs in the plan
  std::vector<Tensor> ins(n.inputs.size());
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    Value* v = n.inputs[i];
    if (!v) continue;
    if (v->is_constant()) {
      ins[i] = v->data;
    } else if (n.def->reads_only_dims && v->shape.fully_known()) {
      // The op reads only the dims: give it a tensor without data.
      ins[i] = Tensor::borrow(v->dtype, v->shape.concrete(), nullptr, nullptr);
    } else {
      return false;
    }
  }
  const bool dd = n.def->data_dependent_shape;
  std::vector<Tensor> outs(n.outputs.size());
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    Value* o = n.outputs[k];
    if (!o->shape.fully_known()) {
      if (!dd) return false;  // inference could not settle the shape: leave it to run time
      continue;
    }
    size_t bytes = static_cast<size_t>(*o->shape.volume()) * std::max<size_t>(dtype_size(o->dtype), 1);
    if (bytes > max_bytes) return false;
    if (!dd) outs[k] = Tensor(o->dtype, o->shape.concrete());
  }
  try {
    n.def->compute(ComputeArgs{n, ins, outs});
  } catch (const Error& e) {
    if (!e.node().empty()) throw;
    // A node that fails on constant inputs fails at run time too: report it now, by name.
    throw Error(e.code(), e.message(), n.name + " (" + std::string(n.op()) + ")");
  }
  for (const Tensor& t : outs) {
    KILN_CHECK(t.defined(), "folding ", n.label(), " produced no output");
    if (t.nbytes() > max_bytes) return false;  // a data-dependent output came out large
  }
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    Value* o = n.outputs[k];
    o->data = std::move(outs[k]);
    o->dtype = o->data.dtype();
    o->shape = Shape::from(o->data.dims());
  }
  return true;
}

}  // namespace kiln
