// Faster float32 CPU tactics: convolution as im2col + GEMM, and matrix products through the same
// GEMM. They accumulate in float32; the reference accumulates in double.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backends/cpu/cpu_tactics.h"
#include "backends/cpu/gemm.h"
#include "ops/conv.h"
#include "ops/epilogue.h"
#include "ops/mat_mul.h"
#include "ops/normalization.h"
#include "ops/quantized.h"
#include "ops/op_util.h"
#include "runtime/backend.h"

namespace kiln {

namespace {

bool all_float32(const Node& n) {
  for (const Value* v : n.inputs)
    if (v && v->dtype != DataType::kFloat) return false;
  for (const Value* v : n.outputs)
    if (v->dtype != DataType::kFloat) return false;
  return true;
}

// ---- Conv2D, forward, any groups/strides/dilations/pads -------------------------------------

// The state of a GEMM tactic: its blocking's name ("" before tuning: the default).
cpu::GemmBlocking blocking_of(std::string_view state) {
  cpu::GemmBlocking b;
  KILN_EXPECT(cpu::parse_blocking(state, b), StatusCode::kCorruptPlan, "unknown GEMM blocking '",
              std::string(state), "' in a CPU step's state");
  return b;
}

std::vector<std::string> blocking_candidates() {
  std::vector<std::string> v;
  for (const cpu::GemmBlocking& b : cpu::gemm_blockings()) v.push_back(cpu::blocking_name(b));
  return v;
}

std::string checked_choice(std::string_view choice) {
  blocking_of(choice);
  return std::string(choice);
}

// An int8/uint8 (or int8 weight) tensor minus its zero point, as floats (exact: |v| <= 510).
std::vector<float> ints_as_floats(const Tensor& t, int64_t zero) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  if (is_quantized_float8(t.dtype())) {  // float8 (zero point 0): the values it holds, exactly
    const uint8_t* p = t.data<uint8_t>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = e4m3fn_bits_to_float(p[i]);
  } else if (t.dtype() == DataType::kUInt8) {
    const uint8_t* p = t.data<uint8_t>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(int64_t{p[i]} - zero);
  } else {
    KILN_EXPECT(t.dtype() == DataType::kInt8, StatusCode::kInternal, "quantized operand of type ",
                dtype_name(t.dtype()));
    const int8_t* p = t.data<int8_t>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(int64_t{p[i]} - zero);
  }
  return out;
}

// A quantized Conv/MatMul the fast tactics run: int8/uint8 X, int8 W, float32 results (q_out) and
// bias and residual, and Y of type `y` (float32, or int8 when requantized).
// `quantized_z`: the residual (input 3) is quantized (ConvAttrs::q_z_scale). `float8`: the
// tactic takes float8 X and W (and Z) too.
Status quantized_operands_ok(const Node& n, DataType q_out, DataType y, bool quantized_z = false,
                             bool float8 = false) {
  const DataType xt = n.inputs[0]->dtype;
  const bool f8 = float8 && is_quantized_float8(xt);
  if (!f8 && (!is_quantized_int(xt) || n.inputs[1]->dtype != DataType::kInt8))
    return Status(StatusCode::kUnsupported, "quantized without int8/uint8 X and int8 W");
  if (f8 && n.inputs[1]->dtype != xt)
    return Status(StatusCode::kUnsupported, "float8 X without float8 W");
  if (q_out != DataType::kFloat || n.outputs[0]->dtype != y)
    return Status(StatusCode::kUnsupported, "quantized with a non-float32 output");
  for (size_t i = 2; i < n.inputs.size(); ++i)
    if (n.in(i) &&
        n.in(i)->dtype != (i == 3 && quantized_z ? requantized_type(xt) : DataType::kFloat))
      return Status(StatusCode::kUnsupported, "quantized with non-float32 bias or residual");
  return Status::ok();
}

// The largest |x - zero| an int8/uint8 X can give.
int64_t max_abs_shifted(DataType t, int64_t zero) {
  const int64_t lo = t == DataType::kUInt8 ? 0 : -128, hi = t == DataType::kUInt8 ? 255 : 127;
  return std::max<int64_t>(1, std::max(std::abs(lo - zero), std::abs(hi - zero)));
}

class ConvKernel : public Kernel {
 public:
  explicit ConvKernel(cpu::GemmBlocking b) : blocking_(b) {}
  void run(const ComputeArgs& args) override {
    const auto& a = args.node.a<ConvAttrs>();
    const Tensor& x = args.in(0);
    const Tensor& w = args.in(1);
    Tensor& y = args.out(0);
    KILN_EXPECT(x.rank() == 4 && w.rank() == 4, StatusCode::kInvalidArgument,
                "Conv: cpu.conv_im2col expects 4-D X and W");
    ConvGeometry g = conv_geometry(a, {x.dim(2), x.dim(3)}, {w.dim(2), w.dim(3)});
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
    const int64_t m = w.dim(0), groups = a.group;
    KILN_EXPECT(c == w.dim(1) * groups && m % groups == 0, StatusCode::kInvalidArgument, "Conv: X ",
                dims_to_string(x.dims()), " does not match W ", dims_to_string(w.dims()),
                " with group ", groups);
    const int64_t cg = c / groups, mg = m / groups, kh = g.kernel[0], kw = g.kernel[1];
    const int64_t oh = g.out[0], ow = g.out[1], ohw = oh * ow, kdim = cg * kh * kw;
    const bool pointwise = kh == 1 && kw == 1 && g.strides[0] == 1 && g.strides[1] == 1 &&
                           g.pad_begin[0] == 0 && g.pad_begin[1] == 0 && g.pad_end[0] == 0 &&
                           g.pad_end[1] == 0;
    // Scratch per call: kernels are shared by every context of an engine, so they hold no state.
    std::vector<float> col(pointwise ? 0 : static_cast<size_t>(kdim * ohw));
    // Quantized (ConvAttrs q_*): X - zero point and W as floats, which hold them exactly.
    const bool quantized = a.quantized();
    std::vector<float> xq, wq;
    if (quantized) {
      xq = ints_as_floats(x, a.q_x_zero);
      wq = ints_as_floats(w, 0);
    }
    const float* xd = quantized ? xq.data() : x.data<float>();
    const float* wdp = quantized ? wq.data() : w.data<float>();
    // A requantized Y (int8) is computed in float32 first and quantized at the end.
    Tensor yf;
    if (a.requantized()) yf = Tensor(DataType::kFloat, y.dims());
    float* yd = a.requantized() ? yf.data<float>() : y.data<float>();
    // The longest run of the inner dimension whose float32 sums stay exact integers (below 2^24):
    // a quantized product is summed in such chunks, each added to a double accumulator, so it is
    // exact for any size, as the reference's integer semantics require.
    // float8 products are not integers: one float32 sum over the whole inner dimension.
    const int64_t chunk = quantized && !is_quantized_float8(x.dtype())
                              ? std::max<int64_t>(1, ((int64_t{1} << 24) - 1) /
                                                         (max_abs_shifted(x.dtype(), a.q_x_zero) * 127))
                              : kdim;
    std::vector<float> part(quantized ? static_cast<size_t>(mg * ohw) : 0);
    std::vector<double> acc(quantized ? static_cast<size_t>(mg * ohw) : 0);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t gi = 0; gi < groups; ++gi) {
        const float* xin = xd + (b * c + gi * cg) * h * wd;
        const float* b_mat = xin;
        if (!pointwise) {
          im2col(xin, cg, h, wd, g, col.data());
          b_mat = col.data();
        }
        float* yout = yd + (b * m + gi * mg) * ohw;
        if (!quantized) {
          cpu::sgemm(mg, ohw, kdim, wdp + gi * mg * kdim, kdim, b_mat, ohw, yout, ohw, false,
                     blocking_);
          continue;
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t k0 = 0; k0 < kdim; k0 += chunk) {
          const int64_t kc = std::min(chunk, kdim - k0);
          cpu::sgemm(mg, ohw, kc, wdp + gi * mg * kdim + k0, kdim, b_mat + k0 * ohw, ohw,
                     part.data(), ohw, false, blocking_);
          for (size_t i = 0; i < acc.size(); ++i) acc[i] += part[i];
        }
        // Scaled once per output channel, the bias added before rounding, as the reference does.
        for (int64_t j = 0; j < mg; ++j) {
          const int64_t ch = gi * mg + j;
          const double s = a.q_x_scale * a.q_w_scale[a.q_w_scale.size() == 1 ? 0 : ch];
          const double bv = args.has(2) ? args.in(2).get_f64(ch) : 0.0;
          for (int64_t o = 0; o < ohw; ++o)
            yout[j * ohw + o] = static_cast<float>(acc[j * ohw + o] * s + bv);
        }
      }
    if (args.has(2) && !quantized) {
      const Tensor& bias = args.in(2);
      KILN_EXPECT(bias.numel() == m, StatusCode::kInvalidArgument, "Conv: B has ", bias.numel(),
                  " elements but there are ", m, " output channels");
      for (int64_t b = 0; b < n; ++b)
        for (int64_t j = 0; j < m; ++j) {
          float bv = bias.data<float>()[j];
          float* row = yd + (b * m + j) * ohw;
          for (int64_t o = 0; o < ohw; ++o) row[o] += bv;
        }
    }
    // The fused epilogue (FuseEpilogue): residual Z of Y's shape, then the activation.
    const int64_t total = n * m * ohw;
    if (args.has(3)) {
      const Tensor& z = args.in(3);
      KILN_EXPECT(z.numel() == total, StatusCode::kInvalidArgument, "Conv: the residual Z ",
                  dims_to_string(z.dims()), " does not have the output's shape");
      if (a.quantized_residual()) {
        const std::vector<float> zq = ints_as_floats(z, 0);
        const double zs = a.q_z_scale;
        for (int64_t i = 0; i < total; ++i)
          yd[i] = static_cast<float>(yd[i] + zq[i] * zs);
      } else {
        const float* zd = z.data<float>();
        for (int64_t i = 0; i < total; ++i) yd[i] += zd[i];
      }
    }
    if (a.activation == "relu")
      for (int64_t i = 0; i < total; ++i) yd[i] = yd[i] > 0 || std::isnan(yd[i]) ? yd[i] : 0.0f;
    if (a.requantized())
      for (int64_t i = 0; i < total; ++i) requantize_into(y, i, yd[i], a.q_y_scale);
    if (has_epilogue_program(a.epilogue)) apply_epilogue_program(a.epilogue, y);
  }

 private:
  cpu::GemmBlocking blocking_;
  static void im2col(const float* x, int64_t c, int64_t h, int64_t w, const ConvGeometry& g,
                     float* out) {
    const int64_t kh = g.kernel[0], kw = g.kernel[1], oh = g.out[0], ow = g.out[1];
    const int64_t sh = g.strides[0], sw = g.strides[1], dh = g.dilations[0], dw = g.dilations[1];
    const int64_t ph = g.pad_begin[0], pw = g.pad_begin[1];
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t ki = 0; ki < kh; ++ki)
        for (int64_t kj = 0; kj < kw; ++kj) {
          for (int64_t oi = 0; oi < oh; ++oi) {
            int64_t ii = oi * sh - ph + ki * dh;
            float* dst = out + oi * ow;
            if (ii < 0 || ii >= h) {
              std::memset(dst, 0, sizeof(float) * ow);
              continue;
            }
            const float* src = x + (ci * h + ii) * w;
            for (int64_t oj = 0; oj < ow; ++oj) {
              int64_t jj = oj * sw - pw + kj * dw;
              dst[oj] = (jj >= 0 && jj < w) ? src[jj] : 0.0f;
            }
          }
          out += oh * ow;
        }
  }
};

class ConvIm2colTactic : public Tactic {
 public:
  std::string_view id() const override { return "cpu.conv_im2col"; }
  std::string_view op() const override { return "Conv"; }
  Status supports(const Node& n) const override {
    if (n.op() != "Conv") return Status(StatusCode::kUnsupported, "not a Conv");
    const auto& a = n.a<ConvAttrs>();
    if (a.transposed) return Status(StatusCode::kUnsupported, "transposed convolution");
    if (a.channels_last) return Status(StatusCode::kUnsupported, "channels-last layout");
    if (!is_conv_activation(a.activation))
      return Status(StatusCode::kUnsupported, "activation " + a.activation);
    // Float32, or quantized with int8/uint8 X, int8 W and float32 everything else.
    if (a.quantized()) {
      Status q = quantized_operands_ok(
          n, a.q_out, a.requantized() ? requantized_type(n.inputs[0]->dtype) : DataType::kFloat,
          a.quantized_residual(), /*float8=*/true);
      if (!q) return q;
    } else if (!all_float32(n)) {
      return Status(StatusCode::kUnsupported, "not float32");
    }
    const Value* x = n.inputs[0];
    const Value* w = n.inputs[1];
    if (!x->shape.rank_known || x->shape.rank() != 4 || !w->shape.rank_known || w->shape.rank() != 4)
      return Status(StatusCode::kUnsupported, "only 2-D convolution");
    if (a.auto_pad != "NOTSET" && a.auto_pad != "VALID" && !x->shape.fully_known())
      return Status(StatusCode::kUnsupported, "auto_pad with unknown input dims");
    return Status::ok();
  }
  // The GEMM's cache blocking is tuned (builder/autotuner.h); the state is its name.
  std::vector<std::string> candidates(const Node&, const TacticLimits&) const override { return blocking_candidates(); }
  std::string prepare_choice(const Node&, std::string_view choice,
                             const TacticLimits&) const override {
    return checked_choice(choice);
  }
  std::unique_ptr<Kernel> instantiate(const Node&, std::string_view state) const override {
    return std::make_unique<ConvKernel>(blocking_of(state));
  }
};

// ---- MatMul -----------------------------------------------------------------------------------

class MatMulKernel : public Kernel {
 public:
  explicit MatMulKernel(cpu::GemmBlocking b) : blocking_(b) {}
  void run(const ComputeArgs& args) override {
    const auto& at = args.node.a<MatMulAttrs>();
    const Tensor& a = args.in(0);
    const Tensor& b = args.in(1);
    Tensor& y = args.out(0);
    const int64_t m = at.trans_a ? a.dim(a.rank() - 1) : a.dim(a.rank() - 2);
    const int64_t k = at.trans_a ? a.dim(a.rank() - 2) : a.dim(a.rank() - 1);
    const int64_t n = at.trans_b ? b.dim(b.rank() - 2) : b.dim(b.rank() - 1);
    const int64_t kb = at.trans_b ? b.dim(b.rank() - 1) : b.dim(b.rank() - 2);
    KILN_EXPECT(k == kb, StatusCode::kInvalidArgument, "MatMul: inner dims differ: ",
                dims_to_string(a.dims()), " and ", dims_to_string(b.dims()));
    // Batch dims: broadcast per numpy; compute the batch index maps.
    Dims ab(a.dims().begin(), a.dims().end() - 2), bb(b.dims().begin(), b.dims().end() - 2);
    Dims yb = broadcast_dims({ab, bb});
    const int64_t batches = dims_volume(yb);
    // The fused epilogue (ops/epilogue.h): bias along the last axis, residual, activation.
    const float* bias = nullptr;
    if (args.has(2)) {
      KILN_EXPECT(args.in(2).numel() == n, StatusCode::kInvalidArgument, "MatMul: the bias has ",
                  args.in(2).numel(), " elements but the product has ", n, " columns");
      bias = args.in(2).data<float>();
    }
    const float* z = nullptr;
    if (args.has(3)) {
      KILN_EXPECT(args.in(3).dims() == y.dims(), StatusCode::kInvalidArgument,
                  "MatMul: the residual Z ", dims_to_string(args.in(3).dims()),
                  " does not have the output's shape ", dims_to_string(y.dims()));
      z = args.in(3).data<float>();
    }
    if (at.quantized()) return run_quantized(args, m, n, k, ab, bb, yb);
    std::vector<float> at_buf, bt_buf;
    auto a_strides = broadcast_strides(ab, yb), b_strides = broadcast_strides(bb, yb);
    std::vector<int64_t> idx(yb.size(), 0);
    for (int64_t bi = 0; bi < batches; ++bi) {
      int64_t ao = 0, bo = 0;
      for (size_t d = 0; d < yb.size(); ++d) {
        ao += idx[d] * a_strides[d];
        bo += idx[d] * b_strides[d];
      }
      const float* ap = a.data<float>() + ao * m * k;
      const float* bp = b.data<float>() + bo * k * n;
      if (at.trans_a) { transpose(ap, k, m, at_buf); ap = at_buf.data(); }
      if (at.trans_b) { transpose(bp, n, k, bt_buf); bp = bt_buf.data(); }
      float* yp = y.data<float>() + bi * m * n;
      cpu::sgemm(m, n, k, ap, k, bp, n, yp, n, false, blocking_);
      if (at.alpha != 1.0)
        for (int64_t i = 0; i < m * n; ++i) yp[i] = static_cast<float>(yp[i] * at.alpha);
      if (bias)
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) yp[i * n + j] += bias[j];
      if (z) {
        const float* zp = z + bi * m * n;
        for (int64_t i = 0; i < m * n; ++i) yp[i] += zp[i];
      }
      if (!at.activation.empty())
        for (int64_t i = 0; i < m * n; ++i)
          yp[i] = static_cast<float>(apply_activation(at.activation, yp[i]));
      for (int64_t d = static_cast<int64_t>(yb.size()) - 1; d >= 0; --d) {
        if (++idx[d] < yb[d]) break;
        idx[d] = 0;
      }
    }
    if (has_epilogue_program(at.epilogue)) apply_epilogue_program(at.epilogue, y);
  }

  // Quantized (MatMulAttrs q_*): A - zero point and B as floats (exact), the inner dimension
  // summed by the float32 GEMM in chunks whose partial sums stay integers below 2^24 and added in
  // double, as cpu.conv_im2col does; then, in double as the reference, the per-column scale, bias,
  // residual and activation, rounded once to float32. Equal to the reference bit for bit.
  void run_quantized(const ComputeArgs& args, int64_t m, int64_t n, int64_t k, const Dims& ab,
                     const Dims& bb, const Dims& yb) const {
    const auto& at = args.node.a<MatMulAttrs>();
    const Tensor& a = args.in(0);
    const Tensor& b = args.in(1);
    Tensor& y = args.out(0);
    KILN_EXPECT(at.q_w_scale.size() == 1 || static_cast<int64_t>(at.q_w_scale.size()) == n,
                StatusCode::kInvalidArgument, "MatMul: ", at.q_w_scale.size(),
                " weight scales for ", n, " columns");
    std::vector<double> scale(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j)
      scale[j] = at.q_x_scale * at.q_w_scale[at.q_w_scale.size() == 1 ? 0 : j];
    const std::vector<float> af = ints_as_floats(a, at.q_x_zero), bf = ints_as_floats(b, 0);
    const float* bias = args.has(2) ? args.in(2).data<float>() : nullptr;
    if (bias)
      KILN_EXPECT(args.in(2).numel() == n, StatusCode::kInvalidArgument, "MatMul: the bias has ",
                  args.in(2).numel(), " elements but the product has ", n, " columns");
    const float* z = args.has(3) ? args.in(3).data<float>() : nullptr;
    if (z)
      KILN_EXPECT(args.in(3).dims() == y.dims(), StatusCode::kInvalidArgument,
                  "MatMul: the residual Z does not have the output's shape");
    const int64_t chunk = std::max<int64_t>(
        1, ((int64_t{1} << 24) - 1) / (max_abs_shifted(a.dtype(), at.q_x_zero) * 127));
    std::vector<float> at_buf, bt_buf, part(static_cast<size_t>(m * n));
    std::vector<double> acc(static_cast<size_t>(m * n));
    auto a_strides = broadcast_strides(ab, yb), b_strides = broadcast_strides(bb, yb);
    std::vector<int64_t> idx(yb.size(), 0);
    float* yd = y.data<float>();
    for (int64_t bi = 0; bi < dims_volume(yb); ++bi) {
      int64_t ao = 0, bo = 0;
      for (size_t d = 0; d < yb.size(); ++d) {
        ao += idx[d] * a_strides[d];
        bo += idx[d] * b_strides[d];
      }
      const float* ap = af.data() + ao * m * k;
      const float* bp = bf.data() + bo * k * n;
      if (at.trans_a) { transpose(ap, k, m, at_buf); ap = at_buf.data(); }
      if (at.trans_b) { transpose(bp, n, k, bt_buf); bp = bt_buf.data(); }
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t k0 = 0; k0 < k; k0 += chunk) {
        const int64_t kc = std::min(chunk, k - k0);
        cpu::sgemm(m, n, kc, ap + k0, k, bp + k0 * n, n, part.data(), n, false, blocking_);
        for (int64_t i = 0; i < m * n; ++i) acc[i] += part[i];
      }
      float* yp = yd + bi * m * n;
      const float* zp = z ? z + bi * m * n : nullptr;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double v = acc[i * n + j] * scale[j];
          if (bias) v += bias[j];
          if (zp) v += zp[i * n + j];
          if (!at.activation.empty()) v = apply_activation(at.activation, v);
          yp[i * n + j] = static_cast<float>(v);
        }
      for (int64_t d = static_cast<int64_t>(yb.size()) - 1; d >= 0; --d) {
        if (++idx[d] < yb[d]) break;
        idx[d] = 0;
      }
    }
    if (has_epilogue_program(at.epilogue)) apply_epilogue_program(at.epilogue, y);
  }

 private:
  cpu::GemmBlocking blocking_;
  static std::vector<int64_t> broadcast_strides(const Dims& in, const Dims& out) {
    // Element strides (in units of whole matrices) of `in` within the broadcast `out`.
    std::vector<int64_t> s(out.size(), 0);
    int64_t stride = 1;
    for (int64_t i = static_cast<int64_t>(in.size()) - 1; i >= 0; --i) {
      int64_t oi = i + static_cast<int64_t>(out.size() - in.size());
      s[oi] = in[i] == 1 ? 0 : stride;
      stride *= in[i];
    }
    return s;
  }
  static void transpose(const float* src, int64_t rows, int64_t cols, std::vector<float>& dst) {
    dst.resize(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
  }
};

class MatMulTactic : public Tactic {
 public:
  std::string_view id() const override { return "cpu.matmul_gemm"; }
  std::string_view op() const override { return "MatMul"; }
  Status supports(const Node& n) const override {
    if (n.op() != "MatMul") return Status(StatusCode::kUnsupported, "not a MatMul");
    const auto& ma = n.a<MatMulAttrs>();
    if (ma.quantized()) {
      Status q = quantized_operands_ok(n, ma.q_out, DataType::kFloat);
      if (!q) return q;
    } else if (!all_float32(n)) {
      return Status(StatusCode::kUnsupported, "not float32");
    }
    if (!is_matmul_activation(n.a<MatMulAttrs>().activation))
      return Status(StatusCode::kUnsupported, "activation " + n.a<MatMulAttrs>().activation);
    for (int i = 0; i < 2; ++i) {
      const Value* v = n.inputs[i];
      if (!v->shape.rank_known || v->shape.rank() < 2)
        return Status(StatusCode::kUnsupported, "operands must be at least 2-D");
    }
    return Status::ok();
  }
  std::vector<std::string> candidates(const Node&, const TacticLimits&) const override { return blocking_candidates(); }
  std::string prepare_choice(const Node&, std::string_view choice,
                             const TacticLimits&) const override {
    return checked_choice(choice);
  }
  std::unique_ptr<Kernel> instantiate(const Node&, std::string_view state) const override {
    return std::make_unique<MatMulKernel>(blocking_of(state));
  }
};

// ---- Inference batch normalization: y = x * s[c] + t[c] ------------------------------------

class BatchNormKernel : public Kernel {
 public:
  void run(const ComputeArgs& args) override {
    const auto& at = args.node.a<NormalizationAttrs>();
    const Tensor& x = args.in(0);
    Tensor& y = args.out(0);
    KILN_EXPECT(x.rank() >= 2, StatusCode::kInvalidArgument, "BatchNormalization: X must be at least 2-D");
    const int64_t n = x.dim(0), c = x.dim(1), inner = x.numel() / std::max<int64_t>(n * c, 1);
    for (size_t i = 1; i <= 4; ++i)
      KILN_EXPECT(args.has(i) && args.in(i).numel() == c, StatusCode::kInvalidArgument,
                  "BatchNormalization: parameter ", i, " must have ", c, " elements");
    // Per-channel scale and shift, computed in double like the reference.
    std::vector<float> s(c), t(c);
    for (int64_t j = 0; j < c; ++j) {
      double sc = args.in(1).data<float>()[j] / std::sqrt(double(args.in(4).data<float>()[j]) + at.epsilon);
      s[j] = static_cast<float>(sc);
      t[j] = static_cast<float>(args.in(2).data<float>()[j] - args.in(3).data<float>()[j] * sc);
    }
    const float* xd = x.data<float>();
    float* yd = y.data<float>();
    for (int64_t b = 0; b < n; ++b)
      for (int64_t j = 0; j < c; ++j) {
        const float* xr = xd + (b * c + j) * inner;
        float* yr = yd + (b * c + j) * inner;
        const float sj = s[j], tj = t[j];
        for (int64_t i = 0; i < inner; ++i) yr[i] = xr[i] * sj + tj;
      }
  }
};

class BatchNormTactic : public Tactic {
 public:
  std::string_view id() const override { return "cpu.batchnorm_f32"; }
  std::string_view op() const override { return "Normalization"; }
  Status supports(const Node& n) const override {
    if (n.op() != "Normalization" || n.a<NormalizationAttrs>().kind != "batch")
      return Status(StatusCode::kUnsupported, "not a batch normalization");
    if (!all_float32(n)) return Status(StatusCode::kUnsupported, "not float32");
    if (n.inputs.size() != 5 || n.outputs.size() != 1)
      return Status(StatusCode::kUnsupported, "needs scale, bias, mean and var, one output");
    for (size_t i = 1; i < 5; ++i)
      if (!n.inputs[i] || !n.inputs[i]->shape.rank_known || n.inputs[i]->shape.rank() != 1)
        return Status(StatusCode::kUnsupported, "parameters must be 1-D");
    return Status::ok();
  }
  std::unique_ptr<Kernel> instantiate(const Node&, std::string_view) const override {
    return std::make_unique<BatchNormKernel>();
  }
};

}  // namespace

std::vector<const Tactic*> fast_cpu_tactics() {
  static const ConvIm2colTactic conv;
  static const MatMulTactic matmul;
  static const BatchNormTactic batchnorm;
  return {&conv, &matmul, &batchnorm};
}

}  // namespace kiln
