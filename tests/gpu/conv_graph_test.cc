// The cuDNN graph-API convolution plans (backends/cuda/cudnn/conv_graph.h) on their own: every
// plan the heuristics offer (not only the one the tactic's timing would keep) must give the same
// result as a float64 host convolution of the same float16/bfloat16 data, for channels-last and
// channels-first tensors, with and without the fused bias / residual / relu, strided, dilated,
// padded, at awkward sizes. On the H100 every case's plans run; the NCHW case with an epilogue
// gets none (see must_offer).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <random>

#include "backends/cuda/cudnn/conv_graph.h"
#include "gpu/gpu_compare.h"

namespace kiln::testing {
namespace {

struct GraphCase {
  int64_t n, c, h, w, k, r, s;
  int64_t pad, stride, dil;
  bool channels_last, bias, residual, relu, bf16;
  // Whether cuDNN must offer at least one plan. cuDNN 9.14's fusion engines take a fused
  // epilogue only for channels-last tensors (seen on the H100): an NCHW conv with one gets none,
  // and the tactic then keeps the legacy algorithms.
  bool must_offer = true;
};

float round_to(float v, bool bf16) {
  return bf16 ? __bfloat162float(__float2bfloat16_rn(v)) : __half2float(__float2half_rn(v));
}

uint16_t bits_of(float v, bool bf16) {
  if (bf16) return __bfloat16_as_ushort(__float2bfloat16_rn(v));
  return __half_as_ushort(__float2half_rn(v));
}

float from_bits(uint16_t b, bool bf16) {
  return bf16 ? __bfloat162float(__ushort_as_bfloat16(b)) : __half2float(__ushort_as_half(b));
}

// Index of logical (a, ch, i, j) in a 4-D tensor stored channels-first or channels-last.
int64_t at(bool cl, int64_t ch_n, int64_t d1, int64_t d2, int64_t a, int64_t ch, int64_t i,
           int64_t j) {
  return cl ? ((a * d1 + i) * d2 + j) * ch_n + ch : ((a * ch_n + ch) * d1 + i) * d2 + j;
}

struct DeviceBuf {
  void* p = nullptr;
  explicit DeviceBuf(size_t bytes) { EXPECT_EQ(cudaMalloc(&p, bytes ? bytes : 1), cudaSuccess); }
  ~DeviceBuf() { cudaFree(p); }
};

void run_graph_case(const GraphCase& g) {
  SCOPED_TRACE(cat("N", g.n, " C", g.c, " ", g.h, "x", g.w, " K", g.k, " ", g.r, "x", g.s,
                   " pad ", g.pad, " stride ", g.stride, " dil ", g.dil,
                   g.channels_last ? " NHWC" : " NCHW", g.bias ? " bias" : "",
                   g.residual ? " residual" : "", g.relu ? " relu" : "", g.bf16 ? " bf16" : " f16"));
  const int64_t oh = (g.h + 2 * g.pad - g.dil * (g.r - 1) - 1) / g.stride + 1;
  const int64_t ow = (g.w + 2 * g.pad - g.dil * (g.s - 1) - 1) / g.stride + 1;
  std::mt19937 rng(static_cast<uint32_t>(g.n * 131 + g.c * 17 + g.k + g.r));
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto fill = [&](size_t n, float scale) {
    std::vector<float> v(n);
    for (auto& e : v) e = round_to(u(rng) * scale, g.bf16);
    return v;
  };
  const size_t xn = g.n * g.c * g.h * g.w, wn = g.k * g.c * g.r * g.s, yn = g.n * g.k * oh * ow;
  std::vector<float> x = fill(xn, 1.f), w = fill(wn, 1.f / std::sqrt(float(g.c * g.r * g.s)));
  std::vector<float> b = fill(g.k, 0.5f), z = fill(yn, 1.f);

  // Host reference in float64 over the rounded values; tensors in their stored layout.
  std::vector<double> want(yn);
  for (int64_t a = 0; a < g.n; ++a)
    for (int64_t k = 0; k < g.k; ++k)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = 0;
          for (int64_t c = 0; c < g.c; ++c)
            for (int64_t p = 0; p < g.r; ++p)
              for (int64_t q = 0; q < g.s; ++q) {
                const int64_t hi = i * g.stride - g.pad + p * g.dil;
                const int64_t wi = j * g.stride - g.pad + q * g.dil;
                if (hi < 0 || hi >= g.h || wi < 0 || wi >= g.w) continue;
                acc += double(x[at(g.channels_last, g.c, g.h, g.w, a, c, hi, wi)]) *
                       w[at(g.channels_last, g.c, g.r, g.s, k, c, p, q)];
              }
          const int64_t o = at(g.channels_last, g.k, oh, ow, a, k, i, j);
          if (g.bias) acc += b[k];
          if (g.residual) acc += z[o];
          if (g.relu) acc = std::max(acc, 0.0);
          want[o] = acc;
        }

  auto upload = [&](const std::vector<float>& v, DeviceBuf& d) {
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = bits_of(v[i], g.bf16);
    ASSERT_EQ(cudaMemcpy(d.p, h.data(), h.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  };
  DeviceBuf dx(xn * 2), dw(wn * 2), db(g.k * 2), dz(yn * 2), dy(yn * 2);
  upload(x, dx);
  upload(w, dw);
  upload(b, db);
  upload(z, dz);

  cuda::ConvGraphSpec spec;
  spec.dtype = g.bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
  spec.channels_last = g.channels_last;
  spec.x_dims = {g.n, g.c, g.h, g.w};
  spec.w_dims = {g.k, g.c, g.r, g.s};
  spec.y_dims = {g.n, g.k, oh, ow};
  spec.pad = {g.pad, g.pad};
  spec.stride = {g.stride, g.stride};
  spec.dilation = {g.dil, g.dil};
  spec.bias = g.bias;
  spec.residual = g.residual;
  spec.relu = g.relu;
  cudnnHandle_t h = nullptr;
  ASSERT_EQ(cudnnCreate(&h), CUDNN_STATUS_SUCCESS);
  auto plans = cuda::conv_graph_plans(h, spec, 4, int64_t(256) << 20);
  // None at all where cuDNN has engines would mean the graph is described wrongly.
  if (g.must_offer) {
    EXPECT_FALSE(plans.empty());
  }
  const double eps = g.bf16 ? 1.6e-2 : 2e-3;
  for (auto& p : plans) {
    SCOPED_TRACE(cat("engine ", p->engine()));
    DeviceBuf ws(static_cast<size_t>(p->workspace()));
    ASSERT_EQ(cudaMemset(dy.p, 0xff, yn * 2), cudaSuccess);  // NaNs: every output must be written
    ASSERT_EQ(p->execute(h, dx.p, dw.p, db.p, dz.p, dy.p, ws.p), CUDNN_STATUS_SUCCESS);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<uint16_t> got(yn);
    ASSERT_EQ(cudaMemcpy(got.data(), dy.p, yn * 2, cudaMemcpyDeviceToHost), cudaSuccess);
    int bad = 0;
    for (size_t i = 0; i < yn && bad < 5; ++i) {
      const double v = from_bits(got[i], g.bf16);
      if (!(std::fabs(v - want[i]) <= eps * (1 + std::fabs(want[i])))) {
        ADD_FAILURE() << "y[" << i << "] = " << v << ", want " << want[i];
        ++bad;
      }
    }
  }
  cudnnDestroy(h);
}

TEST(CudnnGraphConv, EveryOfferedPlanMatchesTheHostConvolution) {
  KILN_REQUIRE_GPU();
  const GraphCase cases[] = {
      // n  c   h   w   k  r  s pad str dil   cl   bias  res   relu  bf16
      {2, 24, 9, 11, 16, 3, 3, 1, 1, 1, true, true, true, true, false},
      {3, 16, 7, 6, 40, 1, 1, 0, 2, 1, true, false, false, false, false},
      {1, 8, 13, 5, 8, 3, 3, 2, 1, 2, true, true, false, true, true},
      {2, 8, 10, 9, 24, 5, 5, 2, 2, 1, true, true, false, false, false},
      {2, 16, 6, 7, 8, 3, 3, 1, 1, 1, false, false, false, false, false},
      {2, 16, 6, 7, 8, 3, 3, 1, 1, 1, false, true, true, true, false, false},
  };
  for (const auto& c : cases) run_graph_case(c);
}

}  // namespace
}  // namespace kiln::testing
