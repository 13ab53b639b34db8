#include "backends/cuda/cudnn/conv_mapping.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "common/error.h"
#include "ops/window.h"

namespace kiln::cuda {

namespace {

int64_t ceil_div_pos(int64_t a, int64_t b) { return (a + b - 1) / b; }  // a >= 0, b > 0

CudnnConvMapping reject(std::string why) {
  CudnnConvMapping m;
  m.why = std::move(why);
  return m;
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

}  // namespace

int64_t CudnnConvMapping::native_numel() const {
  int64_t n = 1;
  for (int d : y_dims) n *= d;
  return n;
}

CudnnConvMapping map_conv_to_cudnn(const ConvAttrs& a, const Dims& x, const Dims& w,
                                   const Dims& y) {
  const size_t r = x.size();
  if (r < 3 || r > 5) return reject(cat("rank ", r, " (cuDNN takes 1-D to 3-D convolutions)"));
  if (w.size() != r || y.size() != r) return reject("X, W and Y ranks differ");
  const size_t nk = r - 2;
  const bool cl = a.channels_last;
  const int64_t n = x[0];
  const int64_t c = cl ? x[r - 1] : x[1];
  Ints in(nk), kernel(w.begin() + 2, w.end());
  for (size_t i = 0; i < nk; ++i) in[i] = x[(cl ? 1 : 2) + i];
  ConvGeometry geo;
  try {
    geo = conv_geometry(a, in, kernel);
  } catch (const Error& e) {
    return reject(e.message());
  }
  const int64_t g = a.group;
  if (g < 1) return reject("group < 1");
  const int64_t m = a.transposed ? w[1] * g : w[0];
  if (!a.transposed && (c != w[1] * g || w[0] % g != 0))
    return reject("channels do not match the weight and group");
  if (a.transposed && (c != w[0] || c % g != 0))
    return reject("channels do not match the transposed weight and group");
  Dims want{n};
  if (!cl) want.push_back(m);
  want.insert(want.end(), geo.out.begin(), geo.out.end());
  if (cl) want.push_back(m);
  if (want != y)
    return reject(cat("output ", dims_to_string(y), " is not the expected ", dims_to_string(want)));

  CudnnConvMapping mp;
  mp.transposed = a.transposed;
  mp.channels_last = cl;
  mp.groups = static_cast<int>(std::min<int64_t>(g, INT_MAX));
  // 1-D convolutions become 2-D ones with a leading spatial axis of 1 (cuDNN has no 1-D path).
  const size_t lead = nk == 1 ? 1 : 0;
  mp.nsp = static_cast<int>(nk + lead);
  std::vector<int64_t> xd{n, c}, wd{w[0], w[1]}, yd{n, m}, od{n, m};
  std::vector<int64_t> pad, stride, dil, off;
  if (lead) {
    xd.push_back(1);
    wd.push_back(1);
    yd.push_back(1);
    od.push_back(1);
    pad.push_back(0);
    stride.push_back(1);
    dil.push_back(1);
    off.push_back(0);
  }
  const bool empty_in = dims_volume(x) == 0 || dims_volume(w) == 0;
  for (size_t i = 0; i < nk; ++i) {
    const int64_t s = geo.strides[i], d = geo.dilations[i];
    const int64_t pb = geo.pad_begin[i], pe = geo.pad_end[i];
    const int64_t keff = effective_kernel(kernel[i], d);
    const int64_t out = geo.out[i];
    int64_t p = 0, len = out, o = 0;
    if (empty_in) {
      // Nothing is convolved: only out_dims matter.
    } else if (!a.transposed) {
      const int64_t t = pe > pb ? ceil_div_pos(pe - pb, s) : 0;
      p = pb + t * s;
      len = (in[i] + 2 * p - keff) / s + 1;
      o = t;
      if (len < out + t) return reject("internal: forward window does not fit the native output");
    } else {
      // The full transposed output (no padding, no output_padding) spans [0, full); kiln's output
      // o is full position o + pb, and positions at or beyond `full` are zeros.
      const int64_t full = s * (in[i] - 1) + keff;
      const int64_t need = std::min(pb + out, full);
      p = std::min(pb, full + s - 1 - need);
      const int64_t lmin = full - 2 * p, lmax = lmin + s - 1;
      o = pb - p;
      len = std::clamp(o + out, lmin, lmax);
      if (len < 1)
        return reject(cat("pads ", pb, "+", pe, " leave cuDNN no output along axis ", i));
      if (p + len < need) return reject("internal: transposed window does not fit");
    }
    xd.push_back(in[i]);
    wd.push_back(kernel[i]);
    yd.push_back(len);
    od.push_back(out);
    pad.push_back(p);
    stride.push_back(s);
    dil.push_back(d);
    off.push_back(o);
  }
  mp.out_dims = od;
  mp.offset = off;
  if (empty_in || dims_volume(y) == 0) {
    mp.no_conv = true;
    mp.ok = true;
    return mp;
  }
  // Legacy cuDNN takes int dims and (for most engines) fewer than 2^31 elements per tensor.
  auto to_int = [&](const std::vector<int64_t>& v, std::vector<int>& out, const char* what) {
    for (int64_t e : v) {
      if (!fits_int(e)) {
        mp.why = cat(what, " value ", e, " does not fit cuDNN's int");
        return false;
      }
      out.push_back(static_cast<int>(e));
    }
    return true;
  };
  if (!to_int(xd, mp.x_dims, "input dim") || !to_int(wd, mp.w_dims, "weight dim") ||
      !to_int(yd, mp.y_dims, "output dim") || !to_int(pad, mp.pad, "pad") ||
      !to_int(stride, mp.stride, "stride") || !to_int(dil, mp.dilation, "dilation"))
    return mp;
  if (!fits_int(dims_volume(x)) || !fits_int(dims_volume(w)) || !fits_int(mp.native_numel()) ||
      !fits_int(dims_volume(y))) {
    mp.why = "a tensor has 2^31 elements or more";
    return mp;
  }
  mp.direct = true;
  for (size_t i = 0; i < off.size(); ++i)
    if (off[i] != 0 || yd[2 + i] != od[2 + i]) mp.direct = false;
  mp.ok = true;
  return mp;
}

void reorder_filter_channels_last(const void* src, void* dst, const Dims& w, size_t es) {
  KILN_CHECK(w.size() >= 3);
  const int64_t a = w[0], b = w[1], k = dims_volume(w) / std::max<int64_t>(1, a * b);
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      for (int64_t q = 0; q < k; ++q)
        std::memcpy(d + ((i * k + q) * b + j) * es, s + ((i * b + j) * k + q) * es, es);
}

}  // namespace kiln::cuda
