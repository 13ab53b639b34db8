// Attention: multi-query with a float mask, causal (top-left) with an explicit scale, a bool mask
// with a fully masked row (zeros), awkward sizes (S 1 and 17, head sizes 40, 64 and 128,
// grouped-query, H_kv 1), float16/bfloat16, mask broadcasts, symbolic inference and errors.
// The first three expectations come from numpy (a literal softmax(Q Kᵀ * scale + mask) V over
// pattern() inputs, np.repeat for the shared heads); the size sweeps compare with the naive
// formula below, which builds the whole score matrix in long double, unlike the reference's
// row-at-a-time loop.
#include "ops/attention.h"

#include <cmath>
#include <random>

#include "single_node.h"

namespace kiln::testing {
namespace {

std::unique_ptr<AttentionAttrs> attrs(double scale = 0, bool causal = false) {
  auto a = std::make_unique<AttentionAttrs>();
  a->scale = scale;
  a->causal = causal;
  return a;
}

// Q [1,2,3,4], K [1,1,4,4], V [1,1,4,2]: two query heads share one key/value head.
Tensor q1() { return pattern({1, 2, 3, 4}, 7, 11, 5, 0.25f); }
Tensor k1() { return pattern({1, 1, 4, 4}, 5, 13, 6, 0.2f); }
Tensor v1() { return pattern({1, 1, 4, 2}, 3, 7, 3, 0.5f); }

TEST(Attention, MultiQueryFloatMask) {
  Tensor y = run_node1("Attention", attrs(),
                       {NodeInput::of(q1()), NodeInput::of(k1()), NodeInput::of(v1()),
                        NodeInput::of(pattern({3, 4}, 3, 5, 2, 0.5f))});
  expect_values(y, {1, 2, 3, 2},
                {0.8978609278, -0.91419575, 0.2191793558, -0.7891216971, -0.8372719753,
                 -0.2277823166, 0.6007180949, -1.161039054, 0.1414344411, -0.6252720203,
                 0.4409285151, -0.9937026688});
}

TEST(Attention, CausalTopLeftWithScale) {
  // S_q 3 < S_kv 4: row i sees keys 0..i (top-left, as torch's is_causal), so row 0 is V[0].
  Tensor y = run_node1("Attention", attrs(0.5, true),
                       {NodeInput::of(q1()), NodeInput::of(k1()), NodeInput::of(v1())});
  expect_values(y, {1, 2, 3, 2},
                {-1.5, 0, -0.6633455471, -0.1394424088, -0.02256808357, -0.4642606667, -1.5, 0,
                 -0.384948573, -0.1858419045, 0.940939789, -0.4980211297});
}

TEST(Attention, BoolMaskFullyMaskedRowIsZero) {
  Tensor m(DataType::kBool, {3, 4});
  const int keep[12] = {1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1};
  for (int i = 0; i < 12; ++i) m.set_f64(i, keep[i]);
  Tensor y = run_node1("Attention", attrs(),
                       {NodeInput::of(q1()), NodeInput::of(k1()), NodeInput::of(v1()),
                        NodeInput::of(m)});
  // Row 1 of each head masks every key: zeros (ops/attention.h), not NaN.
  expect_values(y, {1, 2, 3, 2},
                {-0.250000021, -0.4999999916, 0, 0, -0.5378594631, -0.2581814599, -0.1564253853,
                 -0.5374298459, 0, 0, 0.7054068496, -0.9769229997});
}

TEST(Attention, MinusInfinityMaskRowIsZero) {
  Tensor m = f32({1, 4}, {-INFINITY, -INFINITY, -INFINITY, -INFINITY});
  Tensor y = run_node1("Attention", attrs(),
                       {NodeInput::of(q1()), NodeInput::of(k1()), NodeInput::of(v1()),
                        NodeInput::of(m)});
  expect_values(y, {1, 2, 3, 2}, std::vector<double>(12, 0.0));
}

// softmax(Q Kᵀ * scale + mask) V with the whole [S_q, S_kv] matrix per head, in long double.
// mask: float, broadcast over [B, H, S_q, S_kv] by the dims given (mdims, right-aligned).
std::vector<double> naive(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask,
                          double scale, bool causal) {
  const Dims &qd = q.dims(), &kd = k.dims(), &vd = v.dims();
  const int64_t B = qd[0], H = qd[1], Sq = qd[2], D = qd[3], Hkv = kd[1], Skv = kd[2], Dv = vd[3];
  if (scale == 0) scale = 1.0 / std::sqrt(double(D));
  std::vector<double> out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kh = h / (H / Hkv);
      std::vector<std::vector<long double>> s(Sq, std::vector<long double>(Skv));
      for (int64_t i = 0; i < Sq; ++i)
        for (int64_t j = 0; j < Skv; ++j) {
          long double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += (long double)q.get_f64(((b * H + h) * Sq + i) * D + d) *
                   k.get_f64(((b * Hkv + kh) * Skv + j) * D + d);
          s[i][j] = dot * scale;
          if (mask) {
            const Dims& md = mask->dims();
            int64_t full[4] = {b, h, i, j}, idx = 0;
            for (size_t t = 0; t < md.size(); ++t) {
              int64_t x = full[4 - md.size() + t];
              idx = idx * md[t] + (md[t] == 1 ? 0 : x);
            }
            s[i][j] += mask->get_f64(idx);
          }
          if (causal && j > i) s[i][j] = -INFINITY;
        }
      for (int64_t i = 0; i < Sq; ++i) {
        long double mx = -INFINITY, sum = 0;
        for (long double x : s[i]) mx = std::max(mx, x);
        for (int64_t d = 0; d < Dv; ++d) {
          long double acc = 0;
          sum = 0;
          for (int64_t j = 0; j < Skv; ++j) {
            long double p = std::isinf(mx) ? 0 : std::exp(s[i][j] - mx);
            sum += p;
            acc += p * v.get_f64(((b * Hkv + kh) * Skv + j) * Dv + d);
          }
          out.push_back(sum > 0 ? double(acc / sum) : 0.0);
        }
      }
    }
  return out;
}

Tensor as_type(const Tensor& t, DataType dt) {
  Tensor r(dt, t.dims());
  for (int64_t i = 0; i < t.numel(); ++i) r.set_f64(i, t.get_f64(i));
  return r;
}

struct Case {
  int64_t B, H, Hkv, Sq, Skv, D, Dv;
  bool causal = false;
  Dims mask;  // empty: none
  double scale = 0;
  DataType dtype = DataType::kFloat;
};

void check(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor q = as_type(random_tensor({c.B, c.H, c.Sq, c.D}, rng), c.dtype);
  Tensor k = as_type(random_tensor({c.B, c.Hkv, c.Skv, c.D}, rng), c.dtype);
  Tensor v = as_type(random_tensor({c.B, c.Hkv, c.Skv, c.Dv}, rng), c.dtype);
  std::vector<NodeInput> ins = {NodeInput::of(q), NodeInput::of(k), NodeInput::of(v)};
  Tensor m;
  if (!c.mask.empty()) {
    m = random_tensor(c.mask, rng, -2, 1);
    ins.push_back(NodeInput::of(m));
  }
  Tensor y = run_node1("Attention", attrs(c.scale, c.causal), std::move(ins));
  EXPECT_EQ(y.dtype(), c.dtype);
  bool low = c.dtype == DataType::kFloat16 || c.dtype == DataType::kBFloat16;
  double tol = c.dtype == DataType::kBFloat16 ? 1e-2 : c.dtype == DataType::kFloat16 ? 2e-3 : 1e-5;
  expect_values(y, {c.B, c.H, c.Sq, c.Dv},
                naive(q, k, v, c.mask.empty() ? nullptr : &m, c.scale, c.causal), tol,
                low ? tol : 1e-6);
}

TEST(Attention, SingleToken) { check({2, 3, 3, 1, 1, 8, 8}, 1); }
TEST(Attention, SingleQueryManyKeysCausal) { check({1, 2, 2, 1, 9, 16, 16, true}, 2); }
TEST(Attention, Seq17Head40) { check({2, 2, 2, 17, 17, 40, 40}, 3); }
TEST(Attention, Seq17Head40CausalPaddingMask) {
  check({2, 2, 2, 17, 17, 40, 40, true, {2, 1, 1, 17}}, 4);
}
TEST(Attention, Head64) { check({1, 2, 2, 33, 33, 64, 64, false, {33, 33}}, 5); }
TEST(Attention, Head128) { check({1, 2, 1, 20, 24, 128, 128, true, {24}}, 6); }
TEST(Attention, MultiQueryHkv1) { check({2, 4, 1, 5, 7, 16, 16, false, {2, 4, 5, 7}}, 7); }
TEST(Attention, GroupedQuery) { check({1, 6, 2, 9, 9, 32, 24, true}, 8); }
TEST(Attention, ValueHeadSizeDiffers) { check({1, 2, 2, 6, 11, 64, 32, false, {}, 0.3}, 9); }
TEST(Attention, CausalMoreQueriesThanKeys) { check({1, 2, 2, 12, 5, 32, 32, true}, 10); }
TEST(Attention, Float16Head64) {
  check({2, 2, 2, 17, 17, 64, 64, true, {2, 1, 1, 17}, 0, DataType::kFloat16}, 11);
}
TEST(Attention, Float16Head128Gqa) {
  check({1, 4, 2, 33, 40, 128, 128, false, {1, 1, 33, 40}, 0, DataType::kFloat16}, 12);
}
TEST(Attention, BFloat16Head64) {
  check({1, 2, 1, 31, 31, 64, 64, true, {}, 0, DataType::kBFloat16}, 13);
}
TEST(Attention, Float64) { check({1, 2, 2, 4, 6, 8, 8, true, {4, 6}, 0, DataType::kDouble}, 14); }

TEST(Attention, Float16MaskOfFloat32) {
  // A float16 attention reads a float32 mask as it is (AssignPrecision keeps masks float32).
  std::mt19937 rng(15);
  Tensor q = as_type(random_tensor({1, 2, 5, 16}, rng), DataType::kFloat16);
  Tensor k = as_type(random_tensor({1, 2, 5, 16}, rng), DataType::kFloat16);
  Tensor v = as_type(random_tensor({1, 2, 5, 16}, rng), DataType::kFloat16);
  Tensor m = random_tensor({1, 1, 1, 5}, rng);
  Tensor y = run_node1("Attention", attrs(),
                       {NodeInput::of(q), NodeInput::of(k), NodeInput::of(v), NodeInput::of(m)});
  expect_values(y, {1, 2, 5, 16}, naive(q, k, v, &m, 0, false), 2e-3, 2e-3);
}

TEST(Attention, SymbolicShapes) {
  SingleNode n("Attention", attrs(),
               {NodeInput::shaped(DataType::kFloat16, Shape({Dim::sym("b"), Dim(8), Dim::sym("s"), Dim(64)})),
                NodeInput::shaped(DataType::kFloat16, Shape({Dim::sym("b"), Dim(2), Dim::sym("t"), Dim(64)})),
                NodeInput::shaped(DataType::kFloat16, Shape({Dim::sym("b"), Dim(2), Dim::sym("t"), Dim(32)})),
                NodeInput::shaped(DataType::kBool, Shape({Dim::sym("b"), Dim(1), Dim(1), Dim::sym("t")}))});
  n.infer();
  EXPECT_EQ(n.out(0).dtype, DataType::kFloat16);
  EXPECT_EQ(n.out(0).shape, Shape({Dim::sym("b"), Dim(8), Dim::sym("s"), Dim(32)}));
}

TEST(Attention, Errors) {
  auto infer = [](Shape q, Shape k, Shape v, DataType mt = DataType::kUndefined, Shape m = {}) {
    std::vector<NodeInput> ins = {NodeInput::shaped(DataType::kFloat, std::move(q)),
                                  NodeInput::shaped(DataType::kFloat, std::move(k)),
                                  NodeInput::shaped(DataType::kFloat, std::move(v))};
    if (mt != DataType::kUndefined) ins.push_back(NodeInput::shaped(mt, std::move(m)));
    SingleNode n("Attention", attrs(), std::move(ins));
    n.infer();
  };
  expect_error([&] { infer(Shape({1, 3, 4, 8}), Shape({1, 2, 4, 8}), Shape({1, 2, 4, 8})); },
               "not a multiple");
  expect_error([&] { infer(Shape({1, 2, 4, 8}), Shape({1, 2, 4, 6}), Shape({1, 2, 4, 8})); },
               "head size");
  expect_error([&] { infer(Shape({2, 4, 8}), Shape({2, 4, 8}), Shape({2, 4, 8})); }, "4-D");
  expect_error([&] { infer(Shape({1, 2, 4, 8}), Shape({1, 2, 5, 8}), Shape({1, 2, 4, 8})); },
               "sequence length");
  expect_error(
      [&] {
        infer(Shape({1, 2, 4, 8}), Shape({1, 2, 5, 8}), Shape({1, 2, 5, 8}), DataType::kFloat,
              Shape({3, 5}));
      },
      "does not broadcast");
  expect_error(
      [&] {
        infer(Shape({1, 2, 4, 8}), Shape({1, 2, 5, 8}), Shape({1, 2, 5, 8}), DataType::kInt32,
              Shape({5}));
      },
      "bool or floating-point");
}

}  // namespace
}  // namespace kiln::testing
