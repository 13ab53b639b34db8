#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "ir/attrs.h"

namespace kiln {

// Reduce: inputs (X, optional axes as an int64/int32 1-D tensor). When the axes input is present
// it wins over `axes`; its value may be known only at run time.
//
// kind: sum mean max min prod l1 l2 log_sum log_sum_exp sum_square, or argmax/argmin (exactly one
// axis, int64 output, ties go to the first index unless select_last_index).
struct ReduceAttrs : AttrsOf<ReduceAttrs> {
  std::string kind = "sum";
  Ints axes;  // empty: all axes (or none, with noop_with_empty_axes)
  bool keepdims = true;
  bool noop_with_empty_axes = false;  // empty axes make the node an identity
  bool select_last_index = false;     // argmax/argmin: last of equal extremes instead of first
  template <class V>
  void reflect(V& v) {
    v("kind", kind);
    v("axes", axes);
    v("keepdims", keepdims);
    v("noop_with_empty_axes", noop_with_empty_axes);
    v("select_last_index", select_last_index);
  }
};

bool is_reduce_kind(std::string_view kind);
// For every element of a row-major tensor of dims `d`, in order: sum over axes of index * strides
// (the offset of its element in another tensor that broadcasts against it, or of its reduction
// slot when a reduced axis has stride 0). Shared by the reference computes of Reduce and
// Normalization.
std::vector<int64_t> strided_offsets(const Dims& d, const std::vector<int64_t>& strides);
// Row-major strides of the kept axes of d (reduced axes get stride 0): offsets of the output slot.
std::vector<int64_t> kept_strides(const Dims& d, const std::vector<bool>& reduced);
bool is_arg_reduce_kind(std::string_view kind);  // argmax / argmin

}  // namespace kiln
