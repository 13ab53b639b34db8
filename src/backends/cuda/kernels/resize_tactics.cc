// cuda.resize: Resize on kiln's own kernel (resize.cu): nearest, N-D linear and N-D cubic, every
// coordinate transformation mode, rank <= 8, every numeric element type (bool in nearest mode).
// The scales (and the roi of tf_crop_and_resize) are graph constants in exported models; sizes may
// be computed at run time, since the output dims carry them. Scales or a roi computed by earlier
// steps are read back from the device at each launch (a copy and a wait on the launch stream, so
// that kernel is not capturable); the kernel is then the same.
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/kernels/movement_tactic_util.h"
#include "backends/cuda/kernels/resize.h"
#include "ops/op_util.h"
#include "ops/resize.h"

namespace kiln {
namespace cuda {
namespace {

std::optional<mv::ResizeMode> mode_of(const std::string& s) {
  if (s == "nearest") return mv::ResizeMode::kNearest;
  if (s == "linear") return mv::ResizeMode::kLinear;
  if (s == "cubic") return mv::ResizeMode::kCubic;
  return std::nullopt;
}

std::optional<mv::ResizeCoord> coord_of(const std::string& s) {
  if (s == "half_pixel") return mv::ResizeCoord::kHalfPixel;
  if (s == "pytorch_half_pixel") return mv::ResizeCoord::kPytorchHalfPixel;
  if (s == "align_corners") return mv::ResizeCoord::kAlignCorners;
  if (s == "asymmetric") return mv::ResizeCoord::kAsymmetric;
  if (s == "tf_half_pixel_for_nn") return mv::ResizeCoord::kTfHalfPixelForNN;
  if (s == "tf_crop_and_resize") return mv::ResizeCoord::kTfCropAndResize;
  return std::nullopt;
}

std::optional<mv::NearestMode> nearest_of(const std::string& s) {
  if (s == "round_prefer_floor") return mv::NearestMode::kRoundPreferFloor;
  if (s == "round_prefer_ceil") return mv::NearestMode::kRoundPreferCeil;
  if (s == "floor") return mv::NearestMode::kFloor;
  if (s == "ceil") return mv::NearestMode::kCeil;
  return std::nullopt;
}

// The constant, non-empty scales input, or null when the sizes decide (input 2 absent, or an
// empty constant as opset 11 writes for the unused one) or when the scales are computed.
const Tensor* given_scales(const Node& n) {
  const Tensor* s = constant_input(n, 2);
  return s && s->numel() > 0 ? s : nullptr;
}

bool run_time_scales(const Node& n) { return !absent_or_constant(n, 2); }
bool run_time_roi(const Node& n) {
  return *coord_of(n.a<ResizeAttrs>().coordinate_transformation_mode) ==
             mv::ResizeCoord::kTfCropAndResize &&
         !absent_or_constant(n, 1);
}

Status supports(const Node& n) {
  if (Status s = check_op_and_data(n, "Resize"); !s) return s;
  const auto& at = n.a<ResizeAttrs>();
  auto mode = mode_of(at.mode);
  auto coord = coord_of(at.coordinate_transformation_mode);
  if (!mode || !coord || !nearest_of(at.nearest_mode))
    return unsupported("unknown mode, coordinate transformation or nearest mode");
  if (*mode != mv::ResizeMode::kNearest && n.in(0)->dtype == DataType::kBool)
    return unsupported("interpolating bool tensors");
  if (Status s = check_rank(n, 0, mv::kMaxDims); !s) return s;
  if (!given_scales(n) && !run_time_scales(n) && !n.in(3))
    return unsupported("neither scales nor sizes");
  if (*coord == mv::ResizeCoord::kTfCropAndResize && !n.in(1))
    return unsupported("tf_crop_and_resize without a roi");
  return Status::ok();
}

// `scales` and `roi_in`: the values of inputs 2 and 1 (constants, or read back from the device),
// or null where absent (scales: empty, so the sizes decide; roi: not tf_crop_and_resize).
void launch_resize(const LaunchArgs& a, const Tensor* scales, const Tensor* roi_in) {
  const Node& n = a.node;
  const auto& at = n.a<ResizeAttrs>();
  const DeviceTensor& x = a.in(0);
  DeviceTensor& y = a.out(0);
  const int r = static_cast<int>(x.rank());
  KILN_EXPECT(r <= mv::kMaxDims && y.rank() == x.rank(), StatusCode::kInvalidArgument,
              "Resize: input ", dims_to_string(x.dims), ", output ", dims_to_string(y.dims));
  if (y.numel() == 0) return;
  mv::ResizeArgs p;
  p.rank = r;
  p.mode = *mode_of(at.mode);
  p.coord = *coord_of(at.coordinate_transformation_mode);
  p.nearest = *nearest_of(at.nearest_mode);
  p.cubic_a = at.cubic_coeff_a;
  p.exclude_outside = at.exclude_outside;
  p.extrapolation = at.extrapolation_value;
  std::vector<double> sv, roi;
  if (scales) {
    sv = to_doubles(*scales);
    KILN_EXPECT(static_cast<int>(sv.size()) == r, StatusCode::kInvalidArgument,
                "Resize: scales has ", sv.size(), " values but X has rank ", r);
  }
  if (p.coord == mv::ResizeCoord::kTfCropAndResize) {
    KILN_EXPECT(roi_in != nullptr, StatusCode::kInvalidArgument,
                "Resize: tf_crop_and_resize needs the roi input");
    roi = to_doubles(*roi_in);
    KILN_EXPECT(static_cast<int>(roi.size()) == 2 * r, StatusCode::kInvalidArgument,
                "Resize: tf_crop_and_resize needs roi with 2 * rank = ", 2 * r, " values");
  }
  // Dims that map every output coordinate onto itself with weight 1 are skipped by the kernel;
  // these coordinate modes give exactly x for a scale of 1 (nearest and linear take that tap
  // alone).
  bool exact_coord =
      p.coord == mv::ResizeCoord::kHalfPixel || p.coord == mv::ResizeCoord::kPytorchHalfPixel ||
      p.coord == mv::ResizeCoord::kAlignCorners || p.coord == mv::ResizeCoord::kAsymmetric;
  for (int d = 0; d < r; ++d) {
    const int64_t in = x.dims[d], out = y.dims[d];
    KILN_EXPECT(in > 0, StatusCode::kInvalidArgument, "Resize: cannot resize dimension ", d,
                " of size 0 to ", out);
    p.in_dims[d] = in;
    p.out_dims[d] = out;
    if (scales) {
      // As the reference: the unrounded scale * length is the resized length.
      p.scale[d] = sv[d];
      p.len_resized[d] = sv[d] * static_cast<double>(in);
    } else {
      p.scale[d] = static_cast<double>(out) / static_cast<double>(in);
      p.len_resized[d] = static_cast<double>(out);
    }
    p.roi_start[d] = roi.empty() ? 0.0 : roi[d];
    p.roi_end[d] = roi.empty() ? 1.0 : roi[d + r];
    p.identity[d] =
        exact_coord && p.mode != mv::ResizeMode::kCubic && in == out && p.scale[d] == 1.0;
  }
  mv::resize(x.data, y.data, elem_type(x.dtype), p, a.stream);
  check_launch("cuda.resize");
}

class ResizeKernel : public Kernel {
 public:
  explicit ResizeKernel(const Node& n)
      : run_time_scales_(run_time_scales(n)), run_time_roi_(run_time_roi(n)) {}

  // Parameters read back from the device synchronise the stream.
  bool capturable() const override { return !run_time_scales_ && !run_time_roi_; }

  void enqueue(const LaunchArgs& a) override {
    const Node& n = a.node;
    const bool crop = *coord_of(n.a<ResizeAttrs>().coordinate_transformation_mode) ==
                      mv::ResizeCoord::kTfCropAndResize;
    const Tensor* scales = given_scales(n);
    const Tensor* roi = crop ? constant_input(n, 1) : nullptr;
    Tensor scales_host, roi_host;
    // Empty scales (the sizes decide) need no copy: their dims say so.
    if (run_time_scales_ && a.in(2).numel() > 0) {
      scales_host = copy_to_host_sync(a.in(2), stream_of(a));
      KILN_EXPECT(!a.has(3) || a.in(3).numel() == 0, StatusCode::kInvalidArgument,
                  "Resize: only one of scales and sizes may be given");
      KILN_EXPECT(dtype_is_float(scales_host.dtype()), StatusCode::kInvalidArgument,
                  "Resize: scales must be a float tensor, got ", dtype_name(scales_host.dtype()));
      for (double v : to_doubles(scales_host))
        KILN_EXPECT(v > 0 && std::isfinite(v), StatusCode::kInvalidArgument, "Resize: scale ", v,
                    " must be positive");
      scales = &scales_host;
    }
    if (run_time_roi_) {
      roi_host = copy_to_host_sync(a.in(1), stream_of(a));
      roi = &roi_host;
    }
    launch_resize(a, scales, roi);
  }

 private:
  bool run_time_scales_, run_time_roi_;
};

std::unique_ptr<Kernel> make(const Node& n) { return std::make_unique<ResizeKernel>(n); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_resize() {
  static const cuda::SimpleTactic t("cuda.resize", "Resize", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
