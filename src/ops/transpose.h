#pragma once
#include "ir/attrs.h"

namespace kiln {

// Output dim i is input dim perm[i]; an empty perm reverses the dims (ONNX default).
// The layout pass makes Transposes that also reformat (TensorRT's reformat layers): `to` converts
// the elements to another float type on the way (kUndefined: same type), and `pad_end` appends
// zeros at the end of each output dim (empty: none), e.g. NCHW float32 -> NHWC float16 with the
// channels padded from 3 to 4 for tensor cores, in one pass over the data.
struct TransposeAttrs : AttrsOf<TransposeAttrs> {
  Ints perm;
  DataType to = DataType::kUndefined;
  Ints pad_end;
  template <class V>
  void reflect(V& v) {
    v("perm", perm);
    v("to", to);
    v("pad_end", pad_end);
  }
  bool reformats() const { return to != DataType::kUndefined || !pad_end.empty(); }
};

}  // namespace kiln
