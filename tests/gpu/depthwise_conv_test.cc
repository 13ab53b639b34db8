// cuda.depthwise_conv: channels-last depthwise Conv on kiln's own kernel, against the reference.
// Shapes cover every vector width the launcher picks (C = 7 / 33: 1 channel per thread; 6: 2;
// 36: 4; 96: 8 for 16-bit types, 4 for float32), the unrolled 3x3 path and the general one
// (5x5, 3x1, 1x1), strides, dilation, asymmetric pads, auto_pad, bias (constant or computed),
// relu, the residual input, an empty batch and a large tensor; and that what the tactic rejects
// still reaches cuDNN.
#include <random>

#include "gpu/gpu_compare.h"
#include "ops/conv.h"
#include "ops/op_util.h"

namespace kiln::testing {
namespace {

Tensor random_of(DataType t, Dims d, std::mt19937& rng, float lo = -1, float hi = 1) {
  Tensor f = random_tensor(std::move(d), rng, lo, hi);
  if (t == DataType::kFloat) return f;
  Tensor r(t, f.dims());
  for (int64_t i = 0; i < f.numel(); ++i) r.set_f64(i, f.get_f64(i));
  return r;
}

struct DwCase {
  Dims x;                 // [N, H, W, C]
  int64_t kh = 3, kw = 3;
  Ints strides, pads, dilations;
  DataType dtype = DataType::kFloat;
  bool bias = false, relu = false, residual = false;
  bool computed_bias = false;  // B as a graph input instead of a constant
  std::string auto_pad = "NOTSET";
  int64_t multiplier = 1;      // output channels per group (1: depthwise)
  bool channels_last = true;
  std::string tactic = "cuda.depthwise_conv";
};

void run_case(const DwCase& d) {
  const int64_t c = d.x[3], m = c * d.multiplier;
  SCOPED_TRACE(cat("x ", dims_to_string(d.x), " k ", d.kh, "x", d.kw, " ", dtype_name(d.dtype),
                   d.bias ? " bias" : "", d.relu ? " relu" : "", d.residual ? " residual" : ""));
  std::mt19937 rng(static_cast<unsigned>(d.x[1] * 131 + d.x[3] * 7 + d.kh));
  auto a = std::make_unique<ConvAttrs>();
  a->strides = d.strides;
  a->pads = d.pads;
  a->dilations = d.dilations;
  a->group = c;
  a->auto_pad = d.auto_pad;
  a->channels_last = d.channels_last;
  a->activation = d.relu ? "relu" : "";
  const Dims wd{m, 1, d.kh, d.kw};
  ConvGeometry geo = conv_geometry(*a, Ints{d.x[1], d.x[2]}, Ints{d.kh, d.kw});
  Dims xd = d.x, yd{d.x[0], geo.out[0], geo.out[1], m};
  if (!d.channels_last) {
    xd = {d.x[0], c, d.x[1], d.x[2]};
    yd = {d.x[0], m, geo.out[0], geo.out[1]};
  }
  std::vector<NodeInput> ins;
  ins.push_back(NodeInput::of(random_of(d.dtype, xd, rng)));
  ins.push_back(NodeInput::constant_of(random_of(d.dtype, wd, rng, -0.5f, 0.5f)));
  if (d.bias || d.residual) {
    if (!d.bias)
      ins.push_back(NodeInput::none());
    else if (d.computed_bias)
      ins.push_back(NodeInput::of(random_of(d.dtype, {m}, rng)));
    else
      ins.push_back(NodeInput::constant_of(random_of(d.dtype, {m}, rng)));
  }
  if (d.residual) ins.push_back(NodeInput::of(random_of(d.dtype, yd, rng)));
  double rtol = 1e-5, atol = 1e-5;
  if (d.dtype == DataType::kFloat16) rtol = atol = 1e-2;
  if (d.dtype == DataType::kBFloat16) rtol = atol = 3e-2;
  expect_gpu_matches_reference("Conv", std::move(a), std::move(ins), 1, d.tactic, rtol, atol);
}

TEST(DepthwiseConvGpu, Float32) {
  KILN_REQUIRE_GPU();
  // Odd C (one channel per thread), 3x3, pads 1, bias.
  run_case({{2, 9, 11, 7}, 3, 3, {}, {1, 1, 1, 1}, {}, DataType::kFloat, true});
  // C = 33, stride 2, bias + relu.
  run_case({{1, 17, 13, 33}, 3, 3, {2, 2}, {1, 1, 1, 1}, {}, DataType::kFloat, true, true});
  // C = 96 (4 per thread), bias + relu + residual.
  run_case({{2, 10, 12, 96}, 3, 3, {}, {1, 1, 1, 1}, {}, DataType::kFloat, true, true, true});
  // 5x5 stride 2 (the general tap loop), no bias.
  run_case({{1, 15, 14, 96}, 5, 5, {2, 2}, {2, 2, 2, 2}});
  // Dilation 2.
  run_case({{1, 13, 13, 6}, 3, 3, {}, {2, 2, 2, 2}, {2, 2}, DataType::kFloat, true});
  // Asymmetric pads (TF-style SAME with stride 2), C = 36.
  run_case({{2, 8, 9, 36}, 3, 3, {2, 2}, {0, 0, 1, 1}, {}, DataType::kFloat, true, true});
  // Non-square kernel and strides, pads larger on one side.
  run_case({{1, 11, 10, 33}, 3, 1, {2, 1}, {2, 0, 1, 0}, {}, DataType::kFloat, true});
  // 1x1 depthwise, no pads, residual only.
  run_case({{3, 5, 4, 8}, 1, 1, {}, {}, {}, DataType::kFloat, false, false, true});
  // A bias computed at run time.
  DwCase computed{{1, 7, 6, 12}, 3, 3, {}, {1, 1, 1, 1}, {}, DataType::kFloat, true, true};
  computed.computed_bias = true;
  run_case(computed);
  // auto_pad SAME_UPPER with stride 2 (pads resolved from the dims).
  DwCase same{{1, 10, 9, 16}, 3, 3, {2, 2}, {}, {}, DataType::kFloat, true};
  same.auto_pad = "SAME_UPPER";
  run_case(same);
  // Kernel larger than the input along W: most taps lie in the padding.
  run_case({{1, 4, 2, 5}, 3, 5, {}, {1, 2, 1, 2}, {}, DataType::kFloat, true});
}

TEST(DepthwiseConvGpu, Float16) {
  KILN_REQUIRE_GPU();
  // MobileNetV2-like: C = 96 (8 per thread), stride 1 and 2, bias + relu (+ residual).
  run_case({{2, 28, 28, 96}, 3, 3, {}, {1, 1, 1, 1}, {}, DataType::kFloat16, true, true});
  run_case({{2, 28, 27, 96}, 3, 3, {2, 2}, {1, 1, 1, 1}, {}, DataType::kFloat16, true, true});
  run_case({{1, 14, 14, 96}, 3, 3, {}, {1, 1, 1, 1}, {}, DataType::kFloat16, true, false, true});
  // Odd C, asymmetric pads.
  run_case({{2, 9, 8, 33}, 3, 3, {2, 2}, {0, 1, 1, 0}, {}, DataType::kFloat16, true, true});
  run_case({{1, 6, 7, 7}, 3, 3, {}, {1, 1, 1, 1}, {}, DataType::kFloat16});
  // C = 36 (4 per thread) and C = 6 (2 per thread).
  run_case({{1, 9, 9, 36}, 5, 5, {}, {2, 2, 2, 2}, {}, DataType::kFloat16, true});
  run_case({{2, 9, 10, 6}, 3, 3, {}, {2, 2, 2, 2}, {2, 2}, DataType::kFloat16, true, true, true});
}

TEST(DepthwiseConvGpu, BFloat16) {
  KILN_REQUIRE_GPU();
  run_case({{2, 14, 14, 96}, 3, 3, {2, 2}, {1, 1, 1, 1}, {}, DataType::kBFloat16, true, true});
  run_case({{1, 11, 12, 33}, 5, 5, {}, {2, 2, 2, 2}, {}, DataType::kBFloat16, true, false, true});
  run_case({{1, 8, 8, 6}, 3, 3, {}, {0, 1, 1, 0}, {}, DataType::kBFloat16, false, true});
}

TEST(DepthwiseConvGpu, EmptyAndLarge) {
  KILN_REQUIRE_GPU();
  run_case({{0, 5, 5, 8}, 3, 3, {}, {1, 1, 1, 1}, {}, DataType::kFloat, true});
  // 1 x 1100 x 1100 x 16 = 19.4M elements (> 65535 * 256): the grid-stride loop.
  run_case({{1, 1100, 1100, 16}, 3, 3, {}, {1, 1, 1, 1}, {}, DataType::kFloat16, true, true});
}

TEST(DepthwiseConvGpu, RejectedCasesGoToCudnn) {
  KILN_REQUIRE_GPU();
  // Channels-first depthwise.
  DwCase nchw{{1, 8, 9, 16}, 3, 3, {}, {1, 1, 1, 1}, {}, DataType::kFloat, true};
  nchw.channels_last = false;
  nchw.tactic = "cuda.cudnn_conv";
  run_case(nchw);
  // Channel multiplier 2 (group = C, M = 2C).
  DwCase mult{{1, 8, 9, 8}, 3, 3, {}, {1, 1, 1, 1}, {}, DataType::kFloat, true};
  mult.multiplier = 2;
  mult.tactic = "cuda.cudnn_conv";
  run_case(mult);
}

}  // namespace
}  // namespace kiln::testing
