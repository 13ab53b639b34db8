// Data-movement tactics on kiln's own kernels (movement.cu): cuda.reshape, cuda.transpose,
// cuda.slice, cuda.concat, cuda.pad, cuda.tile, cuda.expand, cuda.trilu, cuda.reverse_sequence.
// Every element type the device holds is supported: the kernels move elements by size. Shape
// operands (Slice starts, Pad pads) are read on the host when they are graph constants, and
// resolved on the device otherwise (they come from earlier steps of a dynamic plan); Tile and
// Expand need only the input and output dims.
#include <algorithm>
#include <vector>

#include "backends/cuda/kernels/movement_tactic_util.h"
#include "ops/concat.h"
#include "ops/movement_util.h"
#include "ops/pad.h"
#include "ops/reverse_sequence.h"
#include "ops/transpose.h"
#include "ops/trilu.h"

namespace kiln {
namespace cuda {
namespace {

// ---- Reshape: a copy (nothing when the planner made the output alias the input) ----

Status supports_reshape(const Node& n) { return check_op_and_data(n, "Reshape"); }

void enqueue_reshape(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  DeviceTensor& y = a.out(0);
  KILN_EXPECT(x.nbytes() == y.nbytes(), StatusCode::kInvalidArgument, "cannot reshape ",
              dims_to_string(x.dims), " to ", dims_to_string(y.dims));
  if (x.nbytes() == 0 || x.data == y.data) return;
  KILN_CUDA_CHECK(
      cudaMemcpyAsync(y.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, stream_of(a)));
}

// ---- Transpose ----

Status supports_transpose(const Node& n) {
  if (Status s = check_op_and_data(n, "Transpose"); !s) return s;
  if (n.a<TransposeAttrs>().reformats()) return unsupported("converts or pads (cuda.reformat)");
  const auto& perm = n.a<TransposeAttrs>().perm;
  if (!perm.empty()) {
    if (perm.size() > static_cast<size_t>(mv::kMaxCopyDims))
      return unsupported(cat("rank ", perm.size(), " exceeds ", mv::kMaxCopyDims));
    return Status::ok();
  }
  return check_rank(n, 0, mv::kMaxCopyDims);
}

void enqueue_transpose(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  const int r = static_cast<int>(x.rank());
  KILN_EXPECT(r <= mv::kMaxCopyDims, StatusCode::kUnsupported, "cuda.transpose: rank ", r);
  Ints perm = a.node.a<TransposeAttrs>().perm;
  if (perm.empty())
    for (int k = r - 1; k >= 0; --k) perm.push_back(k);
  KILN_EXPECT(static_cast<int>(perm.size()) == r, StatusCode::kInvalidArgument, "perm ",
              dims_to_string(perm), " does not fit rank ", r);
  if (x.numel() == 0) return;
  mv::transpose(x.data, a.out(0).data, elem_bytes(x.dtype), r, x.dims.data(), perm.data(),
                a.stream);
  check_launch("cuda.transpose");
}

// ---- Slice ----

Status supports_slice(const Node& n) {
  if (Status s = check_op_and_data(n, "Slice"); !s) return s;
  return check_rank(n, 0, mv::kMaxDims);
}

// Starts, axes and steps fix the view; the ends only fix the counts, which the output dims carry
// (so `x[:, :seq_len]` with a computed seq_len still takes the host-resolved path).
bool slice_params_constant(const Node& n) {
  return absent_or_constant(n, 1) && absent_or_constant(n, 3) && absent_or_constant(n, 4);
}

size_t slice_workspace(const LaunchArgs& a) {
  return slice_params_constant(a.node) ? 0 : mv::kSliceWorkspaceBytes;
}

void enqueue_slice(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  DeviceTensor& y = a.out(0);
  const int r = static_cast<int>(x.rank());
  KILN_EXPECT(r <= mv::kMaxDims && y.rank() == x.rank(), StatusCode::kInvalidArgument,
              "cuda.slice: input ", dims_to_string(x.dims), ", output ", dims_to_string(y.dims));
  if (y.numel() == 0) return;
  const Node& n = a.node;
  if (!slice_params_constant(n)) {
    mv::SliceDeviceArgs s;
    s.rank = r;
    for (int k = 0; k < r; ++k) {
      s.in_dims[k] = x.dims[k];
      s.out_dims[k] = y.dims[k];
    }
    s.starts = a.in(1).data;
    s.starts_is64 = a.in(1).dtype == DataType::kInt64;
    s.n = a.in(1).numel();
    if (a.has(3)) {
      s.axes = a.in(3).data;
      s.axes_is64 = a.in(3).dtype == DataType::kInt64;
    }
    if (a.has(4)) {
      s.steps = a.in(4).data;
      s.steps_is64 = a.in(4).dtype == DataType::kInt64;
    }
    KILN_CHECK(a.workspace_bytes >= mv::kSliceWorkspaceBytes, "cuda.slice: no workspace");
    mv::slice_device(x.data, y.data, elem_bytes(x.dtype), s, a.workspace, a.stream);
    check_launch("cuda.slice");
    return;
  }
  // Constant operands: the view's base and strides, as ops/slice.cc computes them.
  Ints starts = to_int64s(*constant_input(n, 1));
  Ints axes, steps;
  if (const Tensor* t = constant_input(n, 3)) axes = to_int64s(*t);
  if (const Tensor* t = constant_input(n, 4)) steps = to_int64s(*t);
  std::vector<int64_t> st = strides_of(x.dims);
  mv::CopyPlan p;
  p.rank = r;
  for (int k = 0; k < r; ++k) {
    p.dims[k] = y.dims[k];
    p.src_strides[k] = st[k];
  }
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t ax = axes.empty() ? static_cast<int64_t>(i) : axes[i];
    ax = normalize_axis(ax, r, "slice axis");
    int64_t step = steps.empty() ? 1 : steps[i];
    KILN_EXPECT(step != 0, StatusCode::kInvalidArgument, "slice steps must not be 0");
    // The count comes from the output dims; slice_range gives the clamped start.
    SliceRange sr =
        slice_range(x.dims[ax], starts[i], step > 0 ? x.dims[ax] : -x.dims[ax] - 1, step);
    p.src_base += sr.start * st[ax];
    p.src_strides[ax] = st[ax] * step;
  }
  mv::set_dense_dst(p);
  mv::strided_copy(x.data, y.data, elem_bytes(x.dtype), p, a.stream);
  check_launch("cuda.slice");
}

// ---- Concat ----

Status supports_concat(const Node& n) {
  if (Status s = check_op_and_data(n, "Concat"); !s) return s;
  for (size_t i = 0; i < n.inputs.size(); ++i)
    if (!n.in(i)) return unsupported(cat("input ", i, " is missing"));
  return Status::ok();
}

void enqueue_concat(const LaunchArgs& a) {
  DeviceTensor& y = a.out(0);
  const int64_t r = static_cast<int64_t>(y.rank());
  const int64_t axis = normalize_axis(a.node.a<ConcatAttrs>().axis, r, "concat axis");
  if (y.numel() == 0) return;
  std::vector<mv::ConcatInput> ins;
  int64_t total = 0;
  for (const DeviceTensor& t : a.inputs) {
    KILN_EXPECT(static_cast<int64_t>(t.rank()) == r, StatusCode::kInvalidArgument,
                "concat inputs differ in rank");
    ins.push_back({t.data, t.dims[axis]});
    total += t.dims[axis];
  }
  KILN_EXPECT(total == y.dims[axis], StatusCode::kInvalidArgument, "concat inputs sum to ", total,
              " along axis ", axis, " but the output has ", y.dims[axis]);
  mv::concat(ins.data(), static_cast<int>(ins.size()), y.data, elem_bytes(y.dtype),
             volume(y.dims, 0, axis), y.dims[axis], volume(y.dims, axis + 1, r), a.stream);
  check_launch("cuda.concat");
}

// ---- Pad ----

std::optional<mv::PadMode> pad_mode(const std::string& m) {
  if (m == "constant") return mv::PadMode::kConstant;
  if (m == "reflect") return mv::PadMode::kReflect;
  if (m == "edge") return mv::PadMode::kEdge;
  return std::nullopt;
}

Status supports_pad(const Node& n) {
  if (Status s = check_op_and_data(n, "Pad"); !s) return s;
  const std::string& m = n.a<PadAttrs>().mode;
  if (!pad_mode(m)) return unsupported(cat("pad mode '", m, "'"));
  return check_rank(n, 0, mv::kMaxDims);
}

bool pads_constant(const Node& n) { return absent_or_constant(n, 1) && absent_or_constant(n, 3); }

size_t pad_workspace(const LaunchArgs& a) {
  return pads_constant(a.node) ? 0 : mv::kPadWorkspaceBytes;
}

void enqueue_pad(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  DeviceTensor& y = a.out(0);
  const int r = static_cast<int>(x.rank());
  KILN_EXPECT(r <= mv::kMaxDims && y.rank() == x.rank(), StatusCode::kInvalidArgument,
              "cuda.pad: input ", dims_to_string(x.dims), ", output ", dims_to_string(y.dims));
  if (y.numel() == 0) return;
  mv::PadArgs p;
  p.rank = r;
  p.mode = *pad_mode(a.node.a<PadAttrs>().mode);
  for (int k = 0; k < r; ++k) {
    p.in_dims[k] = x.dims[k];
    p.out_dims[k] = y.dims[k];
    KILN_EXPECT(p.mode == mv::PadMode::kConstant || x.dims[k] > 0, StatusCode::kInvalidArgument,
                "cannot pad empty axis ", k, " in mode ", a.node.a<PadAttrs>().mode);
  }
  const Node& n = a.node;
  if (pads_constant(n)) {
    Ints pads = to_int64s(*constant_input(n, 1));
    Ints axes;
    if (const Tensor* t = constant_input(n, 3)) {
      for (int64_t ax : to_int64s(*t)) axes.push_back(normalize_axis(ax, r, "pad axis"));
    } else {
      for (int k = 0; k < r; ++k) axes.push_back(k);
    }
    KILN_EXPECT(pads.size() == 2 * axes.size(), StatusCode::kInvalidArgument, "pads has ",
                pads.size(), " entries but ", 2 * axes.size(), " are needed");
    for (size_t i = 0; i < axes.size(); ++i) p.begin[axes[i]] = pads[i];
  } else {
    KILN_CHECK(a.workspace_bytes >= mv::kPadWorkspaceBytes, "cuda.pad: no workspace");
    p.pads_dev = a.in(1).data;
    p.pads_is64 = a.in(1).dtype == DataType::kInt64;
    if (a.has(3)) {
      p.axes_dev = a.in(3).data;
      p.axes_is64 = a.in(3).dtype == DataType::kInt64;
      p.n_axes = a.in(3).numel();
    }
  }
  const void* fill = a.has(2) && a.in(2).numel() > 0 ? a.in(2).data : nullptr;
  mv::pad(x.data, y.data, elem_bytes(x.dtype), p, fill, a.workspace, a.stream);
  check_launch("cuda.pad");
}

// ---- Tile and Expand: broadcast views ----

Status supports_tile(const Node& n) {
  if (Status s = check_op_and_data(n, "Tile"); !s) return s;
  return check_rank(n, 0, mv::kMaxDims);  // the view [r0, d0, r1, d1, ...] doubles it
}

void enqueue_tile(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  DeviceTensor& y = a.out(0);
  const int r = static_cast<int>(x.rank());
  KILN_EXPECT(r <= mv::kMaxDims && y.rank() == x.rank(), StatusCode::kInvalidArgument,
              "cuda.tile: input ", dims_to_string(x.dims), ", output ", dims_to_string(y.dims));
  if (y.numel() == 0) return;
  std::vector<int64_t> st = strides_of(x.dims);
  mv::CopyPlan p;
  p.rank = 2 * r;
  for (int k = 0; k < r; ++k) {
    KILN_EXPECT(y.dims[k] % x.dims[k] == 0, StatusCode::kInvalidArgument, "cuda.tile: output ",
                dims_to_string(y.dims), " is not a tiling of ", dims_to_string(x.dims));
    p.dims[2 * k] = y.dims[k] / x.dims[k];
    p.src_strides[2 * k] = 0;
    p.dims[2 * k + 1] = x.dims[k];
    p.src_strides[2 * k + 1] = st[k];
  }
  mv::set_dense_dst(p);
  mv::strided_copy(x.data, y.data, elem_bytes(x.dtype), p, a.stream);
  check_launch("cuda.tile");
}

Status supports_expand(const Node& n) {
  if (Status s = check_op_and_data(n, "Expand"); !s) return s;
  const Value* y = n.outputs.empty() ? nullptr : n.outputs[0];
  if (y && y->shape.rank_known && y->shape.rank() > static_cast<size_t>(mv::kMaxCopyDims))
    return unsupported(cat("output rank ", y->shape.rank(), " exceeds ", mv::kMaxCopyDims));
  return Status::ok();
}

void enqueue_expand(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  DeviceTensor& y = a.out(0);
  const size_t r = y.rank();
  KILN_EXPECT(r <= static_cast<size_t>(mv::kMaxCopyDims) && x.rank() <= r,
              StatusCode::kInvalidArgument, "cuda.expand: input ", dims_to_string(x.dims),
              ", output ", dims_to_string(y.dims));
  if (y.numel() == 0) return;
  std::vector<int64_t> st = strides_of(x.dims);
  mv::CopyPlan p;
  p.rank = static_cast<int>(r);
  const size_t off = r - x.rank();
  for (size_t k = 0; k < r; ++k) {
    p.dims[k] = y.dims[k];
    if (k >= off) {
      int64_t d = x.dims[k - off];
      KILN_EXPECT(d == 1 || d == y.dims[k], StatusCode::kInvalidArgument, "cannot expand ",
                  dims_to_string(x.dims), " to ", dims_to_string(y.dims));
      p.src_strides[k] = d == 1 ? 0 : st[k - off];
    }
  }
  mv::set_dense_dst(p);
  mv::strided_copy(x.data, y.data, elem_bytes(x.dtype), p, a.stream);
  check_launch("cuda.expand");
}

// ---- Trilu ----

Status supports_trilu(const Node& n) {
  if (Status s = check_op_and_data(n, "Trilu"); !s) return s;
  if (n.in(1) && n.in(1)->dtype != DataType::kInt64) return unsupported("k is not int64");
  return Status::ok();
}

void enqueue_trilu(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  const size_t r = x.rank();
  KILN_EXPECT(r >= 2, StatusCode::kInvalidArgument, "Trilu input ", dims_to_string(x.dims),
              " must have rank >= 2");
  if (x.numel() == 0) return;
  const int64_t rows = x.dims[r - 2], cols = x.dims[r - 1];
  const int64_t* k = nullptr;
  if (a.has(1)) {
    KILN_EXPECT(a.in(1).numel() == 1, StatusCode::kInvalidArgument, "k must be a scalar");
    k = static_cast<const int64_t*>(a.in(1).data);
  }
  mv::trilu(x.data, a.out(0).data, elem_bytes(x.dtype), x.numel() / (rows * cols), rows, cols,
            a.node.a<TriluAttrs>().upper != 0, k, a.stream);
  check_launch("cuda.trilu");
}

// ---- ReverseSequence ----

Status supports_reverse_sequence(const Node& n) {
  if (Status s = check_op_and_data(n, "ReverseSequence"); !s) return s;
  const auto& at = n.a<ReverseSequenceAttrs>();
  if (!((at.batch_axis == 0 && at.time_axis == 1) || (at.batch_axis == 1 && at.time_axis == 0)))
    return unsupported("batch_axis and time_axis must be 0 and 1");
  if (!n.in(1) || n.in(1)->dtype != DataType::kInt64)
    return unsupported("sequence_lens is not int64");
  return Status::ok();
}

void enqueue_reverse_sequence(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  const auto& at = a.node.a<ReverseSequenceAttrs>();
  KILN_EXPECT(x.rank() >= 2, StatusCode::kInvalidArgument, "input must have rank >= 2");
  const int64_t batch = x.dims[at.batch_axis];
  KILN_EXPECT(a.in(1).numel() == batch, StatusCode::kInvalidArgument, "sequence_lens has ",
              a.in(1).numel(), " entries for a batch of ", batch);
  if (x.numel() == 0) return;
  mv::reverse_sequence(x.data, a.out(0).data, elem_bytes(x.dtype), x.dims[0], x.dims[1],
                       volume(x.dims, 2, x.rank()), static_cast<int>(at.batch_axis),
                       static_cast<const int64_t*>(a.in(1).data), a.stream);
  check_launch("cuda.reverse_sequence");
}

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_reshape() {
  static const cuda::SimpleTactic t("cuda.reshape", "Reshape", cuda::supports_reshape,
                                    cuda::make_fn_kernel<cuda::enqueue_reshape>);
  return t;
}
const Tactic& kiln_cuda_tactic_transpose() {
  static const cuda::SimpleTactic t("cuda.transpose", "Transpose", cuda::supports_transpose,
                                    cuda::make_fn_kernel<cuda::enqueue_transpose>);
  return t;
}
const Tactic& kiln_cuda_tactic_slice() {
  static const cuda::SimpleTactic t(
      "cuda.slice", "Slice", cuda::supports_slice,
      cuda::make_fn_kernel<cuda::enqueue_slice, cuda::slice_workspace>);
  return t;
}
const Tactic& kiln_cuda_tactic_concat() {
  static const cuda::SimpleTactic t("cuda.concat", "Concat", cuda::supports_concat,
                                    cuda::make_fn_kernel<cuda::enqueue_concat>);
  return t;
}
const Tactic& kiln_cuda_tactic_pad() {
  static const cuda::SimpleTactic t("cuda.pad", "Pad", cuda::supports_pad,
                                    cuda::make_fn_kernel<cuda::enqueue_pad, cuda::pad_workspace>);
  return t;
}
const Tactic& kiln_cuda_tactic_tile() {
  static const cuda::SimpleTactic t("cuda.tile", "Tile", cuda::supports_tile,
                                    cuda::make_fn_kernel<cuda::enqueue_tile>);
  return t;
}
const Tactic& kiln_cuda_tactic_expand() {
  static const cuda::SimpleTactic t("cuda.expand", "Expand", cuda::supports_expand,
                                    cuda::make_fn_kernel<cuda::enqueue_expand>);
  return t;
}
const Tactic& kiln_cuda_tactic_trilu() {
  static const cuda::SimpleTactic t("cuda.trilu", "Trilu", cuda::supports_trilu,
                                    cuda::make_fn_kernel<cuda::enqueue_trilu>);
  return t;
}
const Tactic& kiln_cuda_tactic_reverse_sequence() {
  static const cuda::SimpleTactic t("cuda.reverse_sequence", "ReverseSequence", cuda::supports_reverse_sequence,
                                    cuda::make_fn_kernel<cuda::enqueue_reverse_sequence>);
  return t;
}

}  // namespace kiln
