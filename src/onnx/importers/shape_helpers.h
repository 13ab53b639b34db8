// Helpers for the importers of shape and data-movement ops (shape_ops.cc, movement.cc,
// indexing.cc): import-time folding of small constant subgraphs, reshapes to exact or computed
// shapes, and slices.
#pragma once
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "onnx/importer.h"
#include "ops/concat.h"
#include "ops/fold.h"
#include "ops/gather.h"
#include "ops/op.h"
#include "ops/reshape.h"
#include "ops/shape.h"
#include "ops/transpose.h"

namespace kiln::onnx {

// Import-time folding is for shape-sized tensors only; the fold_constants pass does the rest.
constexpr size_t kImportFoldBytes = 16 << 10;

// Folds the node producing outs when its inputs are constant and its outputs small (ops/fold.h).
// Shape subgraphs (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) then resolve while
// importing, so later importers see exact shapes and constant operands.
inline void fold_if_constant(ImportContext& c, const std::vector<Value*>& outs) {
  if (outs.empty() || !outs[0]->producer) return;
  Node* n = outs[0]->producer;
  if (fold_node(*n, kImportFoldBytes)) c.graph().remove_node(n);
}

// ImportContext::add, then fold_if_constant.
inline std::vector<Value*> add_folded(ImportContext& c, const std::string& op,
                                      std::vector<Value*> ins,
                                      std::unique_ptr<Attrs> attrs = nullptr,
                                      size_t n_outputs = 1) {
  auto outs = c.add(op, std::move(ins), std::move(attrs), n_outputs);
  fold_if_constant(c, outs);
  return outs;
}
inline Value* add_folded1(ImportContext& c, const std::string& op, std::vector<Value*> ins,
                          std::unique_ptr<Attrs> attrs = nullptr) {
  return add_folded(c, op, std::move(ins), std::move(attrs), 1)[0];
}

// Reshape to a shape tensor whose entries are exact dims (no 0-copies, no -1).
inline Value* reshape_exact(ImportContext& c, Value* x, Value* shape) {
  auto a = std::make_unique<ReshapeAttrs>();
  a->allowzero = 1;
  return add_folded1(c, "Reshape", {x, shape}, std::move(a));
}
inline Value* reshape_to(ImportContext& c, Value* x, const Dims& dims) {
  return reshape_exact(c, x, c.const_i64(dims));
}

// Reshape in one of its attribute forms ("squeeze", "unsqueeze", "flatten"), with the axes as an
// attribute or, when `axes_input` is given, as a run-time input. When the result's shape comes out
// fully known, the node is rewritten to the plain form with a constant shape, which is what passes
// and backends expect most.
inline Value* reshape_form(ImportContext& c, Value* x, const std::string& form, Ints axes,
                           int64_t axis = 1, Value* axes_input = nullptr) {
  auto a = std::make_unique<ReshapeAttrs>();
  a->form = form;
  a->axes = std::move(axes);
  a->axis = axis;
  std::vector<Value*> ins = {x};
  if (axes_input) ins.push_back(axes_input);
  Value* y = c.add1("Reshape", std::move(ins), std::move(a));
  if (y->shape.fully_known()) {
    Node* n = y->producer;
    Value* shape = c.const_i64(y->shape.concrete());
    auto plain = std::make_unique<ReshapeAttrs>();
    plain->allowzero = 1;
    n->attrs = std::move(plain);
    if (n->inputs.size() == 2) {
      c.graph().set_input(n, 1, shape);
    } else {
      n->inputs.push_back(shape);
      shape->consumers.push_back(n);
    }
  }
  fold_if_constant(c, {y});
  return y;
}

inline Value* transpose(ImportContext& c, Value* x, Ints perm) {
  auto a = std::make_unique<TransposeAttrs>();
  a->perm = std::move(perm);
  return add_folded1(c, "Transpose", {x}, std::move(a));
}

inline Value* concat(ImportContext& c, std::vector<Value*> xs, int64_t axis) {
  auto a = std::make_unique<ConcatAttrs>();
  a->axis = axis;
  return add_folded1(c, "Concat", std::move(xs), std::move(a));
}

// One entry of a computed shape: (input dim `src` / div) * mul, or the constant mul when src < 0.
struct DimTerm {
  int64_t src = -1;
  int64_t div = 1;
  int64_t mul = 1;
};

// A 1-D int64 shape tensor built from x's dims. A constant when every dim it reads is known;
// otherwise Shape -> Gather -> Pointwise -> Concat, which folds once the build fixes the shapes.
inline Value* computed_shape(ImportContext& c, Value* x, const std::vector<DimTerm>& terms) {
  const Shape& s = x->shape;
  bool known = true;
  for (const DimTerm& t : terms)
    if (t.src >= 0 &&
        (!s.rank_known || t.src >= static_cast<int64_t>(s.rank()) || !s.dims[t.src].known()))
      known = false;
  if (known) {
    Dims d;
    for (const DimTerm& t : terms)
      d.push_back(t.src < 0 ? t.mul : s.dims[t.src].value / t.div * t.mul);
    return c.const_i64(d);
  }
  Value* shape = add_folded1(c, "Shape", {x});
  std::vector<Value*> parts;
  for (const DimTerm& t : terms) {
    if (t.src < 0) {
      parts.push_back(c.const_i64({t.mul}));
      continue;
    }
    Value* d =
        add_folded1(c, "Gather", {shape, c.const_i64({t.src})}, std::make_unique<GatherAttrs>());
    if (t.div != 1) d = c.binary(expr::Op::kDiv, d, c.const_i64({t.div}));
    if (t.mul != 1) d = c.binary(expr::Op::kMul, d, c.const_i64({t.mul}));
    parts.push_back(d);
  }
  return concat(c, std::move(parts), 0);
}

// x[start:end] along one axis (ends past the dim clamp, as in ONNX Slice).
inline Value* slice_axis(ImportContext& c, Value* x, int64_t axis, Value* start, Value* end) {
  return add_folded1(c, "Slice", {x, start, end, c.const_i64({axis})});
}

}  // namespace kiln::onnx
