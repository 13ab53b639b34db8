// The activation memory planner (runtime/memory_plan.h) on small graphs: which values share
// storage (eliminated Concats, Reshape and Slice views, in-place element-wise steps), which must
// not, and that no two values alive at the same time overlap in the arena unless one is stored
// inside the other by design.
#include <gtest/gtest.h>

#include <set>

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

using StridedOk = std::function<bool(size_t, const std::vector<Dims>&)>;

Planned plan_of(const Graph& g, bool share = true, StridedOk strided_ok = nullptr) {
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
  r.strided_ok = std::move(strided_ok);
  p.plan = plan_memory(r);
  return p;
}

size_t nbytes(const Planned& p, const Value* v) {
  return static_cast<size_t>(dims_volume(p.dims[p.index.at(v)])) * dtype_size(v->dtype);
}

using Shares = std::function<bool(const Value*, const Value*)>;

// The values the planner places: every step's output and the graph inputs.
std::vector<const Value*> activations(const Graph& g) {
  std::vector<const Value*> acts;
  for (const auto& v : g.values())
    if (!v->is_constant() && (v->producer || g.is_graph_input(v.get()))) acts.push_back(v.get());
  return acts;
}

// Calls check(a, b) for each pair of activations alive at the same step, except where
// `shares(a, b)` says one is stored in the other (a view, a Concat input, an in-place output and
// its input).
void for_each_live_pair(const Graph& g, const Planned& p, const Shares& shares,
                        const std::function<void(const Value*, const Value*)>& check) {
  std::unordered_map<const Node*, size_t> step;
  for (size_t s = 0; s < g.nodes().size(); ++s) step[g.nodes()[s].get()] = s;
  auto range = [&](const Value* v) {
    size_t b = v->producer ? step.at(v->producer) : 0;
    size_t e = p.last_use[p.index.at(v)];
    return std::pair<size_t, size_t>{b, e == SIZE_MAX ? g.nodes().size() : std::max(b, e)};
  };
  const std::vector<const Value*> acts = activations(g);
  for (const Value* a : acts)
    for (const Value* b : acts) {
      if (a >= b || shares(a, b) || shares(b, a)) continue;
      auto [ab, ae] = range(a);
      auto [bb, be] = range(b);
      if (ae < bb || be < ab) continue;
      check(a, b);
    }
}

// Values alive at the same step never overlap, except where `shares(a, b)` says one is stored in
// the other.
void expect_no_clobbering(const Graph& g, const Planned& p, const Shares& shares) {
  for (const Value* a : activations(g)) {
    ASSERT_NE(p.off(a), MemoryPlan::kNoOffset) << a->name;
    EXPECT_LE(p.off(a) + nbytes(p, a), p.plan.arena_bytes) << a->name;
  }
  for_each_live_pair(g, p, shares, [&](const Value* a, const Value* b) {
    bool disjoint = p.off(a) + nbytes(p, a) <= p.off(b) || p.off(b) + nbytes(p, b) <= p.off(a);
    EXPECT_TRUE(disjoint) << a->name << " and " << b->name << " overlap while both are alive";
  });
}

// The bytes a value occupies in the arena, from its offset, dims and strides (dense when none).
std::set<size_t> bytes_of(const Planned& p, const Value* v) {
  const size_t vi = p.index.at(v);
  const Dims& d = p.dims[vi];
  Dims st = vi < p.plan.strides.size() ? p.plan.strides[vi] : Dims();
  if (st.empty()) {
    st.assign(d.size(), 1);
    for (size_t k = d.size(); k-- > 1;) st[k - 1] = st[k] * d[k];
  }
  const size_t es = dtype_size(v->dtype);
  std::set<size_t> out;
  for (int64_t e = 0; e < dims_volume(d); ++e) {
    int64_t rest = e, at = 0;
    for (size_t k = d.size(); k-- > 0;) {
      at += (rest % d[k]) * st[k];
      rest /= d[k];
    }
    for (size_t b = 0; b < es; ++b) out.insert(p.off(v) + static_cast<size_t>(at) * es + b);
  }
  return out;
}

// Byte-exact form of expect_no_clobbering, for strided values: values alive at the same step
// share no byte unless `shares` says one is stored in the other.
void expect_no_shared_bytes(const Graph& g, const Planned& p, const Shares& shares) {
  for_each_live_pair(g, p, shares, [&](const Value* a, const Value* b) {
    std::set<size_t> x = bytes_of(p, a), y = bytes_of(p, b);
    for (size_t byte : x)
      if (y.count(byte)) {
        ADD_FAILURE() << a->name << " and " << b->name << " share byte " << byte;
        break;
      }
  });
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

// NHWC at batch 2: each Concat input is a box of the output (its channels of every pixel). The
// planner eliminates the Concat only when every producer accepts writing with those strides.
TEST(MemoryPlan, StridedConcatIsEliminatedWhereItsProducersAcceptStrides) {
  G g;
  Value* x = g.input("x", {2, 3, 5, 8});
  Value* a = g.unary(Op::kRelu, x);                      // step 0
  Value* b = g.binary(Op::kAdd, g.unary(Op::kNeg, x), x);  // steps 1, 2
  Value* c = concat(g, {a, b}, 3);                       // step 3: [2,3,5,16]
  g.output(g.unary(Op::kExp, c), "y");
  std::vector<size_t> asked;
  Planned p = plan_of(*g.g, true, [&](size_t s, const std::vector<Dims>&) {
    asked.push_back(s);
    return true;
  });
  ASSERT_TRUE(p.plan.skip[3]);
  EXPECT_EQ(p.plan.note[3], "eliminated: its inputs are written in place, strided");
  EXPECT_EQ(asked, (std::vector<size_t>{0, 2}));
  const Dims want{3 * 5 * 16, 5 * 16, 16, 1};
  EXPECT_EQ(p.plan.strides[p.index.at(a)], want);
  EXPECT_EQ(p.plan.strides[p.index.at(b)], want);
  EXPECT_TRUE(p.plan.strides[p.index.at(c)].empty());
  EXPECT_EQ(p.off(a), p.off(c));
  EXPECT_EQ(p.off(b), p.off(c) + 8 * sizeof(float));
  EXPECT_EQ(p.plan.strided, 2);
  // a and b interleave inside c without sharing a byte; nothing else touches them.
  expect_no_shared_bytes(*g.g, p, [&](const Value* u, const Value* v) {
    return v == c && (u == a || u == b);
  });
  // b lives in c now, so its Add (step 2) does not also run in place over its input.
  EXPECT_EQ(p.plan.note[2], "");

  // One producer refusing keeps the copy, and leaves every value dense.
  Planned q = plan_of(*g.g, true, [&](size_t s, const std::vector<Dims>&) { return s != 2; });
  EXPECT_FALSE(q.plan.skip[3]);
  EXPECT_EQ(q.plan.strided, 0);
  for (const Dims& st : q.plan.strides) EXPECT_TRUE(st.empty());
  // Without the question nothing is strided either.
  EXPECT_FALSE(plan_of(*g.g).plan.skip[3]);
  // A Concat input at an offset that is not a multiple of 16 bytes: no view.
  G h;
  Value* hx = h.input("x", {2, 3, 5, 6});
  h.output(h.unary(Op::kExp, concat(h, {h.unary(Op::kRelu, hx), h.unary(Op::kNeg, hx)}, 3)), "y");
  EXPECT_FALSE(plan_of(*h.g, true, [](size_t, const std::vector<Dims>&) { return true; })
                   .plan.skip[2]);
}

// A channel slice of an NHWC tensor at batch 2 is a strided view when every reader accepts it;
// a strided value is never reshaped in place or written over.
TEST(MemoryPlan, StridedSliceIsAViewWhereItsReadersAcceptStrides) {
  G g;
  Value* x = g.input("x", {2, 4, 3, 24});
  Value* a = g.unary(Op::kRelu, x);                    // step 0
  Value* s1 = slice(g, a, 3, 0, 8);                    // step 1: read by Neg, which accepts
  Value* s2 = slice(g, a, 3, 8, 16);                   // step 2: read by Exp, which refuses
  Value* s3 = slice(g, a, 3, 16, 24);                  // step 3: read by a Reshape
  Value* n1 = g.unary(Op::kNeg, s1);                   // step 4
  Value* e2 = g.unary(Op::kExp, s2);                   // step 5
  Value* shape = g.constant("shape", Tensor::from_vector<int64_t>(DataType::kInt64, {2}, {24, 8}));
  Value* r3 = g.node("Reshape", {s3, shape}, std::make_unique<ReshapeAttrs>(), "reshape");  // 6
  g.output(n1, "n");
  g.output(e2, "e");
  g.output(g.unary(Op::kAbs, r3), "r");
  auto vidx = [&](const Value* v) {
    for (size_t i = 0; i < g.g->values().size(); ++i)
      if (g.g->values()[i].get() == v) return i;
    return SIZE_MAX;
  };
  Planned p = plan_of(*g.g, true, [&](size_t s, const std::vector<Dims>& strides) {
    const Node& n = *g.g->nodes()[s];
    // The question carries the proposal: the slice's output is strided.
    EXPECT_FALSE(strides[vidx(n.inputs[0])].empty()) << n.label();
    return &n == n1->producer;
  });
  EXPECT_TRUE(p.plan.skip[1]);
  EXPECT_EQ(p.plan.note[1], "strided view of " + a->name);
  EXPECT_EQ(p.plan.strides[p.index.at(s1)], (Dims{4 * 3 * 24, 3 * 24, 24, 1}));
  EXPECT_EQ(p.off(s1), p.off(a));
  EXPECT_FALSE(p.plan.skip[2]);
  EXPECT_TRUE(p.plan.strides[p.index.at(s2)].empty());
  EXPECT_FALSE(p.plan.skip[3]);   // the Reshape kernel was asked and refused
  // n1 is a graph output; e2 too: neither is in place. Nothing is in place over s1.
  EXPECT_EQ(p.plan.in_place, 0);
  EXPECT_EQ(p.plan.strided, 1);
  expect_no_shared_bytes(*g.g, p, [&](const Value* u, const Value* v) {
    return (u == s1 && v == a) || (u == r3 && v == s3);   // s3 is dense: its Reshape is a view
  });
  EXPECT_TRUE(p.plan.skip[6]);
}

// A Pointwise step reading a strided view is not run in place over it, and a Reshape of it is
// no view, even where every kernel accepts strides.
TEST(MemoryPlan, StridedValuesAreNeitherReshapedNorOverwritten) {
  G g;
  Value* x = g.input("x", {2, 4, 3, 16});
  Value* a = g.unary(Op::kRelu, x);                    // step 0
  Value* s1 = slice(g, a, 3, 0, 8);                    // step 1
  Value* s2 = slice(g, a, 3, 8, 16);                   // step 2
  Value* shape = g.constant("shape", Tensor::from_vector<int64_t>(DataType::kInt64, {2}, {24, 8}));
  Value* r2 = g.node("Reshape", {s2, shape}, std::make_unique<ReshapeAttrs>(), "reshape");  // 3
  // Step 4: the last reader of a's memory, so it could run in place over s1 were s1 dense.
  Value* n1 = g.unary(Op::kNeg, s1);
  g.output(g.unary(Op::kExp, n1), "y");
  g.output(g.unary(Op::kAbs, r2), "z");
  Planned p = plan_of(*g.g, true, [](size_t, const std::vector<Dims>&) { return true; });
  ASSERT_TRUE(p.plan.skip[1]);
  ASSERT_TRUE(p.plan.skip[2]);
  EXPECT_FALSE(p.plan.strides[p.index.at(s1)].empty());
  EXPECT_FALSE(p.plan.skip[3]) << "a Reshape of strided memory is a copy";
  EXPECT_EQ(p.plan.note[4], "") << "a dense output over strided memory";
  expect_no_shared_bytes(*g.g, p, [&](const Value* u, const Value* v) {
    if ((u == s1 || u == s2) && v == a) return true;
    if (!u->producer || u->producer->op() != "Pointwise" || p.off(u) != p.off(v)) return false;
    for (const Value* in : u->producer->inputs)
      if (in == v) return true;   // in place over its input
    return false;
  });
}

}  // namespace
}  // namespace kiln
