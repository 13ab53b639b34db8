// The fast float32 CPU tactics against the reference compute (which accumulates in double), on
// random data of awkward sizes. Tolerance: float32 accumulation over K terms.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ops/conv.h"
#include "ops/infer.h"
#include "ops/mat_mul.h"
#include "ops/normalization.h"
#include "ops/test_util.h"
#include "runtime/backend.h"

namespace kiln {
namespace {

using testing::random_tensor;

// Runs one node with the named tactic and with the reference; returns max relative error
// (|a-b| / (1 + |b|)) over the first output. Also checks every output element was written.
double compare(const std::string& op, std::unique_ptr<Attrs> attrs, std::vector<Tensor> ins,
               const std::string& tactic_id) {
  Graph g;
  std::vector<Value*> vals;
  for (size_t i = 0; i < ins.size(); ++i) {
    if (!ins[i].defined()) { vals.push_back(nullptr); continue; }
    Value* v = g.add_value("in" + std::to_string(i), ins[i].dtype(), Shape::from(ins[i].dims()));
    g.inputs.push_back(v);
    vals.push_back(v);
  }
  Value* out = g.add_value("out");
  Node* n = g.add_node(op, vals, {out}, std::move(attrs), "node");
  infer_node(*n);
  const Tactic* t = cpu_backend().find_tactic(tactic_id);
  EXPECT_NE(t, nullptr);
  EXPECT_TRUE(t->supports(*n).is_ok()) << t->supports(*n).message();
  const Tactic& chosen = cpu_backend().choose(*n);
  EXPECT_EQ(chosen.id(), tactic_id) << "the heuristic should prefer the fast tactic";

  Dims od = out->shape.concrete();
  // Float outputs: the worst error relative to 1 + |want|; integer (requantized) outputs: the
  // worst absolute difference, in steps.
  const DataType ot = out->dtype;
  const bool integer = !dtype_is_float(ot);
  std::vector<Tensor> fast{Tensor(ot, od)}, ref{Tensor(ot, od)};
  // Poison: NaN, or for int8 a value the check below tells apart from any written one.
  for (int64_t i = 0; i < fast[0].numel(); ++i) fast[0].set_f64(i, integer ? -128.0 : NAN);
  auto k = t->instantiate(*n, t->prepare(*n));
  k->run(ComputeArgs{*n, ins, fast});
  n->def->compute(ComputeArgs{*n, ins, ref});
  double worst = 0;
  int64_t poisoned = 0;
  for (int64_t i = 0; i < ref[0].numel(); ++i) {
    double a = fast[0].get_f64(i), b = ref[0].get_f64(i);
    EXPECT_FALSE(std::isnan(a)) << "element " << i << " not written";
    poisoned += integer && a == -128.0 && b != -128.0;
    worst = std::max(worst, integer ? std::fabs(a - b) : std::fabs(a - b) / (1 + std::fabs(b)));
  }
  EXPECT_LT(poisoned, 1 + ref[0].numel() / 100) << "int8 elements left unwritten";
  return worst;
}

struct ConvCase { Dims x, w; Ints strides, pads, dilations; int64_t group; bool bias; };

// Quantized convolutions (ConvAttrs q_*): int8 and uint8 X with zero points, per-channel and
// per-tensor weight scales, bias, residual and ReLU, groups, and an inner dimension of 130 x 3 x 3
// = 1170 terms, past the 1032 a float32 sum of int8 products keeps exact: the tactic sums in
// exact chunks, so it must equal the reference's integer semantics to float rounding.
TEST(CpuTactics, QuantizedConvIm2colMatchesTheReferenceExactly) {
  std::mt19937 rng(9);
  struct Q { Dims x, w; int64_t group; DataType xt; int64_t zero; bool per_channel, bias, z, relu;
             bool extreme = false; };
  const Q cases[] = {
      // Every product at its largest (-128 * 127), sums near 19 million and odd: a float32 sum
      // of the 1170 terms would round; the chunked sum may not.
      {{1, 130, 4, 4}, {2, 130, 3, 3}, 1, DataType::kInt8, 0, true, true, false, false, true},
      {{2, 3, 11, 7}, {5, 3, 3, 3}, 1, DataType::kInt8, 0, true, true, false, true},
      {{1, 4, 9, 9}, {6, 2, 3, 3}, 2, DataType::kUInt8, 128, false, false, true, false},
      {{1, 130, 6, 5}, {4, 130, 3, 3}, 1, DataType::kInt8, -3, true, true, true, true},
      {{2, 130, 5, 5}, {3, 130, 3, 3}, 1, DataType::kUInt8, 0, true, false, false, false},
  };
  for (const auto& c : cases)
  for (double y_scale : {0.0, 0.037})
  for (double z_scale : {0.0, 0.011}) {
    if (z_scale > 0 && !c.z) continue;
    auto a = std::make_unique<ConvAttrs>();
    a->q_y_scale = y_scale;  // > 0: int8 Y, requantized
    a->q_z_scale = z_scale;  // > 0: int8 Z
    a->pads = {1, 1, 1, 1};
    a->group = c.group;
    a->q_x_scale = 0.0173;
    a->q_x_zero = c.zero;
    a->q_out = DataType::kFloat;
    for (int64_t j = 0; j < (c.per_channel ? c.w[0] : 1); ++j) a->q_w_scale.push_back(0.002 + 0.0007 * j);
    if (c.relu) a->activation = "relu";
    Tensor x(c.xt, c.x), w(DataType::kInt8, c.w);
    std::uniform_int_distribution<int> ux(c.xt == DataType::kUInt8 ? 0 : -128, c.xt == DataType::kUInt8 ? 255 : 127);
    std::uniform_int_distribution<int> uw(-127, 127);
    for (int64_t i = 0; i < x.numel(); ++i) x.set_i64(i, c.extreme ? (i % 7 ? -128 : -127) : ux(rng));
    for (int64_t i = 0; i < w.numel(); ++i) w.set_i64(i, c.extreme ? 127 : uw(rng));
    std::vector<Tensor> ins{x, w};
    if (c.bias || c.z) ins.push_back(c.bias ? random_tensor({c.w[0]}, rng) : Tensor());
    if (c.z) {
      const int64_t oh = c.x[2], ow = c.x[3];
      Tensor z = random_tensor({c.x[0], c.w[0], oh, ow}, rng);
      if (z_scale > 0) {
        Tensor zq(DataType::kInt8, z.dims());
        for (int64_t i = 0; i < z.numel(); ++i) zq.set_i64(i, static_cast<int64_t>(z.get_f64(i) * 127));
        z = zq;
      }
      ins.push_back(z);
    }
    double err = compare("Conv", std::move(a), ins, "cpu.conv_im2col");
    // Without a residual both round the same double (acc * scale + bias) once: equal. The
    // residual the tactic adds in float32. Requantized, the tactic divides its float32 value, the
    // reference its double: a tie may round apart, by one step.
    if (y_scale > 0)
      EXPECT_LE(err, 1.0) << dims_to_string(c.x) << " * " << dims_to_string(c.w);
    else if (c.z)
      EXPECT_LT(err, 1e-6) << dims_to_string(c.x) << " * " << dims_to_string(c.w);
    else
      EXPECT_EQ(err, 0.0) << dims_to_string(c.x) << " * " << dims_to_string(c.w);
  }
}

TEST(CpuTactics, QuantizedMatMulGemmMatchesTheReferenceExactly) {
  std::mt19937 rng(10);
  struct Q { Dims a, b; bool trans_b; DataType at; int64_t zero; bool per_col, bias, z;
             std::string act; bool extreme = false; };
  const Q cases[] = {
      {{2, 7, 36}, {36, 20}, false, DataType::kInt8, 0, true, true, true, "gelu_erf"},
      {{5, 64}, {12, 64}, true, DataType::kUInt8, 128, true, true, false, "relu"},
      {{3, 1, 4, 9}, {2, 9, 6}, false, DataType::kInt8, -5, false, false, false, ""},
      // Every product at its largest: 1,100 terms pass the 2^24 bound of one float32 chunk.
      {{2, 1100}, {1100, 3}, false, DataType::kInt8, 0, true, false, false, "", true},
  };
  for (const auto& c : cases) {
    auto a = std::make_unique<MatMulAttrs>();
    a->trans_b = c.trans_b;
    a->q_x_scale = 0.0123;
    a->q_x_zero = c.zero;
    a->q_out = DataType::kFloat;
    a->activation = c.act;
    const int64_t n = c.trans_b ? c.b[c.b.size() - 2] : c.b.back();
    for (int64_t j = 0; j < (c.per_col ? n : 1); ++j) a->q_w_scale.push_back(0.003 + 0.0002 * j);
    Tensor x(c.at, c.a), w(DataType::kInt8, c.b);
    std::uniform_int_distribution<int> ux(c.at == DataType::kUInt8 ? 0 : -128,
                                          c.at == DataType::kUInt8 ? 255 : 127);
    std::uniform_int_distribution<int> uw(-127, 127);
    for (int64_t i = 0; i < x.numel(); ++i) x.set_i64(i, c.extreme ? -128 : ux(rng));
    for (int64_t i = 0; i < w.numel(); ++i) w.set_i64(i, c.extreme ? (i % 3 ? -127 : 127) : uw(rng));
    std::vector<Tensor> ins{x, w};
    if (c.bias || c.z) ins.push_back(c.bias ? random_tensor({n}, rng) : Tensor());
    if (c.z) {
      Dims yd = c.a;
      yd.back() = n;
      ins.push_back(random_tensor(yd, rng));
    }
    EXPECT_EQ(compare("MatMul", std::move(a), ins, "cpu.matmul_gemm"), 0.0)
        << dims_to_string(c.a) << " x " << dims_to_string(c.b);
  }
}

TEST(CpuTactics, ConvIm2colMatchesReference) {
  std::mt19937 rng(7);
  const ConvCase cases[] = {
      {{2, 3, 11, 7}, {5, 3, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, true},
      {{1, 4, 13, 9}, {6, 2, 3, 2}, {2, 3}, {0, 1, 2, 0}, {1, 1}, 2, false},
      {{3, 6, 9, 9}, {6, 1, 3, 3}, {1, 1}, {1, 1, 1, 1}, {2, 2}, 6, true},  // depthwise, dilated
      {{2, 16, 5, 5}, {7, 16, 1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1, true}, // 1x1: no im2col
      {{1, 1, 28, 28}, {16, 1, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, true},
      {{2, 5, 17, 3}, {4, 5, 5, 3}, {3, 1}, {2, 1, 2, 1}, {1, 1}, 1, false},
  };
  for (const auto& c : cases) {
    auto a = std::make_unique<ConvAttrs>();
    a->strides = c.strides;
    a->pads = c.pads;
    a->dilations = c.dilations;
    a->group = c.group;
    std::vector<Tensor> ins{random_tensor(c.x, rng), random_tensor(c.w, rng)};
    if (c.bias) ins.push_back(random_tensor({c.w[0]}, rng));
    double err = compare("Conv", std::move(a), ins, "cpu.conv_im2col");
    EXPECT_LT(err, 2e-5) << dims_to_string(c.x) << " * " << dims_to_string(c.w);
  }
}

TEST(CpuTactics, MatMulMatchesReference) {
  std::mt19937 rng(11);
  struct Case { Dims a, b; bool ta, tb; double alpha; };
  const Case cases[] = {
      {{7, 13}, {13, 5}, false, false, 1.0},
      {{3, 1, 9, 300}, {4, 300, 17}, false, false, 1.0},   // batch broadcast, K > block
      {{13, 7}, {5, 13}, true, true, 0.5},
      {{2, 33, 65}, {2, 33, 600}, true, false, 1.0},       // N > block
      {{1, 1}, {1, 1}, false, true, 2.0},
  };
  for (const auto& c : cases) {
    auto a = std::make_unique<MatMulAttrs>();
    a->trans_a = c.ta;
    a->trans_b = c.tb;
    a->alpha = c.alpha;
    double err = compare("MatMul", std::move(a), {random_tensor(c.a, rng), random_tensor(c.b, rng)},
                         "cpu.matmul_gemm");
    EXPECT_LT(err, 2e-5) << dims_to_string(c.a) << " x " << dims_to_string(c.b);
  }
}

TEST(CpuTactics, BatchNormMatchesReference) {
  std::mt19937 rng(3);
  for (Dims x : {Dims{2, 3, 5, 7}, Dims{4, 9}, Dims{1, 5, 2, 3, 3}}) {
    int64_t c = x[1];
    auto a = std::make_unique<NormalizationAttrs>();
    a->kind = "batch";
    a->epsilon = 1e-3;
    double err = compare("Normalization", std::move(a),
                         {random_tensor(x, rng), random_tensor({c}, rng), random_tensor({c}, rng),
                          random_tensor({c}, rng), random_tensor({c}, rng, 0.1f, 2.0f)},
                         "cpu.batchnorm_f32");
    EXPECT_LT(err, 1e-6) << dims_to_string(x);
  }
}

}  // namespace
}  // namespace kiln
