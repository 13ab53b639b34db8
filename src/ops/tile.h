#pragma once
#include "ir/attrs.h"

namespace kiln {

// Tile(input, repeats): repeats input repeats[i] times along each axis i (repeats is int64 1-D
// with one entry per input dim).
struct TileAttrs : AttrsOf<TileAttrs> {
  template <class V>
  void reflect(V&) {}
};

}  // namespace kiln
