// Indexing tactics on kiln's own kernels (indexing.cu): cuda.gather, cuda.gather_elements,
// cuda.gather_nd, cuda.scatter_elements, cuda.scatter_nd, cuda.one_hot, cuda.max_unpool. Indices
// stay on the device. Out-of-range indices, an error in the reference, are not diagnosed on the
// GPU: gathers write zero bits for them and scatters skip them (see indexing.h).
#include <vector>

#include "backends/cuda/kernels/indexing.h"
#include "backends/cuda/kernels/movement_tactic_util.h"
#include "ops/gather.h"
#include "ops/gather_elements.h"
#include "ops/gather_nd.h"
#include "ops/max_unpool.h"
#include "ops/movement_util.h"
#include "ops/one_hot.h"
#include "ops/scatter_elements.h"
#include "ops/scatter_nd.h"

namespace kiln {
namespace cuda {
namespace {

bool is_index_type(DataType t) { return t == DataType::kInt32 || t == DataType::kInt64; }

Status check_indices(const Node& n, size_t i, bool int64_only) {
  const Value* v = n.in(i);
  if (!v) return unsupported("indices are missing");
  if (int64_only ? v->dtype != DataType::kInt64 : !is_index_type(v->dtype))
    return unsupported(cat("indices of type ", dtype_name(v->dtype)));
  return Status::ok();
}

// out = data before a scatter (nothing when the two share a buffer).
void copy_data(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  DeviceTensor& y = a.out(0);
  KILN_EXPECT(x.nbytes() == y.nbytes(), StatusCode::kInvalidArgument, "scatter output ",
              dims_to_string(y.dims), " differs from data ", dims_to_string(x.dims));
  if (x.nbytes() && x.data != y.data)
    KILN_CUDA_CHECK(
        cudaMemcpyAsync(y.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, stream_of(a)));
}

std::optional<mv::Reduction> reduction_of(const std::string& r) {
  if (r == "none" || r.empty()) return mv::Reduction::kNone;
  if (r == "add") return mv::Reduction::kAdd;
  if (r == "mul") return mv::Reduction::kMul;
  if (r == "max") return mv::Reduction::kMax;
  if (r == "min") return mv::Reduction::kMin;
  return std::nullopt;
}

// ---- Gather ----

Status supports_gather(const Node& n) {
  if (Status s = check_op_and_data(n, "Gather"); !s) return s;
  return check_indices(n, 1, false);
}

void enqueue_gather(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  const DeviceTensor& ind = a.in(1);
  const int64_t r = static_cast<int64_t>(x.rank());
  KILN_EXPECT(r > 0, StatusCode::kInvalidArgument, "cannot gather from a scalar");
  const int64_t axis = normalize_axis(a.node.a<GatherAttrs>().axis, r, "gather axis");
  DeviceTensor& y = a.out(0);
  if (y.numel() == 0) return;
  mv::gather(x.data, ind.data, ind.dtype == DataType::kInt64, y.data, elem_bytes(x.dtype),
             volume(x.dims, 0, axis), x.dims[axis], ind.numel(), volume(x.dims, axis + 1, r),
             a.stream);
  check_launch("cuda.gather");
}

// ---- GatherElements / ScatterElements ----

mv::ElementsArgs elements_args(const DeviceTensor& x, const DeviceTensor& ind, int64_t axis_attr) {
  const int64_t r = static_cast<int64_t>(x.rank());
  KILN_EXPECT(r > 0 && ind.rank() == x.rank() && r <= mv::kMaxDims, StatusCode::kInvalidArgument,
              "indices ", dims_to_string(ind.dims), " and data ", dims_to_string(x.dims),
              " must have one rank in [1, ", mv::kMaxDims, "]");
  const int64_t axis = normalize_axis(axis_attr, r, "axis");
  std::vector<int64_t> st = strides_of(x.dims);
  mv::ElementsArgs e;
  e.rank = static_cast<int>(r);
  e.axis = static_cast<int>(axis);
  e.axis_len = x.dims[axis];
  for (int64_t k = 0; k < r; ++k) {
    // Memory safety: the indices must not reach past data on the other axes.
    KILN_EXPECT(k == axis || ind.dims[k] <= x.dims[k], StatusCode::kInvalidArgument, "indices ",
                dims_to_string(ind.dims), " exceed data ", dims_to_string(x.dims), " on axis ", k);
    e.idx_dims[k] = ind.dims[k];
    e.data_strides[k] = st[k];
  }
  return e;
}

Status supports_gather_elements(const Node& n) {
  if (Status s = check_op_and_data(n, "GatherElements"); !s) return s;
  if (Status s = check_indices(n, 1, false); !s) return s;
  return check_rank(n, 0, mv::kMaxDims);
}

void enqueue_gather_elements(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  const DeviceTensor& ind = a.in(1);
  mv::ElementsArgs e = elements_args(x, ind, a.node.a<GatherElementsAttrs>().axis);
  if (ind.numel() == 0) return;
  mv::gather_elements(x.data, ind.data, ind.dtype == DataType::kInt64, a.out(0).data,
                      elem_bytes(x.dtype), e, a.stream);
  check_launch("cuda.gather_elements");
}

Status supports_scatter_elements(const Node& n) {
  if (Status s = check_op_and_data(n, "ScatterElements"); !s) return s;
  if (Status s = check_indices(n, 1, false); !s) return s;
  if (!reduction_of(n.a<ScatterElementsAttrs>().reduction))
    return unsupported(cat("reduction '", n.a<ScatterElementsAttrs>().reduction, "'"));
  if (!n.in(2) || n.in(2)->dtype != n.in(0)->dtype) return unsupported("updates differ in type");
  return check_rank(n, 0, mv::kMaxDims);
}

// Reduction none with possibly repeated targets needs a workspace (see indexing.h).
size_t scatter_elements_workspace(const LaunchArgs& a) {
  const auto& at = a.node.a<ScatterElementsAttrs>();
  std::optional<mv::Reduction> r = reduction_of(at.reduction);
  if (!r || *r != mv::Reduction::kNone) return 0;
  mv::ElementsArgs e = elements_args(a.in(0), a.in(1), at.axis);
  return mv::scatter_elements_workspace(*r, e, a.in(0).numel());
}

void enqueue_scatter_elements(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  const DeviceTensor& ind = a.in(1);
  const DeviceTensor& upd = a.in(2);
  const auto& at = a.node.a<ScatterElementsAttrs>();
  KILN_EXPECT(upd.dims == ind.dims, StatusCode::kInvalidArgument, "updates ",
              dims_to_string(upd.dims), " and indices ", dims_to_string(ind.dims), " differ");
  mv::ElementsArgs e = elements_args(x, ind, at.axis);
  const mv::Reduction r = *reduction_of(at.reduction);
  const size_t ws = mv::scatter_elements_workspace(r, e, x.numel());
  KILN_CHECK(a.workspace_bytes >= ws && (ws == 0 || a.workspace), "cuda.scatter_elements needs ",
             ws, " bytes of workspace, got ", a.workspace_bytes);
  copy_data(a);
  if (ind.numel() == 0 || x.numel() == 0) return;
  mv::scatter_elements(a.out(0).data, x.numel(), ind.data, ind.dtype == DataType::kInt64,
                       upd.data, elem_type(x.dtype), r, e, a.workspace, a.stream);
  check_launch("cuda.scatter_elements");
}

// ---- GatherND / ScatterND ----

Status supports_gather_nd(const Node& n) {
  if (Status s = check_op_and_data(n, "GatherND"); !s) return s;
  if (Status s = check_indices(n, 1, true); !s) return s;
  return check_rank(n, 0, mv::kMaxDims);
}

void enqueue_gather_nd(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  const DeviceTensor& ind = a.in(1);
  const int64_t b = a.node.a<GatherNDAttrs>().batch_dims;
  const int64_t r = static_cast<int64_t>(x.rank()), q = static_cast<int64_t>(ind.rank());
  KILN_EXPECT(q >= 1 && b >= 0 && b < std::min(r, q) && r <= mv::kMaxDims,
              StatusCode::kInvalidArgument, "bad ranks or batch_dims");
  const int64_t m = ind.dims[q - 1];
  KILN_EXPECT(m >= 1 && m <= r - b, StatusCode::kInvalidArgument, "indices address ", m,
              " dims of data ", dims_to_string(x.dims));
  for (int64_t k = 0; k < b; ++k)
    KILN_EXPECT(ind.dims[k] == x.dims[k], StatusCode::kInvalidArgument, "batch dim ", k,
                " differs between data and indices");
  if (a.out(0).numel() == 0) return;
  std::vector<int64_t> st = strides_of(x.dims);
  mv::GatherNDArgs g;
  g.batches = volume(x.dims, 0, b);
  g.per_batch = volume(ind.dims, b, q - 1);
  g.slice = volume(x.dims, b + m, r);
  g.batch_stride = b > 0 ? st[b - 1] : 0;
  g.m = static_cast<int>(m);
  for (int64_t k = 0; k < m; ++k) {
    g.dims[k] = x.dims[b + k];
    g.strides[k] = st[b + k];
  }
  mv::gather_nd(x.data, static_cast<const int64_t*>(ind.data), a.out(0).data, elem_bytes(x.dtype),
                g, a.stream);
  check_launch("cuda.gather_nd");
}

Status supports_scatter_nd(const Node& n) {
  if (Status s = check_op_and_data(n, "ScatterND"); !s) return s;
  if (Status s = check_indices(n, 1, true); !s) return s;
  if (!reduction_of(n.a<ScatterNDAttrs>().reduction))
    return unsupported(cat("reduction '", n.a<ScatterNDAttrs>().reduction, "'"));
  if (!n.in(2) || n.in(2)->dtype != n.in(0)->dtype) return unsupported("updates differ in type");
  return check_rank(n, 0, mv::kMaxDims);
}

// ScatterND's launch: tuples, slice length and the data dims the tuples address.
struct ScatterNDPlan {
  int64_t tuples = 0, slice = 0;
  mv::GatherNDArgs g;
};

ScatterNDPlan scatter_nd_plan(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  const DeviceTensor& ind = a.in(1);
  const DeviceTensor& upd = a.in(2);
  const int64_t r = static_cast<int64_t>(x.rank()), q = static_cast<int64_t>(ind.rank());
  KILN_EXPECT(q >= 1 && r <= mv::kMaxDims, StatusCode::kInvalidArgument, "bad ranks");
  const int64_t k = ind.dims[q - 1];
  Dims want(ind.dims.begin(), ind.dims.end() - 1);
  if (k >= 1 && k <= r) want.insert(want.end(), x.dims.begin() + k, x.dims.end());
  KILN_EXPECT(k >= 1 && k <= r && upd.dims == want, StatusCode::kInvalidArgument, "updates ",
              dims_to_string(upd.dims), " do not fit data ", dims_to_string(x.dims),
              " and indices ", dims_to_string(ind.dims));
  ScatterNDPlan p;
  p.tuples = volume(ind.dims, 0, q - 1);
  p.slice = volume(x.dims, k, r);
  std::vector<int64_t> st = strides_of(x.dims);
  p.g.m = static_cast<int>(k);
  for (int64_t d = 0; d < k; ++d) {
    p.g.dims[d] = x.dims[d];
    p.g.strides[d] = st[d];
  }
  return p;
}

// Reduction none with several tuples needs a workspace (see indexing.h).
size_t scatter_nd_workspace(const LaunchArgs& a) {
  std::optional<mv::Reduction> r = reduction_of(a.node.a<ScatterNDAttrs>().reduction);
  if (!r || *r != mv::Reduction::kNone) return 0;
  ScatterNDPlan p = scatter_nd_plan(a);
  return mv::scatter_nd_workspace(*r, p.tuples, p.g);
}

void enqueue_scatter_nd(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  ScatterNDPlan p = scatter_nd_plan(a);
  const mv::Reduction r = *reduction_of(a.node.a<ScatterNDAttrs>().reduction);
  const size_t ws = mv::scatter_nd_workspace(r, p.tuples, p.g);
  KILN_CHECK(a.workspace_bytes >= ws && (ws == 0 || a.workspace), "cuda.scatter_nd needs ", ws,
             " bytes of workspace, got ", a.workspace_bytes);
  copy_data(a);
  if (p.tuples * p.slice == 0 || x.numel() == 0) return;
  mv::scatter_nd(a.out(0).data, static_cast<const int64_t*>(a.in(1).data), a.in(2).data,
                 elem_type(x.dtype), r, p.tuples, p.slice, p.g, a.workspace, a.stream);
  check_launch("cuda.scatter_nd");
}

// ---- OneHot ----

Status supports_one_hot(const Node& n) {
  if (Status s = check_op_and_data(n, "OneHot", 0); !s) return s;  // indices: any numeric type
  if (!n.in(2) || !device_dtype_ok(n.in(2)->dtype) || !elem_type_of(n.in(2)->dtype))
    return unsupported("values of an element type the device does not hold");
  return Status::ok();
}

void enqueue_one_hot(const LaunchArgs& a) {
  const DeviceTensor& ind = a.in(0);
  const DeviceTensor& vals = a.in(2);
  DeviceTensor& y = a.out(0);
  KILN_EXPECT(vals.numel() == 2, StatusCode::kInvalidArgument,
              "values must hold two elements (off, on)");
  const int64_t r = static_cast<int64_t>(y.rank());
  KILN_EXPECT(r == static_cast<int64_t>(ind.rank()) + 1, StatusCode::kInvalidArgument,
              "output rank ", r, " for indices ", dims_to_string(ind.dims));
  const int64_t axis = normalize_axis(a.node.a<OneHotAttrs>().axis, r, "one-hot axis");
  if (y.numel() == 0) return;
  // The depth is the output's dim on the axis (the runtime read it from the depth input).
  mv::one_hot(ind.data, elem_type(ind.dtype), vals.data, y.data, elem_bytes(y.dtype),
              volume(y.dims, 0, axis), y.dims[axis], volume(y.dims, axis + 1, r), a.stream);
  check_launch("cuda.one_hot");
}

// ---- MaxUnpool: zero the output, then scatter X to its indices ----

Status supports_max_unpool(const Node& n) {
  if (Status s = check_op_and_data(n, "MaxUnpool"); !s) return s;
  if (Status s = check_indices(n, 1, true); !s) return s;
  return check_rank(n, 0, mv::kMaxDims);
}

void enqueue_max_unpool(const LaunchArgs& a) {
  const auto& at = a.node.a<MaxUnpoolAttrs>();
  const DeviceTensor& x = a.in(0);
  const DeviceTensor& ind = a.in(1);
  DeviceTensor& y = a.out(0);
  const size_t r = x.rank();
  KILN_EXPECT(
      r >= 3 && r <= static_cast<size_t>(mv::kMaxDims) && ind.dims == x.dims && y.rank() == r,
      StatusCode::kInvalidArgument, "MaxUnpool: X ", dims_to_string(x.dims), ", Indices ",
      dims_to_string(ind.dims), ", output ", dims_to_string(y.dims));
  const size_t nsp = r - 2;
  KILN_EXPECT(at.kernel.size() == nsp && (at.strides.empty() || at.strides.size() == nsp) &&
                  (at.pads.empty() || at.pads.size() == 2 * nsp),
              StatusCode::kInvalidModel, "MaxUnpool: kernel, strides or pads do not fit X");
  // The default unpooled shape, as ops/max_unpool.cc; the output may be larger (output_shape).
  mv::UnpoolArgs u;
  u.rank = static_cast<int>(r);
  u.n = x.numel();
  std::vector<int64_t> yst = strides_of(y.dims);
  for (size_t j = 0; j < r; ++j) {
    int64_t d = x.dims[j];
    if (j >= 2) {
      size_t i = j - 2;
      int64_t st = at.strides.empty() ? 1 : at.strides[i];
      int64_t pads = at.pads.empty() ? 0 : at.pads[i] + at.pads[nsp + i];
      d = (x.dims[j] - 1) * st - pads + at.kernel[i];
    }
    KILN_EXPECT(d >= 0 && d <= y.dims[j], StatusCode::kInvalidArgument,
                "MaxUnpool: the unpooled shape does not fit the output ", dims_to_string(y.dims));
    u.def_dims[j] = d;
    u.out_strides[j] = yst[j];
  }
  if (y.nbytes() == 0) return;
  KILN_CUDA_CHECK(cudaMemsetAsync(y.data, 0, y.nbytes(), stream_of(a)));
  mv::max_unpool(x.data, static_cast<const int64_t*>(ind.data), y.data, elem_bytes(x.dtype), u,
                 a.stream);
  check_launch("cuda.max_unpool");
}

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_max_unpool() {
  static const cuda::SimpleTactic t("cuda.max_unpool", "MaxUnpool", cuda::supports_max_unpool,
                                    cuda::make_fn_kernel<cuda::enqueue_max_unpool>);
  return t;
}
const Tactic& kiln_cuda_tactic_gather() {
  static const cuda::SimpleTactic t("cuda.gather", "Gather", cuda::supports_gather,
                                    cuda::make_fn_kernel<cuda::enqueue_gather>);
  return t;
}
const Tactic& kiln_cuda_tactic_gather_elements() {
  static const cuda::SimpleTactic t("cuda.gather_elements", "GatherElements", cuda::supports_gather_elements,
                                    cuda::make_fn_kernel<cuda::enqueue_gather_elements>);
  return t;
}
const Tactic& kiln_cuda_tactic_gather_nd() {
  static const cuda::SimpleTactic t("cuda.gather_nd", "GatherND", cuda::supports_gather_nd,
                                    cuda::make_fn_kernel<cuda::enqueue_gather_nd>);
  return t;
}
const Tactic& kiln_cuda_tactic_scatter_elements() {
  static const cuda::SimpleTactic t("cuda.scatter_elements", "ScatterElements", cuda::supports_scatter_elements,
                                    cuda::make_fn_kernel<cuda::enqueue_scatter_elements,
                                                          cuda::scatter_elements_workspace>);
  return t;
}
const Tactic& kiln_cuda_tactic_scatter_nd() {
  static const cuda::SimpleTactic t("cuda.scatter_nd", "ScatterND", cuda::supports_scatter_nd,
                                    cuda::make_fn_kernel<cuda::enqueue_scatter_nd,
                                                          cuda::scatter_nd_workspace>);
  return t;
}
const Tactic& kiln_cuda_tactic_one_hot() {
  static const cuda::SimpleTactic t("cuda.one_hot", "OneHot", cuda::supports_one_hot,
                                    cuda::make_fn_kernel<cuda::enqueue_one_hot>);
  return t;
}

}  // namespace kiln
