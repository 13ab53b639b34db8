// Pool: max / average / Lp pooling over the spatial axes of X [N, C, D1..Dk] (NCHW). Output 0 is
// Y [N, C, O1..Ok]; max pooling may also produce output 1, Indices (int64): for each output the
// position of the maximum in X flattened with ONNX's semantics (over the whole tensor including
// N and C, padding not counted, the spatial part row-major or, with storage_order 1,
// column-major). Ties go to the first maximum in row-major window order.
#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

struct PoolAttrs : AttrsOf<PoolAttrs> {
  std::string kind = "max";  // max, avg, lp
  Float p = 2;               // lp: order of the norm
  Ints kernel;               // per spatial axis; ignored when global
  Ints strides;              // empty means all 1
  Ints pads;                 // begin per axis, then end per axis; empty means all 0
  Ints dilations;            // empty means all 1
  bool ceil_mode = false;
  bool count_include_pad = false;  // avg: padding counts in the divisor
  bool global = false;             // the window is the whole spatial extent
  Int storage_order = 0;           // Indices: 0 row-major, 1 column-major
  // NOTSET, VALID, SAME_UPPER, SAME_LOWER; importers resolve it into pads when dims are known.
  std::string auto_pad = "NOTSET";
  // NHWC: X [N, D1..Dk, C], Y [N, O1..Ok, C]. Set by the layout pass, never by importers.
  bool channels_last = false;

  template <class V>
  void reflect(V& v) {
    v("kind", kind);
    v("p", p);
    v("kernel", kernel);
    v("strides", strides);
    v("pads", pads);
    v("dilations", dilations);
    v("ceil_mode", ceil_mode);
    v("count_include_pad", count_include_pad);
    v("global", global);
    v("storage_order", storage_order);
    v("auto_pad", auto_pad);
    v("channels_last", channels_last);
  }
};

// Resolved geometry for concrete spatial input sizes.
struct PoolGeometry {
  Ints in, kernel, out, strides, dilations, pad_begin, pad_end;
};
// Throws kInvalidModel when the attributes do not fit the sizes.
PoolGeometry pool_geometry(const PoolAttrs& a, const Ints& in_spatial);

}  // namespace kiln
