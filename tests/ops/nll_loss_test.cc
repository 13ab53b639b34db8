// NllLoss: reductions none/sum/mean, class weights, ignore_index (including an index outside
// [0, C)), extra spatial axes, and errors. Expected values worked out by hand.
#include "ops/nll_loss.h"

#include "single_node.h"

namespace kiln::testing {
namespace {

std::unique_ptr<NllLossAttrs> attrs(const std::string& reduction, bool ignore = false,
                                    int64_t ii = 0) {
  auto a = std::make_unique<NllLossAttrs>();
  a->reduction = reduction;
  a->has_ignore_index = ignore;
  a->ignore_index = ii;
  return a;
}

// input[2,3,2] (N=2, C=3, d1=2)
Tensor input() {
  return f32({2, 3, 2}, {-1.5f, 1, 0, -1, 1.5f, 0.5f, -0.5f, -1.5f, 1, 0, -1, 1.5f});
}

Tensor run1(std::unique_ptr<NllLossAttrs> a, std::vector<NodeInput> ins) {
  return run_node1("NllLoss", std::move(a), std::move(ins));
}

TEST(NllLoss, WeightedWithIgnoreIndex) {
  // target [[0, 2], [1, -1]]: loss = -x[0,0,0]*0.5, -x[0,2,1]*2, -x[1,1,0]*1, 0 (ignored)
  //                                = 0.75, -1, -1, 0; weights used 0.5 + 2 + 1 = 3.5.
  Tensor target = i64({2, 2}, {0, 2, 1, -1});
  Tensor w = f32({3}, {0.5f, 1, 2});
  expect_values(run1(attrs("none", true, -1),
                     {NodeInput::of(input()), NodeInput::of(target), NodeInput::of(w)}),
                {2, 2}, {0.75, -1, -1, 0});
  expect_values(run1(attrs("sum", true, -1),
                     {NodeInput::of(input()), NodeInput::of(target), NodeInput::of(w)}),
                {}, {-1.25});
  expect_values(run1(attrs("mean", true, -1),
                     {NodeInput::of(input()), NodeInput::of(target), NodeInput::of(w)}),
                {}, {-1.25 / 3.5});
}

TEST(NllLoss, UnweightedMean) {
  // target [[0, 2], [1, 0]]: losses 1.5, -0.5, -1, 1.5 -> mean 0.375
  Tensor target = i64({2, 2}, {0, 2, 1, 0});
  expect_values(run1(attrs("mean"), {NodeInput::of(input()), NodeInput::of(target)}), {}, {0.375});
  // ignore_index inside [0, C): class 0 is skipped; mean over the 2 remaining.
  expect_values(run1(attrs("mean", true, 0), {NodeInput::of(input()), NodeInput::of(target)}), {},
                {-0.75});
}

TEST(NllLoss, Shapes) {
  SingleNode n("NllLoss", attrs("none"),
               {NodeInput::shaped(DataType::kFloat, Shape({Dim::sym("n"), Dim(5), Dim(7)})),
                NodeInput::shaped(DataType::kInt64, Shape::unknown_rank())});
  n.infer();
  EXPECT_EQ(n.out(0).shape, Shape({Dim::sym("n"), Dim(7)}));
  SingleNode m("NllLoss", attrs("mean"),
               {NodeInput::shaped(DataType::kFloat, Shape::unknown_rank()),
                NodeInput::shaped(DataType::kInt32, Shape::unknown_rank())});
  m.infer();
  EXPECT_EQ(m.out(0).shape, Shape(std::vector<Dim>{}));
}

TEST(NllLoss, Errors) {
  expect_error(
      [] {
        run1(attrs("none"), {NodeInput::of(input()), NodeInput::of(i64({2, 2}, {0, 3, 1, 0}))});
      },
      "target value 3");
  expect_error(
      [] {
        SingleNode n("NllLoss", attrs("none"),
                     {NodeInput::of(input()), NodeInput::of(i64({2, 3}, {0, 0, 0, 0, 0, 0}))});
        n.infer();
      },
      "does not match the input");
  expect_error(
      [] {
        SingleNode n("NllLoss", attrs("avg"),
                     {NodeInput::of(input()), NodeInput::of(i64({2, 2}, {0, 0, 0, 0}))});
        n.infer();
      },
      "unknown reduction 'avg'");
}

}  // namespace
}  // namespace kiln::testing
