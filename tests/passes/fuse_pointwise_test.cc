// FusePointwise: chains of Pointwise nodes become one program. Each case checks the rewritten
// structure and that the rewritten graph computes what the original computes: bit for bit on the
// CPU reference (fusion keeps every rounding), and within rounding in CUDA plans on a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "ir/graph.h"
#include "kiln/kiln.h"
#include "ops/conv.h"
#include "ops/pointwise.h"
#include "ops/pool.h"
#include "ops/softmax.h"
#include "passes/pass.h"
#include "pass_harness.h"

namespace kiln {
namespace {

using namespace passtest;
using expr::Op;
using expr::Program;

constexpr DataType kF32 = DataType::kFloat;

Value* scalar(G& b, const std::string& name, double v, DataType t = kF32) {
  Tensor s(t, {});
  if (dtype_is_float(t)) s.set_f64(0, v);
  else s.set_i64(0, static_cast<int64_t>(v));
  return b.constant(name, s);
}

Value* pw(G& b, Program p, std::vector<Value*> ins, const std::string& hint) {
  auto a = std::make_unique<PointwiseAttrs>();
  a->program = std::move(p);
  return b.node("Pointwise", std::move(ins), std::move(a), hint);
}

Value* cast(G& b, Value* x, DataType to) {
  Program p;
  p.input_types = {x->dtype};
  p.outputs = {p.unary(Op::kCast, p.input(0), to)};
  return pw(b, std::move(p), {x}, "cast");
}

Value* where(G& b, Value* c, Value* x, Value* y) {
  Program p;
  p.input_types = {c->dtype, x->dtype, y->dtype};
  p.outputs = {p.select(p.input(0), p.input(1), p.input(2))};
  return pw(b, std::move(p), {c, x, y}, "where");
}

Value* softmax(G& b, Value* x, int64_t axis) {
  auto a = std::make_unique<SoftmaxAttrs>();
  a->axis = axis;
  return b.node("Softmax", {x}, std::move(a), "softmax");
}

std::vector<const Node*> pointwise_nodes(const Graph& g) {
  std::vector<const Node*> v;
  for (auto& n : g.nodes())
    if (n->op() == "Pointwise") v.push_back(n.get());
  return v;
}

const Program& program_of(const Node* n) { return n->a<PointwiseAttrs>().program; }

int count_instr(const Program& p, Op op) {
  return static_cast<int>(std::count_if(p.code.begin(), p.code.end(),
                                        [&](const expr::Instr& in) { return in.op == op; }));
}

bool has_origin(const Node* n, const std::string& name) {
  auto o = node_origins(*n);
  return std::find(o.begin(), o.end(), name) != o.end();
}

// The name of the node that produced value `v` in graph g (names are made unique by the builder).
std::string producer_name(const Graph& g, const std::string& v) {
  const Value* val = g.find_value(v);
  return val && val->producer ? val->producer->name : "";
}

std::vector<std::string> input_names(const Node* n) {
  std::vector<std::string> v;
  for (const Value* i : n->inputs) v.push_back(i->name);
  std::sort(v.begin(), v.end());
  return v;
}

// The rewrite under test: b's graph is fused in place; `before` is the unfused original.
struct Fused {
  std::unique_ptr<Graph> before;
  PassContext ctx;
};
// Fuses for the CUDA target by default: its kernels' limits are what most cases below exercise.
Fused fuse(G& b, const BackendTraits& target = backend_traits("cuda")) {
  Fused f;
  f.before = b.g->clone();
  f.ctx.target = &target;
  apply(FusePointwise{}, *b.g, f.ctx);
  return f;
}

// ---------------------------------------------------------------------------------------------
// Graphs

// relu((x + y) * k), k per channel.
G chain_graph() {
  G b;
  Value* x = b.input("x", {2, 3, 5, 7});
  Value* y = b.input("y", {2, 3, 5, 7});
  Value* k = b.constant("k", random({3, 1, 1}, b.rng));
  b.output(b.unary(Op::kRelu, b.binary(Op::kMul, b.binary(Op::kAdd, x, y), k)), "out");
  return b;
}

// GELU as exporters write it: x * 0.5 * (1 + erf(x / sqrt(2))), with scalar initializers.
G gelu_graph() {
  G b;
  Value* x = b.input("x", {3, 17, 9});
  Value* d = b.binary(Op::kDiv, x, scalar(b, "sqrt2", 1.4142135623730951));
  Value* e = b.unary(Op::kErf, d);
  Value* a = b.binary(Op::kAdd, e, scalar(b, "one", 1.0));
  Value* m = b.binary(Op::kMul, x, a);
  b.output(b.binary(Op::kMul, m, scalar(b, "half", 0.5)), "y");
  return b;
}

// A [C,1,1] graph input scaled by a [1,C,1,1] constant, added to an [N,C,H,W] tensor: the small
// producer is read for every (n, h, w) of the consumer.
G broadcast_graph() {
  G b;
  Value* x = b.input("x", {2, 3, 5, 7});
  Value* s = b.input("s", {3, 1, 1});
  Value* k = b.constant("k", random({1, 3, 1, 1}, b.rng));
  Value* scaled = b.binary(Op::kMul, s, k);       // [1,3,1,1]
  Value* sum = b.binary(Op::kAdd, x, scaled);     // [2,3,5,7]
  b.output(b.unary(Op::kRelu, sum), "y");
  return b;
}

// The same shape of graph, but the small producer is a chain of transcendentals: repeating it
// for every element of the consumer is not worth a saved store.
G costly_broadcast_graph() {
  G b;
  Value* x = b.input("x", {2, 3, 5, 7});
  Value* s = b.input("s", {3, 1, 1});
  Value* c = b.unary(Op::kTanh, b.unary(Op::kExp, b.unary(Op::kSigmoid, s)));
  b.output(b.binary(Op::kAdd, x, c), "y");
  return b;
}

// a = x + c read by two element-wise consumers that are graph outputs.
G shared_cheap_graph() {
  G b;
  Value* x = b.input("x", {4, 6, 5});
  Value* a = b.binary(Op::kAdd, x, b.constant("c", random({6, 1}, b.rng)));
  b.output(b.unary(Op::kRelu, a), "y1");
  b.output(b.binary(Op::kMul, a, b.input("z", {4, 6, 5})), "y2");
  return b;
}

// A costly producer with two element-wise consumers: merged, not repeated.
G shared_costly_graph() {
  G b;
  Value* x = b.input("x", {4, 6, 5});
  Value* a = b.unary(Op::kTanh, b.unary(Op::kExp, b.unary(Op::kSigmoid, x)));
  b.output(b.unary(Op::kRelu, a), "y1");
  b.output(b.unary(Op::kNeg, a), "y2");
  return b;
}

// a = x * c read by a Relu and by a (non-Pointwise) Pool.
G pool_consumer_graph() {
  G b;
  Value* x = b.input("x", {2, 3, 6, 8});
  Value* a = b.binary(Op::kMul, x, b.constant("c", random({3, 1, 1}, b.rng)));
  b.output(b.unary(Op::kRelu, a), "y");
  b.output(b.pool("max", a, {2, 2}, {2, 2}), "p");
  return b;
}

// a = x - c; y = a * softmax(a): the Mul reads a directly and through the Softmax, so merging the
// Sub into it would need the Softmax's output before the Sub is computed.
G cycle_graph() {
  G b;
  Value* x = b.input("x", {3, 10});
  Value* a = b.binary(Op::kSub, x, b.constant("c", random({10}, b.rng)));
  b.output(b.binary(Op::kMul, a, softmax(b, a, 1)), "y");
  return b;
}

// a = x * 2 is a graph output and is read by the Relu.
G output_intermediate_graph() {
  G b;
  Value* x = b.input("x", {5, 9});
  Value* a = b.binary(Op::kMul, x, scalar(b, "two", 2.0));
  b.output(a, "a");
  b.output(b.unary(Op::kRelu, a), "y");
  return b;
}

// Integer and bool ops: y = where((int32(x * 10) & 1) == 0, x, -x) + (x > 0.25).
G int_bool_graph() {
  G b;
  Value* x = b.input("x", {6, 11});
  Value* i = cast(b, b.binary(Op::kMul, x, scalar(b, "ten", 10.0)), DataType::kInt32);
  Value* odd = b.binary(Op::kBitAnd, i, scalar(b, "one", 1, DataType::kInt32));
  Value* even = b.binary(Op::kEq, odd, scalar(b, "zero", 0, DataType::kInt32));
  Value* w = where(b, even, x, b.unary(Op::kNeg, x));
  Value* big = cast(b, b.binary(Op::kGt, x, scalar(b, "quarter", 0.25)), kF32);
  b.output(b.binary(Op::kAdd, w, big), "y");
  return b;
}

// conv(x) * k + y -> sigmoid: in float16 the Conv's output and the element-wise chain are
// float16 tensors (AssignPrecision), y comes in as float32 and the output goes out as float32.
G float16_graph() {
  G b;
  Value* x = b.input("x", {2, 3, 6, 5});
  Value* y = b.input("y", {2, 4, 6, 5});
  Value* c = b.conv(x, 4, 3);
  Value* m = b.binary(Op::kMul, c, b.constant("k", random({4, 1, 1}, b.rng)));
  Value* s = b.binary(Op::kAdd, m, y);
  b.output(b.unary(Op::kSigmoid, b.unary(Op::kNeg, s)), "out");
  return b;
}

// x0 + x1 + ... + x60 over rank-8 tensors: one program would need more kernel parameters than
// the generated CUDA kernels take (rank 8: at most 50 inputs).
G wide_graph(int n, size_t rank) {
  G b;
  Dims d(rank, 1);
  d[rank - 1] = 5;
  d[rank - 2] = 3;
  Value* acc = b.input("x0", d);
  for (int i = 1; i <= n; ++i) acc = b.binary(Op::kAdd, acc, b.input("x" + std::to_string(i), d));
  b.output(acc, "y");
  return b;
}

// ---------------------------------------------------------------------------------------------
// CPU: structure and bit-identical results

TEST(FusePointwise, ChainBecomesOneNode) {
  G b = chain_graph();
  Fused f = fuse(b);
  ASSERT_EQ(ops_of(*b.g), std::vector<std::string>{"Pointwise"});
  const Node* n = b.g->nodes()[0].get();
  EXPECT_EQ(n->outputs[0]->name, "out");
  EXPECT_EQ(n->name, producer_name(*f.before, "out"));  // the last consumer keeps its name
  EXPECT_EQ(node_origins(*n).size(), 3u);
  for (auto& orig : f.before->nodes()) EXPECT_TRUE(has_origin(n, orig->name)) << orig->name;
  // x, y and k, each loaded once; the program is the three ops, nothing else.
  EXPECT_EQ(input_names(n), (std::vector<std::string>{"k", "x", "y"}));
  const Program& p = program_of(n);
  EXPECT_EQ(p.code.size(), 6u);
  EXPECT_EQ(count_instr(p, Op::kInput), 3);
  EXPECT_EQ(count_instr(p, Op::kAdd), 1);
  EXPECT_EQ(count_instr(p, Op::kMul), 1);
  EXPECT_EQ(p.code[p.outputs[0]].op, Op::kRelu);
  EXPECT_EQ(f.ctx.stats["fuse_pointwise.inlined"], 2);
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
}

TEST(FusePointwise, ExportedGeluBecomesOneNodeOverItsInput) {
  G b = gelu_graph();
  Fused f = fuse(b);
  ASSERT_EQ(ops_of(*b.g), std::vector<std::string>{"Pointwise"});
  const Node* n = b.g->nodes()[0].get();
  EXPECT_EQ(n->outputs[0]->name, "y");
  // x is read twice by the original graph and once by the fused node; the scalar initializers
  // became program constants.
  ASSERT_EQ(n->inputs.size(), 1u);
  EXPECT_EQ(n->inputs[0]->name, "x");
  const Program& p = program_of(n);
  EXPECT_EQ(count_instr(p, Op::kInput), 1);
  EXPECT_EQ(count_instr(p, Op::kConst), 3);
  EXPECT_EQ(count_instr(p, Op::kErf), 1);
  EXPECT_EQ(node_origins(*n).size(), 5u);
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
}

TEST(FusePointwise, BroadcastingComposes) {
  G b = broadcast_graph();
  Fused f = fuse(b);
  ASSERT_EQ(ops_of(*b.g), std::vector<std::string>{"Pointwise"});
  const Node* n = b.g->nodes()[0].get();
  EXPECT_EQ(n->outputs[0]->shape.str(), "[2,3,5,7]");
  std::vector<std::string> shapes;
  for (Value* v : n->inputs) shapes.push_back(v->shape.str());
  std::sort(shapes.begin(), shapes.end());
  EXPECT_EQ(shapes, (std::vector<std::string>{"[1,3,1,1]", "[2,3,5,7]", "[3,1,1]"}));
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
}

TEST(FusePointwise, CostlyProducerIsNotRepeatedPerBroadcastElement) {
  G b = costly_broadcast_graph();
  Fused f = fuse(b);
  // The transcendental chain fuses with itself (same shape) but not into the broadcasting Add.
  auto nodes = pointwise_nodes(*b.g);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0]->outputs[0]->shape.str(), "[3,1,1]");
  EXPECT_EQ(program_of(nodes[0]).code.size(), 4u);
  EXPECT_EQ(nodes[1]->outputs[0]->name, "y");
  EXPECT_EQ(program_of(nodes[1]).code.size(), 3u);
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
}

TEST(FusePointwise, CheapSharedProducerIsRecomputedInEachConsumer) {
  G b = shared_cheap_graph();
  Fused f = fuse(b);
  const std::string add = f.before->nodes()[0]->name;
  auto nodes = pointwise_nodes(*b.g);
  ASSERT_EQ(nodes.size(), 2u);
  for (const Node* n : nodes) {
    ASSERT_EQ(n->outputs.size(), 1u);
    EXPECT_EQ(count_instr(program_of(n), Op::kAdd), 1) << n->label();
    EXPECT_TRUE(has_origin(n, add)) << n->label();
    EXPECT_EQ(n->name, producer_name(*f.before, n->outputs[0]->name));
  }
  EXPECT_EQ(nodes[0]->outputs[0]->name, "y1");
  EXPECT_EQ(nodes[1]->outputs[0]->name, "y2");
  EXPECT_EQ(f.ctx.stats["fuse_pointwise.recomputed"], 1);
  EXPECT_EQ(f.ctx.stats["fuse_pointwise.recomputed_into"], 2);
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
}

TEST(FusePointwise, RecomputedProducerIsSharedAgainWhenItsConsumersMeet) {
  // a = x * c feeds relu(a) and sigmoid(a), which meet in a Mul: a is inlined into both, and the
  // two copies become one register when they land in one program.
  G b;
  Value* x = b.input("x", {7, 9});
  Value* a = b.binary(Op::kMul, x, b.constant("c", random({9}, b.rng)));
  b.output(b.binary(Op::kMul, b.unary(Op::kRelu, a), b.unary(Op::kSigmoid, a)), "y");
  Fused f = fuse(b);
  ASSERT_EQ(ops_of(*b.g), std::vector<std::string>{"Pointwise"});
  const Program& p = program_of(b.g->nodes()[0].get());
  EXPECT_EQ(count_instr(p, Op::kMul), 2);  // x * c once, and the final product
  EXPECT_EQ(count_instr(p, Op::kInput), 2);
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
}

TEST(FusePointwise, CostlySharedProducerMergesWithoutRepeating) {
  G b = shared_costly_graph();
  Fused f = fuse(b);
  ASSERT_EQ(ops_of(*b.g), std::vector<std::string>{"Pointwise"});
  const Node* n = b.g->nodes()[0].get();
  const Program& p = program_of(n);
  // Each transcendental appears once: the merged node writes both outputs.
  EXPECT_EQ(count_instr(p, Op::kExp), 1);
  EXPECT_EQ(count_instr(p, Op::kTanh), 1);
  std::vector<std::string> outs;
  for (Value* v : n->outputs) outs.push_back(v->name);
  std::sort(outs.begin(), outs.end());
  EXPECT_EQ(outs, (std::vector<std::string>{"y1", "y2"}));
  EXPECT_EQ(f.ctx.stats["fuse_pointwise.recomputed"], 0);
  EXPECT_GE(f.ctx.stats["fuse_pointwise.multi_output"], 1);
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
}

TEST(FusePointwise, ProducerWithAPoolConsumerBecomesASecondOutput) {
  G b = pool_consumer_graph();
  Fused f = fuse(b);
  ASSERT_EQ(ops_of(*b.g), (std::vector<std::string>{"Pointwise", "Pool"}));
  const Node* n = b.g->nodes()[0].get();
  ASSERT_EQ(n->outputs.size(), 2u);
  EXPECT_EQ(n->outputs[0]->name, "y");
  EXPECT_EQ(first(*b.g, "Pool")->inputs[0], n->outputs[1]);  // the Pool reads the kept value
  const Program& p = program_of(n);
  EXPECT_EQ(count_instr(p, Op::kMul), 1);  // computed once, for both outputs
  EXPECT_EQ(f.ctx.stats["fuse_pointwise.multi_output"], 1);
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
}

TEST(FusePointwise, NoMergeThatWouldMakeACycle) {
  G b = cycle_graph();
  Fused f = fuse(b);
  EXPECT_EQ(ops_of(*b.g), (std::vector<std::string>{"Pointwise", "Softmax", "Pointwise"}));
  EXPECT_EQ(f.ctx.stats["fuse_pointwise.multi_output"], 0);
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
}

TEST(FusePointwise, GraphOutputIntermediateIsKept) {
  G b = output_intermediate_graph();
  Fused f = fuse(b);
  ASSERT_EQ(ops_of(*b.g), std::vector<std::string>{"Pointwise"});
  const Node* n = b.g->nodes()[0].get();
  ASSERT_EQ(n->outputs.size(), 2u);
  EXPECT_EQ(n->outputs[0]->name, "y");
  EXPECT_EQ(n->outputs[1]->name, "a");
  EXPECT_EQ(b.g->find_value("a")->producer, n);
  EXPECT_EQ(b.g->outputs[0]->name, "a");
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
}

TEST(FusePointwise, IntegerAndBoolOps) {
  G b = int_bool_graph();
  Fused f = fuse(b);
  ASSERT_EQ(ops_of(*b.g), std::vector<std::string>{"Pointwise"});
  const Node* n = b.g->nodes()[0].get();
  ASSERT_EQ(n->inputs.size(), 1u);
  const Program& p = program_of(n);
  EXPECT_EQ(count_instr(p, Op::kSelect), 1);
  EXPECT_EQ(count_instr(p, Op::kEq), 1);
  EXPECT_EQ(count_instr(p, Op::kBitAnd), 1);
  EXPECT_EQ(count_instr(p, Op::kInput), 1);  // x, read by four of the original nodes
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
}

TEST(FusePointwise, Float16ChainKeepsEveryRounding) {
  G b = float16_graph();
  auto original = b.g->clone();
  PassContext pctx;
  pctx.fp16 = true;
  apply(AssignPrecision{}, *b.g, pctx);
  int before_nodes = static_cast<int>(pointwise_nodes(*b.g).size());
  ASSERT_GE(before_nodes, 4);  // the Mul, Add, Neg and Sigmoid, and Casts at the edges
  Fused f = fuse(b);
  auto nodes = pointwise_nodes(*b.g);
  // The Cast of x in front of the Conv stays (its consumer is the Conv); everything after the
  // Conv is one program.
  ASSERT_EQ(nodes.size(), 2u);
  const Node* n = nodes[1];
  EXPECT_EQ(n->outputs[0]->name, "out");
  EXPECT_EQ(n->outputs[0]->dtype, kF32);
  EXPECT_EQ(input_names(n), (std::vector<std::string>{first(*b.g, "Conv")->outputs[0]->name, "k",
                                                      "y"}));
  EXPECT_EQ(first(*b.g, "Conv")->outputs[0]->dtype, DataType::kFloat16);
  // The float16 stores between the nodes survive as casts to float16 inside the program.
  int to_half = 0;
  for (const expr::Instr& in : program_of(n).code)
    to_half += in.op == Op::kCast && in.dtype == DataType::kFloat16;
  EXPECT_GE(to_half, 3);
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
  expect_same_outputs(*original, *b.g, 1e-2, b.rng);
}

TEST(FusePointwise, StopsAtTheKernelParameterLimit) {
  G b = wide_graph(60, 8);
  Fused f = fuse(b);
  auto nodes = pointwise_nodes(*b.g);
  ASSERT_EQ(nodes.size(), 2u);
  for (const Node* n : nodes) EXPECT_LE(n->inputs.size(), 50u) << n->label();
  EXPECT_EQ(nodes[0]->inputs.size(), 50u);
  expect_same_outputs(*f.before, *b.g, 0, b.rng);
}

TEST(FusePointwise, NothingAboveTheKernelRank) {
  G b = wide_graph(3, 9);
  Fused f = fuse(b);
  EXPECT_EQ(pointwise_nodes(*b.g).size(), 3u);
}

TEST(FusePointwise, TheCpuTargetHasNoKernelLimits) {
  // The pass asks the target what one kernel runs: the CPU interprets any program, so the wide
  // chain and the rank-9 chain each become one node there.
  for (auto [n, rank] : {std::pair{60, size_t{8}}, std::pair{3, size_t{9}}}) {
    G b = wide_graph(n, rank);
    Fused f = fuse(b, backend_traits("cpu"));
    EXPECT_EQ(pointwise_nodes(*b.g).size(), 1u) << n << " inputs, rank " << rank;
    expect_same_outputs(*f.before, *b.g, 0, b.rng);
  }
}

TEST(FusePointwise, UnknownShapesAreLeftAlone) {
  // The producer's output rank is unknown: whether it broadcasts to the consumer cannot be shown.
  Graph g;
  Value* x = g.add_value("x", kF32, Shape::unknown_rank());
  Value* y = g.add_value("y", kF32, Shape::from({4, 3}));
  g.inputs = {x, y};
  auto neg = std::make_unique<PointwiseAttrs>();
  neg->program.input_types = {kF32};
  neg->program.outputs = {neg->program.unary(Op::kNeg, neg->program.input(0))};
  Value* a = g.add_value("a");
  g.add_node("Pointwise", {x}, {a}, std::move(neg), "neg");
  auto add = std::make_unique<PointwiseAttrs>();
  add->program.input_types = {kF32, kF32};
  add->program.outputs = {add->program.binary(Op::kAdd, add->program.input(0),
                                              add->program.input(1))};
  Value* s = g.add_value("s");
  g.add_node("Pointwise", {a, y}, {s}, std::move(add), "add");
  g.outputs = {s};
  infer_graph(g);
  PassContext ctx;
  apply(FusePointwise{}, g, ctx);
  EXPECT_EQ(g.nodes().size(), 2u);
}

TEST(FusePointwise, RunsInThePipeline) {
  G b = gelu_graph();
  auto before = b.g->clone();
  PassContext ctx;
  run_pipeline(*b.g, ctx);
  EXPECT_EQ(ops_of(*b.g), std::vector<std::string>{"Pointwise"});
  EXPECT_EQ(ctx.stats["fuse_pointwise.inlined"], 4);
  expect_same_outputs(*before, *b.g, 0, b.rng);
}

// ---------------------------------------------------------------------------------------------
// GPU: the fused graphs in CUDA plans compute what the originals compute.

// Fuses b's graph and compares both on the GPU; false when there is no GPU.
bool fuse_and_compare_on_gpu(G& b, double rtol = 1e-5) {
  Fused f = fuse(b);
  EXPECT_LT(b.g->nodes().size(), f.before->nodes().size());
  return expect_same_outputs_on_gpu(*f.before, *b.g, rtol, b.rng);
}

TEST(FusePointwiseGpu, Chain) {
  G b = chain_graph();
  if (!fuse_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
}

TEST(FusePointwiseGpu, Gelu) {
  G b = gelu_graph();
  if (!fuse_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
}

TEST(FusePointwiseGpu, Broadcasting) {
  G b = broadcast_graph();
  if (!fuse_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
}

TEST(FusePointwiseGpu, CostlyBroadcastProducer) {
  G b = costly_broadcast_graph();
  if (!fuse_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
}

TEST(FusePointwiseGpu, CheapSharedProducer) {
  G b = shared_cheap_graph();
  if (!fuse_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
}

TEST(FusePointwiseGpu, CostlySharedProducer) {
  G b = shared_costly_graph();
  if (!fuse_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
}

TEST(FusePointwiseGpu, PoolConsumer) {
  G b = pool_consumer_graph();
  if (!fuse_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
}

TEST(FusePointwiseGpu, GraphOutputIntermediate) {
  G b = output_intermediate_graph();
  if (!fuse_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
}

TEST(FusePointwiseGpu, IntegerAndBoolOps) {
  G b = int_bool_graph();
  if (!fuse_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
}

TEST(FusePointwiseGpu, WideChainSplitAtTheParameterLimit) {
  G b = wide_graph(60, 8);
  if (!fuse_and_compare_on_gpu(b)) GTEST_SKIP() << "no GPU";
}

TEST(FusePointwiseGpu, Float16Chain) {
  G b = float16_graph();
  PassContext pctx;
  pctx.fp16 = true;
  apply(AssignPrecision{}, *b.g, pctx);
  // Both graphs hold the same float16 roundings; cuDNN's float16 Conv and the GPU's sigmoid may
  // differ from the reference's by an ulp, which a float16 rounding can widen.
  if (!fuse_and_compare_on_gpu(b, 1e-2)) GTEST_SKIP() << "no GPU";
}

}  // namespace
}  // namespace kiln
