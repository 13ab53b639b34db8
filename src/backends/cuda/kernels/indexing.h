// Launchers of kiln's indexing kernels: Gather, GatherElements, GatherND, ScatterElements,
// ScatterND and OneHot. Plain C++ (see movement.h for the conventions). Indices are read on the
// device; negative ones wrap as the reference does. An out-of-range index, an error in the
// reference compute, cannot be reported from a kernel: gathers write zero bits for it and scatters
// skip it, so memory stays safe but the GPU does not diagnose it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "backends/cuda/kernels/movement.h"

namespace kiln::cuda::mv {

// Gather: data [outer, axis_len, inner] -> out [outer, n_idx, inner], out[o, j, :] =
// data[o, idx[j], :]. idx is int32 or int64.
void gather(const void* data, const void* idx, bool idx_is64, void* out, int elem_bytes,
            int64_t outer, int64_t axis_len, int64_t n_idx, int64_t inner, void* stream);

// GatherElements / ScatterElements: iterates over the indices' dims (rank <= kMaxDims); the data
// offset of a position is sum over k != axis of c_k * data_strides[k], plus the wrapped index
// times data_strides[axis].
struct ElementsArgs {
  int rank = 0;
  int64_t idx_dims[kMaxDims] = {};
  int64_t data_strides[kMaxDims] = {};
  int axis = 0;
  int64_t axis_len = 0;
};
void gather_elements(const void* data, const void* idx, bool idx_is64, void* out, int elem_bytes,
                     const ElementsArgs& a, void* stream);

// Scatter reductions as ops/movement_util.h's scatter_reduce. None stores with the reference's
// semantics: where several updates aim at one target the last (highest numbered) wins. Unless
// repeats are impossible, a first pass records, per target element, the largest update number
// with atomicMax in `workspace` (scatter_elements_workspace() bytes, 4 or 8 per element of `out`;
// the launcher clears it on the stream) and a second pass lets only that update store. The other
// reductions combine atomically in an arbitrary order (float sums and products may differ from the
// sequential reference by rounding). `out` already holds the data, `out_numel` elements.
enum class Reduction { kNone, kAdd, kMul, kMax, kMin };
size_t scatter_elements_workspace(Reduction r, const ElementsArgs& a, int64_t out_numel);
void scatter_elements(void* out, int64_t out_numel, const void* idx, bool idx_is64,
                      const void* updates, ElemType t, Reduction r, const ElementsArgs& a,
                      void* workspace, void* stream);

// GatherND: out [batches * per_batch, slice]; row (b, j) copies the slice of data at
// b * batch_stride + sum_k wrap(idx[(b * per_batch + j) * m + k]) * strides[k] (k < m).
struct GatherNDArgs {
  int64_t batches = 0, per_batch = 0, slice = 0, batch_stride = 0;
  int m = 0;
  int64_t dims[kMaxDims] = {};     // data dims addressed by the index tuple
  int64_t strides[kMaxDims] = {};  // their strides in data
};
void gather_nd(const void* data, const int64_t* idx, void* out, int elem_bytes,
               const GatherNDArgs& a, void* stream);

// ScatterND: for tuple t < tuples and e < slice, out[sum_k wrap(idx[t * m + k]) * strides[k] + e]
// = reduce(that, updates[t * slice + e]). `out` already holds the data. Reduction none keeps the
// last of the tuples that address one slice (as the reference), through a first pass into
// `workspace` (scatter_nd_workspace() bytes: 4 or 8 per slice of `out`, i.e. per coordinate of
// dims[0, m)); the others combine atomically as scatter_elements.
size_t scatter_nd_workspace(Reduction r, int64_t tuples, const GatherNDArgs& dims);
void scatter_nd(void* out, const int64_t* idx, const void* updates, ElemType t, Reduction r,
                int64_t tuples, int64_t slice, const GatherNDArgs& dims, void* workspace,
                void* stream);

// OneHot: out [outer, depth, inner] = values[1] where the wrapped index idx[o, i] equals the
// position on the depth axis, else values[0]. Indices of any numeric type (`idx_type`); values
// and out have elements of elem_bytes.
void one_hot(const void* idx, ElemType idx_type, const void* values, void* out, int elem_bytes,
             int64_t outer, int64_t depth, int64_t inner, void* stream);

// MaxUnpool: y (already zeroed) receives x[i] at the coordinates that flat index idx[i] has in
// the default unpooled shape `def_dims`, placed at the origin of y (strides `out_strides`).
// Indices outside the default shape are skipped (not diagnosed); with repeated indices the GPU
// keeps an arbitrary one of the values, the reference the last.
struct UnpoolArgs {
  int rank = 0;
  int64_t def_dims[kMaxDims] = {};
  int64_t out_strides[kMaxDims] = {};
  int64_t n = 0;  // elements of x
};
void max_unpool(const void* x, const int64_t* idx, void* y, int elem_bytes, const UnpoolArgs& a,
                void* stream);

}  // namespace kiln::cuda::mv
