// AssignPrecision: float16 storage for the float32 tensors of ops that keep their accuracy in it,
// and TF32 permission for float32 Conv/MatMul. See pass.h for the contract.
//
// One walk in node order decides every node from its producers, which are already decided:
//  - compute ops (Conv, MatMul, Pool, ...) always switch: they are where fp16 pays;
//  - movement ops follow their data input: a Reshape of a float32 graph input stays float32 and
//    the Cast goes in front of the Conv that reads it, not in front of the Reshape;
//  - Pointwise nodes need no Cast at all: their programs load whatever type their inputs have
//    (float16 inputs are cast to float32 inside the program) and store float16 when some input is
//    a float tensor, so the first element-wise op after a graph input is also its Cast. Float math
//    that starts from integers and constants only (shapes, indices, masks turned float) stays
//    float32: float16 counts integers exactly only up to 2048;
//  - everything else stays float32 and gets a Cast back in front of it.
// Reductions that can leave the float16 range (sum, prod, norms, log-sum-exp) stay float32.
#include <fnmatch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "ops/conv.h"
#include "ops/infer.h"
#include "ops/mat_mul.h"
#include "ops/op.h"
#include "ops/pointwise.h"
#include "ops/reduce.h"
#include "passes/pass.h"

namespace kiln {

namespace {

constexpr DataType kF32 = DataType::kFloat;
constexpr DataType kF16 = DataType::kFloat16;

enum class Kind {
  kStay,       // stays float32; float16 inputs get a Cast back
  kCompute,    // switches to float16 whenever its operands are float32
  kFollow,     // switches when its data input already is float16
  kPointwise,  // adapts its program
  kAnyType,    // reads only dims: any type will do
};

struct Rule {
  Kind kind = Kind::kStay;
  std::vector<size_t> slots;  // the float operands that switch together (absent ones skipped)
  bool output = true;         // output 0 switches (false: arg reductions, whose output is int64)
};

Rule rule_for(const Node& n) {
  std::string_view op = n.op();
  if (op == "Pointwise") return {Kind::kPointwise, {}, false};
  if (n.def && n.def->reads_only_dims) return {Kind::kAnyType, {}, false};
  // A plugin reads whatever its producers write: NegotiatePluginFormats asks it which types it
  // takes and inserts the Casts.
  if (op == "Plugin") return {Kind::kAnyType, {}, false};
  // Quantized products keep their int8 operands; their results (q_out), bias and residual switch
  // to float16 like any compute op's, so that the next layer reads half the bytes. QuantizeLinear
  // reads float16 as it reads float32 (the division is in the scale's type): no Cast back.
  if (op == "Conv") {
    const auto& a = n.a<ConvAttrs>();
    // A requantized Conv's output is int8 already (ConvAttrs::q_y_scale), as is a quantized
    // residual (q_z_scale).
    if (a.quantized())
      return Rule{Kind::kCompute,
                  a.quantized_residual() ? std::vector<size_t>{2} : std::vector<size_t>{2, 3},
                  !a.requantized()};
    return Rule{Kind::kCompute, {0, 1, 2, 3}};
  }
  if (op == "MatMul")
    return Rule{Kind::kCompute, n.a<MatMulAttrs>().quantized() ? std::vector<size_t>{2, 3}
                                                                 : std::vector<size_t>{0, 1}};
  if (op == "QuantizeLinear") return {Kind::kAnyType, {}, false};
  if (op == "Pool" || op == "Softmax" || op == "Resize") return {Kind::kCompute, {0}};
  // Q, K and V switch together; a float mask stays float32 (the op reads any float type).
  if (op == "Attention") return {Kind::kCompute, {0, 1, 2}};
  // Scale, bias, mean and var stay float32 (the op takes any float type for them), as cuDNN's
  // normalization wants them for float16 data.
  if (op == "Normalization") return {Kind::kCompute, {0}};
  if (op == "Reduce") {
    const std::string& k = n.a<ReduceAttrs>().kind;
    if (k == "mean" || k == "max" || k == "min") return {Kind::kCompute, {0}};
    if (is_arg_reduce_kind(k)) return {Kind::kCompute, {0}, false};
    return {};
  }
  if (op == "Reshape" || op == "Transpose" || op == "Slice" || op == "Gather" || op == "Tile" ||
      op == "Expand")
    return {Kind::kFollow, {0}};
  if (op == "Pad") return {Kind::kFollow, {0, 2}};  // constant_value has data's type
  if (op == "Concat") {
    Rule r{Kind::kFollow, {}};
    for (size_t i = 0; i < n.inputs.size(); ++i) r.slots.push_back(i);
    return r;
  }
  return {};
}

class Rewriter {
 public:
  // partial: no global float16 (BuildOptions::fp16 off): only the compute layers that
  // --layer-precision pins to fp16 switch, and what follows them adapts.
  Rewriter(Graph& g, PassContext& ctx, bool partial) : g_(g), ctx_(ctx), partial_(partial) {}

  void run() {
    std::vector<Node*> order;
    for (auto& n : g_.nodes()) order.push_back(n.get());
    for (Node* n : order) visit(n);
    // Casts were appended; put them where they belong.
    g_.toposort();
    ctx_.stats["assign_precision.fp16_nodes"] += switched_;
    ctx_.stats["assign_precision.casts"] += casts_;
    ctx_.stats["assign_precision.saturated"] += saturated_;
    ctx_.report(
        cat("assign_precision: ", switched_, " node(s) in float16, ", casts_, " cast(s) inserted"));
  }

 private:
  bool is_half(const Value* v) const { return v && half_.count(v); }

  void visit(Node* n) {
    Rule r = rule_for(*n);
    if (r.kind == Kind::kCompute) {
      // --layer-precision: fp32 keeps a layer in float32; without global float16 only fp16
      // layers switch.
      const std::string* pinned = layer_precision(*n, ctx_);
      if ((pinned && *pinned == "fp32") || (partial_ && !(pinned && *pinned == "fp16")))
        return stay(n);
    }
    switch (r.kind) {
      case Kind::kAnyType:
        return;
      case Kind::kPointwise:
        return pointwise(n);
      case Kind::kStay:
        return stay(n);
      case Kind::kCompute:
      case Kind::kFollow:
        break;
    }
    bool ok = !r.output || (n->outputs.size() >= 1 && n->outputs[0]->dtype == kF32);
    bool data_half = false;
    for (size_t i : r.slots) {
      Value* v = n->in(i);
      if (!v) continue;
      if (!is_half(v) && v->dtype != kF32) ok = false;
      if (is_half(v)) data_half = true;
    }
    if (r.kind == Kind::kFollow && !data_half) ok = false;
    if (!ok) {
      if (r.kind == Kind::kFollow)
        for (size_t i : r.slots)
          if (n->in(i) && shape_like_.count(n->in(i))) shape_like_.insert(n->outputs[0]);
      return cast_back(n);
    }
    for (size_t i : r.slots) {
      Value* v = n->in(i);
      if (!v || is_half(v)) continue;
      g_.set_input(n, i, v->is_constant() ? half_constant(v) : cast(v, kF16));
    }
    // Other float16 operands (not among the slots, e.g. Resize's scales) go back to float32.
    cast_back(n, r.slots);
    if (r.output) to_half_output(n, 0);
    if (n->op() == "Conv" && n->a<ConvAttrs>().quantized()) n->a<ConvAttrs>().q_out = kF16;
    if (n->op() == "MatMul" && n->a<MatMulAttrs>().quantized()) n->a<MatMulAttrs>().q_out = kF16;
    ++switched_;
  }

  // A float32 node. What it computes from no float data (ConstantOfShape, a CumSum of those, Range
  // from scalars) is shape-like.
  void stay(Node* n) {
    bool from_data = false;
    for (Value* v : n->inputs) {
      if (!v || !dtype_is_float(v->dtype)) continue;
      if (v->is_constant() ? v->data.numel() > 1 : !shape_like_.count(v)) from_data = true;
    }
    if (!from_data)
      for (Value* o : n->outputs)
        if (dtype_is_float(o->dtype)) shape_like_.insert(o);
    cast_back(n);
  }

  // Inputs that became float16 but that this node reads as float32 (all but the `keep` slots).
  void cast_back(Node* n, const std::vector<size_t>& keep = {}) {
    for (size_t i = 0; i < n->inputs.size(); ++i)
      if (is_half(n->inputs[i]) && std::find(keep.begin(), keep.end(), i) == keep.end())
        g_.set_input(n, i, cast(n->inputs[i], kF32));
  }

  void pointwise(Node* n) {
    const expr::Program& p = n->a<PointwiseAttrs>().program;
    bool region = false;
    std::vector<bool> in16(n->inputs.size(), false), out16(n->outputs.size(), false);
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      Value* v = n->inputs[i];
      if (!v) continue;
      in16[i] = is_half(v) && p.input_types[i] == kF32;
      if (!v->is_constant() && dtype_is_float(v->dtype) && !shape_like_.count(v)) region = true;
    }
    if (!region) {
      // Float math on integers and constants only (a shape or an index turned float, a mask):
      // it stays float32, and so does what is computed from it alone.
      for (Value* o : n->outputs)
        if (dtype_is_float(o->dtype)) shape_like_.insert(o);
    }
    bool any = std::find(in16.begin(), in16.end(), true) != in16.end();
    if (partial_ && !any) return;  // outside the pinned layers' float16 data
    for (size_t k = 0; k < n->outputs.size(); ++k)
      out16[k] = region && n->outputs[k]->dtype == kF32 && !g_.is_graph_output(n->outputs[k]);
    bool any_out = std::find(out16.begin(), out16.end(), true) != out16.end();
    if (!any && !any_out) return;
    n->a<PointwiseAttrs>().program = retyped(p, in16, out16);
    for (size_t k = 0; k < n->outputs.size(); ++k)
      if (out16[k]) to_half_output(n, k);
    if (any_out) ++switched_;
  }

  // load float16 -> cast float32 -> the original float32 math -> cast float16 -> store.
  static expr::Program retyped(const expr::Program& p, const std::vector<bool>& in16,
                               const std::vector<bool>& out16) {
    expr::Program q;
    q.input_types = p.input_types;
    for (size_t i = 0; i < in16.size(); ++i)
      if (in16[i]) q.input_types[i] = kF16;
    std::vector<int32_t> reg(p.code.size(), -1);
    auto map = [&](int32_t r) { return r < 0 ? r : reg[r]; };
    for (size_t i = 0; i < p.code.size(); ++i) {
      const expr::Instr& in = p.code[i];
      if (in.op == expr::Op::kInput) {
        int32_t r = q.input(in.a);
        reg[i] = in16[in.a] ? q.cast(r, kF32) : r;
        continue;
      }
      expr::Instr c = in;
      c.a = map(in.a);
      c.b = map(in.b);
      c.c = map(in.c);
      q.code.push_back(c);
      reg[i] = static_cast<int32_t>(q.code.size() - 1);
    }
    for (size_t k = 0; k < p.outputs.size(); ++k) {
      int32_t r = reg[p.outputs[k]];
      q.outputs.push_back(out16[k] ? q.cast(r, kF16) : r);
    }
    return q;
  }

  // Output k of n becomes float16. A graph output keeps its type and name: n writes a new float16
  // value and a Cast writes the output.
  void to_half_output(Node* n, size_t k) {
    Value* v = n->outputs[k];
    if (!g_.is_graph_output(v)) {
      v->dtype = kF16;
      half_.insert(v);
      return;
    }
    Value* h = g_.add_value(v->name + "/fp16", kF16, v->shape);
    std::vector<Node*> readers = v->consumers;
    v->producer = nullptr;
    n->outputs[k] = h;
    h->producer = n;
    for (Node* c : readers)
      for (size_t i = 0; i < c->inputs.size(); ++i)
        if (c->inputs[i] == v) g_.set_input(c, i, h);
    add_cast(h, v);
    half_.insert(h);
    cache_[{h, kF32}] = v;  // float32 readers of h read the output itself
  }

  Value* cast(Value* v, DataType to) {
    auto key = std::make_pair(v, to);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    Value* out = g_.add_value(v->name + (to == kF16 ? "/fp16" : "/fp32"), to, v->shape);
    add_cast(v, out);
    cache_[key] = out;
    if (to == kF16) half_.insert(out);
    return out;
  }

  // A Cast node as the importer builds one: a Pointwise program input -> cast.
  void add_cast(Value* from, Value* to) {
    auto a = std::make_unique<PointwiseAttrs>();
    a->program.input_types = {from->dtype};
    a->program.outputs = {a->program.cast(a->program.input(0), to->dtype)};
    g_.add_node("Pointwise", {from}, {to}, std::move(a), g_.unique_name(to->name + "/cast"));
    ++casts_;
  }

  // The float16 copy of a float32 constant; finite values beyond the float16 range saturate
  // (counted), as an overflow to infinity would poison every sum it enters.
  Value* half_constant(Value* v) {
    auto key = std::make_pair(v, kF16);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    constexpr double kMax = 65504.0;
    Tensor t(kF16, v->data.dims());
    for (int64_t i = 0; i < t.numel(); ++i) {
      double x = v->data.get_f64(i);
      if (std::isfinite(x) && std::fabs(x) > kMax) {
        x = std::copysign(kMax, x);
        ++saturated_;
      }
      t.set_f64(i, x);
    }
    Value* c = g_.add_constant(v->name + "/fp16", std::move(t));
    cache_[key] = c;
    half_.insert(c);
    return c;
  }

  Graph& g_;
  PassContext& ctx_;
  std::unordered_set<const Value*> half_;        // values that are float16 because of this pass
  std::unordered_set<const Value*> shape_like_;  // float values computed from no float tensor
  std::map<std::pair<Value*, DataType>, Value*> cache_;  // (value, type) -> its converted copy
  bool partial_ = false;
  int64_t switched_ = 0, casts_ = 0, saturated_ = 0;
};

// The precision a built layer runs in: int8 or fp8 (quantized), fp16 (float16 result, or a
// quantized product's float16 epilogue counts as int8/fp8), else fp32.
std::string actual_precision(const Node& n) {
  const bool quantized = (n.op() == "Conv" && n.a<ConvAttrs>().quantized()) ||
                         (n.op() == "MatMul" && n.a<MatMulAttrs>().quantized());
  if (quantized) return n.in(0)->dtype == DataType::kFloat8E4M3FN ? "fp8" : "int8";
  for (const Value* o : n.outputs)
    if (o && o->dtype == kF16) return "fp16";
  return "fp32";
}

}  // namespace

const std::string* layer_precision(const Node& n, const PassContext& ctx) {
  const std::string* found = nullptr;
  for (const auto& [glob, precision] : ctx.layer_precisions)
    if (fnmatch(glob.c_str(), n.name.c_str(), 0) == 0) found = &precision;
  return found;
}

std::vector<std::string> unmet_layer_precisions(const Graph& g, const PassContext& ctx) {
  std::vector<std::string> out;
  for (const auto& [glob, precision] : ctx.layer_precisions) {
    bool named = false;
    for (const auto& n : g.nodes()) {
      named |= fnmatch(glob.c_str(), n->name.c_str(), 0) == 0;
      for (const std::string& o : n->origins) named |= fnmatch(glob.c_str(), o.c_str(), 0) == 0;
    }
    if (!named) out.push_back(cat("'", glob, ":", precision, "' names no layer of the model"));
  }
  for (const auto& n : g.nodes()) {
    const std::string* want = layer_precision(*n, ctx);
    if (!want) continue;
    const std::string got = actual_precision(*n);
    if (got != *want)
      out.push_back(cat(n->label(), " runs in ", got, ", not ", *want,
                        *want == "int8" ? " (int8 needs --int8 and a quantizable product the "
                                          "target has an int8 tactic for)"
                        : *want == "fp8" ? " (fp8 needs --fp8 and a quantizable product the "
                                           "target has an fp8 tactic for)"
                        : *want == "fp16" ? " (the op has no float16 form here)"
                                          : ""));
  }
  return out;
}

void AssignPrecision::run(Graph& g, PassContext& ctx) const {
  bool pinned_fp16 = false;
  for (const auto& lp : ctx.layer_precisions) pinned_fp16 |= lp.second == "fp16";
  if (ctx.fp16 || pinned_fp16) {
    Rewriter(g, ctx, !ctx.fp16).run();
    infer_graph(g);
  }
  if (ctx.tf32) {
    // What stayed float32 may use TF32 tensor cores (10-bit mantissa products, float32 sums).
    int64_t n_tf32 = 0;
    for (auto& n : g.nodes()) {
      if (n->outputs.empty() || n->outputs[0]->dtype != kF32) continue;
      if (const std::string* pinned = layer_precision(*n, ctx); pinned && *pinned == "fp32")
        continue;  // strict float32
      if (n->op() == "Conv" && !n->a<ConvAttrs>().quantized()) {
        n->a<ConvAttrs>().allow_tf32 = true;
        ++n_tf32;
      } else if (n->op() == "MatMul" && !n->a<MatMulAttrs>().quantized()) {
        n->a<MatMulAttrs>().allow_tf32 = true;
        ++n_tf32;
      }
    }
    ctx.stats["assign_precision.tf32_nodes"] += n_tf32;
  }
}

}  // namespace kiln
