// cuda.dft, cuda.stft and cuda.mel_weight_matrix on kiln's own kernels (signal.cu):
//   DFT: real or complex input, any signal axis, forward / inverse, onesided, dft_length
//     (absent, constant or computed at run time: zero-padding and truncation);
//   STFT: real or complex signal, optional window, frame_length and frame_step (constant or
//     computed at run time), onesided;
//   MelWeightMatrix: scalar inputs of any kind (normally computed at run time: the importer folds
//     constant ones), every float and integer output type but bool.
// Float32, float16, bfloat16 and float64 data; transforms summed in double. Scalars that size the
// output are taken from the node when constant or derivable from the dims, else read on the
// device by the kernel itself: nothing synchronises, and every kernel can be captured.
#include <cstdint>
#include <string>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/signal.h"
#include "ops/dft.h"
#include "ops/mel_weight_matrix.h"
#include "ops/stft.h"

namespace kiln {
namespace cuda {
namespace {

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

constexpr int64_t kMaxLength = int64_t{1} << 28;  // DftPlan's largest transform

bool is_int_scalar_type(DataType t) { return t == DataType::kInt32 || t == DataType::kInt64; }

// A scalar input's value when it is a constant of the graph.
const Tensor* constant_scalar(const Node& n, size_t i) {
  const Value* v = n.in(i);
  return v && v->is_constant() && v->data.numel() == 1 ? &v->data : nullptr;
}

// Unsupported when input i is a constant that is not a single int32 / int64 in [lo, hi].
Status check_int_scalar(const Node& n, size_t i, const char* what, int64_t lo, int64_t hi) {
  const Value* v = n.in(i);
  if (!v) return Status::ok();
  if (!is_int_scalar_type(v->dtype))
    return unsupported(cat(what, " of type ", dtype_name(v->dtype)));
  if (v->is_constant()) {
    if (v->data.numel() != 1) return unsupported(cat(what, " is not a scalar"));
    const int64_t x = v->data.get_i64(0);
    if (x < lo || x > hi) return unsupported(cat(what, " ", x, " is outside [", lo, ", ", hi, "]"));
  }
  return Status::ok();
}

rk::IntScalar host_scalar(int64_t v) {
  rk::IntScalar s;
  s.value = v;
  return s;
}

// Input i as the kernel reads it: the node's constant, else the element on the device.
rk::IntScalar int_scalar(const LaunchArgs& a, size_t i, const char* what) {
  if (const Tensor* c = constant_scalar(a.node, i)) return host_scalar(c->get_i64(0));
  const DeviceTensor& t = a.in(i);
  KILN_EXPECT(t.numel() == 1 && is_int_scalar_type(t.dtype), StatusCode::kInvalidArgument,
              a.node.op(), ": ", what, " must be an int32 or int64 scalar, got ",
              dtype_name(t.dtype), dims_to_string(t.dims));
  rk::IntScalar s;
  s.ptr = t.data;
  s.is64 = t.dtype == DataType::kInt64;
  return s;
}

// ---- DFT ----

Status dft_supports(const Node& n) {
  const Value* x = n.in(0);
  if (!x) return unsupported("DFT without its input");
  if (!rk::dft_supported(rk_dtype(x->dtype)))
    return unsupported(cat("DFT of ", dtype_name(x->dtype), " inputs"));
  if (Status s = check_int_scalar(n, 1, "dft_length", 1, kMaxLength); !s) return s;
  if (x->shape.rank_known) {
    const auto r = static_cast<int64_t>(x->shape.rank());
    const int64_t axis = n.a<DftAttrs>().axis;
    if (r < 2) return unsupported(cat("DFT of a rank-", r, " input"));
    if (axis < -r || axis >= r || axis == r - 1 || axis == -1)
      return unsupported(cat("DFT axis ", axis, " of a rank-", r, " input"));
  }
  return Status::ok();
}

void dft_enqueue(const LaunchArgs& a) {
  const auto& at = a.node.a<DftAttrs>();
  const DeviceTensor& x = a.in(0);
  DeviceTensor& y = a.out(0);
  const auto r = static_cast<int64_t>(x.rank());
  KILN_EXPECT(r >= 2, StatusCode::kInvalidArgument, "DFT: input of rank ", r);
  const int64_t axis = normalize_axis(at.axis, r, "DFT axis");
  KILN_EXPECT(axis != r - 1, StatusCode::kInvalidArgument,
              "DFT: axis cannot be the last (re, im) dimension");
  rk::DftProblem p;
  p.dtype = rk_dtype(x.dtype);
  p.x = x.data;
  p.y = y.data;
  p.comps = x.dims[r - 1];
  KILN_EXPECT(p.comps == 1 || p.comps == 2, StatusCode::kInvalidArgument,
              "DFT: the last dimension must be 1 or 2, got ", p.comps);
  p.n = x.dims[axis];
  for (int64_t d = 0; d < axis; ++d) p.outer *= x.dims[d];
  for (int64_t d = axis + 1; d < r - 1; ++d) p.inner *= x.dims[d];
  p.inverse = at.inverse;
  p.onesided = at.onesided;
  Dims want = x.dims;
  want[r - 1] = 2;
  KILN_EXPECT(y.rank() == x.rank(), StatusCode::kInvalidArgument, "DFT: output ",
              dims_to_string(y.dims), " for input ", dims_to_string(x.dims));
  want[axis] = y.dims[axis];
  KILN_EXPECT(y.dims == want, StatusCode::kInvalidArgument, "DFT: output ", dims_to_string(y.dims),
              " for input ", dims_to_string(x.dims));
  p.n_out = y.dims[axis];
  // The transform length: n, the constant dft_length, the output's length when two-sided, or
  // (onesided, computed at run time: n_out does not tell 2m from 2m + 1) read by the kernel.
  if (!a.has(1))
    p.length = host_scalar(p.n);
  else if (const Tensor* c = constant_scalar(a.node, 1))
    p.length = host_scalar(c->get_i64(0));
  else if (!p.onesided)
    p.length = host_scalar(p.n_out);
  else
    p.length = int_scalar(a, 1, "dft_length");
  if (!p.length.ptr) {
    const int64_t len = p.length.value;
    KILN_EXPECT(len >= 1 && len <= kMaxLength, StatusCode::kInvalidArgument, "DFT length ", len,
                " is outside [1, 2^28]");
    KILN_EXPECT(p.n_out == (p.onesided ? len / 2 + 1 : len), StatusCode::kInternal,
                "DFT: output axis size ", p.n_out, " for length ", len);
  }
  if (y.numel() == 0) return;
  rk::launch_dft(p, a.stream);
  check_launch("cuda.dft");
}

class DftKernel : public Kernel {
 public:
  void enqueue(const LaunchArgs& a) override { dft_enqueue(a); }
};

std::unique_ptr<Kernel> make_dft(const Node&) { return std::make_unique<DftKernel>(); }

// ---- STFT ----

Status stft_supports(const Node& n) {
  const Value* x = n.in(0);
  if (!x) return unsupported("STFT without its signal");
  if (!rk::stft_supported(rk_dtype(x->dtype)))
    return unsupported(cat("STFT of ", dtype_name(x->dtype), " signals"));
  if (!n.in(1)) return unsupported("STFT without frame_step");
  if (Status s = check_int_scalar(n, 1, "frame_step", 1, INT64_MAX); !s) return s;
  if (Status s = check_int_scalar(n, 3, "frame_length", 1, kMaxLength); !s) return s;
  if (const Value* w = n.in(2); w && w->dtype != x->dtype)
    return unsupported(
        cat("a ", dtype_name(w->dtype), " window for a ", dtype_name(x->dtype), " signal"));
  if (!n.in(2) && !n.in(3)) return unsupported("STFT without a window or a frame_length");
  if (x->shape.rank_known && x->shape.rank() != 3)
    return unsupported(cat("STFT of a rank-", x->shape.rank(), " signal"));
  return Status::ok();
}

void stft_enqueue(const LaunchArgs& a) {
  const auto& at = a.node.a<StftAttrs>();
  const DeviceTensor& x = a.in(0);
  DeviceTensor& y = a.out(0);
  KILN_EXPECT(x.rank() == 3 && (x.dims[2] == 1 || x.dims[2] == 2), StatusCode::kInvalidArgument,
              "STFT: signal must be [batch, length, 1 or 2], got ", dims_to_string(x.dims));
  rk::StftProblem p;
  p.dtype = rk_dtype(x.dtype);
  p.signal = x.data;
  p.y = y.data;
  p.batch = x.dims[0];
  p.length = x.dims[1];
  p.comps = x.dims[2];
  p.onesided = at.onesided;
  KILN_EXPECT(y.rank() == 4 && y.dims[0] == p.batch && y.dims[3] == 2, StatusCode::kInvalidArgument,
              "STFT: output ", dims_to_string(y.dims), " for signal ", dims_to_string(x.dims));
  p.frames = y.dims[1];
  p.bins = y.dims[2];
  if (a.has(2)) {
    const DeviceTensor& w = a.in(2);
    KILN_EXPECT(w.rank() == 1, StatusCode::kInvalidArgument, "STFT: window must be 1-D, got ",
                dims_to_string(w.dims));
    p.window = w.data;
    p.window_length = w.numel();
  }
  p.frame_step = int_scalar(a, 1, "frame_step");
  // frame_length: its input (constant, or the bin count when two-sided, else read by the
  // kernel, which also checks it against the window), else the window's length.
  if (!a.has(3))
    p.frame_length = host_scalar(p.window_length);
  else if (!constant_scalar(a.node, 3) && !p.onesided)
    p.frame_length = host_scalar(p.bins);
  else
    p.frame_length = int_scalar(a, 3, "frame_length");
  if (!p.frame_length.ptr) {
    const int64_t fl = p.frame_length.value;
    KILN_EXPECT(!a.has(2) || p.window_length == fl, StatusCode::kInvalidArgument,
                "STFT: window has ", p.window_length, " elements but frame_length is ", fl);
    KILN_EXPECT(fl >= 1 && fl <= p.length && fl <= kMaxLength, StatusCode::kInvalidArgument,
                "STFT: frame_length ", fl, " does not fit a signal of length ", p.length);
    KILN_EXPECT(p.bins == (p.onesided ? fl / 2 + 1 : fl), StatusCode::kInternal, "STFT: output ",
                dims_to_string(y.dims), " for frame_length ", fl);
    if (!p.frame_step.ptr) {
      const int64_t step = p.frame_step.value;
      KILN_EXPECT(step >= 1, StatusCode::kInvalidArgument, "STFT: frame_step ", step);
      KILN_EXPECT(p.frames == 1 + (p.length - fl) / step, StatusCode::kInternal, "STFT: output ",
                  dims_to_string(y.dims), " for frame_step ", step);
    }
  }
  if (y.numel() == 0) return;
  rk::launch_stft(p, a.stream);
  check_launch("cuda.stft");
}

class StftKernel : public Kernel {
 public:
  void enqueue(const LaunchArgs& a) override { stft_enqueue(a); }
};

std::unique_ptr<Kernel> make_stft(const Node&) { return std::make_unique<StftKernel>(); }

// ---- MelWeightMatrix ----

Status mel_supports(const Node& n) {
  static const char* names[] = {"num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz",
                                "upper_edge_hertz"};
  for (size_t i = 0; i < 5; ++i)
    if (!n.in(i)) return unsupported(cat("MelWeightMatrix without ", names[i]));
  for (size_t i = 0; i < 3; ++i)
    if (Status s = check_int_scalar(n, i, names[i], INT64_MIN, INT64_MAX); !s) return s;
  const DataType out = n.a<MelWeightMatrixAttrs>().output_dtype;
  if (!rk::mel_weight_matrix_supported(rk_dtype(out), rk_dtype(n.in(3)->dtype),
                                       rk_dtype(n.in(4)->dtype)))
    return unsupported(cat("MelWeightMatrix of ", dtype_name(out), " from ",
                           dtype_name(n.in(3)->dtype), " / ", dtype_name(n.in(4)->dtype),
                           " edges"));
  return Status::ok();
}

void mel_enqueue(const LaunchArgs& a) {
  const auto& at = a.node.a<MelWeightMatrixAttrs>();
  DeviceTensor& y = a.out(0);
  KILN_EXPECT(y.rank() == 2 && y.dtype == at.output_dtype, StatusCode::kInvalidArgument,
              "MelWeightMatrix: output ", dtype_name(y.dtype), dims_to_string(y.dims));
  for (size_t i = 3; i < 5; ++i)
    KILN_EXPECT(a.in(i).numel() == 1, StatusCode::kInvalidArgument, "MelWeightMatrix: input ", i,
                " must be a scalar");
  rk::MelWeightMatrixProblem p;
  p.out_dtype = rk_dtype(y.dtype);
  p.num_mel_bins = int_scalar(a, 0, "num_mel_bins");
  p.dft_length = int_scalar(a, 1, "dft_length");
  p.sample_rate = int_scalar(a, 2, "sample_rate");
  p.lower_edge_hertz = a.in(3).data;
  p.upper_edge_hertz = a.in(4).data;
  p.lower_dtype = rk_dtype(a.in(3).dtype);
  p.upper_dtype = rk_dtype(a.in(4).dtype);
  p.y = y.data;
  p.rows = y.dims[0];
  p.cols = y.dims[1];
  if (y.numel() == 0) return;
  rk::launch_mel_weight_matrix(p, a.stream);
  check_launch("cuda.mel_weight_matrix");
}

class MelKernel : public Kernel {
 public:
  void enqueue(const LaunchArgs& a) override { mel_enqueue(a); }
};

std::unique_ptr<Kernel> make_mel(const Node&) { return std::make_unique<MelKernel>(); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_dft() {
  static const cuda::SimpleTactic t("cuda.dft", "DFT", cuda::dft_supports, cuda::make_dft);
  return t;
}

const Tactic& kiln_cuda_tactic_stft() {
  static const cuda::SimpleTactic t("cuda.stft", "STFT", cuda::stft_supports, cuda::make_stft);
  return t;
}

const Tactic& kiln_cuda_tactic_mel_weight_matrix() {
  static const cuda::SimpleTactic t("cuda.mel_weight_matrix", "MelWeightMatrix", cuda::mel_supports,
                                    cuda::make_mel);
  return t;
}

}  // namespace kiln
