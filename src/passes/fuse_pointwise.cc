// FusePointwise: a Pointwise producer is inlined into the Pointwise nodes that read it, so that
// chains of element-wise ops run as one program (one kernel on the GPU) and their intermediate
// tensors never go to memory. See pass.h for the contract.
//
// Producer-driven, in node order, repeated until nothing changes. For a Pointwise producer F:
//  1. one Pointwise consumer D and no graph output: F's program is inlined into D's (D's loads of
//     F's outputs become F's registers; F's inputs are loaded by D, broadcast to D's shape) and F
//     goes. When D broadcasts F's output to more elements, F's work repeats per element: then
//     only when F is cheap;
//  2. several consumers, all Pointwise, no graph output, F cheap: F is inlined into each and goes
//     (recomputing a few instructions costs less than storing and reloading a tensor);
//  3. otherwise (a graph output, a consumer that is not Pointwise, or F too costly to repeat): F
//     merges into one Pointwise consumer D of F's shape, and the merged node writes D's outputs
//     and F's outputs that others still read: no work is repeated and D's reload is saved.
// The merged program is F's code followed by D's, then cleaned: common subexpressions (repeated
// loads of one Value first of all) are shared, dead registers and unused inputs dropped, and
// one-element constant inputs become program constants.
//
// Exactness: every register holds its value rounded to its dtype (eval.cc and the generated CUDA
// code both round each result), so a register read in place of the tensor it was stored to gives
// the same bits. The few registers that do not (an unrounded float constant, a select between
// types, an op whose result kind differs from its operand's) are never inlined across nodes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "common/half.h"
#include "ops/infer.h"
#include "ops/pointwise.h"
#include "passes/pass.h"

namespace kiln {

namespace {

using expr::Instr;
using expr::Op;
using expr::Program;

// A bound on fused programs: compile time of the generated kernel and the CPU interpreter's
// register block (512 lanes x 8 bytes per register) stay small.
constexpr size_t kMaxInstructions = 256;

// "Cheap to recompute": at most this many operations, of which at most kCheapHeavy are
// transcendental. An element-wise kernel on the GPU is bound by memory (an H100 does ~150 float
// operations in the time it moves one float32 element in and out), so repeating a handful of
// arithmetic operations per element costs less than storing and reloading a tensor; a chain of
// transcendentals (each tens of instructions) is where that stops being true.
constexpr int kCheapOps = 8;
constexpr int kCheapHeavy = 1;

// Operands an instruction reads (leaves read none; op_arity gives select 3).
int arity(Op op) { return op == Op::kInput || op == Op::kConst ? 0 : expr::op_arity(op); }

bool is_heavy(Op op) {
  switch (op) {
    case Op::kExp: case Op::kLog: case Op::kSin: case Op::kCos: case Op::kTan: case Op::kAsin:
    case Op::kAcos: case Op::kAtan: case Op::kSinh: case Op::kCosh: case Op::kTanh:
    case Op::kAsinh: case Op::kAcosh: case Op::kAtanh: case Op::kErf: case Op::kSigmoid:
    case Op::kSoftplus: case Op::kPow:
      return true;
    default:
      return false;
  }
}

bool cheap(const Program& p) {
  int ops = 0, heavy = 0;
  for (const Instr& in : p.code) {
    if (in.op == Op::kInput || in.op == Op::kConst) continue;
    ++ops;
    heavy += is_heavy(in.op);
  }
  return ops <= kCheapOps && heavy <= kCheapHeavy;
}


// The node's program when it is a well-formed Pointwise node this pass can work with: inputs and
// outputs match the program's types, operands refer to earlier registers, output ranks known.
const Program* fusable(const Node* n) {
  if (!n || n->op() != "Pointwise") return nullptr;
  const Program& p = n->a<PointwiseAttrs>().program;
  if (p.outputs.empty() || p.outputs.size() != n->outputs.size() ||
      p.input_types.size() != n->inputs.size() || p.code.size() > kMaxInstructions)
    return nullptr;
  for (size_t i = 0; i < n->inputs.size(); ++i)
    if (!n->inputs[i] || n->inputs[i]->dtype != p.input_types[i] ||
        !n->inputs[i]->shape.rank_known)
      return nullptr;
  const int32_t size = static_cast<int32_t>(p.code.size());
  for (int32_t r = 0; r < size; ++r) {
    const Instr& in = p.code[r];
    if (in.op >= Op::kCount) return nullptr;
    if (in.op == Op::kInput) {
      if (in.a < 0 || static_cast<size_t>(in.a) >= p.input_types.size() ||
          in.dtype != p.input_types[in.a])
        return nullptr;
      continue;
    }
    const int32_t ops[3] = {in.a, in.b, in.c};
    for (int k = 0; k < arity(in.op); ++k)
      if (ops[k] < 0 || ops[k] >= r) return nullptr;
  }
  for (size_t k = 0; k < p.outputs.size(); ++k) {
    int32_t o = p.outputs[k];
    const Value* v = n->outputs[k];
    if (o < 0 || o >= size || !v || v->dtype != p.code[o].dtype || !v->shape.rank_known)
      return nullptr;
  }
  return &p;
}

// ---------------------------------------------------------------------------------------------
// Exactness of a register read in place of a stored tensor

double round_to(double v, DataType t) {
  switch (t) {
    case DataType::kFloat: return static_cast<double>(static_cast<float>(v));
    case DataType::kFloat16: return half_bits_to_float(float_to_half_bits(static_cast<float>(v)));
    case DataType::kBFloat16: return bf16_bits_to_float(float_to_bf16_bits(static_cast<float>(v)));
    default: return v;
  }
}

int64_t wrap(int64_t v, DataType t) {
  switch (t) {
    case DataType::kInt8: return static_cast<int8_t>(v);
    case DataType::kUInt8: return static_cast<uint8_t>(v);
    case DataType::kInt16: return static_cast<int16_t>(v);
    case DataType::kUInt16: return static_cast<uint16_t>(v);
    case DataType::kInt32: return static_cast<int32_t>(v);
    case DataType::kUInt32: return static_cast<uint32_t>(v);
    case DataType::kBool: return v != 0;
    default: return v;
  }
}

// eval.cc's register categories: float (double lane), uint64, every other integer (int64 lane).
enum class Cat { kF, kU, kI };
Cat cat_of(DataType t) {
  if (dtype_is_float(t)) return Cat::kF;
  if (t == DataType::kUInt64) return Cat::kU;
  return Cat::kI;
}

// Whether register r always holds exactly what storing it to a tensor of its dtype and loading
// that tensor back would give, following eval.cc's rules (the generated code follows the same).
bool exact(const Program& p, int32_t r, int depth = 0) {
  const Instr& in = p.code[r];
  switch (in.op) {
    case Op::kInput: return true;
    case Op::kConst:
      if (cat_of(in.dtype) == Cat::kF)
        return std::isnan(in.fconst) || round_to(in.fconst, in.dtype) == in.fconst;
      return wrap(in.iconst, in.dtype) == in.iconst;
    case Op::kSelect:
      // Copies a branch register as it is: exact when both branches are exact in this dtype.
      return depth < 32 && p.code[in.b].dtype == in.dtype && p.code[in.c].dtype == in.dtype &&
             exact(p, in.b, depth + 1) && exact(p, in.c, depth + 1);
    case Op::kCast: return true;  // converts: rounds, wraps or saturates to the target
    default: break;
  }
  if (expr::yields_bool(in.op)) return true;  // 0 or 1
  const DataType ta = p.code[in.a].dtype;
  const Cat ca = cat_of(ta), co = cat_of(in.dtype);
  if (ca != co) return false;  // the result would sit in the other lane of the register union
  switch (ca) {
    case Cat::kF: return in.op != Op::kBitNot;  // rounded to the result type
    case Cat::kU: return in.dtype == DataType::kUInt64;
    case Cat::kI:
      // Binary integer results wrap to the result type; some unary ones (floor of an integer,
      // relu, ...) keep the operand's value, which fits only the operand's own type.
      return expr::op_arity(in.op) == 2 || ta == in.dtype;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Shapes

bool is_one(const Dim& d) { return d.known() && d.value == 1; }

// `from` provably numpy-broadcasts (right-aligned) to `to`; *repeats: some element of `from` is
// read for more than one element of `to` (or may be, where a dim is symbolic).
bool broadcasts_to(const Shape& from, const Shape& to, bool* repeats) {
  if (!from.rank_known || !to.rank_known || from.rank() > to.rank()) return false;
  const size_t lead = to.rank() - from.rank();
  *repeats = false;
  for (size_t i = 0; i < to.rank(); ++i) {
    const Dim& t = to[i];
    if (i < lead) {
      *repeats |= !is_one(t);
      continue;
    }
    const Dim& f = from[i - lead];
    if (same_dim(f, t)) continue;
    if (!is_one(f)) return false;
    *repeats |= !is_one(t);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Building merged programs

// Appends instructions with common subexpressions shared (identical op, type, operands and
// constant), loads each Value once, and optionally turns one-element constants into constants of
// the program.
class Builder {
 public:
  explicit Builder(bool fold_scalars) : fold_scalars_(fold_scalars) {}

  int32_t load(Value* v) {
    auto it = loads_.find(v);
    if (it != loads_.end()) return it->second;
    int32_t r;
    if (fold_scalars_ && foldable_scalar(*v)) {
      Instr in;
      in.op = Op::kConst;
      in.dtype = v->dtype;
      if (cat_of(v->dtype) == Cat::kF) {
        in.fconst = v->data.get_f64(0);
        in.iconst = static_cast<int64_t>(in.fconst);
      } else {
        in.iconst = v->data.get_i64(0);
        in.fconst = static_cast<double>(in.iconst);
      }
      r = emit(in);
    } else {
      inputs.push_back(v);
      p.input_types.push_back(v->dtype);
      Instr in;
      in.op = Op::kInput;
      in.dtype = v->dtype;
      in.a = static_cast<int32_t>(inputs.size() - 1);
      r = emit(in);
    }
    loads_[v] = r;
    return r;
  }

  int32_t emit(const Instr& in) {
    uint64_t fbits;
    std::memcpy(&fbits, &in.fconst, sizeof fbits);
    Key k{static_cast<int>(in.op), static_cast<int>(in.dtype), in.a, in.b, in.c, fbits, in.iconst};
    auto it = cse_.find(k);
    if (it != cse_.end()) return it->second;
    p.code.push_back(in);
    int32_t r = static_cast<int32_t>(p.code.size() - 1);
    cse_.emplace(k, r);
    return r;
  }

  // Copies src's instruction r with its operands renamed through map (leaves are not copied).
  int32_t copy(const Instr& src, const std::vector<int32_t>& map) {
    Instr in = src;
    int n = arity(in.op);
    in.a = n > 0 ? map[in.a] : -1;
    in.b = n > 1 ? map[in.b] : -1;
    in.c = n > 2 ? map[in.c] : -1;
    return emit(in);
  }

  // Drops registers no output needs and inputs no register loads; renumbers both.
  void finish(const std::vector<int32_t>& outs) {
    std::vector<char> live(p.code.size(), 0);
    for (int32_t o : outs) live[o] = 1;
    for (size_t r = p.code.size(); r-- > 0;) {
      if (!live[r]) continue;
      const Instr& in = p.code[r];
      int n = arity(in.op);
      if (n > 0) live[in.a] = 1;
      if (n > 1) live[in.b] = 1;
      if (n > 2) live[in.c] = 1;
    }
    std::vector<int32_t> reg(p.code.size(), -1), slot(inputs.size(), -1);
    Program q;
    std::vector<Value*> ins;
    for (size_t r = 0; r < p.code.size(); ++r) {
      if (!live[r]) continue;
      Instr in = p.code[r];
      if (in.op == Op::kInput) {
        if (slot[in.a] < 0) {
          slot[in.a] = static_cast<int32_t>(ins.size());
          ins.push_back(inputs[in.a]);
          q.input_types.push_back(p.input_types[in.a]);
        }
        in.a = slot[in.a];
      } else {
        int n = arity(in.op);
        if (n > 0) in.a = reg[in.a];
        if (n > 1) in.b = reg[in.b];
        if (n > 2) in.c = reg[in.c];
      }
      q.code.push_back(in);
      reg[r] = static_cast<int32_t>(q.code.size() - 1);
    }
    for (int32_t o : outs) q.outputs.push_back(reg[o]);
    p = std::move(q);
    inputs = std::move(ins);
  }

  Program p;
  std::vector<Value*> inputs;

 private:
  using Key = std::tuple<int, int, int32_t, int32_t, int32_t, uint64_t, int64_t>;

  static bool foldable_scalar(const Value& v) {
    if (!v.is_constant() || v.data.numel() != 1 || v.data.dtype() != v.dtype) return false;
    switch (v.dtype) {
      case DataType::kFloat: case DataType::kFloat16: case DataType::kBFloat16:
      case DataType::kDouble: case DataType::kInt8: case DataType::kUInt8: case DataType::kInt16:
      case DataType::kUInt16: case DataType::kInt32: case DataType::kUInt32: case DataType::kInt64:
      case DataType::kBool:
        return true;
      default:
        return false;  // uint64: get_i64 would need care; rare enough to leave loaded
    }
  }

  bool fold_scalars_;
  std::unordered_map<const Value*, int32_t> loads_;
  std::map<Key, int32_t> cse_;
};

struct Merged {
  Program program;
  std::vector<Value*> inputs;
  std::vector<Value*> outputs;  // D's outputs, then F's outputs that stay
};

// F's program followed by D's, D's loads of F's outputs replaced by F's registers. `keep`: F's
// outputs the merged node still writes. Nullopt when the result breaks a limit or would not have
// D's output shape.
std::optional<Merged> merge(const Node& f, const Node& d, const std::vector<Value*>& keep,
                             const BackendTraits& target) {
  const Program& pf = f.a<PointwiseAttrs>().program;
  const Program& pd = d.a<PointwiseAttrs>().program;
  const Shape& out_shape = d.outputs[0]->shape;
  for (bool fold_scalars : {true, false}) {
    Builder b(fold_scalars);
    std::vector<int32_t> fmap(pf.code.size(), -1);
    for (size_t r = 0; r < pf.code.size(); ++r) {
      const Instr& in = pf.code[r];
      fmap[r] = in.op == Op::kInput ? b.load(f.inputs[in.a])
                : in.op == Op::kConst ? b.emit(in)
                                      : b.copy(in, fmap);
    }
    std::vector<int32_t> dmap(pd.code.size(), -1);
    for (size_t r = 0; r < pd.code.size(); ++r) {
      const Instr& in = pd.code[r];
      if (in.op == Op::kInput) {
        Value* v = d.inputs[in.a];
        if (v->producer == &f) {
          size_t j = std::find(f.outputs.begin(), f.outputs.end(), v) - f.outputs.begin();
          dmap[r] = fmap[pf.outputs[j]];
        } else {
          dmap[r] = b.load(v);
        }
      } else {
        dmap[r] = in.op == Op::kConst ? b.emit(in) : b.copy(in, dmap);
      }
    }
    std::vector<int32_t> outs;
    for (int32_t o : pd.outputs) outs.push_back(dmap[o]);
    for (Value* v : keep) {
      size_t j = std::find(f.outputs.begin(), f.outputs.end(), v) - f.outputs.begin();
      outs.push_back(fmap[pf.outputs[j]]);
    }
    b.finish(outs);
    if (b.p.code.size() > kMaxInstructions) return std::nullopt;
    // The target must run the merged program as one kernel (BackendTraits::runs_pointwise).
    if (!target.runs_pointwise(b.p, out_shape.rank())) return std::nullopt;
    // The merged node's shape is the broadcast of its inputs: it must stay D's. (It may not when
    // a folded one-element constant carried the rank; the second try keeps constants loaded.)
    std::vector<Shape> shapes;
    for (Value* v : b.inputs) shapes.push_back(v->shape);
    bool ok = false;
    try {
      ok = same_shape(broadcast_shapes(shapes), out_shape);
    } catch (const Error&) {
      ok = false;
    }
    if (!ok) continue;
    Merged m;
    m.program = std::move(b.p);
    m.inputs = std::move(b.inputs);
    m.outputs = d.outputs;
    m.outputs.insert(m.outputs.end(), keep.begin(), keep.end());
    return m;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// The pass

class Fuser {
 public:
  Fuser(Graph& g, const BackendTraits& target) : g_(g), target_(target) { number(); }

  // Tries to fuse producer f away; true when it is gone.
  bool fuse(Node* f) {
    const Program* pf = fusable(f);
    if (!pf) return false;
    for (const Value* v : f->outputs)
      if (!same_shape(v->shape, f->outputs[0]->shape)) return false;
    std::vector<Node*> consumers;
    bool graph_output = false;
    for (Value* v : f->outputs) {
      graph_output |= g_.is_graph_output(v);
      for (Node* c : v->consumers)
        if (std::find(consumers.begin(), consumers.end(), c) == consumers.end())
          consumers.push_back(c);
    }
    if (consumers.empty()) return false;
    std::sort(consumers.begin(), consumers.end(),
              [&](Node* a, Node* b) { return pos_.at(a) < pos_.at(b); });

    bool all_pointwise = true;
    for (Node* c : consumers) all_pointwise &= fusable(c) != nullptr;
    const bool is_cheap = cheap(*pf);

    if (all_pointwise && !graph_output) {
      // Cases 1 and 2: F's outputs become registers of every consumer; F goes.
      std::vector<Merged> merged;
      bool repeats_any = consumers.size() > 1;
      for (Node* d : consumers) {
        bool repeats = false;
        if (!inlinable(*f, *d, &repeats)) break;
        repeats_any |= repeats;
        std::optional<Merged> m = merge(*f, *d, {}, target_);
        if (!m) break;
        merged.push_back(std::move(*m));
      }
      if (merged.size() == consumers.size() && (is_cheap || !repeats_any)) {
        for (size_t i = 0; i < consumers.size(); ++i) commit(f, consumers[i], std::move(merged[i]));
        g_.remove_node(f);
        if (consumers.size() > 1) {
          ++recomputed_;
          into_ += static_cast<int64_t>(consumers.size());
        } else {
          ++inlined_;
        }
        return true;
      }
    }

    // Case 3: a merged node that also writes F's outputs that others read.
    for (Node* d : consumers) {
      if (!fusable(d) || !same_shape(d->outputs[0]->shape, f->outputs[0]->shape)) continue;
      bool repeats = false;
      if (!inlinable(*f, *d, &repeats)) continue;
      std::vector<Value*> keep;
      for (Value* v : f->outputs) {
        bool others = g_.is_graph_output(v);
        for (Node* c : v->consumers) others |= c != d;
        if (others) keep.push_back(v);
      }
      if (keep.empty() || reaches_other_way(*f, d)) continue;
      std::optional<Merged> m = merge(*f, *d, keep, target_);
      if (!m) continue;
      commit(f, d, std::move(*m));
      g_.remove_node(f);
      // The merged node sits where D was; readers of F's kept outputs placed before it move after.
      g_.toposort();
      number();
      ++multi_output_;
      return true;
    }
    return false;
  }

  int64_t inlined_ = 0, recomputed_ = 0, into_ = 0, multi_output_ = 0;

 private:
  void number() {
    pos_.clear();
    for (size_t i = 0; i < g_.nodes().size(); ++i) pos_[g_.nodes()[i].get()] = i;
  }

  // D may read F's outputs as registers: their types agree, each register is exact, and F's
  // outputs broadcast to D's output shape. *repeats: D reads some element of F more than once.
  static bool inlinable(const Node& f, const Node& d, bool* repeats) {
    const Program& pf = f.a<PointwiseAttrs>().program;
    const Program& pd = d.a<PointwiseAttrs>().program;
    *repeats = false;
    for (size_t i = 0; i < d.inputs.size(); ++i) {
      const Value* v = d.inputs[i];
      if (v->producer != &f) continue;
      size_t j = std::find(f.outputs.begin(), f.outputs.end(), v) - f.outputs.begin();
      int32_t r = pf.outputs[j];
      if (pf.code[r].dtype != pd.input_types[i] || !exact(pf, r)) return false;
      bool rep = false;
      if (!broadcasts_to(v->shape, d.outputs[0]->shape, &rep)) return false;
      *repeats |= rep;
    }
    return true;
  }

  // A path from F to D through some other node: merging them would make a cycle. The order is
  // topological, so only nodes placed before D can lead to it.
  bool reaches_other_way(const Node& f, const Node* d) const {
    const size_t limit = pos_.at(d);
    std::vector<const Node*> stack;
    std::unordered_set<const Node*> seen;
    for (const Value* v : f.outputs)
      for (const Node* c : v->consumers)
        if (c != d && seen.insert(c).second) stack.push_back(c);
    while (!stack.empty()) {
      const Node* n = stack.back();
      stack.pop_back();
      if (pos_.at(n) >= limit) continue;
      for (const Value* v : n->outputs)
        for (const Node* c : v->consumers) {
          if (c == d) return true;
          if (seen.insert(c).second) stack.push_back(c);
        }
    }
    return false;
  }

  void commit(Node* f, Node* d, Merged m) {
    for (Value* v : d->inputs) {
      auto it = std::find(v->consumers.begin(), v->consumers.end(), d);
      if (it != v->consumers.end()) v->consumers.erase(it);
    }
    d->inputs = std::move(m.inputs);
    for (Value* v : d->inputs) v->consumers.push_back(d);
    for (size_t k = d->outputs.size(); k < m.outputs.size(); ++k) m.outputs[k]->producer = d;
    d->outputs = std::move(m.outputs);
    d->a<PointwiseAttrs>().program = std::move(m.program);
    absorb_origins(*d, *f);
    infer_node(*d);
  }

  Graph& g_;
  const BackendTraits& target_;
  std::unordered_map<const Node*, size_t> pos_;
};

}  // namespace

void FusePointwise::run(Graph& g, PassContext& ctx) const {
  Fuser fuser(g, *ctx.target);
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<Node*> order;
    for (auto& n : g.nodes()) order.push_back(n.get());
    // Nodes are only ever removed (a merged node is its consumer, kept in place), so a node of
    // this snapshot is live exactly when not in `gone`.
    std::unordered_set<Node*> gone;
    for (Node* n : order) {
      if (gone.count(n)) continue;
      if (fuser.fuse(n)) {
        gone.insert(n);
        changed = true;
      }
    }
  }
  ctx.stats["fuse_pointwise.inlined"] += fuser.inlined_;
  ctx.stats["fuse_pointwise.recomputed"] += fuser.recomputed_;
  ctx.stats["fuse_pointwise.recomputed_into"] += fuser.into_;
  ctx.stats["fuse_pointwise.multi_output"] += fuser.multi_output_;
  ctx.report(cat("fuse_pointwise: ", fuser.inlined_, " node(s) inlined into their consumer, ",
                 fuser.recomputed_, " recomputed in ", fuser.into_, " consumers, ",
                 fuser.multi_output_, " merged keeping their outputs"));
}

}  // namespace kiln
