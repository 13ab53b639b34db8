// Conv: the reference N-D (transposed) convolution. See conv.h for the layout.
//
// The compute is direct convolution arranged so that the innermost loop runs along the last
// spatial axis with no bounds checks: for every kernel tap the valid range along that axis and the
// input (or output) offset of every row are computed once, so the inner loop is a contiguous (or
// constant-stride) multiply-add that the compiler vectorises. It works one image at a time so that
// the double accumulators stay small even for a large batch.
#include "ops/conv.h"

#include <cmath>

#include "ops/accumulate.h"
#include "ops/epilogue.h"
#include "ops/quantized.h"
#include "ops/layout_util.h"
#include "ops/op_util.h"
#include "ops/window.h"

namespace kiln {

namespace {

int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

Ints axis_list(const Ints& v, size_t n, int64_t fill, const char* name) {
  if (v.empty()) return Ints(n, fill);
  KILN_EXPECT(v.size() == n, StatusCode::kInvalidModel, "Conv: ", name, " has ", v.size(),
              " values but the input has ", n, " spatial axes (expected ", n, ")");
  return v;
}

// Checks the attribute lists against the number of spatial axes.
void check_attrs(const ConvAttrs& a, size_t nsp) {
  KILN_EXPECT(a.group >= 1, StatusCode::kInvalidModel, "Conv: group must be >= 1, got ", a.group);
  KILN_EXPECT(is_valid_auto_pad(a.auto_pad), StatusCode::kInvalidModel, "Conv: auto_pad '",
              a.auto_pad, "' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
  axis_list(a.strides, nsp, 1, "strides");
  axis_list(a.dilations, nsp, 1, "dilations");
  if (!a.pads.empty())
    KILN_EXPECT(a.pads.size() == 2 * nsp, StatusCode::kInvalidModel, "Conv: pads has ",
                a.pads.size(), " values but ", nsp, " spatial axes need ", 2 * nsp,
                " (all begins, then all ends)");
  axis_list(a.output_padding, nsp, 0, "output_padding");
  axis_list(a.output_shape, nsp, -1, "output_shape");
  if (!a.transposed) {
    KILN_EXPECT(a.output_shape.empty(), StatusCode::kInvalidModel,
                "Conv: output_shape is only meaningful for a transposed convolution");
    for (int64_t p : a.output_padding)
      KILN_EXPECT(p == 0, StatusCode::kInvalidModel,
                  "Conv: output_padding is only meaningful for a transposed convolution");
  }
}

// Output length of spatial axis i; fills that axis' pads.
int64_t axis_output(const ConvAttrs& a, size_t nsp, size_t i, int64_t in, int64_t kernel,
                    int64_t& pb, int64_t& pe, int64_t* output_padding = nullptr) {
  int64_t s = a.strides.empty() ? 1 : a.strides[i];
  int64_t d = a.dilations.empty() ? 1 : a.dilations[i];
  pb = a.pads.empty() ? 0 : a.pads[i];
  pe = a.pads.empty() ? 0 : a.pads[nsp + i];
  if (a.transposed) {
    int64_t op = a.output_padding.empty() ? 0 : a.output_padding[i];
    int64_t req = a.output_shape.empty() ? -1 : a.output_shape[i];
    int64_t out = transposed_window(a.auto_pad, in, kernel, s, d, op, req, pb, pe);
    if (output_padding) *output_padding = op;
    return out;
  }
  return forward_window(a.auto_pad, in, kernel, s, d, false, pb, pe, "Conv");
}

Dim dim_at(const Shape& s, size_t i) { return s.rank_known ? s[i] : Dim::unknown(); }

// Shapes of Y and Z must agree where both are known.
bool shapes_conflict(const Shape& a, const Shape& b) {
  if (!a.rank_known || !b.rank_known) return false;
  if (a.rank() != b.rank()) return true;
  for (size_t i = 0; i < a.rank(); ++i)
    if (a[i].known() && b[i].known() && a[i].value != b[i].value) return true;
  return false;
}

void check_epilogue(InferContext& ctx, const ConvAttrs& a, DataType t, const Shape& y) {
  if (!a.activation.empty() && a.activation != "relu")
    ctx.error(cat("activation '", a.activation, "' is not one of \"\" (none) and relu"));
  if (!a.activation.empty() && !dtype_is_float(t))
    ctx.error(cat("a fused activation needs a floating-point type, got ", dtype_name(t)));
  if (has_epilogue_program(a.epilogue)) {
    std::string why = epilogue_program_problem(a.epilogue, t);
    if (!why.empty()) ctx.error(why);
  }
  if (ctx.num_inputs() > 4) ctx.error(cat("Conv takes at most 4 inputs (X, W, B, Z), got ",
                                          ctx.num_inputs()));
  if (a.quantized_residual() &&
      (!a.quantized() || !std::isfinite(a.q_z_scale) || !ctx.has_input(3) ||
       ctx.dtype(3) != requantized_type(ctx.dtype(0))))
    ctx.error("a quantized residual needs a quantized Conv, a finite scale and a Z of the "
              "requantized type (int8, or float8 for float8 products)");
  if (!ctx.has_input(3)) return;
  if (ctx.dtype(3) != t && !a.quantized_residual())
    ctx.error(cat("the residual Z is ", dtype_name(ctx.dtype(3)), " but X is ", dtype_name(t)));
  if (shapes_conflict(ctx.shape(3), y))
    ctx.error(cat("the residual Z ", ctx.shape(3).str(), " does not have the output's shape ",
                  y.str()));
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<ConvAttrs>();
  DataType t = ctx.dtype(0);
  if (a.quantized()) {
    // Integer X and W; everything else (B, Z, Y, the epilogue) in q_out.
    check_quantized_operands(ctx, a.q_x_zero, a.q_w_scale, a.q_out);
    t = a.q_out;
    if (a.requantized() && (!std::isfinite(a.q_y_scale) || has_epilogue_program(a.epilogue)))
      ctx.error("a requantized output needs a finite scale and no epilogue program");
  } else if (a.requantized()) {
    ctx.error("only a quantized Conv has a requantized output");
  } else {
    if (!dtype_is_supported(t)) ctx.error(cat("X has unsupported type ", dtype_name(t)));
    if (ctx.dtype(1) != t)
      ctx.error(cat("W is ", dtype_name(ctx.dtype(1)), " but X is ", dtype_name(t),
                    "; they must have one type"));
  }
  bool has_b = ctx.has_input(2);
  if (has_b && ctx.dtype(2) != t)
    ctx.error(cat("B is ", dtype_name(ctx.dtype(2)), " but Y is ", dtype_name(t)));
  // Channels-last X is checked and inferred through its channels-first view.
  const Shape xs = a.channels_last ? channels_first_shape(ctx.shape(0)) : ctx.shape(0);
  const Shape& ws = ctx.shape(1);
  if (xs.rank_known && xs.rank() < 3)
    ctx.error(cat("X must have rank >= 3 ([N, C, spatial...]), got ", xs.str()));
  if (ws.rank_known && ws.rank() < 3)
    ctx.error(cat("W must have rank >= 3 ([M, C/group, kernel...]), got ", ws.str()));
  if (xs.rank_known && ws.rank_known && xs.rank() != ws.rank())
    ctx.error(cat("weight rank mismatch: W ", ws.str(), " has rank ", ws.rank(), " but X ",
                  xs.str(), " has rank ", xs.rank(),
                  "; W must have one kernel axis per spatial axis of X"));
  if (!xs.rank_known && !ws.rank_known) {
    check_epilogue(ctx, a, t, Shape::unknown_rank());
    ctx.set_output(0, a.requantized() ? requantized_type(ctx.dtype(0)) : t, Shape::unknown_rank());
    return;
  }
  size_t rank = xs.rank_known ? xs.rank() : ws.rank();
  size_t nsp = rank - 2;
  check_attrs(a, nsp);

  int64_t g = a.group;
  Dim c = dim_at(xs, 1), w0 = dim_at(ws, 0), w1 = dim_at(ws, 1);
  Dim m;
  if (!a.transposed) {
    if (c.known() && w1.known() && c.value != w1.value * g)
      ctx.error(cat("channel mismatch: X ", xs.str(), " has ", c.value, " channels but W ",
                    ws.str(), " with group ", g, " expects ", w1.value * g));
    if (w0.known() && w0.value % g != 0)
      ctx.error(cat("W has ", w0.value, " output channels, which group ", g, " does not divide"));
    m = w0;
  } else {
    if (c.known() && w0.known() && c.value != w0.value)
      ctx.error(cat("channel mismatch: X ", xs.str(), " has ", c.value,
                    " channels but the transposed W ", ws.str(), " has ", w0.value,
                    " (W must be [C, M/group, kernel...])"));
    if (c.known() && c.value % g != 0)
      ctx.error(cat("X has ", c.value, " channels, which group ", g, " does not divide"));
    m = w1.known() ? Dim(w1.value * g) : Dim::unknown();
  }
  if (a.quantized() && a.q_w_scale.size() != 1 && m.known() &&
      static_cast<int64_t>(a.q_w_scale.size()) != m.value)
    ctx.error(cat("q_w_scale has ", a.q_w_scale.size(), " scales but the convolution has ",
                  m.value, " output channels"));
  if (has_b) {
    const Shape& bs = ctx.shape(2);
    if (bs.rank_known && bs.rank() != 1) ctx.error(cat("B must be 1-D [M], got ", bs.str()));
    if (bs.rank_known && bs[0].known() && m.known() && bs[0].value != m.value)
      ctx.error(cat("B has ", bs[0].value, " elements but the convolution has ", m.value,
                    " output channels"));
  }

  Shape out;
  out.dims = {dim_at(xs, 0), m};
  for (size_t i = 0; i < nsp; ++i) {
    Dim in = dim_at(xs, 2 + i), k = dim_at(ws, 2 + i);
    if (a.transposed && !a.output_shape.empty() && a.auto_pad != "VALID") {
      out.dims.emplace_back(a.output_shape[i]);
    } else if (in.known() && k.known()) {
      int64_t pb, pe;
      out.dims.emplace_back(axis_output(a, nsp, i, in.value, k.value, pb, pe));
    } else {
      out.dims.push_back(Dim::unknown());
    }
  }
  if (a.channels_last) out = channels_last_shape(out);
  check_epilogue(ctx, a, t, out);
  ctx.set_output(0, a.requantized() ? requantized_type(ctx.dtype(0)) : t, std::move(out));
}

// Per kernel tap, the loop bounds of one image: the loop runs over the positions of `from` (rows
// of its leading axes, then its last axis) and touches `to` at position * stride + tap offset.
// The forward convolution runs over the output and reads the input; the transposed one runs over
// the input and scatters into the output, so both use the same tables with the roles swapped.
struct TapTable {
  int64_t rows = 0;              // rows of `from`: its volume over its last axis
  std::vector<int64_t> lo, hi;   // valid range along the last axis of `from`
  std::vector<int64_t> off;      // `to` offset along its last axis: from_pos * stride + off
  std::vector<int64_t> row_off;  // [tap * rows + row]: offset of the `to` row; -1 where it lies
                                 // in the padding
};

TapTable tap_table(const Ints& from, const Ints& to, const ConvGeometry& g) {
  size_t last = from.size() - 1;
  int64_t k_vol = dims_volume(g.kernel);
  int64_t fl = from[last], tl = to[last], sl = g.strides[last];
  Ints from_str = strides_of(from), k_str = strides_of(g.kernel), to_str = strides_of(to);
  TapTable t;
  t.rows = dims_volume(from) / fl;
  t.lo.resize(k_vol);
  t.hi.resize(k_vol);
  t.off.resize(k_vol);
  t.row_off.resize(k_vol * t.rows);
  for (int64_t kk = 0; kk < k_vol; ++kk) {
    int64_t kl = kk % g.kernel[last];
    t.off[kk] = kl * g.dilations[last] - g.pad_begin[last];
    t.lo[kk] = std::max<int64_t>(0, ceil_div(-t.off[kk], sl));
    t.hi[kk] = std::min<int64_t>(fl, floor_div(tl - 1 - t.off[kk], sl) + 1);
    for (int64_t r = 0; r < t.rows; ++r) {
      int64_t o = 0;
      for (size_t j = 0; j < last; ++j) {
        int64_t fj = (r * fl / from_str[j]) % from[j];
        int64_t kj = (kk / k_str[j]) % g.kernel[j];
        int64_t tj = fj * g.strides[j] + kj * g.dilations[j] - g.pad_begin[j];
        if (tj < 0 || tj >= to[j]) {
          o = -1;
          break;
        }
        o += tj * to_str[j];
      }
      t.row_off[kk * t.rows + r] = o;
    }
  }
  return t;
}

// One image: x [C, in...] into y [M, out...] (accumulated into). The forward convolution runs
// over the output and gathers from the input; the transposed one runs over the input and every
// element scatters a kernel-sized patch into the output.
template <bool kTransposed, class Acc>
void conv_image(const Acc* x, const Acc* w, Acc* y, int64_t c_total, int64_t m_total,
                int64_t groups, const ConvGeometry& g) {
  int64_t in_vol = dims_volume(g.in), out_vol = dims_volume(g.out), k_vol = dims_volume(g.kernel);
  int64_t il = g.in.back(), ol = g.out.back(), sl = g.strides.back();
  const TapTable t = kTransposed ? tap_table(g.in, g.out, g) : tap_table(g.out, g.in, g);
  const int64_t rows = t.rows;
  int64_t cg = c_total / groups, mg = m_total / groups;
  for (int64_t m = 0; m < m_total; ++m) {
    Acc* yp = y + m * out_vol;
    int64_t gi = m / mg, ml = m % mg;
    for (int64_t c = 0; c < cg; ++c) {
      int64_t ci = gi * cg + c;
      const Acc* xp = x + ci * in_vol;
      // W is [M, C/group, kernel...], or [C, M/group, kernel...] when transposed.
      const Acc* wp = w + (kTransposed ? ci * mg + ml : m * cg + c) * k_vol;
      for (int64_t kk = 0; kk < k_vol; ++kk) {
        const Acc wv = wp[kk];
        const int64_t a = t.lo[kk], b = t.hi[kk], d = t.off[kk];
        if (a >= b) continue;
        const int64_t* ro = &t.row_off[kk * rows];
        for (int64_t r = 0; r < rows; ++r) {
          if (ro[r] < 0) continue;
          if constexpr (kTransposed) {
            Acc* yr = yp + ro[r];
            const Acc* xr = xp + r * il;
            for (int64_t i = a; i < b; ++i) yr[i * sl + d] += wv * xr[i];
          } else {
            Acc* yr = yp + r * ol;
            const Acc* xr = xp + ro[r];
            if (sl == 1) {
              for (int64_t o = a; o < b; ++o) yr[o] += wv * xr[o + d];
            } else {
              for (int64_t o = a; o < b; ++o) yr[o] += wv * xr[o * sl + d];
            }
          }
        }
      }
    }
  }
}

// The fused activation on an accumulator (float types only: infer() rejects it for integers).
// NaN passes through, as the Pointwise Relu it replaces does.
template <class Acc>
Acc relu(Acc v) {
  if constexpr (std::is_floating_point_v<Acc>)
    return v > 0 ? v : (std::isnan(v) ? v : Acc(0));
  else
    return v;
}

// The channels-first convolution with its epilogue: y = act(conv(x, w) + b + z). b and z may be
// undefined.
void conv_channels_first(const ConvAttrs& a, const Tensor& x, const Tensor& w, const Tensor& bt,
                         const Tensor& z, Tensor& y) {
  KILN_EXPECT(x.rank() >= 3 && w.rank() == x.rank(), StatusCode::kInvalidArgument, "Conv: X ",
              dims_to_string(x.dims()), " and W ", dims_to_string(w.dims()),
              " do not have matching ranks >= 3");
  Ints in(x.dims().begin() + 2, x.dims().end()), k(w.dims().begin() + 2, w.dims().end());
  ConvGeometry geo = conv_geometry(a, in, k);
  int64_t n = x.dim(0), c = x.dim(1), groups = a.group;
  int64_t m = a.transposed ? w.dim(1) * groups : w.dim(0);
  Dims want{n, m};
  want.insert(want.end(), geo.out.begin(), geo.out.end());
  KILN_CHECK(y.dims() == want, "Conv output ", dims_to_string(y.dims()), " vs ",
             dims_to_string(want));
  KILN_EXPECT(c == (a.transposed ? w.dim(0) : w.dim(1) * groups), StatusCode::kInvalidArgument,
              "Conv: X ", dims_to_string(x.dims()), " does not match W ", dims_to_string(w.dims()),
              " with group ", groups);
  if (z.defined())
    KILN_EXPECT(z.dims() == want, StatusCode::kInvalidArgument, "Conv: the residual Z ",
                dims_to_string(z.dims()), " does not have the output's shape ",
                dims_to_string(want));
  KILN_EXPECT(a.activation.empty() || a.activation == "relu", StatusCode::kInvalidModel,
              "Conv: activation '", a.activation, "' is not supported");
  const bool act = a.activation == "relu";
  int64_t in_vol = dims_volume(geo.in), out_vol = dims_volume(geo.out);
  // Quantized: integer operands in double (every product and sum of int8 values stays exact),
  // the zero point taken off X, and each output channel scaled once after the accumulation.
  std::vector<double> q_scale;
  if (a.quantized()) {
    KILN_EXPECT(a.q_w_scale.size() == 1 || static_cast<int64_t>(a.q_w_scale.size()) == m,
                StatusCode::kInvalidArgument, "Conv: ", a.q_w_scale.size(),
                " weight scales for ", m, " output channels");
    for (int64_t j = 0; j < m; ++j)
      q_scale.push_back(a.q_x_scale * a.q_w_scale[a.q_w_scale.size() == 1 ? 0 : j]);
  }
  auto run = [&]<class Acc>() {
    std::vector<Acc> wv = load_acc<Acc>(w);
    std::vector<Acc> bias;
    if (bt.defined()) {
      KILN_EXPECT(bt.numel() == m, StatusCode::kInvalidArgument, "Conv: B has ", bt.numel(),
                  " elements but there are ", m, " output channels");
      bias = load_acc<Acc>(bt);
    }
    std::vector<Acc> xv(c * in_vol), yv(m * out_vol), zv(z.defined() ? m * out_vol : 0);
    for (int64_t b = 0; b < n; ++b) {
      load_acc(x, b * c * in_vol, c * in_vol, xv.data());
      if (!q_scale.empty() && a.q_x_zero != 0)
        for (Acc& v : xv) v -= static_cast<Acc>(a.q_x_zero);
      std::fill(yv.begin(), yv.end(), Acc(0));
      if (in_vol == 0 || out_vol == 0) {
        // Nothing to accumulate (an empty spatial axis); only the bias remains.
      } else if (a.transposed)
        conv_image<true>(xv.data(), wv.data(), yv.data(), c, m, groups, geo);
      else
        conv_image<false>(xv.data(), wv.data(), yv.data(), c, m, groups, geo);
      if (!q_scale.empty())
        for (int64_t j = 0; j < m; ++j)
          for (int64_t o = 0; o < out_vol; ++o) yv[j * out_vol + o] *= static_cast<Acc>(q_scale[j]);
      if (!bias.empty())
        for (int64_t j = 0; j < m; ++j)
          for (int64_t o = 0; o < out_vol; ++o) yv[j * out_vol + o] += bias[j];
      if (z.defined()) {
        load_acc(z, b * m * out_vol, m * out_vol, zv.data());
        const Acc zs = a.quantized_residual() ? static_cast<Acc>(a.q_z_scale) : Acc(1);
        for (int64_t i = 0; i < m * out_vol; ++i) yv[i] += zv[i] * zs;
      }
      if (act)
        for (Acc& v : yv) v = relu(v);
      if (a.requantized()) {
        for (int64_t i = 0; i < m * out_vol; ++i)
          requantize_into(y, b * m * out_vol + i, static_cast<double>(yv[i]), a.q_y_scale);
      } else {
        store_acc(yv.data(), y, b * m * out_vol, m * out_vol);
      }
    }
  };
  if (a.quantized())
    run.template operator()<double>();
  else
    dispatch_acc(x.dtype(), run);
}

// Channels-last tensors are transposed to channels-first around the channels-first compute: the
// reference favours one obviously correct loop nest over speed.
void conv_channels_last(const ConvAttrs& a, const Tensor& x, const Tensor& w, const Tensor& b,
                        const Tensor& z, Tensor& y) {
  KILN_EXPECT(x.rank() >= 3 && y.rank() == x.rank(), StatusCode::kInvalidArgument,
              "Conv: channels-last X ", dims_to_string(x.dims()), " must have rank >= 3");
  const Ints to_first = channels_first_perm(x.rank());
  Tensor zc;
  if (z.defined()) {
    KILN_EXPECT(z.rank() == x.rank(), StatusCode::kInvalidArgument, "Conv: the residual Z ",
                dims_to_string(z.dims()), " does not have the output's shape ",
                dims_to_string(y.dims()));
    zc = permuted(z, to_first);
  }
  Tensor yc(y.dtype(), permuted_shape(Shape::from(y.dims()), to_first).concrete());
  conv_channels_first(a, permuted(x, to_first), w, b, zc, yc);
  permute_into(yc, channels_last_perm(y.rank()), y);
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<ConvAttrs>();
  // float8 operands (and residual) are read as the float32 values they hold.
  const Tensor x = widen_float8(args.in(0));
  const Tensor w = widen_float8(args.in(1));
  Tensor none;
  const Tensor& b = args.has(2) ? args.in(2) : none;
  const Tensor z = args.has(3) ? widen_float8(args.in(3)) : none;
  Tensor& y = args.out(0);
  if (!a.channels_last) {
    conv_channels_first(a, x, w, b, z, y);
  } else {
    conv_channels_last(a, x, w, b, z, y);
  }
  // Element by element, so the layout does not matter.
  if (has_epilogue_program(a.epilogue)) apply_epilogue_program(a.epilogue, y);
}

}  // namespace

ConvGeometry conv_geometry(const ConvAttrs& a, const Ints& in, const Ints& kernel) {
  size_t nsp = in.size();
  KILN_CHECK(kernel.size() == nsp);
  check_attrs(a, nsp);
  ConvGeometry g;
  g.in = in;
  g.kernel = kernel;
  g.strides = axis_list(a.strides, nsp, 1, "strides");
  g.dilations = axis_list(a.dilations, nsp, 1, "dilations");
  g.output_padding = axis_list(a.output_padding, nsp, 0, "output_padding");
  g.out.resize(nsp);
  g.pad_begin.resize(nsp);
  g.pad_end.resize(nsp);
  for (size_t i = 0; i < nsp; ++i)
    g.out[i] = axis_output(a, nsp, i, in[i], kernel[i], g.pad_begin[i], g.pad_end[i],
                           &g.output_padding[i]);
  return g;
}

const OpDef& kiln_op_conv() {
  static const OpDef d{"Conv", make_attrs_of<ConvAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
