// cuda.grid_sample and cuda.roi_align on kiln's own kernels (vision.cu), one thread per output
// element, computing as the references (ops/grid_sample.cc, ops/roi_align.cc) do:
//   GridSample: 2-D, modes bilinear / nearest / bicubic (and their aliases linear / cubic),
//     padding zeros / border / reflection, align_corners; X and grid of float32, float16,
//     bfloat16 or float64 (independently).
//   RoiAlign: avg / max, half_pixel / output_half_pixel, adaptive (0) or fixed sampling_ratio,
//     spatial_scale; X and rois of float32, float16, bfloat16 or float64, batch_indices int64 or
//     int32.
// Coordinates in double as the references; sums in double (float for 16-bit data).
#include <string>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/vision.h"
#include "ops/grid_sample.h"
#include "ops/roi_align.h"

namespace kiln {
namespace cuda {
namespace {

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

// Unsupported when input i's rank is known and is not `rank`.
Status check_known_rank(const Node& n, size_t i, size_t rank, const char* what) {
  const Value* v = n.in(i);
  if (v && v->shape.rank_known && v->shape.rank() != rank)
    return unsupported(cat(what, " of rank ", v->shape.rank(), " (expected ", rank, ")"));
  return Status::ok();
}

// ---- GridSample ----

bool grid_mode_of(const std::string& s, rk::GridSampleMode& m) {
  if (s == "bilinear" || s == "linear")
    m = rk::GridSampleMode::kBilinear;
  else if (s == "nearest")
    m = rk::GridSampleMode::kNearest;
  else if (s == "bicubic" || s == "cubic")
    m = rk::GridSampleMode::kBicubic;
  else
    return false;
  return true;
}

bool grid_pad_of(const std::string& s, rk::GridSamplePad& p) {
  if (s == "zeros")
    p = rk::GridSamplePad::kZeros;
  else if (s == "border")
    p = rk::GridSamplePad::kBorder;
  else if (s == "reflection")
    p = rk::GridSamplePad::kReflection;
  else
    return false;
  return true;
}

Status grid_sample_supports(const Node& n) {
  const Value* x = n.in(0);
  const Value* grid = n.in(1);
  if (!x || !grid) return unsupported("GridSample without X and grid");
  if (!rk::grid_sample_supported(rk_dtype(x->dtype), rk_dtype(grid->dtype)))
    return unsupported(cat("GridSample of ", dtype_name(x->dtype), " X with a ",
                           dtype_name(grid->dtype), " grid"));
  const auto& at = n.a<GridSampleAttrs>();
  rk::GridSampleMode m;
  rk::GridSamplePad p;
  if (!grid_mode_of(at.mode, m)) return unsupported(cat("mode '", at.mode, "'"));
  if (!grid_pad_of(at.padding_mode, p))
    return unsupported(cat("padding_mode '", at.padding_mode, "'"));
  if (Status s = check_known_rank(n, 0, 4, "X"); !s) return s;
  if (Status s = check_known_rank(n, 1, 4, "grid"); !s) return s;
  return Status::ok();
}

void grid_sample_enqueue(const LaunchArgs& a) {
  const auto& at = a.node.a<GridSampleAttrs>();
  const DeviceTensor& x = a.in(0);
  const DeviceTensor& grid = a.in(1);
  DeviceTensor& y = a.out(0);
  KILN_EXPECT(x.rank() == 4 && grid.rank() == 4 && grid.dims[0] == x.dims[0] && grid.dims[3] == 2,
              StatusCode::kInvalidArgument, "GridSample: grid ", dims_to_string(grid.dims),
              " does not match X ", dims_to_string(x.dims));
  rk::GridSampleProblem p;
  p.dtype = rk_dtype(x.dtype);
  p.grid_dtype = rk_dtype(grid.dtype);
  p.x = x.data;
  p.grid = grid.data;
  p.y = y.data;
  p.n = x.dims[0];
  p.c = x.dims[1];
  p.h = x.dims[2];
  p.w = x.dims[3];
  p.ho = grid.dims[1];
  p.wo = grid.dims[2];
  KILN_EXPECT(y.dims == Dims({p.n, p.c, p.ho, p.wo}), StatusCode::kInvalidArgument,
              "GridSample: output ", dims_to_string(y.dims), " for X ", dims_to_string(x.dims),
              " and grid ", dims_to_string(grid.dims));
  if (!grid_mode_of(at.mode, p.mode) || !grid_pad_of(at.padding_mode, p.pad))
    fail(StatusCode::kInvalidModel, "GridSample: unknown mode '", at.mode, "' or padding_mode '",
         at.padding_mode, "'");
  p.align_corners = at.align_corners;
  if (y.numel() == 0) return;
  rk::launch_grid_sample(p, a.stream);
  check_launch("cuda.grid_sample");
}

class GridSampleKernel : public Kernel {
 public:
  void enqueue(const LaunchArgs& a) override { grid_sample_enqueue(a); }
};

std::unique_ptr<Kernel> make_grid_sample(const Node&) {
  return std::make_unique<GridSampleKernel>();
}

// ---- RoiAlign ----

Status roi_align_supports(const Node& n) {
  const Value* x = n.in(0);
  const Value* rois = n.in(1);
  const Value* bidx = n.in(2);
  if (!x || !rois || !bidx) return unsupported("RoiAlign without X, rois and batch_indices");
  if (rois->dtype != x->dtype)
    return unsupported(cat(dtype_name(rois->dtype), " rois for ", dtype_name(x->dtype), " X"));
  if (!rk::roi_align_supported(rk_dtype(x->dtype), rk_dtype(bidx->dtype)))
    return unsupported(cat("RoiAlign of ", dtype_name(x->dtype), " X with ",
                           dtype_name(bidx->dtype), " batch_indices"));
  const auto& at = n.a<RoiAlignAttrs>();
  if (at.mode != "avg" && at.mode != "max") return unsupported(cat("mode '", at.mode, "'"));
  if (at.coordinate_transformation_mode != "half_pixel" &&
      at.coordinate_transformation_mode != "output_half_pixel")
    return unsupported(
        cat("coordinate_transformation_mode '", at.coordinate_transformation_mode, "'"));
  if (at.output_height <= 0 || at.output_width <= 0)
    return unsupported(cat("output size ", at.output_height, "x", at.output_width));
  if (at.sampling_ratio < 0 || at.sampling_ratio > 65536)
    return unsupported(cat("sampling_ratio ", at.sampling_ratio));
  if (Status s = check_known_rank(n, 0, 4, "X"); !s) return s;
  if (Status s = check_known_rank(n, 1, 2, "rois"); !s) return s;
  return Status::ok();
}

void roi_align_enqueue(const LaunchArgs& a) {
  const auto& at = a.node.a<RoiAlignAttrs>();
  const DeviceTensor& x = a.in(0);
  const DeviceTensor& rois = a.in(1);
  const DeviceTensor& bidx = a.in(2);
  DeviceTensor& y = a.out(0);
  KILN_EXPECT(
      x.rank() == 4 && rois.rank() == 2 && rois.dims[1] == 4 && bidx.numel() == rois.dims[0],
      StatusCode::kInvalidArgument, "RoiAlign: X ", dims_to_string(x.dims), ", rois ",
      dims_to_string(rois.dims), " and batch_indices ", dims_to_string(bidx.dims), " do not agree");
  rk::RoiAlignProblem p;
  p.dtype = rk_dtype(x.dtype);
  p.batch_dtype = rk_dtype(bidx.dtype);
  p.x = x.data;
  p.rois = rois.data;
  p.batch_indices = bidx.data;
  p.y = y.data;
  p.n = x.dims[0];
  p.c = x.dims[1];
  p.h = x.dims[2];
  p.w = x.dims[3];
  p.r = rois.dims[0];
  p.ph = at.output_height;
  p.pw = at.output_width;
  KILN_EXPECT(y.dims == Dims({p.r, p.c, p.ph, p.pw}), StatusCode::kInvalidArgument,
              "RoiAlign: output ", dims_to_string(y.dims), " for X ", dims_to_string(x.dims),
              " and rois ", dims_to_string(rois.dims));
  if (y.numel() == 0) return;
  KILN_EXPECT(p.h > 0 && p.w > 0, StatusCode::kInvalidArgument,
              "RoiAlign: X has an empty spatial dimension");
  p.sampling_ratio = at.sampling_ratio;
  p.spatial_scale = at.spatial_scale;
  p.half_pixel = at.coordinate_transformation_mode == "half_pixel";
  p.avg = at.mode == "avg";
  rk::launch_roi_align(p, a.stream);
  check_launch("cuda.roi_align");
}

class RoiAlignKernel : public Kernel {
 public:
  void enqueue(const LaunchArgs& a) override { roi_align_enqueue(a); }
};

std::unique_ptr<Kernel> make_roi_align(const Node&) { return std::make_unique<RoiAlignKernel>(); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_grid_sample() {
  static const cuda::SimpleTactic t("cuda.grid_sample", "GridSample", cuda::grid_sample_supports,
                                    cuda::make_grid_sample);
  return t;
}

const Tactic& kiln_cuda_tactic_roi_align() {
  static const cuda::SimpleTactic t("cuda.roi_align", "RoiAlign", cuda::roi_align_supports,
                                    cuda::make_roi_align);
  return t;
}

}  // namespace kiln
