// Shared by the pass tests: random tensors, a node-by-node reference run of a graph, the
// "rewritten graph computes what the original computes" check on the CPU reference and in a plan
// on the GPU, and a small graph builder.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "builder/build_plan.h"
#include "ir/graph.h"
#include "kiln/kiln.h"
#include "ops/conv.h"
#include "ops/infer.h"
#include "ops/op.h"
#include "ops/pointwise.h"
#include "ops/pool.h"
#include "passes/pass.h"
#include "plan/plan_data.h"
#include "runtime/backend.h"

namespace kiln::passtest {

using expr::Op;


inline Tensor random(Dims d, std::mt19937& rng, double scale = 1.0) {
  Tensor t(DataType::kFloat, std::move(d));
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(u(rng) * scale);
  return t;
}

// Runs g node by node with the reference computes (a clone, since inference writes shapes).
inline std::vector<Tensor> run(const Graph& graph, const std::map<std::string, Tensor>& inputs) {
  std::unique_ptr<Graph> g = graph.clone();
  std::map<const Value*, Tensor> vals;
  for (Value* v : g->inputs) vals[v] = inputs.at(v->name);
  for (const auto& v : g->values())
    if (v->is_constant()) vals[v.get()] = v->data;
  for (const auto& n : g->nodes()) {
    std::vector<Tensor> ins(n->inputs.size());
    std::vector<const Tensor*> known(n->inputs.size(), nullptr);
    for (size_t k = 0; k < n->inputs.size(); ++k) {
      if (!n->inputs[k]) continue;
      ins[k] = vals.at(n->inputs[k]);
      known[k] = &ins[k];
    }
    InferContext ctx(*n, known);
    n->def->infer(ctx);
    std::vector<Tensor> outs(n->outputs.size());
    for (size_t k = 0; k < outs.size(); ++k)
      outs[k] = Tensor(n->outputs[k]->dtype, n->outputs[k]->shape.concrete());
    n->def->compute(ComputeArgs{*n, ins, outs});
    for (size_t k = 0; k < outs.size(); ++k) vals[n->outputs[k]] = outs[k];
  }
  std::vector<Tensor> res;
  for (const Value* v : g->outputs) res.push_back(vals.at(v));
  return res;
}

// Element by element, as ONNX's checks: |got - want| <= atol + rtol * |want| (NaN only for NaN).
// The harness's inputs are uniform in [-1, 1] and its weights scaled so that outputs are O(1), so
// atol defaults to rtol: an absolute floor of the same size for values near zero, never a
// tolerance that grows with the tensor's largest element (a sign flip of 0.001 beside 1000 fails).
inline int count_mismatches(const Tensor& got, const Tensor& want, double rtol, double atol,
                            int report = 5) {
  int bad = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    double g = got.get_f64(i), w = want.get_f64(i);
    bool ok = std::isnan(w) ? std::isnan(g) : std::fabs(g - w) <= atol + rtol * std::fabs(w);
    if (!ok && bad++ < report) ADD_FAILURE() << "element " << i << ": " << g << ", want " << w;
  }
  if (bad > report) ADD_FAILURE() << bad << " of " << want.numel() << " elements differ";
  return bad;
}
inline double max_magnitude(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(t.get_f64(i)));
  return m;
}

// Same outputs (names, types, shapes, values element by element within atol + rtol * |want|;
// atol < 0 means atol = rtol).
inline void expect_same_outputs(const Graph& before, const Graph& after, double rtol,
                                std::mt19937& rng, double atol = -1) {
  if (atol < 0) atol = rtol;
  ASSERT_EQ(before.inputs.size(), after.inputs.size());
  ASSERT_EQ(before.outputs.size(), after.outputs.size());
  std::map<std::string, Tensor> in;
  for (size_t i = 0; i < before.inputs.size(); ++i) {
    EXPECT_EQ(before.inputs[i]->name, after.inputs[i]->name);
    EXPECT_EQ(before.inputs[i]->dtype, after.inputs[i]->dtype);
    in[before.inputs[i]->name] = random(before.inputs[i]->shape.concrete(), rng);
  }
  std::vector<Tensor> want = run(before, in), got = run(after, in);
  for (size_t k = 0; k < want.size(); ++k) {
    SCOPED_TRACE("output " + before.outputs[k]->name);
    EXPECT_EQ(before.outputs[k]->name, after.outputs[k]->name);
    ASSERT_EQ(got[k].dtype(), want[k].dtype());
    ASSERT_EQ(dims_to_string(got[k].dims()), dims_to_string(want[k].dims()));
    ASSERT_GT(max_magnitude(want[k]), 0) << "an all-zero output proves nothing";
    count_mismatches(got[k], want[k], rtol, atol);
  }
}

// Runs one pass the way the pipeline does (dead-node elimination and the verifier after it).
template <class P>
void apply(const P& pass, Graph& g, PassContext& ctx) {
  pass.run(g, ctx);
  EliminateDead{}.run(g, ctx);
  verify_graph(g);
}

inline std::vector<std::string> ops_of(const Graph& g) {
  std::vector<std::string> v;
  for (auto& n : g.nodes()) v.emplace_back(n->op());
  return v;
}
inline int count_op(const Graph& g, std::string_view op) {
  int c = 0;
  for (auto& n : g.nodes()) c += n->op() == op;
  return c;
}
inline const Node* first(const Graph& g, std::string_view op) {
  for (auto& n : g.nodes())
    if (n->op() == op) return n.get();
  return nullptr;
}
inline bool is_cast(const Node& n) {
  if (n.op() != "Pointwise") return false;
  const auto& p = n.a<PointwiseAttrs>().program;
  return p.code.size() == 2 && p.code[1].op == Op::kCast;
}
inline int count_casts(const Graph& g) {
  int c = 0;
  for (auto& n : g.nodes()) c += is_cast(*n);
  return c;
}

// Small graphs through the Graph API.
class G {
 public:
  G() : g(std::make_unique<Graph>()) {}
  Value* input(const std::string& name, Dims d) {
    Value* v = g->add_value(name, DataType::kFloat, Shape::from(d));
    g->inputs.push_back(v);
    return v;
  }
  Value* constant(const std::string& name, Tensor t) { return g->add_constant(name, std::move(t)); }
  Value* conv(Value* x, int64_t m, int64_t k, bool bias = true, int64_t stride = 1,
              bool transposed = false) {
    int64_t c = x->shape[1].value;
    auto a = std::make_unique<ConvAttrs>();
    a->strides = {stride, stride};
    if (!transposed) a->pads = {k / 2, k / 2, k / 2, k / 2};
    a->transposed = transposed;
    double s = 1.0 / std::sqrt(static_cast<double>(c * k * k));
    Dims wd = transposed ? Dims{c, m, k, k} : Dims{m, c, k, k};
    std::vector<Value*> ins{x, constant("w", random(wd, rng, s))};
    if (bias) ins.push_back(constant("b", random({m}, rng, 0.5)));
    return node("Conv", ins, std::move(a), "conv");
  }
  Value* unary(Op op, Value* x) {
    auto a = std::make_unique<PointwiseAttrs>();
    a->program.input_types = {x->dtype};
    a->program.outputs = {a->program.unary(op, a->program.input(0))};
    return node("Pointwise", {x}, std::move(a), expr::op_name(op));
  }
  Value* binary(Op op, Value* x, Value* y) {
    auto a = std::make_unique<PointwiseAttrs>();
    a->program.input_types = {x->dtype, y->dtype};
    a->program.outputs = {a->program.binary(op, a->program.input(0), a->program.input(1))};
    return node("Pointwise", {x, y}, std::move(a), expr::op_name(op));
  }
  Value* pool(const std::string& kind, Value* x, Ints kernel, Ints strides = {}, Ints pads = {}) {
    auto a = std::make_unique<PoolAttrs>();
    a->kind = kind;
    a->global = kernel.empty();
    a->kernel = std::move(kernel);
    a->strides = std::move(strides);
    a->pads = std::move(pads);
    return node("Pool", {x}, std::move(a), "pool");
  }
  Value* node(const std::string& op, std::vector<Value*> ins, std::unique_ptr<Attrs> a,
              const std::string& hint) {
    Value* out = g->add_value(hint);
    infer_node(*g->add_node(op, std::move(ins), {out}, std::move(a), g->unique_name(hint)));
    return out;
  }
  void output(Value* v, const std::string& name) {
    g->rename(v, name);
    g->outputs.push_back(v);
  }

  std::unique_ptr<Graph> g;
  std::mt19937 rng{17};
};


// One run of a plan in a fresh engine and context (the test fails where any step does not work).
inline std::map<std::string, Tensor> run_plan(const std::shared_ptr<Plan>& p,
                                              const std::map<std::string, Tensor>& inputs) {
  std::map<std::string, Tensor> out;
  std::shared_ptr<Engine> e;
  EXPECT_TRUE(Engine::create(p, e).is_ok());
  if (!e) return out;
  std::unique_ptr<ExecutionContext> c;
  EXPECT_TRUE(e->create_context(c).is_ok());
  if (!c) return out;
  Status s = c->run(inputs, out);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return out;
}

// The GPU half of "fused and unfused give the same outputs": both graphs are built into plans
// for the CUDA backend at opt level 0 (so that only the rewrite under test differs) and run on
// the same random inputs; each must match the CPU reference of `before` element by element
// within atol + rtol * |want| (atol < 0: atol = rtol), and every step of both plans must run on
// a device tactic (a host-fallback step would compare the reference with itself). Returns false
// (and checks nothing) when there is no GPU: callers skip then.
inline bool expect_same_outputs_on_gpu(const Graph& before, const Graph& after, double rtol,
                                       std::mt19937& rng, double atol = -1) {
  if (!find_backend("cuda")) return false;
  if (atol < 0) atol = rtol;
  std::map<std::string, Tensor> in;
  for (Value* v : before.inputs) in[v->name] = random(v->shape.concrete(), rng);
  std::vector<Tensor> want = run(before, in);
  for (const Graph* g : {&before, &after}) {
    SCOPED_TRACE(g == &before ? "unfused graph on the GPU" : "fused graph on the GPU");
    BuildOptions o;
    o.device = "cuda";
    o.opt_level = 0;
    std::shared_ptr<Plan> plan = PlanAccess::make(build_plan(g->clone(), o));
    for (const PlanStep& st : plan->steps())
      EXPECT_FALSE(st.on_host) << st.op << " '" << st.name << "' ran on the host (" << st.tactic
                               << "), not on the GPU";
    std::shared_ptr<Engine> engine;
    EXPECT_TRUE(Engine::create(plan, engine).is_ok());
    if (!engine) return true;
    std::unique_ptr<ExecutionContext> ctx;
    EXPECT_TRUE(engine->create_context(ctx).is_ok());
    std::map<std::string, Tensor> out;
    Status s = ctx->run(in, out);
    EXPECT_TRUE(s.is_ok()) << s.message();
    for (size_t k = 0; k < want.size(); ++k) {
      const std::string& name = before.outputs[k]->name;
      SCOPED_TRACE("output " + name);
      if (!out.count(name)) { ADD_FAILURE() << "missing output"; continue; }
      const Tensor& got = out.at(name);
      EXPECT_GT(max_magnitude(want[k]), 0) << "an all-zero output proves nothing";
      EXPECT_EQ(dims_to_string(got.dims()), dims_to_string(want[k].dims()));
      if (got.numel() != want[k].numel()) continue;
      count_mismatches(got, want[k], rtol, atol);
    }
  }
  return true;
}

}  // namespace kiln::passtest
