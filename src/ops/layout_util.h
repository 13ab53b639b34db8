// Channels-first (NCHW) <-> channels-last (NHWC) permutations of shapes and tensors, for the ops
// that take a channels_last attribute (Conv, Pool) and for the layout pass. Any rank >= 3: the
// channel axis is axis 1 channels-first and the last axis channels-last.
#pragma once
#include <cstdint>

#include "ops/movement_util.h"

namespace kiln {

// Transpose perms (output axis i is input axis perm[i]) for a tensor of rank r >= 2.
inline Ints channels_last_perm(size_t r) {  // NCHW -> NHWC: {0, 2, ..., r-1, 1}
  Ints p{0};
  for (size_t i = 2; i < r; ++i) p.push_back(static_cast<int64_t>(i));
  p.push_back(1);
  return p;
}
inline Ints channels_first_perm(size_t r) {  // NHWC -> NCHW: {0, r-1, 1, ..., r-2}
  Ints p{0, static_cast<int64_t>(r) - 1};
  for (size_t i = 1; i + 1 < r; ++i) p.push_back(static_cast<int64_t>(i));
  return p;
}

// The shape permuted by perm; an unknown rank, or a rank perm does not fit, stays as it is (the
// op's own rank check reports it).
inline Shape permuted_shape(const Shape& s, const Ints& perm) {
  if (!s.rank_known || s.rank() != perm.size()) return s;
  Shape o;
  for (int64_t p : perm) o.dims.push_back(s.dims[p]);
  return o;
}
inline Shape channels_first_shape(const Shape& s) {
  return s.rank_known && s.rank() >= 2 ? permuted_shape(s, channels_first_perm(s.rank())) : s;
}
inline Shape channels_last_shape(const Shape& s) {
  return s.rank_known && s.rank() >= 2 ? permuted_shape(s, channels_last_perm(s.rank())) : s;
}

// dst (allocated, dims = src's permuted) = src transposed by perm. Any element type.
inline void permute_into(const Tensor& src, const Ints& perm, Tensor& dst) {
  KILN_CHECK(src.rank() == perm.size() && dst.rank() == perm.size() && dst.dtype() == src.dtype());
  Ints st = strides_of(src.dims());
  Dims od;
  Ints os;
  for (int64_t p : perm) {
    od.push_back(src.dim(p));
    os.push_back(st[p]);
  }
  KILN_CHECK(od == dst.dims(), "permute_into: ", dims_to_string(od), " vs ",
             dims_to_string(dst.dims()));
  strided_copy(src, 0, od, os, dst);
}
inline Tensor permuted(const Tensor& src, const Ints& perm) {
  Dims od;
  for (int64_t p : perm) od.push_back(src.dim(p));
  Tensor dst(src.dtype(), od);
  permute_into(src, perm, dst);
  return dst;
}

}  // namespace kiln
