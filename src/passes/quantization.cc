// INT8: InsertQuantization (post-training: QuantizeLinear/DequantizeLinear pairs with calibrated
// scales in front of each quantizable product) and FoldQuantization (explicit quantization, from
// those pairs or a QAT model's: DequantizeLinear operands folded into quantized Conv and MatMul
// nodes, ConvAttrs/MatMulAttrs q_* fields). Post-training quantization is thus the explicit kind
// with scales from a calibrator: one folding path serves both, as in TensorRT's explicit mode.
#include <algorithm>
#include <cmath>
#include <map>

#include "common/log.h"
#include "ops/conv.h"
#include "ops/dequantize_linear.h"
#include "ops/epilogue.h"
#include "ops/infer.h"
#include "ops/mat_mul.h"
#include "ops/pad.h"
#include "ops/pool.h"
#include "ops/quant_util.h"
#include "ops/quantize_linear.h"
#include "ops/quantized.h"
#include "passes/pass.h"

namespace kiln {

namespace {

bool float_activation(const Value* v) {
  return v && !v->is_constant() && (v->dtype == DataType::kFloat);
}

Tensor scalar(DataType t, double v) {
  Tensor s(t, Dims{});
  s.set_f64(0, v);
  return s;
}

// A constant scalar (or one-element) tensor's value.
bool const_scalar(const Value* v, double* out) {
  if (!v || !v->is_constant() || v->data.numel() != 1) return false;
  *out = v->data.get_f64(0);
  return true;
}

// The DequantizeLinear producing v, when it is a per-tensor one of an int8/uint8 tensor with
// constant scale and zero point.
const Node* per_tensor_dq(const Value* v, double* scale, int64_t* zero) {
  const Node* d = v ? v->producer : nullptr;
  if (!d || d->op() != "DequantizeLinear" || !d->in(0) || !is_quantized_operand(d->in(0)->dtype))
    return nullptr;
  double s = 0, z = 0;
  if (!const_scalar(d->in(1), &s) || !(s > 0) || !std::isfinite(s)) return nullptr;
  if (d->in(2) && !const_scalar(d->in(2), &z)) return nullptr;
  *scale = s;
  *zero = static_cast<int64_t>(z);
  return d;
}

struct Weights {
  Tensor q;                  // int8, W's shape
  std::vector<double> scale; // per channel along `axis`, or one
};

// W as `type` (int8, or float8e4m3fn for float8 products) with per-channel scales along `axis`
// (Conv: 0, output channels; MatMul's [K, N] B: 1, or 0 when transposed). From a
// DequantizeLinear of a constant tensor of that type with zero points all 0 (a QAT model's
// weights, kept as they are), or from a float constant (post-training: symmetric, scale
// max|w| / 127 per channel, rounded to nearest even; float8: max|w| / 448, rounded to the
// nearest float8).
bool quantize_weights(const Value* w, int64_t axis, DataType type, Weights& out) {
  if (!w) return false;
  if (const Node* d = w->producer) {
    if (d->op() != "DequantizeLinear" || !d->in(0) || !d->in(0)->is_constant() ||
        d->in(0)->dtype != type || !d->in(1) || !d->in(1)->is_constant())
      return false;
    const Tensor& q = d->in(0)->data;
    const Tensor& s = d->in(1)->data;
    if (d->in(2)) {
      if (!d->in(2)->is_constant()) return false;
      const Tensor& z = d->in(2)->data;
      for (int64_t i = 0; i < z.numel(); ++i)
        if (z.get_i64(i) != 0) return false;
    }
    const int64_t r = static_cast<int64_t>(q.rank());
    if (s.numel() != 1) {
      int64_t dq_axis = d->a<DequantizeLinearAttrs>().axis;
      if (dq_axis < 0) dq_axis += r;
      if (dq_axis != axis || s.numel() != q.dim(axis)) return false;
    }
    out.q = q;
    out.scale.clear();
    for (int64_t i = 0; i < s.numel(); ++i) {
      const double v = s.get_f64(i);
      if (!(v > 0) || !std::isfinite(v)) return false;
      out.scale.push_back(v);
    }
    return true;
  }
  if (!w->is_constant() || w->dtype != DataType::kFloat) return false;
  const Tensor& f = w->data;
  const int64_t r = static_cast<int64_t>(f.rank());
  if (axis >= r) return false;
  const int64_t channels = f.dim(axis);
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < r; ++d) inner *= f.dim(d);
  std::vector<double> amax(channels, 0.0);
  for (int64_t i = 0; i < f.numel(); ++i) {
    const double v = f.get_f64(i);
    if (!std::isfinite(v)) return false;
    double& m = amax[(i / inner) % channels];
    m = std::max(m, std::fabs(v));
  }
  const bool f8 = is_float8(type);
  const double qmax = f8 ? kFloat8E4M3Max : 127.0;
  out.scale.assign(channels, 1.0);
  for (int64_t c = 0; c < channels; ++c)
    if (amax[c] > 0) out.scale[c] = static_cast<double>(static_cast<float>(amax[c] / qmax));
  out.q = Tensor(type, f.dims());
  for (int64_t i = 0; i < f.numel(); ++i) {
    const double v = f.get_f64(i) / out.scale[(i / inner) % channels];
    if (f8)
      out.q.data<uint8_t>()[i] = float_to_e4m3fn_bits(v);
    else
      out.q.set_i64(i, static_cast<int64_t>(std::clamp(std::nearbyint(v), -127.0, 127.0)));
  }
  return true;
}

// The axis of W along which a product's output channels (Conv) or columns (MatMul) lie; -1 when
// the node is not a product kiln quantizes.
int64_t weight_axis(const Node& n) {
  if (n.op() == "Conv") {
    const auto& a = n.a<ConvAttrs>();
    if (a.transposed || a.quantized() || a.channels_last) return -1;
    return 0;
  }
  if (n.op() == "MatMul") {
    const auto& a = n.a<MatMulAttrs>();
    const Value* b = n.in(1);
    if (a.quantized() || a.alpha != 1.0 || !b || !b->shape.rank_known || b->shape.rank() != 2)
      return -1;
    return a.trans_b ? 0 : 1;
  }
  return -1;
}

}  // namespace

std::vector<Node*> quantization_targets(Graph& g, const PassContext& ctx) {
  std::vector<Node*> out;
  for (auto& np : g.nodes()) {
    Node& n = *np;
    if (weight_axis(n) < 0 || n.outputs.size() != 1) continue;
    if (!float_activation(n.in(0)) || !n.in(1) || !n.in(1)->is_constant() ||
        n.in(1)->dtype != DataType::kFloat)
      continue;
    const std::string* pinned = layer_precision(n, ctx);
    const bool keep_float = pinned && *pinned != (is_float8(ctx.quantized_type) ? "fp8" : "int8");
    if (keep_float || !ctx.target->runs_quantized(n, 0, ctx.quantized_type)) continue;
    out.push_back(&n);
  }
  return out;
}

void InsertQuantization::run(Graph& g, PassContext& ctx) const {
  if (!ctx.activation_scales) return;
  int64_t inserted = 0, missing = 0, residuals = 0;
  std::map<Value*, Value*> dequantized;  // x -> DQ(Q(x)), one pair per tensor
  const std::vector<Node*> targets = quantization_targets(g, ctx);
  for (Node* n : targets) {
    Value* x = n->in(0);
    auto it = ctx.activation_scales->find(x->name);
    if (it == ctx.activation_scales->end()) {
      ++missing;
      log(LogLevel::kWarning, "int8: no calibrated scale for '", x->name, "' (input of ",
          n->label(), "); it stays in floating point");
      continue;
    }
    Value*& dq = dequantized[x];
    if (!dq) {
      Value* s = g.add_constant(x->name + "/scale", scalar(DataType::kFloat, it->second));
      const DataType qt = ctx.quantized_type;
      Value* z = g.add_constant(x->name + "/zero_point", scalar(qt, 0));
      Value* xq = g.add_value(x->name + (is_float8(qt) ? "/fp8" : "/int8"), qt, x->shape);
      auto qa = std::make_unique<QuantizeLinearAttrs>();
      qa->axis = 1;
      qa->output_dtype = qt;
      g.add_node("QuantizeLinear", {x, s, z}, {xq}, std::move(qa),
                 g.unique_name(x->name + "/quantize"));
      dq = g.add_value(x->name + "/dequantized", x->dtype, x->shape);
      g.add_node("DequantizeLinear", {xq, s, z}, {dq}, std::make_unique<DequantizeLinearAttrs>(),
                 g.unique_name(x->name + "/dequantize"));
      ++inserted;
    }
    g.set_input(n, 0, dq);
  }
  // Residual paths: a quantized Conv's only reader adds a tensor quantized above (a ResNet block's
  // input, which its first Conv reads as int8); the Add reads it dequantized too, so that the
  // fused Conv takes an int8 Z and the block's output has int8 readers only.
  for (Node* n : targets) {
    Value* y = n->outputs[0];
    if (n->op() != "Conv" || n->in(0)->producer == nullptr ||
        n->in(0)->producer->op() != "DequantizeLinear" || y->consumers.size() != 1 ||
        g.is_graph_output(y) || !ctx.target->runs_quantized_residual(*n))
      continue;
    Node* add = y->consumers[0];
    const int other = add_other_operand(*add, y);
    if (other < 0) continue;
    auto it = dequantized.find(add->inputs[other]);
    if (it == dequantized.end() || !it->second) continue;
    g.set_input(add, other, it->second);
    ++residuals;
  }
  g.toposort();
  ctx.stats["insert_quantization.tensors"] += inserted;
  ctx.stats["insert_quantization.residuals"] += residuals;
  ctx.report(cat("insert_quantization: ", inserted, " tensor(s) quantized to ",
                 dtype_name(ctx.quantized_type),
                 residuals ? cat(", ", residuals, " residual(s) read quantized") : "",
                 missing ? cat(", ", missing, " product(s) without a scale left in float") : ""));
}

void FoldQuantization::run(Graph& g, PassContext& ctx) const {
  int64_t folded = 0;
  std::vector<Node*> nodes;
  for (auto& np : g.nodes()) nodes.push_back(np.get());
  for (Node* n : nodes) {
    const int64_t axis = weight_axis(*n);
    if (axis < 0 || n->outputs.size() != 1 || n->outputs[0]->dtype != DataType::kFloat) continue;
    double sx = 0;
    int64_t zx = 0;
    const Node* dx = per_tensor_dq(n->in(0), &sx, &zx);
    if (!dx || dx->outputs[0]->dtype != DataType::kFloat) continue;
    const DataType xt = dx->in(0)->dtype;
    if (!ctx.target->runs_quantized(*n, zx, xt)) continue;
    // A quantized weight's scales are per output channel; anything else stays as it is.
    Weights w;
    if (!quantize_weights(n->in(1), axis, is_float8(xt) ? xt : DataType::kInt8, w)) continue;
    if (w.scale.size() != 1 && static_cast<int64_t>(w.scale.size()) != w.q.dim(axis)) continue;
    Value* xq = dx->in(0);
    Value* wq = g.add_constant(n->in(1)->name + "/int8", std::move(w.q));
    if (n->op() == "Conv") {
      auto& a = n->a<ConvAttrs>();
      a.q_x_scale = sx;
      a.q_x_zero = zx;
      a.q_w_scale = w.scale;
      a.q_out = n->outputs[0]->dtype;
    } else {
      auto& a = n->a<MatMulAttrs>();
      a.q_x_scale = sx;
      a.q_x_zero = zx;
      a.q_w_scale = w.scale;
      a.q_out = n->outputs[0]->dtype;
    }
    g.set_input(n, 0, xq);
    g.set_input(n, 1, wq);
    infer_node(*n);
    ++folded;
  }
  ctx.stats["fold_quantization.folded"] += folded;
  if (folded)
    ctx.report(cat("fold_quantization: ", folded, " product(s) quantized (int8 or float8)"));
}

void FoldRequantization::run(Graph& g, PassContext& ctx) const {
  int64_t folded = 0, residuals = 0;
  std::vector<Node*> nodes;
  for (auto& np : g.nodes()) nodes.push_back(np.get());
  // Int8 residuals first: a Z that is a per-tensor DequantizeLinear of int8 with zero point 0.
  for (Node* n : nodes) {
    if (n->op() != "Conv" || n->outputs.size() != 1 || !n->in(3)) continue;
    auto& a = n->a<ConvAttrs>();
    double s = 0;
    int64_t z = 0;
    const Node* dz = per_tensor_dq(n->in(3), &s, &z);
    if (!a.quantized() || a.quantized_residual() || !dz || z != 0 ||
        dz->in(0)->dtype != requantized_type(n->in(0)->dtype) ||
        !ctx.target->runs_quantized_residual(*n))
      continue;
    a.q_z_scale = s;
    g.set_input(n, 3, dz->in(0));
    infer_node(*n);
    ++residuals;
  }
  for (Node* n : nodes) {
    if (n->op() != "Conv" || n->outputs.size() != 1) continue;
    auto& a = n->a<ConvAttrs>();
    Value* y = n->outputs[0];
    if (!a.quantized() || a.requantized() || has_epilogue_program(a.epilogue) ||
        g.is_graph_output(y) || y->consumers.size() != 1)
      continue;
    Node* q = y->consumers[0];
    double s = 0, z = 0;
    if (q->op() != "QuantizeLinear" || q->in(0) != y || q->outputs.size() != 1 ||
        q->a<QuantizeLinearAttrs>().output_dtype != requantized_type(n->in(0)->dtype) ||
        !const_scalar(q->in(1), &s) || !(s > 0) || !std::isfinite(s) ||
        (q->in(2) && (!const_scalar(q->in(2), &z) || z != 0)))
      continue;
    Value* out = q->outputs[0];
    a.q_y_scale = s;
    absorb_origins(*n, *q);
    g.remove_node(q);
    y->producer = nullptr;  // now unused; dead-value elimination drops it
    n->outputs[0] = out;
    out->producer = n;
    infer_node(*n);
    ++folded;
  }
  ctx.stats["fold_requantization.folded"] += folded;
  ctx.stats["fold_requantization.residuals"] += residuals;
  if (folded || residuals)
    ctx.report(cat("fold_requantization: ", folded,
                   " convolution(s) write the next layer's quantized input, ", residuals,
                   " read a quantized residual"));
}

namespace {

struct DqParams {
  Value* scale = nullptr;
  Value* zero = nullptr;  // may be null (zero point 0)
  double s = 0;
  int64_t z = 0;
  DataType type = DataType::kUndefined;
  bool same(const DqParams& o) const { return s == o.s && z == o.z && type == o.type; }
};

// The per-tensor DequantizeLinear (constant scale and zero point) producing v.
const Node* dq_of(const Value* v, DqParams& p) {
  const Node* d = per_tensor_dq(v, &p.s, &p.z);
  if (!d) return nullptr;
  p.scale = d->in(1);
  p.zero = d->in(2);
  p.type = d->in(0)->dtype;
  return d;
}

// The data inputs of a movement op that commutes with a per-tensor dequantization, or none.
std::vector<size_t> movement_slots(const Node& n) {
  const std::string_view op = n.op();
  if (n.outputs.size() != 1) return {};
  if (op == "Reshape" || op == "Transpose" || op == "Slice" || op == "Gather" || op == "Expand" ||
      op == "Tile")
    return {0};
  if (op == "Pool" && n.a<PoolAttrs>().kind == "max") return {0};  // max commutes with x -> s*x
  if (op == "Pad" && n.a<PadAttrs>().mode == "constant") return {0};
  if (op == "Concat") {
    std::vector<size_t> all;
    for (size_t i = 0; i < n.inputs.size(); ++i) all.push_back(i);
    return all;
  }
  return {};
}

}  // namespace

void PropagateDequantize::run(Graph& g, PassContext& ctx) const {
  int64_t moved = 0, cancelled = 0;
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<Node*> nodes;
    for (auto& np : g.nodes()) nodes.push_back(np.get());
    for (Node* n : nodes) {
      const std::vector<size_t> slots = movement_slots(*n);
      if (slots.empty() || g.is_graph_output(n->outputs[0])) continue;
      DqParams p;
      bool ok = true;
      std::vector<Value*> ints;
      for (size_t k = 0; k < slots.size() && ok; ++k) {
        DqParams q;
        ok = n->in(slots[k]) && dq_of(n->in(slots[k]), q) && (k == 0 || q.same(p));
        if (k == 0) p = q;
        if (ok) ints.push_back(n->in(slots[k])->producer->in(0));
      }
      if (!ok) continue;
      // A constant pad value other than 0 has no exact int8 image unless it is the zero point.
      if (n->op() == "Pad") {
        double v = 0;
        if (p.z != 0 || (n->in(2) && (!const_scalar(n->in(2), &v) || v != 0))) continue;
        if (n->in(2)) {
          g.set_input(n, 2, g.add_constant(n->name + "/int8_pad", scalar(p.type, 0)));
        }
      }
      for (size_t k = 0; k < slots.size(); ++k) g.set_input(n, slots[k], ints[k]);
      Value* y = n->outputs[0];
      Value* yq = g.add_value(y->name + "/quantized", p.type, y->shape);
      y->producer = nullptr;
      n->outputs[0] = yq;
      yq->producer = n;
      infer_node(*n);
      std::vector<Value*> dq_in{yq, p.scale};
      if (p.zero) dq_in.push_back(p.zero);
      infer_node(*g.add_node("DequantizeLinear", dq_in, {y},
                             std::make_unique<DequantizeLinearAttrs>(),
                             g.unique_name(y->name + "/dequantize")));
      ++moved;
      changed = true;
    }
    if (changed) g.toposort();
  }
  // QuantizeLinear(DequantizeLinear(q)) -> q, for the same scale, zero point and type.
  std::vector<Node*> nodes;
  for (auto& np : g.nodes()) nodes.push_back(np.get());
  for (Node* n : nodes) {
    if (n->op() != "QuantizeLinear" || g.is_graph_output(n->outputs[0])) continue;
    DqParams p;
    double s = 0, z = 0;
    if (!n->in(0) || !dq_of(n->in(0), p) || !const_scalar(n->in(1), &s) ||
        (n->in(2) && !const_scalar(n->in(2), &z)))
      continue;
    if (s != p.s || static_cast<int64_t>(z) != p.z ||
        n->a<QuantizeLinearAttrs>().output_dtype != p.type)
      continue;
    Value* q = n->in(0)->producer->in(0);
    Value* out = n->outputs[0];
    std::vector<Node*> readers = out->consumers;
    for (Node* r : readers)
      for (size_t i = 0; i < r->inputs.size(); ++i)
        if (r->inputs[i] == out) g.set_input(r, i, q);
    ++cancelled;
  }
  ctx.stats["propagate_dequantize.moved"] += moved;
  ctx.stats["propagate_dequantize.cancelled"] += cancelled;
  if (moved || cancelled)
    ctx.report(cat("propagate_dequantize: ", moved, " dequantization(s) moved past data movement, ",
                   cancelled, " quantize/dequantize pair(s) cancelled"));
}

}  // namespace kiln
