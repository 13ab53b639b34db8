// The activation memory planner (runtime/memory_plan.h) on small graphs: which values share
// storage (eliminated Concats, Reshape and Slice views, in-place element-wise steps), which must
// not, and that no two values alive at the same time overlap in the arena unless one is stored
// inside the other by design.
#include <gtest/gtest.h>

#include "../passes/pass_harness.h"
#include "ops/concat.h"
#include "ops/reshape.h"
#include "ops/slice.h"
#include "runtime/memory_plan.h"

namespace kiln {
namespace {

using namespace passtest;

struct Planned {
  std::unordered_map<const Value*, size_t> index;
  std::vector<Dims> dims;
  std::vector<size_t> last_use;
  MemoryPlan plan;
  size_t off(const Value* v) const { return plan.offset[index.at(v)]; }
};

Planned plan_of(const Graph& g, bool share = true) {
  Planned p;
  for (size_t i = 0; i < g.values().size(); ++i) p.index[g.values()[i].get()] = i;
  p.dims.resize(g.values().size());
  for (size_t i = 0; i < g.values().size(); ++i)
    if (g.values()[i]->shape.fully_known()) p.dims[i] = g.values()[i]->shape.concrete();
  p.last_use.assign(g.values().size(), 0);
  for (size_t s = 0; s < g.nodes().size(); ++s)
    for (Value* v : g.nodes()[s]->inputs)
      if (v) p.last_use[p.index[v]] = s;
  for (Value* v : g.outputs) p.last_use[p.index[v]] = SIZE_MAX;
  MemoryPlanRequest r;
  r.graph = &g;
  r.index = &p.index;
  r.dims = &p.dims;
  r.last_use = &p.last_use;
  r.in_place_ok = [&](size_t s, size_t) { return g.nodes()[s]->op() == "Pointwise"; };
  r.share = share;
  p.plan = plan_memory(r);
  return p;
}

size_t nbytes(const Planned& p, const Value* v) {
  return static_cast<size_t>(dims_volume(p.dims[p.index.at(v)])) * dtype_size(v->dtype);
}

// Values alive at the same step never overlap, except where `shares(a, b)` says one is stored in
// the other (a view, a Concat input, an in-place output and its input).
void expect_no_clobbering(const Graph& g, const Planned& p,
                          const std::function<bool(const Value*, const Value*)>& shares) {
  std::unordered_map<const Node*, size_t> step;
  for (size_t s = 0; s < g.nodes().size(); ++s) step[g.nodes()[s].get()] = s;
  std::vector<const Value*> acts;
  for (const auto& v : g.values())
    if (!v->is_constant() && (v->producer || g.is_graph_input(v.get()))) acts.push_back(v.get());
  auto range = [&](const Value* v) {
    size_t b = v->producer ? step.at(v->producer) : 0;
    size_t e = p.last_use[p.index.at(v)];
    return std::pair<size_t, size_t>{b, e == SIZE_MAX ? g.nodes().size() : std::max(b, e)};
  };
  for (const Value* a : acts) {
    ASSERT_NE(p.off(a), MemoryPlan::kNoOffset) << a->name;
    EXPECT_LE(p.off(a) + nbytes(p, a), p.plan.arena_bytes) << a->name;
    for (const Value* b : acts) {
      if (a >= b || shares(a, b) || shares(b, a)) continue;
      auto [ab, ae] = range(a);
      auto [bb, be] = range(b);
      if (ae < bb || be < ab) continue;
      bool disjoint = p.off(a) + nbytes(p, a) <= p.off(b) || p.off(b) + nbytes(p, b) <= p.off(a);
      EXPECT_TRUE(disjoint) << a->name << " and " << b->name << " overlap while both are alive";
    }
  }
}

Value* concat(G& g, std::vector<Value*> ins, int64_t axis) {
  auto a = std::make_unique<ConcatAttrs>();
  a->axis = axis;
  return g.node("Concat", std::move(ins), std::move(a), "concat");
}

Value* slice(G& g, Value* x, int64_t axis, int64_t start, int64_t end) {
  auto i64 = [&](int64_t v) {
    return g.constant("s", Tensor::from_vector<int64_t>(DataType::kInt64, {1}, {v}));
  };
  return g.node("Slice", {x, i64(start), i64(end), i64(axis)}, std::make_unique<SliceAttrs>(),
                "slice");
}

TEST(MemoryPlan, ConcatOfContiguousSlicesIsEliminated) {
  G g;
  Value* x = g.input("x", {1, 4, 5, 5});
  Value* a = g.unary(Op::kRelu, x);
  Value* b = g.unary(Op::kNeg, x);
  Value* c = concat(g, {a, b}, 1);
  g.output(g.unary(Op::kExp, c), "y");
  Planned p = plan_of(*g.g);
  ASSERT_TRUE(p.plan.skip[2]) << "the Concat step should have nothing to do";
  EXPECT_EQ(p.off(a), p.off(c));
  EXPECT_EQ(p.off(b), p.off(c) + 4 * 25 * sizeof(float));
  EXPECT_EQ(p.plan.views, 2);
  expect_no_clobbering(*g.g, p, [&](const Value* u, const Value* v) {
    return v == c && (u == a || u == b);
  });
}

TEST(MemoryPlan, StridedConcatAndSharedInputsKeepTheirCopy) {
  {
    G g;   // batch 2: each input's slice of the output is two separate ranges
    Value* x = g.input("x", {2, 4, 5, 5});
    Value* c = concat(g, {g.unary(Op::kRelu, x), g.unary(Op::kNeg, x)}, 1);
    g.output(g.unary(Op::kExp, c), "y");
    Planned p = plan_of(*g.g);
    EXPECT_FALSE(p.plan.skip[2]);
    expect_no_clobbering(*g.g, p, [](const Value*, const Value*) { return false; });
  }
  {
    G g;   // an input read by another step as well, and a graph input, stay where they are
    Value* x = g.input("x", {1, 4, 5, 5});
    Value* a = g.unary(Op::kRelu, x);
    Value* c = concat(g, {a, x}, 1);
    Value* d = g.binary(Op::kAdd, g.unary(Op::kExp, c), g.unary(Op::kExp, c));
    (void)d;
    g.output(g.binary(Op::kAdd, d, d), "y");
    Planned p = plan_of(*g.g);
    EXPECT_FALSE(p.plan.skip[1]);
  }
}

TEST(MemoryPlan, ReshapeAndContiguousSliceAreViews) {
  G g;
  Value* x = g.input("x", {1, 6, 4, 4});
  Value* a = g.unary(Op::kRelu, x);
  Value* shape = g.constant("shape", Tensor::from_vector<int64_t>(DataType::kInt64, {2}, {6, 16}));
  Value* r = g.node("Reshape", {a, shape}, std::make_unique<ReshapeAttrs>(), "reshape");
  Value* s = slice(g, r, 0, 2, 5);        // rows 2..4 of [6,16]: contiguous
  Value* t = slice(g, a, 2, 1, 3);        // rows of H in [1,6,4,4]: strided, a copy
  g.output(g.unary(Op::kExp, s), "y");
  g.output(g.unary(Op::kExp, t), "z");
  Planned p = plan_of(*g.g);
  EXPECT_TRUE(p.plan.skip[1]);
  EXPECT_TRUE(p.plan.skip[2]);
  EXPECT_FALSE(p.plan.skip[3]);
  EXPECT_EQ(p.off(r), p.off(a));
  EXPECT_EQ(p.off(s), p.off(a) + 2 * 16 * sizeof(float));
  expect_no_clobbering(*g.g, p, [&](const Value* u, const Value* v) {
    return (u == r && v == a) || (u == s && (v == a || v == r));
  });
}

TEST(MemoryPlan, ElementwiseStepsRunInPlaceOnlyOverDeadInputs) {
  G g;
  Value* x = g.input("x", {3, 7, 5});
  Value* a = g.unary(Op::kRelu, x);     // over a graph input: not in place
  Value* b = g.unary(Op::kNeg, a);      // in place over a
  Value* c = g.unary(Op::kExp, b);      // b is read again below: not in place
  Value* d = g.binary(Op::kAdd, c, b);  // in place over c (or b)
  g.output(g.unary(Op::kAbs, d), "y");
  Planned p = plan_of(*g.g);
  EXPECT_EQ(p.plan.in_place, 2);
  EXPECT_EQ(p.off(b), p.off(a));
  EXPECT_NE(p.off(c), p.off(b));
  EXPECT_TRUE(p.off(d) == p.off(c) || p.off(d) == p.off(b));
  expect_no_clobbering(*g.g, p, [&](const Value* u, const Value* v) {
    return (u == b && v == a) || (u == d && (v == c || v == b));
  });
  Planned naive = plan_of(*g.g, false);
  EXPECT_EQ(naive.plan.in_place, 0);
  EXPECT_LT(p.plan.arena_bytes, naive.plan.naive_bytes);
  EXPECT_EQ(p.plan.naive_bytes, naive.plan.naive_bytes);
}

TEST(MemoryPlan, LongChainArenaIsAFractionOfTheNaiveSum) {
  G g;
  Value* v = g.input("x", {4, 16, 9, 9});
  for (int i = 0; i < 20; ++i) v = g.unary(i % 2 ? Op::kRelu : Op::kNeg, g.unary(Op::kExp, v));
  g.output(v, "y");
  Planned p = plan_of(*g.g);
  EXPECT_LE(p.plan.arena_bytes * 10, p.plan.naive_bytes);
  expect_no_clobbering(*g.g, p, [&](const Value* u, const Value* w) {
    return u->producer && u->producer->inputs[0] == w;
  });
}

}  // namespace
}  // namespace kiln
