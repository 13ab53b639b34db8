// Launchers of kiln's data-movement kernels (Reshape, Transpose, Slice, Concat, Pad, Tile, Expand,
// Trilu, ReverseSequence). Plain C++: the tactics (movement_tactics.cc) read attributes and shapes
// and call these with device pointers, element sizes and int64 dims. Movement never looks at what
// the bits mean, so every element type of 1, 2, 4 or 8 bytes works; where rows line up, elements
// are moved in wider units (up to 16 bytes) so that a warp reads and writes whole sectors.
// Launchers with nothing to do (zero elements) launch nothing. `stream` is a cudaStream_t.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln::cuda::mv {

// Element types of the kernels that compute (scatter reductions, Resize, OneHot indices, Range,
// quantization); the pure movers only need the element size. Bool is stored as one byte.
enum class ElemType {
  kFloat,
  kFloat16,
  kBFloat16,
  kDouble,
  kInt8,
  kUInt8,
  kInt16,
  kUInt16,
  kInt32,
  kUInt32,
  kInt64,
  kUInt64,
  kBool
};

// Tile views its output as [r0, d0, r1, d1, ...], so a copy may have twice the tensor rank.
constexpr int kMaxCopyDims = 16;
// Ops whose kernels index dims one by one (Pad, device-resolved Slice).
constexpr int kMaxDims = 8;

// dst[dst_base + sum_k c_k * dst_strides[k]] = src[src_base + sum_k c_k * src_strides[k]] for
// every coordinate c of `dims` (row-major order, outermost first). Strides are in elements and may
// be zero (broadcast) or negative (reversed). The launcher drops size-1 dims, merges dims that are
// contiguous in both tensors and widens the element when rows allow.
struct CopyPlan {
  int rank = 0;
  int64_t dims[kMaxCopyDims] = {};
  int64_t src_strides[kMaxCopyDims] = {};
  int64_t dst_strides[kMaxCopyDims] = {};
  int64_t src_base = 0;
  int64_t dst_base = 0;
};
// Sets dst_strides to the row-major strides of dims (a dense destination).
void set_dense_dst(CopyPlan& p);
void strided_copy(const void* src, void* dst, int elem_bytes, CopyPlan plan, void* stream);

// Transpose: out dim i = in dim perm[i]. Uses a tiled shared-memory kernel when the innermost dims
// of input and output differ (NCHW <-> NHWC, [.., R, C] -> [.., C, R]), else the strided copy.
void transpose(const void* src, void* dst, int elem_bytes, int rank, const int64_t* in_dims,
               const int64_t* perm, void* stream);

// Slice whose starts/axes/steps are known only on the device (computed by earlier steps): a one-
// thread kernel resolves them into `workspace` (kSliceWorkspaceBytes), then the copy reads them.
// Index inputs are int32 or int64 (`*_is64`); axes/steps may be null (defaults). n = entries.
constexpr size_t kSliceWorkspaceBytes = (kMaxDims + 1) * sizeof(int64_t);
struct SliceDeviceArgs {
  int rank = 0;
  int64_t in_dims[kMaxDims] = {};
  int64_t out_dims[kMaxDims] = {};
  const void* starts = nullptr;
  const void* axes = nullptr;
  const void* steps = nullptr;
  bool starts_is64 = true, axes_is64 = true, steps_is64 = true;
  int64_t n = 0;
};
void slice_device(const void* src, void* dst, int elem_bytes, const SliceDeviceArgs& a,
                  void* workspace, void* stream);

// Concat along one axis: the output is [outer, out_axis_len * inner]; input i fills columns
// [sum of earlier axis_len * inner, + axis_len * inner) of every row.
struct ConcatInput {
  const void* data = nullptr;
  int64_t axis_len = 0;
};
void concat(const ConcatInput* inputs, int n, void* dst, int elem_bytes, int64_t outer,
            int64_t out_axis_len, int64_t inner, void* stream);

// Pad (modes as ops/pad.cc: constant, reflect repeating the mirror, edge). `fill` is a device
// pointer to one element (null: zero bits). Begin pads come from `begin`, or, when pads_dev is
// set, are resolved on the device from the pads tensor (int32/int64, begins then ends) and the
// optional axes tensor (n_axes entries; null = all dims), through `workspace`
// (kPadWorkspaceBytes).
enum class PadMode { kConstant, kReflect, kEdge };
constexpr size_t kPadWorkspaceBytes = kMaxDims * sizeof(int64_t);
struct PadArgs {
  int rank = 0;
  int64_t in_dims[kMaxDims] = {};
  int64_t out_dims[kMaxDims] = {};
  int64_t begin[kMaxDims] = {};
  PadMode mode = PadMode::kConstant;
  const void* pads_dev = nullptr;
  bool pads_is64 = true;
  const void* axes_dev = nullptr;
  bool axes_is64 = true;
  int64_t n_axes = 0;
};
void pad(const void* src, void* dst, int elem_bytes, const PadArgs& a, const void* fill,
         void* workspace, void* stream);

// Trilu over [mats, rows, cols]: keeps col - row >= k (upper) or <= k (lower), zeroes the rest.
// k is read from `k_dev` (an int64 scalar on the device) when given, else 0.
void trilu(const void* src, void* dst, int elem_bytes, int64_t mats, int64_t rows, int64_t cols,
           bool upper, const int64_t* k_dev, void* stream);

// ReverseSequence over [d0, d1, inner] with batch_axis/time_axis 0 and 1 in either order;
// lens: int64 per batch on the device (clamped to [0, time]: the GPU does not diagnose bad ones).
void reverse_sequence(const void* src, void* dst, int elem_bytes, int64_t d0, int64_t d1,
                      int64_t inner, int batch_axis, const int64_t* lens, void* stream);

}  // namespace kiln::cuda::mv
