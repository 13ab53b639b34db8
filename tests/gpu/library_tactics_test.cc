// The library tactics: cuda.cudnn_conv and cuda.cublaslt_matmul.
//
// The first tests need no GPU: they check the index arithmetic that maps a kiln Conv / MatMul onto
// cuDNN / cuBLASLt calls by replaying the mapping on the CPU (the reference Conv with cuDNN's
// symmetric pads, then the window; a naive column-major GEMM over the planned calls) and comparing
// with the reference compute of the original node. The GPU tests then run awkward shapes through
// the real tactics against the reference.
#include <cmath>
#include <random>

#include "backends/cuda/cublaslt/matmul_mapping.h"
#include "backends/cuda/cudnn/conv_mapping.h"
#include "gpu/gpu_compare.h"
#include "ops/conv.h"
#include "ops/mat_mul.h"
#include "ops/op_util.h"

namespace kiln::testing {
namespace {

using cuda::CudnnConvMapping;
using cuda::MatMulMapping;

// ---------------------------------------------------------------------------------------------
// Helpers

Tensor random_of(DataType t, Dims d, std::mt19937& rng, float lo = -1, float hi = 1) {
  Tensor f = random_tensor(std::move(d), rng, lo, hi);
  if (t == DataType::kFloat) return f;
  Tensor r(t, f.dims());
  for (int64_t i = 0; i < f.numel(); ++i) r.set_f64(i, f.get_f64(i));
  return r;
}

struct ConvCase {
  Dims x, w;
  Ints strides, pads, dilations;
  int64_t group = 1;
  bool transposed = false;
  Ints output_padding;
  std::string auto_pad = "NOTSET";
};

std::unique_ptr<ConvAttrs> conv_attrs(const ConvCase& c) {
  auto a = std::make_unique<ConvAttrs>();
  a->strides = c.strides;
  a->pads = c.pads;
  a->dilations = c.dilations;
  a->group = c.group;
  a->transposed = c.transposed;
  a->output_padding = c.output_padding;
  a->auto_pad = c.auto_pad;
  return a;
}

// ---------------------------------------------------------------------------------------------
// Conv mapping, replayed on the CPU

// The reference Conv run the way the mapping runs cuDNN (symmetric pads P, and for a transposed
// conv an output_padding that gives cuDNN's native length), then the window taken: must equal the
// reference run of the original node.
void check_conv_mapping(const ConvCase& c) {
  SCOPED_TRACE(cat("x ", dims_to_string(c.x), " w ", dims_to_string(c.w)));
  std::mt19937 rng(7);
  Tensor x = random_of(DataType::kFloat, c.x, rng), w = random_of(DataType::kFloat, c.w, rng);
  Tensor want = run_node1("Conv", conv_attrs(c), {NodeInput::of(x), NodeInput::of(w)});
  CudnnConvMapping m = cuda::map_conv_to_cudnn(*conv_attrs(c), x.dims(), w.dims(), want.dims());
  ASSERT_TRUE(m.ok) << m.why;
  ASSERT_FALSE(m.no_conv);
  const size_t nk = c.x.size() - 2, lead = m.nsp - nk;  // lead: the H = 1 axis of a 1-D conv
  ConvAttrs sym = *conv_attrs(c);
  sym.auto_pad = "NOTSET";
  sym.pads.assign(2 * nk, 0);
  sym.output_padding.assign(nk, 0);
  sym.output_shape.clear();
  Ints strides = sym.strides.empty() ? Ints(nk, 1) : sym.strides;
  Ints dil = sym.dilations.empty() ? Ints(nk, 1) : sym.dilations;
  for (size_t i = 0; i < nk; ++i) {
    const int64_t p = m.pad[lead + i];
    sym.pads[i] = sym.pads[nk + i] = p;
    if (c.transposed) {
      const int64_t full = strides[i] * (c.x[2 + i] - 1) + (c.w[2 + i] - 1) * dil[i] + 1;
      sym.output_padding[i] = m.y_dims[2 + lead + i] - (full - 2 * p);
      ASSERT_GE(sym.output_padding[i], 0);
      ASSERT_LT(sym.output_padding[i], strides[i]);
    }
  }
  Tensor native =
      run_node1("Conv", std::make_unique<ConvAttrs>(sym), {NodeInput::of(x), NodeInput::of(w)});
  // native must have cuDNN's dims (without the lead axis).
  Dims nd;
  for (size_t i = 0; i < m.y_dims.size(); ++i)
    if (i < 2 || i >= 2 + lead) nd.push_back(m.y_dims[i]);
  ASSERT_EQ(dims_to_string(native.dims()), dims_to_string(nd));
  // The window: y[n, c, o...] = native[n, c, o + offset...] or 0 beyond it.
  Tensor got(DataType::kFloat, want.dims());
  const Dims& yd = want.dims();
  Ints ystr = strides_of(yd), nstr = strides_of(nd);
  for (int64_t i = 0; i < got.numel(); ++i) {
    int64_t src = 0;
    bool inside = true;
    for (size_t d = 0; d < yd.size(); ++d) {
      int64_t idx = (i / ystr[d]) % yd[d];
      if (d >= 2) idx += m.offset[lead + d - 2];
      if (idx >= nd[d]) inside = false;
      src += idx * nstr[d];
    }
    got.set_f64(i, inside ? native.get_f64(src) : 0.0);
  }
  expect_close(got, want, 1e-6, 1e-6, "window of the symmetric-pad conv");
  bool direct = true;
  for (size_t d = 2; d < yd.size(); ++d) direct &= m.offset[lead + d - 2] == 0 && nd[d] == yd[d];
  EXPECT_EQ(m.direct, direct);
}

TEST(CudnnConvMapping, SymmetricPadsAreDirect) {
  ConvCase c{{2, 3, 9, 8}, {4, 3, 3, 3}, {1, 1}, {1, 1, 1, 1}};
  check_conv_mapping(c);
  std::mt19937 rng(1);
  CudnnConvMapping m = cuda::map_conv_to_cudnn(*conv_attrs(c), c.x, c.w, {2, 4, 9, 8});
  EXPECT_TRUE(m.direct);
  EXPECT_EQ(m.nsp, 2);
}

TEST(CudnnConvMapping, AsymmetricForwardPads) {
  check_conv_mapping({{1, 2, 9, 8}, {3, 2, 3, 3}, {2, 2}, {1, 0, 0, 1}});    // begin > end
  check_conv_mapping({{1, 2, 10, 10}, {3, 2, 3, 3}, {2, 2}, {0, 0, 1, 1}});  // SAME_UPPER-like
  check_conv_mapping({{1, 2, 7, 9}, {3, 2, 2, 3}, {3, 1}, {0, 2, 5, 0}});    // end > begin + stride
  check_conv_mapping({{1, 6, 11, 7}, {6, 2, 3, 2}, {2, 1}, {2, 0, 0, 3}, {2, 2}, 3});
  ConvCase same{{1, 2, 10, 9}, {3, 2, 4, 3}, {2, 2}, {}};
  same.auto_pad = "SAME_UPPER";
  check_conv_mapping(same);
  same.auto_pad = "SAME_LOWER";
  check_conv_mapping(same);
}

TEST(CudnnConvMapping, OneAndThreeDimensional) {
  check_conv_mapping({{2, 3, 17}, {4, 3, 4}, {2}, {2, 1}});
  check_conv_mapping({{1, 2, 5, 6, 7}, {4, 2, 2, 3, 2}, {1, 2, 2}, {0, 1, 1, 1, 0, 0}});
  CudnnConvMapping m = cuda::map_conv_to_cudnn(*conv_attrs({{2, 3, 17}, {4, 3, 4}, {}, {}}),
                                               {2, 3, 17}, {4, 3, 4}, {2, 4, 14});
  ASSERT_TRUE(m.ok) << m.why;
  EXPECT_EQ(m.nsp, 2);
  EXPECT_EQ(m.x_dims, (std::vector<int>{2, 3, 1, 17}));
  EXPECT_EQ(m.w_dims, (std::vector<int>{4, 3, 1, 4}));
}

TEST(CudnnConvMapping, Transposed) {
  auto t = [](ConvCase c) {
    c.transposed = true;
    return c;
  };
  check_conv_mapping(
      t({{1, 4, 3, 4}, {4, 3, 3, 3}, {2, 2}, {1, 0, 0, 1}, {1, 2}, 2, true, {1, 0}}));
  check_conv_mapping(t({{1, 2, 5, 6}, {2, 3, 3, 3}, {2, 2}, {1, 1, 1, 1}, {}, 1, true, {1, 1}}));
  check_conv_mapping(t({{1, 2, 5}, {2, 3, 3}, {1}, {2, 0}}));  // pads begin > end
  check_conv_mapping(t({{1, 2, 5}, {2, 3, 3}, {1}, {0, 2}}));  // pads end > begin
  check_conv_mapping(t({{1, 2, 4, 3}, {2, 2, 2, 3}, {3, 2}, {}, {}, 1, true, {2, 1}}));
  check_conv_mapping(
      t({{2, 3, 4, 5}, {3, 2, 3, 3}, {3, 3}, {2, 0, 1, 3}, {1, 1}, 1, true, {2, 0}}));
  check_conv_mapping(t({{1, 2, 3, 3, 4}, {2, 2, 3, 2, 2}, {2, 1, 2}, {1, 0, 0, 0, 1, 1}}));
  check_conv_mapping(t({{1, 1, 4}, {1, 1, 3}, {1}, {3, 1}}));  // pads as large as the kernel
  ConvCase same = t({{1, 2, 4, 5}, {2, 3, 3, 2}, {2, 3}, {}});
  same.auto_pad = "SAME_UPPER";
  check_conv_mapping(same);
  same.auto_pad = "SAME_LOWER";
  check_conv_mapping(same);
}

TEST(CudnnConvMapping, TransposedOutputShape) {
  // A requested output_shape beyond the full size grows output_padding (zeros at the end).
  ConvAttrs a;
  a.transposed = true;
  a.strides = {2};
  a.output_shape = {11};
  std::mt19937 rng(2);
  Tensor x = random_tensor({1, 2, 4}, rng), w = random_tensor({2, 2, 2}, rng);
  Tensor want =
      run_node1("Conv", std::make_unique<ConvAttrs>(a), {NodeInput::of(x), NodeInput::of(w)});
  ASSERT_EQ(dims_to_string(want.dims()), "[1,2,11]");
  CudnnConvMapping m = cuda::map_conv_to_cudnn(a, x.dims(), w.dims(), want.dims());
  ASSERT_TRUE(m.ok) << m.why;
  // cuDNN's native output is the full 8 (+ at most stride - 1); the rest of Y is zeros.
  EXPECT_FALSE(m.direct);
  EXPECT_LE(m.y_dims[3], 9);
  EXPECT_GE(m.y_dims[3], 8);
}

TEST(CudnnConvMapping, ChannelsLastDims) {
  ConvCase c{{2, 5, 6, 3}, {4, 3, 3, 3}, {}, {1, 1, 1, 1}};
  auto a = conv_attrs(c);
  a->channels_last = true;
  CudnnConvMapping m = cuda::map_conv_to_cudnn(*a, c.x, c.w, {2, 5, 6, 4});
  ASSERT_TRUE(m.ok) << m.why;
  EXPECT_TRUE(m.channels_last);
  EXPECT_EQ(m.x_dims, (std::vector<int>{2, 3, 5, 6}));
  EXPECT_EQ(m.y_dims, (std::vector<int>{2, 4, 5, 6}));
  EXPECT_FALSE(cuda::map_conv_to_cudnn(*a, c.x, c.w, {2, 4, 5, 6}).ok);  // NCHW-ordered Y
}

TEST(CudnnConvMapping, FilterReorderToKrsc) {
  // W [2, 3, 2, 2] -> [2, 2, 2, 3].
  std::vector<float> src(24), dst(24);
  for (int i = 0; i < 24; ++i) src[i] = static_cast<float>(i);
  cuda::reorder_filter_channels_last(src.data(), dst.data(), {2, 3, 2, 2}, sizeof(float));
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int k = 0; k < 4; ++k) EXPECT_EQ(dst[(a * 4 + k) * 3 + b], src[(a * 3 + b) * 4 + k]);
}

TEST(CudnnConvMapping, EmptyInputsNeedNoConvolution) {
  ConvCase c{{0, 3, 5, 5}, {4, 3, 3, 3}, {}, {}};
  CudnnConvMapping m = cuda::map_conv_to_cudnn(*conv_attrs(c), c.x, c.w, {0, 4, 3, 3});
  ASSERT_TRUE(m.ok) << m.why;
  EXPECT_TRUE(m.no_conv);
}

// ---------------------------------------------------------------------------------------------
// MatMul mapping, replayed on the CPU

// A naive column-major GEMM over the mapping's calls: D = alpha * op(Alt) op(Blt), where Alt is
// kiln's B and Blt kiln's A (see matmul_mapping.h).
Tensor replay_matmul(const MatMulMapping& m, const Tensor& a, const Tensor& b, const Dims& yd,
                     double alpha) {
  Tensor y(DataType::kFloat, yd);
  const int64_t lda = std::max<int64_t>(m.lt_a_rows(), 1),
                ldb = std::max<int64_t>(m.lt_b_rows(), 1);
  for (size_t c = 0; c < m.y_offset.size(); ++c)
    for (int64_t t = 0; t < m.batch; ++t) {
      const int64_t ao = m.b_offset[c] + t * m.stride_b;  // cuBLASLt's A: kiln's B
      const int64_t bo = m.a_offset[c] + t * m.stride_a;  // cuBLASLt's B: kiln's A
      const int64_t yo = m.y_offset[c] + t * m.stride_y;
      for (int64_t i = 0; i < m.n; ++i)
        for (int64_t j = 0; j < m.m; ++j) {
          double s = 0;
          for (int64_t p = 0; p < m.k; ++p) {
            double av = m.trans_b ? b.get_f64(ao + p + i * lda) : b.get_f64(ao + i + p * lda);
            double bv = m.trans_a ? a.get_f64(bo + j + p * ldb) : a.get_f64(bo + p + j * ldb);
            s += av * bv;
          }
          y.set_f64(yo + i + j * m.n, alpha * s);
        }
    }
  return y;
}

void check_matmul_mapping(Dims ad, Dims bd, bool ta = false, bool tb = false, double alpha = 1.0,
                          int64_t want_calls = -1) {
  SCOPED_TRACE(cat("A ", dims_to_string(ad), " B ", dims_to_string(bd), " ta ", ta, " tb ", tb));
  std::mt19937 rng(3);
  Tensor a = random_tensor(ad, rng), b = random_tensor(bd, rng);
  auto attrs = [&] {
    auto at = std::make_unique<MatMulAttrs>();
    at->trans_a = ta;
    at->trans_b = tb;
    at->alpha = alpha;
    return at;
  };
  Tensor want = run_node1("MatMul", attrs(), {NodeInput::of(a), NodeInput::of(b)});
  MatMulMapping m = cuda::map_matmul(*attrs(), ad, bd, want.dims());
  ASSERT_TRUE(m.ok) << m.why;
  ASSERT_FALSE(m.empty || m.zero);
  if (want_calls >= 0) {
    EXPECT_EQ(static_cast<int64_t>(m.y_offset.size()), want_calls);
  }
  expect_close(replay_matmul(m, a, b, want.dims(), alpha), want, 1e-5, 1e-6, "replayed calls");
}

TEST(CublasLtMatMulMapping, Plain) {
  check_matmul_mapping({7, 5}, {5, 3}, false, false, 1.0, 1);
  check_matmul_mapping({5, 7}, {5, 3}, true, false);
  check_matmul_mapping({7, 5}, {3, 5}, false, true);
  check_matmul_mapping({5, 7}, {3, 5}, true, true, 0.5);
  check_matmul_mapping({1, 1}, {1, 1});
  check_matmul_mapping({13, 1}, {1, 7});
}

TEST(CublasLtMatMulMapping, Batches) {
  check_matmul_mapping({3, 4, 5}, {3, 5, 2}, false, false, 1.0, 1);
  check_matmul_mapping({3, 5, 4}, {3, 2, 5}, true, true, 1.0, 1);
  check_matmul_mapping({4, 7, 5}, {5, 6}, false, false, 1.0, 1);        // folded into M
  check_matmul_mapping({4, 5, 7}, {5, 6}, true, false, 1.0, 1);         // B broadcast, stride 0
  check_matmul_mapping({7, 5}, {4, 5, 6}, false, false, 1.0, 1);        // A broadcast, stride 0
  check_matmul_mapping({2, 1, 7, 5}, {3, 5, 4}, false, false, 1.0, 2);  // outer loop over 2
  check_matmul_mapping({2, 3, 1, 4, 5}, {3, 2, 2, 5}, false, true, 1.0, 6);
  check_matmul_mapping({1, 3, 1, 4, 5}, {2, 1, 1, 5, 2}, false, false, 1.0, 2);
  check_matmul_mapping({2, 1, 3, 4, 5}, {1, 1, 3, 5, 2}, false, false, 1.0, 2);
}

TEST(CublasLtMatMulMapping, Vectors) {
  check_matmul_mapping({5}, {5, 3});
  check_matmul_mapping({5}, {3, 5, 4}, true, false);  // trans_a ignored for a 1-D A
  check_matmul_mapping({2, 3, 6}, {6}, false, true);  // trans_b ignored for a 1-D B
  check_matmul_mapping({2, 6, 3}, {6}, true, false);
  check_matmul_mapping({6}, {6});
}

TEST(CublasLtMatMulMapping, EmptyAndZeroK) {
  MatMulMapping e = cuda::map_matmul(MatMulAttrs{}, {0, 4}, {4, 3}, {0, 3});
  ASSERT_TRUE(e.ok) << e.why;
  EXPECT_TRUE(e.empty);
  MatMulMapping z = cuda::map_matmul(MatMulAttrs{}, {3, 0}, {0, 4}, {3, 4});
  ASSERT_TRUE(z.ok) << z.why;
  EXPECT_TRUE(z.zero);
  EXPECT_FALSE(cuda::map_matmul(MatMulAttrs{}, {3, 4}, {5, 4}, {3, 4}).ok);
}

// ---------------------------------------------------------------------------------------------
// cuda.cudnn_conv on the GPU

struct GpuConv {
  ConvCase c;
  DataType dtype = DataType::kFloat;
  bool bias = false, relu = false, residual = false, channels_last = false, tf32 = false;
  bool constant_w = true;
  std::string tactic = "cuda.cudnn_conv";
};

void run_gpu_conv(const GpuConv& g) {
  const ConvCase& c = g.c;
  SCOPED_TRACE(
      cat("x ", dims_to_string(c.x), " w ", dims_to_string(c.w), " ", dtype_name(g.dtype)));
  std::mt19937 rng(11);
  auto a = conv_attrs(c);
  a->activation = g.relu ? "relu" : "";
  a->channels_last = g.channels_last;
  a->allow_tf32 = g.tf32;
  // The output shape (for the bias and the residual): from the reference geometry.
  const size_t nk = c.x.size() - 2;
  Ints in(nk), k(c.w.begin() + 2, c.w.end());
  for (size_t i = 0; i < nk; ++i) in[i] = c.x[(g.channels_last ? 1 : 2) + i];
  ConvGeometry geo = conv_geometry(*a, in, k);
  const int64_t m = c.transposed ? c.w[1] * c.group : c.w[0];
  Dims yd{c.x[0]};
  if (!g.channels_last) yd.push_back(m);
  yd.insert(yd.end(), geo.out.begin(), geo.out.end());
  if (g.channels_last) yd.push_back(m);
  std::vector<NodeInput> ins;
  ins.push_back(NodeInput::of(random_of(g.dtype, c.x, rng)));
  Tensor w = random_of(g.dtype, c.w, rng, -0.5f, 0.5f);
  ins.push_back(g.constant_w ? NodeInput::constant_of(w) : NodeInput::of(w));
  if (g.bias || g.residual)
    ins.push_back(g.bias ? NodeInput::constant_of(random_of(g.dtype, {m}, rng))
                         : NodeInput::none());
  if (g.residual) ins.push_back(NodeInput::of(random_of(g.dtype, yd, rng)));
  const bool low = g.dtype != DataType::kFloat || g.tf32;
  expect_gpu_matches_reference("Conv", std::move(a), std::move(ins), 1, g.tactic,
                               low ? 1e-2 : 1e-4, low ? 1e-2 : 2e-5);
}

TEST(CudnnConvGpu, TwoDimensional) {
  KILN_REQUIRE_GPU();
  // C = 3, odd sizes, bias.
  run_gpu_conv({{{2, 3, 17, 19}, {8, 3, 3, 3}, {1, 1}, {1, 1, 1, 1}}, DataType::kFloat, true});
  // Computed W, no bias.
  GpuConv computed{{{1, 5, 9, 7}, {4, 5, 3, 2}, {}, {}}};
  computed.constant_w = false;
  run_gpu_conv(computed);
  // Strides 2, dilation 2, two groups.
  run_gpu_conv({{{1, 4, 15, 13}, {6, 2, 3, 3}, {2, 2}, {2, 1, 2, 1}, {2, 2}, 2}});
  // 1x1 with stride 2 (a ResNet downsample).
  run_gpu_conv({{{2, 16, 14, 14}, {32, 16, 1, 1}, {2, 2}, {}}, DataType::kFloat, true});
}

TEST(CudnnConvGpu, DepthwiseBiasRelu) {
  KILN_REQUIRE_GPU();
  run_gpu_conv(
      {{{2, 8, 11, 11}, {8, 1, 3, 3}, {1, 1}, {1, 1, 1, 1}, {}, 8}, DataType::kFloat, true, true});
  run_gpu_conv({{{1, 12, 9, 10}, {12, 1, 5, 5}, {2, 2}, {2, 2, 2, 2}, {}, 12},
                DataType::kFloat,
                false,
                true});
}

TEST(CudnnConvGpu, AsymmetricPads) {
  KILN_REQUIRE_GPU();
  run_gpu_conv({{{1, 6, 5, 7}, {6, 2, 3, 3}, {2, 2}, {1, 0, 0, 1}, {}, 3}, DataType::kFloat, true});
  run_gpu_conv(
      {{{2, 3, 10, 10}, {5, 3, 3, 3}, {2, 2}, {0, 0, 1, 1}}, DataType::kFloat, true, true});
  ConvCase same{{1, 4, 9, 12}, {4, 4, 4, 3}, {2, 2}, {}};
  same.auto_pad = "SAME_UPPER";
  run_gpu_conv({same, DataType::kFloat, true, false, true});
}

TEST(CudnnConvGpu, OneAndThreeDimensional) {
  KILN_REQUIRE_GPU();
  run_gpu_conv({{{2, 5, 31}, {7, 5, 4}, {2}, {2, 1}}, DataType::kFloat, true});
  run_gpu_conv({{{1, 2, 5, 6, 7}, {4, 2, 2, 3, 2}, {1, 2, 2}, {}}, DataType::kFloat, true});
  run_gpu_conv({{{2, 4, 6, 7, 5}, {6, 2, 3, 3, 3}, {}, {1, 1, 1, 1, 1, 1}, {}, 2},
                DataType::kFloat,
                true,
                true});
}

TEST(CudnnConvGpu, Transposed) {
  KILN_REQUIRE_GPU();
  GpuConv t{{{1, 4, 5, 6}, {4, 3, 3, 3}, {2, 2}, {1, 1, 1, 1}, {}, 1, true, {1, 1}}};
  t.bias = true;
  run_gpu_conv(t);
  run_gpu_conv({{{1, 4, 3, 4}, {4, 3, 3, 3}, {2, 2}, {1, 0, 0, 1}, {1, 2}, 2, true, {1, 0}}});
  run_gpu_conv(
      {{{2, 3, 11}, {3, 2, 4}, {3}, {1, 2}, {}, 1, true, {2}}, DataType::kFloat, true, true});
  GpuConv t3{{{1, 2, 3, 4, 3}, {2, 3, 2, 3, 2}, {2, 1, 2}, {}, {}, 1, true}};
  t3.relu = true;
  run_gpu_conv(t3);
}

TEST(CudnnConvGpu, FusedEpilogues) {
  KILN_REQUIRE_GPU();
  ConvCase c{{2, 16, 13, 11}, {24, 16, 3, 3}, {}, {1, 1, 1, 1}};
  run_gpu_conv({c, DataType::kFloat, true, true, true});    // bias + residual + relu
  run_gpu_conv({c, DataType::kFloat, false, true, false});  // relu, no bias (zero bias)
  run_gpu_conv({c, DataType::kFloat, false, false, true});  // residual only
  run_gpu_conv({c, DataType::kFloat, true, false, false});  // bias only
}

TEST(CudnnConvGpu, ChannelsLast) {
  KILN_REQUIRE_GPU();
  GpuConv g{{{2, 9, 10, 6}, {8, 6, 3, 3}, {}, {1, 1, 1, 1}}, DataType::kFloat, true, true, true};
  g.channels_last = true;
  run_gpu_conv(g);
  GpuConv dw{{{1, 7, 8, 16}, {16, 1, 3, 3}, {2, 2}, {1, 1, 1, 1}, {}, 16}, DataType::kFloat, true};
  dw.channels_last = true;
  dw.tactic = "cuda.depthwise_conv";   // channels-last depthwise convs have their own kernel
  run_gpu_conv(dw);
  GpuConv asym{{{1, 10, 10, 4}, {4, 4, 3, 3}, {2, 2}, {0, 0, 1, 1}}, DataType::kFloat, true, true};
  asym.channels_last = true;
  run_gpu_conv(asym);
  GpuConv one{{{2, 13, 5}, {3, 5, 3}, {}, {1, 1}}};
  one.channels_last = true;
  run_gpu_conv(one);
}

TEST(CudnnConvGpu, HalfAndBFloat16) {
  KILN_REQUIRE_GPU();
  ConvCase c{{2, 16, 13, 11}, {24, 16, 3, 3}, {}, {1, 1, 1, 1}};
  run_gpu_conv({c, DataType::kFloat16, true, true, true});
  GpuConv nhwc{
      {{2, 9, 10, 16}, {32, 16, 3, 3}, {}, {1, 1, 1, 1}}, DataType::kFloat16, true, true, true};
  nhwc.channels_last = true;
  run_gpu_conv(nhwc);
  run_gpu_conv({{{1, 8, 11, 11}, {8, 1, 3, 3}, {1, 1}, {1, 1, 1, 1}, {}, 8},
                DataType::kFloat16,
                true,
                true});
  run_gpu_conv({{{1, 4, 5, 6}, {4, 3, 3, 3}, {2, 2}, {1, 1, 1, 1}, {}, 1, true, {1, 1}},
                DataType::kFloat16,
                true});
  run_gpu_conv({c, DataType::kBFloat16, true, true, false});
}

TEST(CudnnConvGpu, Tf32WhenAllowed) {
  KILN_REQUIRE_GPU();
  GpuConv g{{{2, 32, 12, 12}, {32, 32, 3, 3}, {}, {1, 1, 1, 1}}, DataType::kFloat, true, true};
  g.tf32 = true;
  run_gpu_conv(g);
}

TEST(CudnnConvGpu, LargeWindowedOutput) {
  KILN_REQUIRE_GPU();
  // 8 x 1501 x 1501 = 18M outputs (> 65535 * 256) through the epilogue's window path (pads 1, 0).
  run_gpu_conv(
      {{{1, 8, 1500, 1500}, {8, 8, 1, 1}, {}, {1, 1, 0, 0}}, DataType::kFloat, true, true});
}

TEST(CudnnConvGpu, EmptyBatch) {
  KILN_REQUIRE_GPU();
  run_gpu_conv({{{0, 3, 5, 5}, {4, 3, 3, 3}, {}, {}}, DataType::kFloat, true});
}

// ---------------------------------------------------------------------------------------------
// cuda.cublaslt_matmul on the GPU

struct GpuMatMul {
  Dims a, b;
  bool ta = false, tb = false;
  double alpha = 1.0;
  DataType dtype = DataType::kFloat;
  bool constant_b = false, tf32 = false;
};

void run_gpu_matmul(const GpuMatMul& g) {
  SCOPED_TRACE(
      cat("A ", dims_to_string(g.a), " B ", dims_to_string(g.b), " ", dtype_name(g.dtype)));
  std::mt19937 rng(5);
  auto at = std::make_unique<MatMulAttrs>();
  at->trans_a = g.ta;
  at->trans_b = g.tb;
  at->alpha = g.alpha;
  at->allow_tf32 = g.tf32;
  Tensor a = random_of(g.dtype, g.a, rng), b = random_of(g.dtype, g.b, rng);
  const bool low = g.dtype == DataType::kFloat16 || g.dtype == DataType::kBFloat16 || g.tf32;
  const double rtol = low ? 1e-2 : (g.dtype == DataType::kDouble ? 1e-10 : 1e-4);
  const double atol = low ? 1e-2 : (g.dtype == DataType::kDouble ? 1e-10 : 1e-4);
  expect_gpu_matches_reference(
      "MatMul", std::move(at),
      {NodeInput::of(a), g.constant_b ? NodeInput::constant_of(b) : NodeInput::of(b)}, 1,
      "cuda.cublaslt_matmul", rtol, atol);
}

TEST(CublasLtMatMulGpu, TwoDimensional) {
  KILN_REQUIRE_GPU();
  run_gpu_matmul({{37, 53}, {53, 29}});
  run_gpu_matmul({{53, 37}, {53, 29}, true});
  run_gpu_matmul({{37, 53}, {29, 53}, false, true, 0.5});
  run_gpu_matmul({{53, 37}, {29, 53}, true, true, -2.0, DataType::kFloat, true});
  run_gpu_matmul({{1, 1}, {1, 1}});
  run_gpu_matmul({{13, 1}, {1, 7}});
  run_gpu_matmul({{64, 4096}, {4096, 48}});  // K large
}

TEST(CublasLtMatMulGpu, Batched) {
  KILN_REQUIRE_GPU();
  run_gpu_matmul({{3, 17, 33}, {3, 33, 9}});
  run_gpu_matmul({{3, 33, 17}, {3, 9, 33}, true, true});
  run_gpu_matmul({{4, 7, 5}, {5, 6}, false, false, 1.0, DataType::kFloat, true});  // folded
  run_gpu_matmul({{4, 5, 7}, {5, 6}, true});                                       // B stride 0
  run_gpu_matmul({{7, 5}, {4, 5, 6}});                                             // A stride 0
  run_gpu_matmul({{2, 1, 7, 5}, {3, 5, 4}});                                       // outer loop
  run_gpu_matmul({{2, 3, 1, 4, 5}, {3, 2, 2, 5}, false, true});
}

TEST(CublasLtMatMulGpu, Vectors) {
  KILN_REQUIRE_GPU();
  run_gpu_matmul({{5}, {3, 5, 4}});
  run_gpu_matmul({{2, 3, 6}, {6}});
  run_gpu_matmul({{9}, {9}});
  run_gpu_matmul({{9}, {9, 4}, false, false, 1.0, DataType::kFloat, true});
}

TEST(CublasLtMatMulGpu, LowPrecisionAndDouble) {
  KILN_REQUIRE_GPU();
  run_gpu_matmul({{37, 53}, {53, 29}, false, false, 1.0, DataType::kFloat16});
  run_gpu_matmul({{3, 128, 4096}, {4096, 96}, false, false, 1.0, DataType::kFloat16, true});
  run_gpu_matmul({{2, 9, 7}, {2, 11, 9}, true, true, 0.25, DataType::kBFloat16});
  // Odd matrix sizes in an outer loop: the calls' fp16 operands are only 2-byte aligned.
  run_gpu_matmul({{2, 1, 3, 5}, {3, 5, 7}, false, false, 1.0, DataType::kFloat16});
  run_gpu_matmul({{5, 3, 7}, {7, 2}, false, false, 1.0, DataType::kDouble});
}

TEST(CublasLtMatMulGpu, Tf32WhenAllowed) {
  KILN_REQUIRE_GPU();
  GpuMatMul g{{96, 512}, {512, 80}};
  g.tf32 = true;
  run_gpu_matmul(g);
}

TEST(CublasLtMatMulGpu, EmptyOutput) {
  KILN_REQUIRE_GPU();
  run_gpu_matmul({{0, 4}, {4, 3}});
}

// ---------------------------------------------------------------------------------------------
// Kernels run directly on output buffers full of NaN: every element must be written, never read
// (cuDNN's fused call gets y as its z with alpha2 = 0; cuBLASLt gets Y as C with beta = 0).

void run_on_nan_output(const std::string& op, std::unique_ptr<Attrs> attrs,
                       std::vector<NodeInput> inputs, const std::string& tactic_id, double rtol,
                       double atol) {
  const Backend* be = find_backend("cuda");
  ASSERT_NE(be, nullptr);
  const DeviceApi* dev = be->device();
  const Tactic* t = be->find_tactic(tactic_id);
  ASSERT_NE(t, nullptr);
  SingleNode sn(op, std::move(attrs), inputs);
  sn.infer();
  std::unique_ptr<Graph> g = sn.graph_for_build();
  const Node& n = *g->nodes()[0];
  ASSERT_TRUE(t->supports(n).is_ok()) << t->supports(n).to_string();
  std::vector<Tensor> want = sn.run_reference();
  std::unique_ptr<Kernel> k = t->instantiate(n, t->prepare(n));
  void* stream = dev->create_stream();
  std::unique_ptr<DeviceResources> res = dev->create_resources();
  std::vector<void*> owned;
  std::vector<DeviceTensor> ins(inputs.size()), outs(1);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].absent) continue;
    const Tensor& v = inputs[i].value;
    void* p = dev->alloc(v.nbytes());
    owned.push_back(p);
    dev->copy_to_device(p, v.raw(), v.nbytes(), stream);
    ins[i] = {p, v.dtype(), v.dims()};
  }
  const Tensor& w0 = want[0];
  void* y = dev->alloc(w0.nbytes());
  owned.push_back(y);
  dev->memset(y, 0xFF, w0.nbytes(), stream);  // all-ones bits: NaN in every float type
  outs[0] = {y, w0.dtype(), w0.dims()};
  LaunchArgs a{n, ins, outs};
  a.resources = res.get();
  size_t ws = k->workspace_size(a);
  void* wsp = ws ? dev->alloc(ws) : nullptr;
  if (wsp) owned.push_back(wsp);
  a.stream = stream;
  a.workspace = wsp;
  a.workspace_bytes = ws;
  k->enqueue(a);
  Tensor got(w0.dtype(), w0.dims());
  dev->copy_to_host(got.raw(), y, got.nbytes(), stream);
  dev->synchronize(stream);
  k.reset();
  res.reset();
  for (void* p : owned) dev->free(p);
  dev->destroy_stream(stream);
  expect_close(got, w0, rtol, atol, op + " over a NaN-filled output");
}

TEST(LibraryTacticsGpu, OutputIsWrittenNotRead) {
  KILN_REQUIRE_GPU();
  std::mt19937 rng(9);
  for (bool bias : {true, false}) {
    auto a = std::make_unique<ConvAttrs>();
    a->pads = {1, 1, 1, 1};
    a->activation = "relu";
    std::vector<NodeInput> ins{NodeInput::of(random_tensor({2, 16, 12, 12}, rng)),
                               NodeInput::constant_of(random_tensor({16, 16, 3, 3}, rng))};
    if (bias) ins.push_back(NodeInput::constant_of(random_tensor({16}, rng)));
    run_on_nan_output("Conv", std::move(a), std::move(ins), "cuda.cudnn_conv", 1e-4, 2e-5);
  }
  run_on_nan_output("MatMul", std::make_unique<MatMulAttrs>(),
                    {NodeInput::of(random_tensor({3, 17, 33}, rng)),
                     NodeInput::of(random_tensor({3, 33, 9}, rng))},
                    "cuda.cublaslt_matmul", 1e-4, 2e-5);
  // K = 0: Y is zeros, written by a memset over the NaNs.
  run_on_nan_output("MatMul", std::make_unique<MatMulAttrs>(),
                    {NodeInput::of(Tensor(DataType::kFloat, {3, 0})),
                     NodeInput::of(Tensor(DataType::kFloat, {0, 4}))},
                    "cuda.cublaslt_matmul", 0, 0);
}

}  // namespace
}  // namespace kiln::testing

namespace kiln::testing {
namespace {

// ---- INT8 (issue 13): the quantized products on cuDNN's and cuBLASLt's int8 kernels ----------

Tensor int8_values(Dims d, uint32_t seed, int lo = -128, int hi = 127) {
  return random_values(DataType::kInt8, std::move(d), seed, lo, hi);
}

TEST(GpuInt8, QuantizedConvMatchesTheReference) {
  KILN_REQUIRE_GPU();
  // Channels-last int8 X (zero point 0), per-channel weight scales, awkward spatial sizes and
  // strides; float16 and float32 results, bias, residual and ReLU fused, and a requantized int8
  // output (one step of rounding apart at most: cuDNN multiplies by 1/scale).
  // z_scale > 0: an int8 residual (ConvAttrs::q_z_scale, a ResNet block's identity path).
  struct Case { Dims x; int64_t m, k, stride; DataType out; bool bias, z, relu; double y_scale;
                double z_scale = 0; };
  const Case cases[] = {
      {{2, 9, 7, 12}, 20, 3, 1, DataType::kFloat16, true, true, true, 0},
      {{1, 13, 11, 16}, 8, 3, 2, DataType::kFloat, true, false, false, 0},
      {{3, 5, 6, 4}, 12, 1, 1, DataType::kFloat16, false, false, true, 0},
      {{2, 9, 7, 12}, 16, 3, 1, DataType::kFloat16, true, false, true, 0.05},
      {{2, 9, 7, 12}, 16, 1, 1, DataType::kFloat16, true, true, true, 0.05, 0.04},
      {{1, 6, 5, 16}, 20, 3, 1, DataType::kFloat16, true, true, false, 0, 0.03},
      {{2, 7, 7, 8}, 8, 3, 1, DataType::kFloat, false, true, true, 0, 0.02},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(dims_to_string(c.x) + " -> " + std::to_string(c.m));
    auto a = std::make_unique<ConvAttrs>();
    a->channels_last = true;
    a->strides = {c.stride, c.stride};
    a->pads = {c.k / 2, c.k / 2, c.k / 2, c.k / 2};
    a->q_x_scale = 0.031;
    for (int64_t j = 0; j < c.m; ++j) a->q_w_scale.push_back(0.0007 + 0.00005 * j);
    a->q_out = c.out;
    a->q_y_scale = c.y_scale;
    a->q_z_scale = c.z_scale;
    if (c.relu) a->activation = "relu";
    const int64_t ch = c.x[3];
    const int64_t oh = (c.x[1] + 2 * (c.k / 2) - c.k) / c.stride + 1;
    const int64_t ow = (c.x[2] + 2 * (c.k / 2) - c.k) / c.stride + 1;
    std::vector<NodeInput> in{NodeInput::of(int8_values(c.x, seed++)),
                              NodeInput::constant_of(int8_values({c.m, ch, c.k, c.k}, seed++, -127))};
    in.push_back(c.bias ? NodeInput::constant_of(random_values(c.out, {c.m}, seed++))
                        : NodeInput::none());
    if (c.z)
      in.push_back(NodeInput::of(c.z_scale > 0 ? int8_values({c.x[0], oh, ow, c.m}, seed++)
                                               : random_values(c.out, {c.x[0], oh, ow, c.m}, seed++)));
    DeviceRun r = run_on_device("Conv", std::move(a), std::move(in));
    EXPECT_EQ(r.tactic, "cuda.cudnn_conv_int8");
    ASSERT_EQ(r.device.size(), 1u);
    if (c.y_scale > 0)
      expect_close(r.device[0], r.reference[0], 0, 1.0, "requantized int8");
    else
      expect_close(r.device[0], r.reference[0], c.out == DataType::kFloat ? 1e-5 : 2e-3,
                   c.out == DataType::kFloat ? 1e-5 : 2e-3, "dequantized");
  }
}

TEST(GpuInt8, QuantizedMatMulMatchesTheReference) {
  KILN_REQUIRE_GPU();
  struct Case { Dims x; int64_t n; bool trans_b; DataType out; bool bias, z; std::string act; };
  const Case cases[] = {
      {{2, 7, 36}, 20, false, DataType::kFloat16, true, true, "gelu_erf"},
      {{5, 64}, 12, true, DataType::kFloat, true, false, "relu"},
      {{3, 2, 4}, 8, false, DataType::kFloat16, false, false, ""},
  };
  uint32_t seed = 40;
  for (const Case& c : cases) {
    SCOPED_TRACE(dims_to_string(c.x) + " x " + std::to_string(c.n));
    const int64_t k = c.x.back();
    auto a = std::make_unique<MatMulAttrs>();
    a->trans_b = c.trans_b;
    a->q_x_scale = 0.02;
    for (int64_t j = 0; j < c.n; ++j) a->q_w_scale.push_back(0.001 + 0.0001 * j);
    a->q_out = c.out;
    a->activation = c.act;
    Dims yd = c.x;
    yd.back() = c.n;
    std::vector<NodeInput> in{
        NodeInput::of(int8_values(c.x, seed++)),
        NodeInput::constant_of(int8_values(c.trans_b ? Dims{c.n, k} : Dims{k, c.n}, seed++, -127))};
    in.push_back(c.bias ? NodeInput::constant_of(random_values(c.out, {c.n}, seed++))
                        : NodeInput::none());
    if (c.z) in.push_back(NodeInput::of(random_values(c.out, yd, seed++)));
    DeviceRun r = run_on_device("MatMul", std::move(a), std::move(in));
    EXPECT_EQ(r.tactic, "cuda.int8_matmul");
    ASSERT_EQ(r.device.size(), 1u);
    const double tol = c.out == DataType::kFloat ? 1e-5 : 2e-3;
    expect_close(r.device[0], r.reference[0], tol, tol, "int8 matmul");
  }
}

}  // namespace
}  // namespace kiln::testing
