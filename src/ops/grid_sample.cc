// GridSample (2-D): samples X at normalised grid locations. The arithmetic follows PyTorch's
// grid_sampler_2d (ATen/native/GridSampler.h), whose outputs the ONNX tests hold: padding is
// applied to the source coordinate for bilinear and nearest, and per tap for bicubic.
#include "ops/grid_sample.h"

#include <array>
#include <cmath>

#include "ops/op_util.h"

namespace kiln {

namespace {

enum class Mode { kBilinear, kNearest, kBicubic };
enum class Pad { kZeros, kBorder, kReflection };

template <class Err>
void parse(const GridSampleAttrs& a, Mode& m, Pad& p, const Err& err) {
  if (a.mode == "bilinear" || a.mode == "linear")
    m = Mode::kBilinear;
  else if (a.mode == "nearest")
    m = Mode::kNearest;
  else if (a.mode == "bicubic" || a.mode == "cubic")
    m = Mode::kBicubic;
  else
    err(cat("unknown mode '", a.mode, "' (expected bilinear, nearest or bicubic)"));
  if (a.padding_mode == "zeros")
    p = Pad::kZeros;
  else if (a.padding_mode == "border")
    p = Pad::kBorder;
  else if (a.padding_mode == "reflection")
    p = Pad::kReflection;
  else
    err(cat("unknown padding_mode '", a.padding_mode, "' (expected zeros, border or reflection)"));
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<GridSampleAttrs>();
  Mode m;
  Pad p;
  parse(a, m, p, [&](const std::string& s) { ctx.error(s); });
  DataType t = ctx.dtype(0);
  if (!dtype_is_float(t)) ctx.error(cat("X must be a float tensor, got ", dtype_name(t)));
  if (!dtype_is_float(ctx.dtype(1)))
    ctx.error(cat("grid must be a float tensor, got ", dtype_name(ctx.dtype(1))));
  const Shape& xs = ctx.shape(0);
  const Shape& gs = ctx.shape(1);
  if (xs.rank_known && xs.rank() != 4)
    ctx.error(cat("X must be 4-D [N,C,H,W], got rank ", xs.rank()));
  if (gs.rank_known && gs.rank() != 4)
    ctx.error(cat("grid must be 4-D [N,H_out,W_out,2], got rank ", gs.rank()));
  if (gs.rank_known && gs[3].known() && gs[3].value != 2)
    ctx.error(cat("grid's last dimension must be 2, got ", gs[3].value));
  if (xs.rank_known && gs.rank_known && xs[0].known() && gs[0].known() &&
      xs[0].value != gs[0].value)
    ctx.error(cat("X has batch ", xs[0].value, " but grid has ", gs[0].value));
  Shape out(std::vector<Dim>(4, Dim::unknown()));
  if (xs.rank_known) {
    out[0] = xs[0];
    out[1] = xs[1];
  }
  if (gs.rank_known) {
    if (!out[0].known() && out[0].symbol.empty()) out[0] = gs[0];
    out[2] = gs[1];
    out[3] = gs[2];
  }
  ctx.set_output(0, t, out);
}

double unnormalize(double c, int64_t size, bool align) {
  return align ? (c + 1) / 2 * static_cast<double>(size - 1)
               : ((c + 1) * static_cast<double>(size) - 1) / 2;
}

double clip(double c, int64_t size) {
  return std::min(static_cast<double>(size - 1), std::max(c, 0.0));
}

// Reflects c into [twice_low/2, twice_high/2] (the bounds are doubled to stay integral).
double reflect(double c, int64_t twice_low, int64_t twice_high) {
  if (twice_low == twice_high) return 0;
  double mn = static_cast<double>(twice_low) / 2;
  double span = static_cast<double>(twice_high - twice_low) / 2;
  c = std::fabs(c - mn);
  double extra = std::fmod(c, span);
  auto flips = static_cast<int64_t>(std::floor(c / span));
  return flips % 2 == 0 ? extra + mn : span - extra + mn;
}

double apply_padding(double c, int64_t size, Pad p, bool align) {
  if (p == Pad::kBorder) return clip(c, size);
  if (p == Pad::kReflection) {
    c = align ? reflect(c, 0, 2 * (size - 1)) : reflect(c, -1, 2 * size - 1);
    return clip(c, size);
  }
  return c;
}

std::array<double, 4> cubic_coeffs(double t) {
  constexpr double A = -0.75;
  auto conv1 = [](double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
  auto conv2 = [](double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
  return {conv2(t + 1), conv1(t), conv1(1 - t), conv2(2 - t)};
}

// Integer index of a coordinate, clamped into [-2, size + 1] first: beyond that every tap is
// outside the image anyway, and the cast of a huge or infinite double would be undefined.
int64_t to_index(double v, int64_t size) {
  if (std::isnan(v)) return -2;
  v = std::min(std::max(v, -2.0), static_cast<double>(size) + 1);
  return static_cast<int64_t>(v);
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<GridSampleAttrs>();
  Mode mode;
  Pad pad;
  parse(a, mode, pad, [](const std::string& s) { fail(StatusCode::kInvalidArgument, s); });
  const Tensor& x = args.in(0);
  const Tensor& grid = args.in(1);
  Tensor& y = args.out(0);
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t Ho = grid.dim(1), Wo = grid.dim(2);
  if (grid.dim(0) != N || grid.dim(3) != 2)
    fail(StatusCode::kInvalidArgument, "GridSample: grid ", dims_to_string(grid.dims()),
         " does not match X ", dims_to_string(x.dims()));
  const bool align = a.align_corners;
  std::vector<double> xv = to_doubles(x);
  // Reads X[n,c,iy,ix], or 0 outside the image.
  auto at = [&](const double* plane, int64_t iy, int64_t ix) {
    return (iy >= 0 && iy < H && ix >= 0 && ix < W) ? plane[iy * W + ix] : 0.0;
  };
  auto bounded = [&](const double* plane, double fx, double fy) {
    fx = apply_padding(fx, W, pad, align);
    fy = apply_padding(fy, H, pad, align);
    return at(plane, to_index(fy, H), to_index(fx, W));
  };
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t h = 0; h < Ho; ++h) {
      for (int64_t w = 0; w < Wo; ++w) {
        int64_t gi = ((n * Ho + h) * Wo + w) * 2;
        double gx = grid.get_f64(gi), gy = grid.get_f64(gi + 1);
        double ix = unnormalize(gx, W, align), iy = unnormalize(gy, H, align);
        if (mode != Mode::kBicubic) {
          ix = apply_padding(ix, W, pad, align);
          iy = apply_padding(iy, H, pad, align);
        }
        for (int64_t c = 0; c < C; ++c) {
          const double* plane = xv.data() + (n * C + c) * H * W;
          double v = 0;
          if (std::isnan(ix) || std::isnan(iy)) {
            v = 0;  // a NaN location samples nothing (PyTorch gives 0 for zeros padding too)
          } else if (mode == Mode::kNearest) {
            v = at(plane, to_index(std::nearbyint(iy), H), to_index(std::nearbyint(ix), W));
          } else if (mode == Mode::kBilinear) {
            double x0 = std::floor(ix), y0 = std::floor(iy);
            double tx = ix - x0, ty = iy - y0;
            int64_t i0 = to_index(x0, W), j0 = to_index(y0, H);
            v = at(plane, j0, i0) * (1 - tx) * (1 - ty) + at(plane, j0, i0 + 1) * tx * (1 - ty) +
                at(plane, j0 + 1, i0) * (1 - tx) * ty + at(plane, j0 + 1, i0 + 1) * tx * ty;
          } else {
            double x0 = std::floor(ix), y0 = std::floor(iy);
            auto cx = cubic_coeffs(ix - x0), cy = cubic_coeffs(iy - y0);
            for (int r = 0; r < 4; ++r) {
              double row = 0;
              for (int k = 0; k < 4; ++k) row += cx[k] * bounded(plane, x0 - 1 + k, y0 - 1 + r);
              v += cy[r] * row;
            }
          }
          y.set_f64(((n * C + c) * Ho + h) * Wo + w, v);
        }
      }
    }
  }
}

}  // namespace

const OpDef& kiln_op_grid_sample() {
  static const OpDef d{"GridSample", make_attrs_of<GridSampleAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
