// Attention: the reference scaled dot-product attention (see attention.h). Scores, softmax and
// the weighted sum of V are computed in double, one query row at a time: the stable softmax
// subtracts the row's maximum, and a fully masked row is written as zeros.
#include "ops/attention.h"

#include <cmath>

#include "ops/op_util.h"

namespace kiln {

double attention_scale(const AttentionAttrs& a, int64_t d) {
  return a.scale != 0 ? a.scale : 1.0 / std::sqrt(static_cast<double>(d > 0 ? d : 1));
}

namespace {

// Two known dims that differ.
bool differ(const Dim& a, const Dim& b) { return a.known() && b.known() && a.value != b.value; }

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<AttentionAttrs>();
  if (ctx.num_inputs() < 3 || ctx.num_inputs() > 4)
    ctx.error(cat("Attention takes Q, K, V and an optional mask, got ", ctx.num_inputs(),
                  " inputs"));
  DataType t = ctx.dtype(0);
  if (!dtype_is_float(t)) ctx.error(cat("Attention needs floating-point Q, got ", dtype_name(t)));
  for (size_t i = 1; i < 3; ++i)
    if (ctx.dtype(i) != t)
      ctx.error(cat("Q is ", dtype_name(t), " but ", i == 1 ? "K" : "V", " is ",
                    dtype_name(ctx.dtype(i)), "; Q, K and V must have one type"));
  if (!std::isfinite(a.scale)) ctx.error(cat("the scale must be finite, got ", a.scale));
  const bool masked = ctx.has_input(3);
  if (masked) {
    DataType mt = ctx.dtype(3);
    if (mt != DataType::kBool && !dtype_is_float(mt))
      ctx.error(cat("the mask must be bool or floating-point, got ", dtype_name(mt)));
  }
  const Shape &q = ctx.shape(0), &k = ctx.shape(1), &v = ctx.shape(2);
  const char* names[] = {"Q", "K", "V"};
  const Shape* s[] = {&q, &k, &v};
  for (int i = 0; i < 3; ++i)
    if (s[i]->rank_known && s[i]->rank() != 4)
      ctx.error(cat(names[i], " must be 4-D [batch, heads, sequence, head size], got ",
                    s[i]->str()));
  if (!q.rank_known || !k.rank_known || !v.rank_known) {
    ctx.set_output(0, t, Shape({q.rank_known ? q[0] : Dim(), q.rank_known ? q[1] : Dim(),
                                q.rank_known ? q[2] : Dim(), v.rank_known ? v[3] : Dim()}));
    return;
  }
  if (differ(q[0], k[0]) || differ(q[0], v[0]))
    ctx.error(cat("Q ", q.str(), ", K ", k.str(), " and V ", v.str(), " differ in batch"));
  if (differ(k[1], v[1]) || differ(k[2], v[2]))
    ctx.error(cat("K ", k.str(), " and V ", v.str(), " differ in heads or sequence length"));
  if (differ(q[3], k[3]))
    ctx.error(cat("Q ", q.str(), " and K ", k.str(), " differ in head size"));
  if (q[1].known() && k[1].known() && (k[1].value == 0 || q[1].value % k[1].value != 0))
    ctx.error(cat("Q's ", q[1].value, " heads are not a multiple of K's and V's ", k[1].value));
  if (masked) {
    const Shape& m = ctx.shape(3);
    if (m.rank_known) {
      if (m.rank() > 4)
        ctx.error(cat("the mask ", m.str(), " has more than 4 dims"));
      Shape full({q[0], q[1], q[2], k[2]});
      size_t lead = 4 - m.rank();
      for (size_t i = 0; i < m.rank(); ++i)
        if (m[i].known() && m[i].value != 1 && differ(m[i], full[lead + i]))
          ctx.error(cat("the mask ", m.str(), " does not broadcast to [batch, heads, S_q, S_kv] ",
                        full.str()));
    }
  }
  ctx.set_output(0, t, Shape({q[0], q[1], q[2], v[3]}));
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<AttentionAttrs>();
  const Tensor &q = args.in(0), &k = args.in(1), &v = args.in(2);
  Tensor& y = args.out(0);
  const Dims &qd = q.dims(), &kd = k.dims(), &vd = v.dims();
  const int64_t B = qd[0], H = qd[1], Sq = qd[2], D = qd[3];
  const int64_t Hkv = kd[1], Skv = kd[2], Dv = vd[3];
  KILN_EXPECT(kd[0] == B && vd[0] == B && kd[3] == D && vd[1] == Hkv && vd[2] == Skv &&
                  Hkv > 0 && H % Hkv == 0,
              StatusCode::kInvalidModel, "Attention: Q ", dims_to_string(qd), ", K ",
              dims_to_string(kd), " and V ", dims_to_string(vd), " do not fit together");
  const double scale = attention_scale(a, D);
  const int64_t group = H / Hkv;
  // The mask's element strides over [B, H, S_q, S_kv], 0 along broadcast dims.
  const bool has_mask = args.has(3);
  int64_t ms[4] = {0, 0, 0, 0};
  bool bool_mask = false;
  if (has_mask) {
    const Tensor& m = args.in(3);
    bool_mask = m.dtype() == DataType::kBool;
    const Dims& md = m.dims();
    const int64_t full[4] = {B, H, Sq, Skv};
    KILN_EXPECT(md.size() <= 4, StatusCode::kInvalidModel, "the Attention mask ",
                dims_to_string(md), " has more than 4 dims");
    const size_t lead = 4 - md.size();
    int64_t stride = 1;
    for (size_t i = md.size(); i-- > 0;) {
      KILN_EXPECT(md[i] == 1 || md[i] == full[lead + i], StatusCode::kInvalidModel,
                  "the Attention mask ", dims_to_string(md),
                  " does not broadcast to [batch, heads, S_q, S_kv] [", B, ",", H, ",", Sq, ",",
                  Skv, "]");
      ms[lead + i] = md[i] == 1 ? 0 : stride;
      stride *= md[i];
    }
  }
  std::vector<double> qrow(D), s(Skv), acc(Dv);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kvh = h / group;
      const int64_t kbase = (b * Hkv + kvh) * Skv;  // row of K and V
      for (int64_t i = 0; i < Sq; ++i) {
        const int64_t qbase = ((b * H + h) * Sq + i) * D;
        for (int64_t d = 0; d < D; ++d) qrow[d] = q.get_f64(qbase + d);
        double mx = -INFINITY;
        for (int64_t j = 0; j < Skv; ++j) {
          double sc = -INFINITY;
          bool keep = !(a.causal && j > i);
          if (keep && has_mask) {
            int64_t mi = b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3];
            if (bool_mask) keep = args.in(3).get_f64(mi) != 0;
            else sc = args.in(3).get_f64(mi);  // added below
          }
          if (keep) {
            double dot = 0;
            for (int64_t d = 0; d < D; ++d) dot += qrow[d] * k.get_f64((kbase + j) * D + d);
            double add = has_mask && !bool_mask ? sc : 0.0;
            sc = dot * scale + add;
          } else {
            sc = -INFINITY;
          }
          s[j] = sc;
          if (sc > mx) mx = sc;
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        const int64_t ybase = ((b * H + h) * Sq + i) * Dv;
        if (mx == -INFINITY) {  // fully masked (or no keys): zeros, see attention.h
          for (int64_t d = 0; d < Dv; ++d) y.set_f64(ybase + d, 0.0);
          continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < Skv; ++j) {
          if (s[j] == -INFINITY) continue;
          double p = std::exp(s[j] - mx);
          sum += p;
          for (int64_t d = 0; d < Dv; ++d) acc[d] += p * v.get_f64((kbase + j) * Dv + d);
        }
        for (int64_t d = 0; d < Dv; ++d) y.set_f64(ybase + d, acc[d] / sum);
      }
    }
}

}  // namespace

const OpDef& kiln_op_attention() {
  static const OpDef d{"Attention", make_attrs_of<AttentionAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
