// Pool: the reference max / average / Lp pooling. See pool.h for the semantics.
//
// The window geometry of every output position is the same for all N*C planes, so it is worked
// out once: the window's start, whether it lies wholly inside the input (then the taps are fixed
// offsets from a base, with no bounds checks), and the divisor of average pooling.
#include "ops/pool.h"

#include <cmath>
#include <limits>

#include "ops/accumulate.h"
#include "ops/layout_util.h"
#include "ops/op_util.h"
#include "ops/window.h"

namespace kiln {

namespace {

Ints axis_list(const Ints& v, size_t n, int64_t fill, const char* name) {
  if (v.empty()) return Ints(n, fill);
  KILN_EXPECT(v.size() == n, StatusCode::kInvalidModel, "Pool: ", name, " has ", v.size(),
              " values but the input has ", n, " spatial axes");
  return v;
}

void check_attrs(const PoolAttrs& a, size_t nsp) {
  KILN_EXPECT(a.kind == "max" || a.kind == "avg" || a.kind == "lp", StatusCode::kInvalidModel,
              "Pool: kind '", a.kind, "' is not one of max, avg, lp");
  KILN_EXPECT(is_valid_auto_pad(a.auto_pad), StatusCode::kInvalidModel, "Pool: auto_pad '",
              a.auto_pad, "' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
  KILN_EXPECT(a.storage_order == 0 || a.storage_order == 1, StatusCode::kInvalidModel,
              "Pool: storage_order must be 0 or 1, got ", a.storage_order);
  if (a.global) return;
  KILN_EXPECT(a.kernel.size() == nsp, StatusCode::kInvalidModel, "Pool: kernel has ",
              a.kernel.size(), " values but the input has ", nsp, " spatial axes");
  axis_list(a.strides, nsp, 1, "strides");
  axis_list(a.dilations, nsp, 1, "dilations");
  if (!a.pads.empty())
    KILN_EXPECT(a.pads.size() == 2 * nsp, StatusCode::kInvalidModel, "Pool: pads has ",
                a.pads.size(), " values but ", nsp, " spatial axes need ", 2 * nsp);
}

// Output length of axis i (non-global); fills its pads.
int64_t axis_output(const PoolAttrs& a, size_t nsp, size_t i, int64_t in, int64_t& pb,
                    int64_t& pe) {
  pb = a.pads.empty() ? 0 : a.pads[i];
  pe = a.pads.empty() ? 0 : a.pads[nsp + i];
  return forward_window(a.auto_pad, in, a.kernel[i], a.strides.empty() ? 1 : a.strides[i],
                        a.dilations.empty() ? 1 : a.dilations[i], a.ceil_mode, pb, pe, "Pool");
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<PoolAttrs>();
  DataType t = ctx.dtype(0);
  if (!dtype_is_supported(t)) ctx.error(cat("X has unsupported type ", dtype_name(t)));
  if (a.kind != "max" && !dtype_is_float(t))
    ctx.error(cat(a.kind, " pooling needs a floating-point input, got ", dtype_name(t)));
  const bool has_indices = ctx.node().outputs.size() > 1 && ctx.node().outputs[1];
  if (a.kind != "max" && has_indices) ctx.error("only max pooling has an Indices output");
  // Indices are positions in the channels-first tensor (ONNX); a channels-last pool has none.
  if (a.channels_last && has_indices) ctx.error("a channels-last pool has no Indices output");
  // Channels-last X is checked and inferred through its channels-first view.
  const Shape xs = a.channels_last ? channels_first_shape(ctx.shape(0)) : ctx.shape(0);
  if (!xs.rank_known) {
    check_attrs(a, a.kernel.size());
    ctx.set_output(0, t, Shape::unknown_rank());
    ctx.set_output(1, DataType::kInt64, Shape::unknown_rank());
    return;
  }
  if (xs.rank() < 3) ctx.error(cat("X must have rank >= 3 ([N, C, spatial...]), got ", xs.str()));
  size_t nsp = xs.rank() - 2;
  check_attrs(a, nsp);
  Shape out;
  out.dims = {xs[0], xs[1]};
  for (size_t i = 0; i < nsp; ++i) {
    const Dim& in = xs[2 + i];
    if (a.global) {
      out.dims.emplace_back(1);
    } else if (in.known()) {
      int64_t pb, pe;
      out.dims.emplace_back(axis_output(a, nsp, i, in.value, pb, pe));
    } else {
      out.dims.push_back(Dim::unknown());
    }
  }
  if (a.channels_last) out = channels_last_shape(out);
  ctx.set_output(0, t, out);
  ctx.set_output(1, DataType::kInt64, out);
}

template <class Acc>
struct PlaneKernel {
  const PoolGeometry& g;
  const PoolAttrs& a;
  int64_t in_vol = 0, out_vol = 0, k_vol = 0;
  Ints in_str, k_str, out_str, col_str;
  Ints tap_off;                 // in-plane offset of each tap from the window start
  std::vector<int64_t> start;   // out_vol x nsp window starts
  std::vector<int64_t> base;    // in-plane offset of the start, or -1 if not fully inside
  std::vector<double> divisor;  // avg only

  PlaneKernel(const PoolGeometry& geo, const PoolAttrs& attrs) : g(geo), a(attrs) {
    size_t nsp = g.in.size();
    in_vol = dims_volume(g.in);
    out_vol = dims_volume(g.out);
    k_vol = dims_volume(g.kernel);
    in_str = strides_of(g.in);
    k_str = strides_of(g.kernel);
    out_str = strides_of(g.out);
    col_str.assign(nsp, 1);
    for (size_t j = 1; j < nsp; ++j) col_str[j] = col_str[j - 1] * g.in[j - 1];
    tap_off.assign(k_vol, 0);
    for (int64_t kk = 0; kk < k_vol; ++kk)
      for (size_t j = 0; j < nsp; ++j)
        tap_off[kk] += ((kk / k_str[j]) % g.kernel[j]) * g.dilations[j] * in_str[j];
    start.resize(out_vol * nsp);
    base.resize(out_vol);
    divisor.resize(out_vol);
    for (int64_t o = 0; o < out_vol; ++o) {
      bool inside = true;
      int64_t off = 0;
      double valid = 1, padded = 1;
      for (size_t j = 0; j < nsp; ++j) {
        int64_t s = ((o / out_str[j]) % g.out[j]) * g.strides[j] - g.pad_begin[j];
        start[o * nsp + j] = s;
        if (s < 0 || s + (g.kernel[j] - 1) * g.dilations[j] >= g.in[j]) inside = false;
        off += s * in_str[j];
        int64_t nv = 0, np = 0;
        for (int64_t k = 0; k < g.kernel[j]; ++k) {
          int64_t x = s + k * g.dilations[j];
          if (x >= 0 && x < g.in[j]) ++nv;
          if (x >= -g.pad_begin[j] && x < g.in[j] + g.pad_end[j]) ++np;
        }
        valid *= static_cast<double>(nv);
        padded *= static_cast<double>(np);
      }
      base[o] = inside ? off : -1;
      divisor[o] = a.count_include_pad ? padded : valid;
    }
  }

  // Calls f(in-plane offset) for every tap of output o that lies inside the input.
  template <class F>
  void for_taps(int64_t o, F&& f) const {
    if (base[o] >= 0) {
      for (int64_t kk = 0; kk < k_vol; ++kk) f(base[o] + tap_off[kk]);
      return;
    }
    size_t nsp = g.in.size();
    for (int64_t kk = 0; kk < k_vol; ++kk) {
      int64_t off = 0;
      bool ok = true;
      for (size_t j = 0; j < nsp && ok; ++j) {
        int64_t x = start[o * nsp + j] + ((kk / k_str[j]) % g.kernel[j]) * g.dilations[j];
        ok = x >= 0 && x < g.in[j];
        off += x * in_str[j];
      }
      if (ok) f(off);
    }
  }

  // Row-major in-plane offset to ONNX's Indices spatial index.
  int64_t spatial_index(int64_t off) const {
    if (a.storage_order == 0) return off;
    int64_t idx = 0;
    for (size_t j = 0; j < g.in.size(); ++j) idx += ((off / in_str[j]) % g.in[j]) * col_str[j];
    return idx;
  }

  void run(const Acc* x, Acc* y, int64_t* indices, int64_t plane_index) const {
    if (a.kind == "max") {
      for (int64_t o = 0; o < out_vol; ++o) {
        Acc best = std::numeric_limits<Acc>::has_infinity ? -std::numeric_limits<Acc>::infinity()
                                                          : std::numeric_limits<Acc>::lowest();
        int64_t arg = -1;
        bool nan = false;
        for_taps(o, [&](int64_t off) {
          Acc v = x[off];
          if (nan) return;
          if constexpr (std::is_floating_point_v<Acc>) {
            if (std::isnan(v)) {  // NaN propagates, as numpy's max does
              best = v;
              arg = off;
              nan = true;
              return;
            }
          }
          if (arg < 0 || v > best) {
            best = v;
            arg = off;
          }
        });
        y[o] = best;
        if (indices) indices[o] = arg < 0 ? -1 : plane_index * in_vol + spatial_index(arg);
      }
    } else if (a.kind == "avg") {
      for (int64_t o = 0; o < out_vol; ++o) {
        Acc sum = 0;
        for_taps(o, [&](int64_t off) { sum += x[off]; });
        y[o] = sum / static_cast<Acc>(divisor[o]);
      }
    } else {
      double p = a.p;
      for (int64_t o = 0; o < out_vol; ++o) {
        Acc sum = 0;
        for_taps(o,
                 [&](int64_t off) { sum += std::pow(std::abs(static_cast<double>(x[off])), p); });
        y[o] = static_cast<Acc>(std::pow(static_cast<double>(sum), 1.0 / p));
      }
    }
  }
};

template <class Acc>
void run_pool(const PoolAttrs& a, const Tensor& x, Tensor& y, Tensor* ind, const PoolGeometry& g) {
  PlaneKernel<Acc> k(g, a);
  int64_t planes = x.dim(0) * x.dim(1);
  std::vector<Acc> xp(k.in_vol), yp(k.out_vol);
  for (int64_t pi = 0; pi < planes; ++pi) {
    load_acc(x, pi * k.in_vol, k.in_vol, xp.data());
    k.run(xp.data(), yp.data(), ind ? ind->data<int64_t>() + pi * k.out_vol : nullptr, pi);
    store_acc(yp.data(), y, pi * k.out_vol, k.out_vol);
  }
}

// x and y channels-first.
void pool_channels_first(const PoolAttrs& a, const Tensor& x, Tensor& y, Tensor* ind) {
  KILN_EXPECT(x.rank() >= 3, StatusCode::kInvalidArgument, "Pool: X must have rank >= 3, got ",
              dims_to_string(x.dims()));
  PoolGeometry g = pool_geometry(a, Ints(x.dims().begin() + 2, x.dims().end()));
  DataType t = x.dtype();
  if (dtype_is_float(t))
    run_pool<double>(a, x, y, ind, g);
  else if (dtype_is_signed_int(t))
    run_pool<int64_t>(a, x, y, ind, g);
  else
    run_pool<uint64_t>(a, x, y, ind, g);
}

// Channels-last tensors are transposed to channels-first around the channels-first compute.
void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<PoolAttrs>();
  const Tensor& x = args.in(0);
  Tensor& y = args.out(0);
  Tensor* ind = args.outputs.size() > 1 && args.out(1).defined() ? &args.out(1) : nullptr;
  if (!a.channels_last) {
    pool_channels_first(a, x, y, ind);
    return;
  }
  KILN_EXPECT(ind == nullptr, StatusCode::kInvalidModel,
              "Pool: a channels-last pool has no Indices output");
  KILN_EXPECT(x.rank() >= 3 && y.rank() == x.rank(), StatusCode::kInvalidArgument,
              "Pool: channels-last X must have rank >= 3, got ", dims_to_string(x.dims()));
  const Ints to_first = channels_first_perm(x.rank());
  Tensor yc(y.dtype(), permuted_shape(Shape::from(y.dims()), to_first).concrete());
  pool_channels_first(a, permuted(x, to_first), yc, nullptr);
  permute_into(yc, channels_last_perm(y.rank()), y);
}

}  // namespace

PoolGeometry pool_geometry(const PoolAttrs& a, const Ints& in) {
  size_t nsp = in.size();
  check_attrs(a, nsp);
  PoolGeometry g;
  g.in = in;
  g.out.resize(nsp);
  g.pad_begin.assign(nsp, 0);
  g.pad_end.assign(nsp, 0);
  if (a.global) {
    g.kernel = in;
    g.strides.assign(nsp, 1);
    g.dilations.assign(nsp, 1);
    g.out.assign(nsp, 1);
    return g;
  }
  g.kernel = a.kernel;
  g.strides = axis_list(a.strides, nsp, 1, "strides");
  g.dilations = axis_list(a.dilations, nsp, 1, "dilations");
  for (size_t i = 0; i < nsp; ++i)
    g.out[i] = axis_output(a, nsp, i, in[i], g.pad_begin[i], g.pad_end[i]);
  return g;
}

const OpDef& kiln_op_pool() {
  static const OpDef d{"Pool", make_attrs_of<PoolAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
