// Indexing ops: Gather, GatherElements, GatherND, ScatterElements, ScatterND, OneHot. Expected
// values come from numpy; out-of-range indices must be clear errors, not crashes.
#include "common/error.h"
#include "ops/gather.h"
#include "ops/gather_elements.h"
#include "ops/gather_nd.h"
#include "ops/one_hot.h"
#include "ops/scatter_elements.h"
#include "ops/scatter_nd.h"
#include "single_node.h"

namespace kiln::testing {
namespace {

template <class A>
std::unique_ptr<A> axis_attrs(int64_t axis) {
  auto a = std::make_unique<A>();
  a->axis = axis;
  return a;
}

// ---- Gather ----

TEST(Gather, Axis1With2DNegativeIndices) {
  Tensor y = run_node1(
      "Gather", axis_attrs<GatherAttrs>(1),
      {NodeInput::of(f32({3, 4}, iota_f(12, 1.5f))), NodeInput::of(i64({2, 2}, {0, -1, 2, 1}))});
  expect_values(y, {3, 2, 2}, {0, 4.5, 3, 1.5, 6, 10.5, 9, 7.5, 12, 16.5, 15, 13.5});
}

TEST(Gather, Axis0Int32IndicesInt64Data) {
  std::vector<int64_t> x(20);
  for (int i = 0; i < 20; ++i) x[i] = i - 7;
  Tensor y = run_node1("Gather", axis_attrs<GatherAttrs>(0),
                       {NodeInput::of(i64({5, 4}, x)), NodeInput::of(i32({3}, {4, -5, 2}))});
  expect_ints(y, {3, 4}, {9, 10, 11, 12, -7, -6, -5, -4, 1, 2, 3, 4});
}

TEST(Gather, ScalarIndexDropsTheAxis) {
  Tensor y = run_node1("Gather", axis_attrs<GatherAttrs>(-1),
                       {NodeInput::of(f32({2, 3}, iota_f(6))), NodeInput::of(i64({}, {-2}))});
  expect_values(y, {2}, {1, 4});
}

TEST(Gather, SymbolicInference) {
  SingleNode n("Gather", axis_attrs<GatherAttrs>(1),
               {NodeInput::shaped(DataType::kFloat, Shape({Dim::sym("N"), 5, 7})),
                NodeInput::shaped(DataType::kInt64, Shape({2, Dim::sym("K")}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[N,2,K,7]");
}

TEST(Gather, OutOfRangeIndexIsAClearRunTimeError) {
  SingleNode n("Gather", axis_attrs<GatherAttrs>(1),
               {NodeInput::of(f32({3, 4}, iota_f(12))), NodeInput::of(i64({3}, {0, 4, 1}))});
  n.infer();
  try {
    n.run();
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    std::string m = e.message();
    EXPECT_NE(m.find("index 4 is out of range for axis 1 of size 4"), std::string::npos) << m;
    EXPECT_NE(m.find("data shape [3,4]"), std::string::npos) << m;
  }
  expect_error(
      [&] {
        run_node1("Gather", axis_attrs<GatherAttrs>(0),
                  {NodeInput::of(f32({3}, {1, 2, 3})), NodeInput::of(i64({1}, {-4}))});
      },
      "index -4 is out of range");
  // A constant index is checked at build time already.
  expect_error(
      [&] {
        SingleNode("Gather", axis_attrs<GatherAttrs>(0),
                   {NodeInput::shaped(DataType::kFloat, Shape::from({3})),
                    NodeInput::constant_of(i64({1}, {3}))})
            .infer();
      },
      "index 3 is out of range");
}

// ---- GatherElements / GatherND ----

TEST(GatherElements, Axis1NegativeIndicesSmallerThanData) {
  Tensor y = run_node1(
      "GatherElements", axis_attrs<GatherElementsAttrs>(1),
      {NodeInput::of(f32({3, 4}, iota_f(12))), NodeInput::of(i64({2, 3}, {3, -1, 0, 1, 2, -4}))});
  expect_values(y, {2, 3}, {3, 3, 0, 5, 6, 4});
  expect_error(
      [&] {
        run_node1("GatherElements", axis_attrs<GatherElementsAttrs>(0),
                  {NodeInput::of(f32({2, 2}, iota_f(4))), NodeInput::of(i64({1, 2}, {0, 2}))});
      },
      "index 2 is out of range for axis 0");
}

std::unique_ptr<GatherNDAttrs> batch(int64_t b) {
  auto a = std::make_unique<GatherNDAttrs>();
  a->batch_dims = b;
  return a;
}

TEST(GatherND, PairsOfCoordinates) {
  SingleNode n(
      "GatherND", batch(0),
      {NodeInput::of(f32({2, 3, 4}, iota_f(24))), NodeInput::of(i64({3, 2}, {1, 2, 0, -1, 1, 0}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[3,4]");
  expect_values(n.run()[0], {3, 4}, {20, 21, 22, 23, 8, 9, 10, 11, 12, 13, 14, 15});
}

TEST(GatherND, BatchDims1) {
  Tensor y = run_node1(
      "GatherND", batch(1),
      {NodeInput::of(f32({2, 3, 4}, iota_f(24))), NodeInput::of(i64({2, 2, 1}, {2, 0, 1, 1}))});
  expect_values(y, {2, 2, 4}, {8, 9, 10, 11, 0, 1, 2, 3, 16, 17, 18, 19, 16, 17, 18, 19});
  expect_error(
      [&] {
        run_node1("GatherND", batch(1),
                  {NodeInput::of(f32({2, 3, 4}, iota_f(24))), NodeInput::of(i64({2, 1}, {0, 3}))});
      },
      "index 3 is out of range for axis 1");
}

// ---- ScatterElements / ScatterND ----

std::unique_ptr<ScatterElementsAttrs> se(int64_t axis, const std::string& red) {
  auto a = std::make_unique<ScatterElementsAttrs>();
  a->axis = axis;
  a->reduction = red;
  return a;
}

Tensor se_run(int64_t axis, const std::string& red, Tensor ind, Tensor upd) {
  return run_node1(
      "ScatterElements", se(axis, red),
      {NodeInput::of(f32({3, 4}, iota_f(12))), NodeInput::of(ind), NodeInput::of(upd)});
}

TEST(ScatterElements, ReductionsWithDuplicates) {
  Tensor ind = i64({3, 2}, {1, 1, 0, 3, 3, -4});
  Tensor upd = f32({3, 2}, {10, 20, 30, 40, 50, 60});
  expect_values(se_run(1, "none", ind, upd), {3, 4}, {0, 20, 2, 3, 30, 5, 6, 40, 60, 9, 10, 50});
  expect_values(se_run(1, "add", ind, upd), {3, 4}, {0, 31, 2, 3, 34, 5, 6, 47, 68, 9, 10, 61});
  expect_values(se_run(1, "mul", ind, upd), {3, 4},
                {0, 200, 2, 3, 120, 5, 6, 280, 480, 9, 10, 550});
  expect_values(se_run(1, "max", ind, upd), {3, 4}, {0, 20, 2, 3, 30, 5, 6, 40, 60, 9, 10, 50});
  expect_values(se_run(0, "add", i32({2, 2}, {2, 0, 2, 1}), f32({2, 2}, {1, 2, 3, 4})), {3, 4},
                {0, 3, 2, 3, 4, 9, 6, 7, 12, 9, 10, 11});
}

TEST(ScatterElements, Errors) {
  expect_error(
      [] {
        se_run(1, "none", i64({1, 1}, {4}), f32({1, 1}, {1}));
      },
      "index 4 is out of range for axis 1");
  expect_error(
      [] {
        SingleNode("ScatterElements", se(0, "avg"),
                   {NodeInput::shaped(DataType::kFloat, Shape::from({2})),
                    NodeInput::shaped(DataType::kInt64, Shape::from({1})),
                    NodeInput::shaped(DataType::kFloat, Shape::from({1}))})
            .infer();
      },
      "unknown reduction 'avg'");
}

std::unique_ptr<ScatterNDAttrs> snd(const std::string& red) {
  auto a = std::make_unique<ScatterNDAttrs>();
  a->reduction = red;
  return a;
}

Tensor snd_data() {
  std::vector<int64_t> v(24);
  for (int i = 0; i < 24; ++i) v[i] = i;
  return i64({4, 3, 2}, v);
}

TEST(ScatterND, SlicesWithReductions) {
  std::vector<int64_t> u(18);
  for (int i = 0; i < 18; ++i) u[i] = 100 + i;
  auto run = [&](const std::string& red) {
    return run_node1("ScatterND", snd(red),
                     {NodeInput::of(snd_data()), NodeInput::of(i64({3, 1}, {1, 3, 1})),
                      NodeInput::of(i64({3, 3, 2}, u))});
  };
  expect_ints(run("none"), {4, 3, 2}, {0,  1,  2,  3,  4,  5,  112, 113, 114, 115, 116, 117,
                                       12, 13, 14, 15, 16, 17, 106, 107, 108, 109, 110, 111});
  expect_ints(run("add"), {4, 3, 2}, {0,  1,  2,  3,  4,  5,  218, 221, 224, 227, 230, 233,
                                      12, 13, 14, 15, 16, 17, 124, 126, 128, 130, 132, 134});
  expect_ints(run("mul"), {4, 3, 2},
              {0,  1,  2,  3,  4,  5,  67200, 79891, 93024, 106605, 120640, 135135,
               12, 13, 14, 15, 16, 17, 1908,  2033,  2160,  2289,   2420,   2553});
}

TEST(ScatterND, TwoCoordinateTuplesAndErrors) {
  Tensor y = run_node1("ScatterND", snd("none"),
                       {NodeInput::of(snd_data()), NodeInput::of(i64({2, 2}, {0, 2, -1, 0})),
                        NodeInput::of(i64({2, 2}, {7, 8, 9, 10}))});
  expect_ints(y, {4, 3, 2}, {0,  1,  2,  3,  7,  8,  6, 7,  8,  9,  10, 11,
                             12, 13, 14, 15, 16, 17, 9, 10, 20, 21, 22, 23});
  expect_error(
      [&] {
        run_node1("ScatterND", snd("none"),
                  {NodeInput::of(snd_data()), NodeInput::of(i64({1, 2}, {4, 0})),
                   NodeInput::of(i64({1, 2}, {1, 1}))});
      },
      "index 4 is out of range for axis 0");
  expect_error(
      [&] {
        run_node1("ScatterND", snd("none"),
                  {NodeInput::of(snd_data()), NodeInput::of(i64({1, 2}, {0, 0})),
                   NodeInput::of(i64({1, 3}, {1, 1, 1}))});
      },
      "do not fit");
}

// ---- OneHot ----

TEST(OneHot, Axis1NegativeAndOutOfRangeIndices) {
  SingleNode n("OneHot", axis_attrs<OneHotAttrs>(1),
               {NodeInput::of(i64({2, 3}, {0, 3, -1, 7, 1, -6})),
                NodeInput::constant_of(i64({}, {5})), NodeInput::of(f32({2}, {-0.5f, 2.25f}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[2,5,3]");
  expect_values(
      n.run()[0], {2, 5, 3},
      {2.25, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, 2.25, -0.5, -0.5, -0.5, 2.25,
       -0.5, -0.5, -0.5, -0.5, 2.25, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5});
}

TEST(OneHot, DefaultAxisFloatIndicesAndUnknownDepth) {
  Tensor y = run_node1("OneHot", axis_attrs<OneHotAttrs>(-1),
                       {NodeInput::of(f32({2}, {1.0f, 2.0f})), NodeInput::of(f32({}, {3.0f})),
                        NodeInput::of(i32({2}, {0, 9}))});
  expect_ints(y, {2, 3}, {0, 9, 0, 0, 0, 9});
  SingleNode n("OneHot", axis_attrs<OneHotAttrs>(0),
               {NodeInput::shaped(DataType::kInt64, Shape({Dim::sym("N")})),
                NodeInput::shaped(DataType::kInt64, Shape()),
                NodeInput::shaped(DataType::kFloat, Shape::from({2}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[?,N]");
}

}  // namespace
}  // namespace kiln::testing
