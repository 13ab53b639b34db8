// RoiAlign: average (or max) of bilinear samples on a regular grid inside each output bin.
// The sampling and the max mode follow onnxruntime's RoiAlign, from which the ONNX reference and
// test data derive: max mode takes the largest *weighted corner* of each sample, not the largest
// interpolated sample.
#include "ops/roi_align.h"

#include <cmath>

#include "ops/op_util.h"

namespace kiln {

namespace {

template <class Err>
void check_attrs(const RoiAlignAttrs& a, const Err& err) {
  if (a.mode != "avg" && a.mode != "max")
    err(cat("unknown mode '", a.mode, "' (expected avg or max)"));
  if (a.coordinate_transformation_mode != "half_pixel" &&
      a.coordinate_transformation_mode != "output_half_pixel")
    err(cat("unknown coordinate_transformation_mode '", a.coordinate_transformation_mode,
            "' (expected half_pixel or output_half_pixel)"));
  if (a.output_height <= 0 || a.output_width <= 0)
    err(cat("output_height and output_width must be positive, got ", a.output_height, "x",
            a.output_width));
  if (a.sampling_ratio < 0) err(cat("sampling_ratio must be >= 0, got ", a.sampling_ratio));
  // The same bound as adaptive sampling: samples per bin side are allocated per roi.
  if (a.sampling_ratio > 65536) err(cat("sampling_ratio ", a.sampling_ratio, " is too large"));
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<RoiAlignAttrs>();
  check_attrs(a, [&](const std::string& s) { ctx.error(s); });
  DataType t = ctx.dtype(0);
  if (!dtype_is_float(t)) ctx.error(cat("X must be a float tensor, got ", dtype_name(t)));
  if (ctx.dtype(1) != t)
    ctx.error(cat("rois is ", dtype_name(ctx.dtype(1)), " but X is ", dtype_name(t)));
  if (ctx.dtype(2) != DataType::kInt64 && ctx.dtype(2) != DataType::kInt32)
    ctx.error(cat("batch_indices must be int64, got ", dtype_name(ctx.dtype(2))));
  const Shape& xs = ctx.shape(0);
  const Shape& rs = ctx.shape(1);
  const Shape& bs = ctx.shape(2);
  if (xs.rank_known && xs.rank() != 4) ctx.error(cat("X must be 4-D, got rank ", xs.rank()));
  if (rs.rank_known && rs.rank() != 2) ctx.error(cat("rois must be 2-D, got rank ", rs.rank()));
  if (rs.rank_known && rs[1].known() && rs[1].value != 4)
    ctx.error(cat("rois must have 4 columns, got ", rs[1].value));
  if (bs.rank_known && bs.rank() != 1)
    ctx.error(cat("batch_indices must be 1-D, got rank ", bs.rank()));
  if (rs.rank_known && bs.rank_known && rs[0].known() && bs[0].known() &&
      rs[0].value != bs[0].value)
    ctx.error(cat("rois has ", rs[0].value, " rows but batch_indices has ", bs[0].value));
  Dim r = rs.rank_known ? rs[0] : (bs.rank_known ? bs[0] : Dim::unknown());
  Dim c = xs.rank_known ? xs[1] : Dim::unknown();
  ctx.set_output(0, t, Shape({r, c, Dim(a.output_height), Dim(a.output_width)}));
}

struct Sample {
  int64_t pos[4] = {0, 0, 0, 0};
  double w[4] = {0, 0, 0, 0};
};

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<RoiAlignAttrs>();
  check_attrs(a, [](const std::string& s) { fail(StatusCode::kInvalidArgument, "RoiAlign: ", s); });
  const Tensor& x = args.in(0);
  const Tensor& rois = args.in(1);
  const Tensor& bidx = args.in(2);
  Tensor& y = args.out(0);
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t R = rois.dim(0), PH = a.output_height, PW = a.output_width;
  if (rois.dim(1) != 4 || bidx.numel() != R)
    fail(StatusCode::kInvalidArgument, "RoiAlign: rois ", dims_to_string(rois.dims()),
         " and batch_indices ", dims_to_string(bidx.dims()), " do not agree");
  if ((H == 0 || W == 0) && y.numel() > 0)
    fail(StatusCode::kInvalidArgument, "RoiAlign: X has an empty spatial dimension");
  const bool half_pixel = a.coordinate_transformation_mode == "half_pixel";
  const bool avg = a.mode == "avg";
  const double offset = half_pixel ? 0.5 : 0.0;
  std::vector<double> xv = to_doubles(x);
  std::vector<Sample> samples;
  for (int64_t r = 0; r < R; ++r) {
    int64_t b = bidx.get_i64(r);
    if (b < 0 || b >= N)
      fail(StatusCode::kInvalidArgument, "RoiAlign: batch_indices[", r, "] = ", b,
           " is outside [0, ", N, ")");
    double x1 = rois.get_f64(r * 4 + 0) * a.spatial_scale - offset;
    double y1 = rois.get_f64(r * 4 + 1) * a.spatial_scale - offset;
    double x2 = rois.get_f64(r * 4 + 2) * a.spatial_scale - offset;
    double y2 = rois.get_f64(r * 4 + 3) * a.spatial_scale - offset;
    double rw = x2 - x1, rh = y2 - y1;
    if (!half_pixel) {  // malformed rois become 1x1
      rw = std::max(rw, 1.0);
      rh = std::max(rh, 1.0);
    }
    double bh = rh / static_cast<double>(PH), bw = rw / static_cast<double>(PW);
    // Adaptive sampling: as many samples per bin side as input pixels it spans. A NaN or huge
    // roi would ask for an absurd number, which is refused rather than cast or allocated.
    auto grid = [&](double extent, int64_t bins) -> int64_t {
      if (a.sampling_ratio > 0) return a.sampling_ratio;
      double g = std::ceil(extent / static_cast<double>(bins));
      if (!(g <= 65536.0) && !(g < 0))
        fail(StatusCode::kInvalidArgument, "RoiAlign: roi ", r, " spans ", extent,
             " pixels, too many samples per bin");
      return g > 0 ? static_cast<int64_t>(g) : 0;
    };
    int64_t gh = grid(rh, PH), gw = grid(rw, PW);
    const double count = static_cast<double>(std::max<int64_t>(gh * gw, 1));

    // The bilinear taps of every sample point, shared by all channels.
    samples.assign(static_cast<size_t>(PH * PW * gh * gw), Sample{});
    size_t k = 0;
    for (int64_t ph = 0; ph < PH; ++ph)
      for (int64_t pw = 0; pw < PW; ++pw)
        for (int64_t iy = 0; iy < gh; ++iy) {
          double yy = y1 + ph * bh + (iy + 0.5) * bh / static_cast<double>(gh);
          for (int64_t ix = 0; ix < gw; ++ix, ++k) {
            double xx = x1 + pw * bw + (ix + 0.5) * bw / static_cast<double>(gw);
            double sy = yy, sx = xx;
            // Outside the image (or NaN, from a NaN roi or scale): contributes 0.
            if (!(sy >= -1.0 && sy <= H && sx >= -1.0 && sx <= W)) continue;
            sy = std::max(sy, 0.0);
            sx = std::max(sx, 0.0);
            auto ylo = static_cast<int64_t>(sy), xlo = static_cast<int64_t>(sx);
            int64_t yhi, xhi;
            if (ylo >= H - 1) {
              yhi = ylo = H - 1;
              sy = static_cast<double>(ylo);
            } else
              yhi = ylo + 1;
            if (xlo >= W - 1) {
              xhi = xlo = W - 1;
              sx = static_cast<double>(xlo);
            } else
              xhi = xlo + 1;
            double ly = sy - ylo, lx = sx - xlo, hy = 1 - ly, hx = 1 - lx;
            Sample& s = samples[k];
            s.pos[0] = ylo * W + xlo;
            s.pos[1] = ylo * W + xhi;
            s.pos[2] = yhi * W + xlo;
            s.pos[3] = yhi * W + xhi;
            s.w[0] = hy * hx;
            s.w[1] = hy * lx;
            s.w[2] = ly * hx;
            s.w[3] = ly * lx;
          }
        }
    const int64_t per_bin = gh * gw;
    for (int64_t c = 0; c < C; ++c) {
      const double* plane = xv.data() + (b * C + c) * H * W;
      for (int64_t bin = 0; bin < PH * PW; ++bin) {
        double v = 0;
        for (int64_t i = 0; i < per_bin; ++i) {
          const Sample& s = samples[bin * per_bin + i];
          if (avg) {
            for (int j = 0; j < 4; ++j) v += s.w[j] * plane[s.pos[j]];
          } else {
            double m = s.w[0] * plane[s.pos[0]];
            for (int j = 1; j < 4; ++j) m = std::max(m, s.w[j] * plane[s.pos[j]]);
            v = i == 0 ? m : std::max(v, m);
          }
        }
        if (avg) v /= count;
        y.set_f64((r * C + c) * PH * PW + bin, v);
      }
    }
  }
}

}  // namespace

const OpDef& kiln_op_roi_align() {
  static const OpDef d{"RoiAlign", make_attrs_of<RoiAlignAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
