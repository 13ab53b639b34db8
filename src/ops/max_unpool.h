// MaxUnpool: the partial inverse of max pooling. Inputs X [N, C, D1..Dk], Indices (int64, same
// shape, as MaxPool's Indices output: flat positions in the unpooled tensor of the default shape
// below), optional output_shape (int64 [k + 2]). Every X element is written at its index in a
// zero tensor of the default shape, (D - 1) * stride - pad_begin - pad_end + kernel per axis;
// when output_shape is given, that tensor is placed at the origin of a zero output of that shape
// (the ONNX reference's semantics).
#pragma once
#include "ir/attrs.h"

namespace kiln {

struct MaxUnpoolAttrs : AttrsOf<MaxUnpoolAttrs> {
  Ints kernel;   // per spatial axis
  Ints strides;  // empty means all 1
  Ints pads;     // begin per axis, then end per axis; empty means all 0
  template <class V>
  void reflect(V& v) {
    v("kernel", kernel);
    v("strides", strides);
    v("pads", pads);
  }
};

}  // namespace kiln
