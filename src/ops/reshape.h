#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

// Reshape is a view: the output holds the input's elements in the same order.
//
// form "" (default): input 1 is the target shape with ONNX semantics (-1 = inferred from the
// element count; 0 = copy the input dim at that index, unless allowzero, where 0 is a real 0).
// The attribute forms take no shape input. Importers use them for Squeeze, Unsqueeze and Flatten
// when input dims are symbolic, so the output shape stays symbolic instead of becoming unknown:
//   "squeeze":   remove `axes` (each must be 1); empty axes = every dim of size 1
//   "unsqueeze": insert size-1 dims at `axes` (positions in the output)
//   "flatten":   [prod(dims[:axis]), prod(dims[axis:])]
// For squeeze and unsqueeze, an int input 1, when present, gives the axes instead of the attribute
// (ONNX models may compute them; then the output shape is known only at run time).
struct ReshapeAttrs : AttrsOf<ReshapeAttrs> {
  Int allowzero = 0;
  std::string form;
  Ints axes;
  Int axis = 1;
  template <class V>
  void reflect(V& v) {
    v("allowzero", allowzero);
    v("form", form);
    v("axes", axes);
    v("axis", axis);
  }
};

}  // namespace kiln
