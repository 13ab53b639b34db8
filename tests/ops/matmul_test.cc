// MatMul (2-D, broadcast batches, transposes with alpha, numpy's 1-D rules, int64 exactness,
// symbolic shapes, errors) and Einsum (diagonals with ellipsis, batch matmul, implicit output,
// trace, three operands, ellipsis broadcasting). Expected values come from numpy (matmul, einsum).
#include "common/error.h"
#include "ops/einsum.h"
#include "ops/mat_mul.h"
#include "single_node.h"

namespace kiln::testing {
namespace {

Tensor xs(Dims d) { return pattern(std::move(d), 7, 11, 5, 0.25f); }
Tensor ws(Dims d) { return pattern(std::move(d), 5, 7, 3, 0.5f); }

std::unique_ptr<MatMulAttrs> attrs(bool ta = false, bool tb = false, double alpha = 1.0) {
  auto a = std::make_unique<MatMulAttrs>();
  a->trans_a = ta;
  a->trans_b = tb;
  a->alpha = alpha;
  return a;
}

Tensor run(std::unique_ptr<Attrs> a, std::vector<Tensor> ins, const char* op = "MatMul") {
  std::vector<NodeInput> n_ins;
  for (auto& t : ins) n_ins.push_back(NodeInput::of(t));
  return run_node1(op, std::move(a), std::move(n_ins));
}

TEST(MatMul, FiveBySevenTimesSevenByThree) {
  expect_values(run(attrs(), {xs({5, 7}), ws({7, 3})}), {5, 3},
                {2.5, -0.625, 1.5, -0.25, -2., 1.5, -1.625, 2.125, 1.5, 1.125, -3.375, -2.625,
                 -1.625, 2.125, 1.5});
}

TEST(MatMul, BroadcastBatches) {
  expect_values(
      run(attrs(), {xs({2, 1, 3, 4}), ws({3, 4, 2})}), {2, 3, 3, 2},
      {0.5,  -3.875, 1.125,  1.5,    1.75,   0.,   -3.875, 2.25,   1.5,   -1.625, 0.,    0.,
       2.25, 2.25,   -1.625, -2.125, 0.,     1.75, 1.,     1.25,   1.625, -0.25,  -3.25, -0.375,
       1.25, -1.125, -0.25,  0.5,    -0.375, 0.75, -1.125, -2.625, 0.5,   1.25,   0.75,  1.});
}

TEST(MatMul, TransposesAndAlpha) {
  // 0.5 * A^T @ B^T with A [4,3], B [5,4].
  expect_values(run(attrs(true, true, 0.5), {xs({4, 3}), ws({5, 4})}), {3, 5},
                {1.1875, -1.4375, -0.5625, -1., 0.3125, -0.125, 0.625, 0.0625, -0.0625, -0.1875,
                 0.625, 0.625, -0.6875, 0.1875, -0.6875});
}

TEST(MatMul, OneDimensionalOperands) {
  expect_values(run(attrs(), {xs({7}), ws({7, 3})}), {3}, {2.5, -0.625, 1.5});
  expect_values(run(attrs(), {xs({5, 7}), ws({7})}), {5}, {0.625, -2.125, -3.5, 2., -3.5});
  expect_values(run(attrs(), {xs({2, 5, 7}), ws({7})}), {2, 5},
                {0.625, -2.125, -3.5, 2., -3.5, 4.75, -2.125, 4.75, -2.125, 3.375});
  expect_values(run(attrs(), {xs({7}), ws({7})}), {}, {0.625});
}

TEST(MatMul, Int64IsExact) {
  int64_t big = int64_t(1) << 40;
  Tensor a = Tensor::from_vector<int64_t>(DataType::kInt64, {1, 2}, {big + 1, 3});
  Tensor b = Tensor::from_vector<int64_t>(DataType::kInt64, {2, 1}, {1000, -1});
  expect_ints(run(attrs(), {a, b}), {1, 1}, {(big + 1) * 1000 - 3});
}

TEST(MatMul, SymbolicShapes) {
  SingleNode n(
      "MatMul", attrs(false, true),
      {NodeInput::shaped(DataType::kFloat, Shape({Dim::sym("b"), Dim(1), Dim::sym("m"), Dim(64)})),
       NodeInput::shaped(DataType::kFloat, Shape({Dim(8), Dim(32), Dim(64)}))});
  n.infer();
  EXPECT_EQ(n.out(0).shape.str(), "[b,8,m,32]");
  SingleNode u("MatMul", attrs(),
               {NodeInput::shaped(DataType::kFloat, Shape::unknown_rank()),
                NodeInput::shaped(DataType::kFloat, Shape::from({4, 2}))});
  u.infer();
  EXPECT_FALSE(u.out(0).shape.rank_known);
}

TEST(MatMul, Errors) {
  auto infer = [](std::unique_ptr<MatMulAttrs> a, DataType ta, Dims da, DataType tb, Dims db) {
    SingleNode n("MatMul", std::move(a),
                 {NodeInput::shaped(ta, Shape::from(da)), NodeInput::shaped(tb, Shape::from(db))});
    n.infer();
  };
  const DataType F = DataType::kFloat;
  expect_error([&] { infer(attrs(), F, {5, 7}, F, {6, 3}); }, "has K = 7 but B [6,3] has K = 6");
  expect_error([&] { infer(attrs(false, true), F, {5, 7}, F, {7, 3}); }, "(transposed) has K = 3");
  expect_error([&] { infer(attrs(), F, {2, 5, 7}, F, {3, 7, 3}); }, "do not broadcast");
  expect_error(
      [&] {
        infer(attrs(), F, {5, 7}, DataType::kDouble, {7, 3});
      },
      "A is float32 but B is float64");
  expect_error([&] { infer(attrs(), F, {}, F, {7, 3}); }, "at least 1-D");
  expect_error(
      [&] {
        infer(attrs(false, false, 2.0), DataType::kInt32, {2, 2}, DataType::kInt32, {2, 2});
      },
      "alpha 2 is only allowed for floating-point types");
}

std::unique_ptr<EinsumAttrs> eq(const char* e) {
  auto a = std::make_unique<EinsumAttrs>();
  a->equation = e;
  return a;
}

TEST(Einsum, BatchDiagonalWithEllipsis) {
  expect_values(run(eq("...ii ->...i"), {xs({3, 5, 5})}, "Einsum"), {3, 5},
                {-1.25, 1., 0.5, 0., -0.5, 1.25, 0.75, 0.25, -0.25, -0.75, 1., 0.5, 0., -0.5, -1.});
}

TEST(Einsum, BatchMatMul) {
  expect_values(run(eq("bij, bjk -> bik"), {xs({2, 3, 4}), ws({2, 4, 5})}, "Einsum"), {2, 3, 5},
                {3.875, -2.25, -2.25, 3.875, -0.5,  -1.75,  2.125, 1.625, -1.5,  -1.125,
                 0.875, -1.75, 0.,    0.,    -1.75, -1.375, -2.,   2.625, 1.125, -1.25,
                 3.375, 0.625, -1.25, -0.5,  0.25,  -1.5,   0.5,   -1.,   -0.75, 0.375});
}

TEST(Einsum, ImplicitOutputTraceAndThreeOperands) {
  expect_values(run(eq("ij,jk"), {xs({3, 4}), ws({4, 2})}, "Einsum"), {3, 2},
                {0.5, -3.875, 1.125, 1.5, 1.75, 0.});
  expect_values(run(eq("ii"), {xs({4, 4})}, "Einsum"), {}, {-2.0});
  expect_values(run(eq("ij,j,i->ji"), {xs({2, 3}), ws({3}), f32({2}, {-2, 1})}, "Einsum"), {3, 2},
                {-3.75, -1.875, -1., 0.25, 0., 0.});
}

TEST(Einsum, EllipsisBroadcasting) {
  expect_values(run(eq("...j,...j->..."), {xs({2, 1, 3}), ws({4, 3})}, "Einsum"), {2, 4},
                {2.375, 1.75, -0.625, -1.25, -1.625, -1.25, -1.75, -1.375});
}

TEST(Einsum, Errors) {
  auto infer = [](const char* e, std::vector<Dims> shapes) {
    std::vector<NodeInput> ins;
    for (auto& s : shapes) ins.push_back(NodeInput::shaped(DataType::kFloat, Shape::from(s)));
    SingleNode n("Einsum", eq(e), std::move(ins));
    n.infer();
  };
  expect_error([&] { infer("ij,jk->ik", {{2, 3}, {4, 5}}); }, "label 'j' has sizes 3 and 4");
  expect_error([&] { infer("ij,jk->ik", {{2, 3}}); }, "has 2 input terms but the node has 1");
  expect_error([&] { infer("ijk->i", {{2, 3}}); }, "names 3 dims");
  expect_error([&] { infer("ij->iq", {{2, 3}}); }, "every output label");
  expect_error([&] { infer("i1->i", {{2, 3}}); }, "labels must be letters");
}

}  // namespace
}  // namespace kiln::testing
