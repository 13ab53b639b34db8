// Resize: nearest / N-D linear / N-D cubic interpolation with the ONNX coordinate transformation
// modes. The reference follows onnx/backend/test/case/node/resize.py (the conformance oracle):
// every dimension is interpolated independently (separable), out-of-range neighbours take the
// edge value, and with exclude_outside their weights are dropped and the rest renormalised.
#include "ops/resize.h"

#include <array>
#include <cmath>
#include <functional>
#include <utility>

#include "ops/op_util.h"

namespace kiln {

namespace {

enum class Mode { kNearest, kLinear, kCubic };
enum class Coord {
  kHalfPixel,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNN,
  kTfCropAndResize
};
enum class Nearest { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

struct Parsed {
  Mode mode;
  Coord coord;
  Nearest nearest;
};

// Finds `s` among the names of `table`; false when absent.
template <class E, size_t N>
bool lookup(const std::string& s, const std::pair<const char*, E> (&table)[N], E& out) {
  for (const auto& [name, value] : table)
    if (s == name) {
      out = value;
      return true;
    }
  return false;
}

template <class Err>
Parsed parse_attrs(const ResizeAttrs& a, const Err& err) {
  static const std::pair<const char*, Mode> modes[] = {
      {"nearest", Mode::kNearest}, {"linear", Mode::kLinear}, {"cubic", Mode::kCubic}};
  static const std::pair<const char*, Coord> coords[] = {
      {"half_pixel", Coord::kHalfPixel},
      {"pytorch_half_pixel", Coord::kPytorchHalfPixel},
      {"align_corners", Coord::kAlignCorners},
      {"asymmetric", Coord::kAsymmetric},
      {"tf_half_pixel_for_nn", Coord::kTfHalfPixelForNN},
      {"tf_crop_and_resize", Coord::kTfCropAndResize}};
  static const std::pair<const char*, Nearest> nearests[] = {
      {"round_prefer_floor", Nearest::kRoundPreferFloor},
      {"round_prefer_ceil", Nearest::kRoundPreferCeil},
      {"floor", Nearest::kFloor},
      {"ceil", Nearest::kCeil}};
  Parsed p{};
  if (!lookup(a.mode, modes, p.mode))
    err(cat("unknown mode '", a.mode, "' (expected nearest, linear or cubic)"));
  if (!lookup(a.coordinate_transformation_mode, coords, p.coord))
    err(cat("unknown coordinate_transformation_mode '", a.coordinate_transformation_mode, "'"));
  if (!lookup(a.nearest_mode, nearests, p.nearest))
    err(cat("unknown nearest_mode '", a.nearest_mode, "'"));
  return p;
}

// An input that is present and non-empty; opset 11 passes empty tensors for unused inputs.
bool given(const Tensor* t) { return t && t->numel() > 0; }

// Output size from a scale. Computed in float32 on purpose: ONNX shape inference and onnxruntime
// both do `floor(float(dim) * scale)` in float, and the two can differ from the exact product
// (e.g. 10 * 0.7f rounds to 7.0f), so matching them keeps declared model shapes valid.
int64_t scaled_dim(int64_t dim, double scale) {
  float v = std::floor(static_cast<float>(dim) * static_cast<float>(scale));
  if (!(v < 9.0e18f))
    fail(StatusCode::kInvalidModel, "Resize: ", dim, " * scale ", scale, " is too large");
  return static_cast<int64_t>(v);
}

void check_scales(const Tensor& s, size_t rank,
                  const std::function<void(const std::string&)>& err) {
  if (!dtype_is_float(s.dtype()))
    err(cat("scales must be a float tensor, got ", dtype_name(s.dtype())));
  if (static_cast<size_t>(s.numel()) != rank)
    err(cat("scales has ", s.numel(), " values but X has rank ", rank));
  for (int64_t i = 0; i < s.numel(); ++i) {
    double v = s.get_f64(i);
    if (!(v > 0) || !std::isfinite(v)) err(cat("scales[", i, "] = ", v, " must be positive"));
  }
}

void check_sizes(const Tensor& s, size_t rank, const std::function<void(const std::string&)>& err) {
  if (s.dtype() != DataType::kInt64) err(cat("sizes must be int64, got ", dtype_name(s.dtype())));
  if (static_cast<size_t>(s.numel()) != rank)
    err(cat("sizes has ", s.numel(), " values but X has rank ", rank));
  for (int64_t i = 0; i < s.numel(); ++i)
    if (s.get_i64(i) < 0) err(cat("sizes[", i, "] = ", s.get_i64(i), " is negative"));
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<ResizeAttrs>();
  auto err = [&](const std::string& m) { ctx.error(m); };
  Parsed p = parse_attrs(a, err);
  DataType t = ctx.dtype(0);
  if (!dtype_is_supported(t)) ctx.error(cat("X has unsupported type ", dtype_name(t)));
  if (p.mode != Mode::kNearest && t == DataType::kBool)
    ctx.error("linear and cubic modes cannot interpolate bool tensors");
  const Shape& xs = ctx.shape(0);
  if (ctx.num_inputs() > 4) ctx.error(cat("expects at most 4 inputs, got ", ctx.num_inputs()));
  if (!xs.rank_known) {
    ctx.set_output(0, t, Shape::unknown_rank());
    return;
  }
  size_t rank = xs.rank();
  auto unknown_dims = [&] { ctx.set_output(0, t, Shape(std::vector<Dim>(rank, Dim::unknown()))); };
  bool has_scales = ctx.has_input(2), has_sizes = ctx.has_input(3);
  const Tensor* scales = ctx.value(2);
  const Tensor* sizes = ctx.value(3);
  if (!has_scales && !has_sizes) ctx.error("needs either scales or sizes");
  // A non-constant input may turn out empty at run time. When neither is known to be non-empty
  // yet, the output has X's rank and unknown dims; when one is, it decides the shape (the other
  // must then be empty, which run time checks).
  bool pending = (has_scales && !scales) || (has_sizes && !sizes);
  if (pending && !given(scales) && !given(sizes)) return unknown_dims();
  if (given(scales) && given(sizes)) ctx.error("only one of scales and sizes may be given");
  if (!given(scales) && !given(sizes)) ctx.error("scales and sizes are both empty");
  if (p.coord == Coord::kTfCropAndResize) {
    if (!ctx.has_input(1)) ctx.error("tf_crop_and_resize needs the roi input");
    if (const Tensor* roi = ctx.value(1)) {
      if (!dtype_is_float(roi->dtype())) ctx.error("roi must be a float tensor");
      if (static_cast<size_t>(roi->numel()) != 2 * rank)
        ctx.error(cat("roi has ", roi->numel(), " values; expected 2 * rank = ", 2 * rank));
    }
  }
  Shape out(std::vector<Dim>(rank, Dim::unknown()));
  if (given(sizes)) {
    check_sizes(*sizes, rank, err);
    for (size_t i = 0; i < rank; ++i) out[i] = Dim(sizes->get_i64(i));
  } else {
    check_scales(*scales, rank, err);
    for (size_t i = 0; i < rank; ++i) {
      double s = scales->get_f64(i);
      if (xs[i].known())
        out[i] = Dim(scaled_dim(xs[i].value, s));
      else if (s == 1.0)
        out[i] = xs[i];  // keeps a symbolic batch dim
    }
  }
  ctx.set_output(0, t, out);
}

// One output coordinate along one dimension: its input neighbours and their weights.
struct Taps {
  std::vector<int64_t> begin;  // per output coordinate, offset into idx/w
  std::vector<int64_t> idx;
  std::vector<double> w;
  std::vector<char> outside;  // tf_crop_and_resize: the extrapolation value instead
  bool identity = true;       // out[i] == in[i] for every i
};

double source_coord(Coord c, int64_t x, double scale, double len_resized, int64_t len_in,
                    double roi_start, double roi_end) {
  double xd = static_cast<double>(x);
  switch (c) {
    case Coord::kHalfPixel:
      return (xd + 0.5) / scale - 0.5;
    case Coord::kPytorchHalfPixel:
      return len_resized > 1 ? (xd + 0.5) / scale - 0.5 : 0.0;
    case Coord::kAlignCorners:
      return len_resized == 1 ? 0.0 : xd * (len_in - 1) / (len_resized - 1);
    case Coord::kAsymmetric:
      return xd / scale;
    case Coord::kTfHalfPixelForNN:
      return (xd + 0.5) / scale;
    case Coord::kTfCropAndResize: {
      double v = len_resized == 1 ? (roi_end - roi_start) * (len_in - 1) / 2
                                  : xd * (roi_end - roi_start) * (len_in - 1) / (len_resized - 1);
      return v + roi_start * (len_in - 1);
    }
  }
  return 0;
}

std::array<double, 4> cubic_coeffs(double r, double A) {
  double s = 1 - r;
  return {((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
          ((A + 2) * r - (A + 3)) * r * r + 1, ((A + 2) * s - (A + 3)) * s * s + 1,
          ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A};
}

Taps make_taps(const Parsed& p, const ResizeAttrs& a, int64_t len_in, int64_t len_out, double scale,
               double len_resized, double roi_start, double roi_end) {
  Taps t;
  t.begin.reserve(len_out + 1);
  t.outside.assign(len_out, 0);
  auto clampi = [&](int64_t i) { return std::min<int64_t>(std::max<int64_t>(i, 0), len_in - 1); };
  for (int64_t o = 0; o < len_out; ++o) {
    t.begin.push_back(static_cast<int64_t>(t.idx.size()));
    double x = source_coord(p.coord, o, scale, len_resized, len_in, roi_start, roi_end);
    bool crop = p.coord == Coord::kTfCropAndResize;
    if (crop && !(x >= 0 && x <= len_in - 1)) {  // also a NaN from a NaN roi
      t.outside[o] = 1;
      t.identity = false;
      continue;
    }
    // Beyond a few pixels outside, every neighbour is the edge one; clamping first keeps the
    // integer conversion defined for extreme coordinates.
    x = std::isnan(x) ? 0.0 : std::min(std::max(x, -4.0), static_cast<double>(len_in) + 4);
    double fl = std::floor(x);
    double r = x - fl;
    auto x0 = static_cast<int64_t>(fl);
    if (p.mode == Mode::kNearest) {
      int64_t i = x0;
      if (r != 0) {
        bool up = false;
        switch (p.nearest) {
          case Nearest::kRoundPreferFloor:
            up = r > 0.5;
            break;
          case Nearest::kRoundPreferCeil:
            up = r >= 0.5;
            break;
          case Nearest::kFloor:
            up = false;
            break;
          case Nearest::kCeil:
            up = true;
            break;
        }
        if (up) ++i;
      }
      t.idx.push_back(clampi(i));
      t.w.push_back(1.0);
    } else if (p.mode == Mode::kLinear) {
      if (r == 0) {
        t.idx.push_back(clampi(x0));
        t.w.push_back(1.0);
      } else {
        t.idx.insert(t.idx.end(), {clampi(x0), clampi(x0 + 1)});
        t.w.insert(t.w.end(), {1 - r, r});
      }
    } else {
      auto c = cubic_coeffs(r, a.cubic_coeff_a);
      if (a.exclude_outside) {
        double sum = 0;
        for (int k = 0; k < 4; ++k) {
          int64_t i = x0 - 1 + k;
          if (i < 0 || i >= len_in) c[k] = 0;
          sum += c[k];
        }
        if (sum != 0)
          for (double& v : c) v /= sum;
      }
      for (int k = 0; k < 4; ++k) {
        if (c[k] == 0) continue;
        t.idx.push_back(clampi(x0 - 1 + k));
        t.w.push_back(c[k]);
      }
    }
    int64_t n = static_cast<int64_t>(t.idx.size()) - t.begin.back();
    if (!(n == 1 && t.idx.back() == o && t.w.back() == 1.0)) t.identity = false;
  }
  t.begin.push_back(static_cast<int64_t>(t.idx.size()));
  if (len_in != len_out) t.identity = false;
  return t;
}

// Interpolates dimension d of `src` (dims `in`) into `dst` (dims `in` with d replaced).
void resize_dim(const std::vector<double>& src, const Dims& in, size_t d, const Taps& t,
                int64_t len_out, double extrapolation, std::vector<double>& dst) {
  int64_t outer = 1, inner = 1;
  for (size_t i = 0; i < d; ++i) outer *= in[i];
  for (size_t i = d + 1; i < in.size(); ++i) inner *= in[i];
  int64_t len_in = in[d];
  dst.assign(static_cast<size_t>(outer * len_out * inner), 0.0);
  for (int64_t o = 0; o < outer; ++o) {
    const double* s = src.data() + o * len_in * inner;
    double* r = dst.data() + o * len_out * inner;
    for (int64_t j = 0; j < len_out; ++j) {
      double* row = r + j * inner;
      if (t.outside[j]) {
        std::fill(row, row + inner, extrapolation);
        continue;
      }
      for (int64_t k = t.begin[j]; k < t.begin[j + 1]; ++k) {
        const double* srow = s + t.idx[k] * inner;
        double w = t.w[k];
        for (int64_t e = 0; e < inner; ++e) row[e] += w * srow[e];
      }
    }
  }
}

// Writes a double into an element, rounding to nearest (ties to even) and saturating for
// integer types: interpolating integers must not wrap around or truncate toward zero.
void store(Tensor& out, int64_t i, double v) {
  DataType t = out.dtype();
  if (dtype_is_float(t)) return out.set_f64(i, v);
  double lo = 0, hi = 0;
  switch (t) {
    case DataType::kInt8:
      lo = -128;
      hi = 127;
      break;
    case DataType::kUInt8:
      lo = 0;
      hi = 255;
      break;
    case DataType::kInt16:
      lo = -32768;
      hi = 32767;
      break;
    case DataType::kUInt16:
      lo = 0;
      hi = 65535;
      break;
    case DataType::kInt32:
      lo = -2147483648.0;
      hi = 2147483647.0;
      break;
    case DataType::kUInt32:
      lo = 0;
      hi = 4294967295.0;
      break;
    case DataType::kInt64:
      lo = -9223372036854775808.0;
      hi = 9223372036854774784.0;
      break;
    case DataType::kUInt64:
      lo = 0;
      hi = 18446744073709549568.0;
      break;
    default:
      lo = 0;
      hi = 1;
      break;
  }
  if (std::isnan(v)) v = 0;
  v = std::min(std::max(std::nearbyint(v), lo), hi);
  if (t == DataType::kUInt64)
    out.data<uint64_t>()[i] = static_cast<uint64_t>(v);
  else
    out.set_i64(i, static_cast<int64_t>(v));
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<ResizeAttrs>();
  auto err = [](const std::string& m) { fail(StatusCode::kInvalidArgument, "Resize: ", m); };
  Parsed p = parse_attrs(a, err);
  const Tensor& x = args.in(0);
  Tensor& y = args.out(0);
  size_t rank = x.rank();
  const Tensor* scales = args.has(2) ? &args.in(2) : nullptr;
  const Tensor* sizes = args.has(3) ? &args.in(3) : nullptr;
  bool use_scales = given(scales);
  if (use_scales && given(sizes)) err("only one of scales and sizes may be given");
  if (use_scales)
    check_scales(*scales, rank, err);
  else if (given(sizes))
    check_sizes(*sizes, rank, err);
  else
    err("needs either scales or sizes");
  if (y.rank() != rank) err("output rank differs from the input's");
  std::vector<double> roi;
  if (p.coord == Coord::kTfCropAndResize) {
    if (!args.has(1) || static_cast<size_t>(args.in(1).numel()) != 2 * rank)
      err(cat("tf_crop_and_resize needs roi with 2 * rank = ", 2 * rank, " values"));
    roi = to_doubles(args.in(1));
  }
  if (y.numel() == 0) return;
  for (size_t d = 0; d < rank; ++d)
    if (x.dim(d) == 0) err(cat("cannot resize dimension ", d, " of size 0 to ", y.dim(d)));

  std::vector<Taps> taps(rank);
  for (size_t d = 0; d < rank; ++d) {
    int64_t in = x.dim(d), out = y.dim(d);
    double scale, len_resized;
    if (use_scales) {
      scale = scales->get_f64(d);
      // The reference uses the unrounded scale * length as the resized length (align_corners
      // and tf_crop_and_resize divide by it), not the floored output size.
      len_resized = scale * static_cast<double>(in);
    } else {
      scale = static_cast<double>(out) / static_cast<double>(in);
      len_resized = static_cast<double>(out);
    }
    double r0 = roi.empty() ? 0 : roi[d], r1 = roi.empty() ? 1 : roi[d + rank];
    taps[d] = make_taps(p, a, in, out, scale, len_resized, r0, r1);
  }

  if (p.mode == Mode::kNearest) {
    // Pure gather: copy elements so that every dtype (int64, bool, ...) stays exact, except
    // where tf_crop_and_resize asks for the extrapolation value.
    Dims xs = x.dims();
    auto xstr = strides_of(xs);
    std::vector<int64_t> pos(rank, 0);
    for (int64_t i = 0; i < y.numel(); ++i) {
      bool outside = false;
      int64_t off = 0;
      for (size_t d = 0; d < rank; ++d) {
        const Taps& t = taps[d];
        if (t.outside[pos[d]]) {
          outside = true;
          break;
        }
        off += t.idx[t.begin[pos[d]]] * xstr[d];
      }
      if (outside)
        store(y, i, a.extrapolation_value);
      else
        copy_element(x, off, y, i);
      for (size_t d = rank; d-- > 0;) {
        if (++pos[d] < y.dim(d)) break;
        pos[d] = 0;
      }
    }
    return;
  }

  // Linear / cubic: separable passes over the dims that change, in double.
  std::vector<double> cur = to_doubles(x), next;
  Dims cur_dims = x.dims();
  for (size_t d = rank; d-- > 0;) {
    if (taps[d].identity) continue;
    resize_dim(cur, cur_dims, d, taps[d], y.dim(d), a.extrapolation_value, next);
    cur.swap(next);
    cur_dims[d] = y.dim(d);
  }
  for (int64_t i = 0; i < y.numel(); ++i) store(y, i, cur[i]);
}

}  // namespace

const OpDef& kiln_op_resize() {
  static const OpDef d{"Resize", make_attrs_of<ResizeAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
