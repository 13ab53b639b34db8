// Plan::steps(), what `kiln inspect` shows of each step: the imported nodes a fused step covers,
// its precision and its memory layout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kiln/kiln.h"
#include "passes/pass_harness.h"
#include "plan/plan_data.h"

namespace kiln {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using passtest::G;

Tensor filled(Dims d, float start) {
  Tensor t(DataType::kFloat, std::move(d));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = start + 0.01f * static_cast<float>(i % 17);
  return t;
}

// conv(x) + bias -> relu: one Conv step at opt level 1 (the Relu joins its epilogue).
std::shared_ptr<Plan> conv_relu_plan(int opt_level, bool fp16) {
  Network net;
  auto x = net.add_input("x", DataType::kFloat, {2, 3, 9, 7});
  auto y = net.add_conv(x, filled({4, 3, 3, 3}, -0.05f), filled({4}, 0.1f),
                        {.pads = {1, 1, 1, 1}});
  y = net.add_activation(y, Activation::kRelu);
  net.mark_output(y, "y");
  EXPECT_EQ(net.first_error(), "");
  BuildOptions o;
  o.device = "cpu";
  o.opt_level = opt_level;
  o.fp16 = fp16;
  std::shared_ptr<Plan> plan;
  Status s = Builder(o).build(net, plan);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return plan;
}

TEST(PlanSteps, FusedConvReluCoversBothNodes) {
  // The unfused plan names the two nodes the fused step must cover.
  auto unfused = conv_relu_plan(0, false);
  ASSERT_TRUE(unfused);
  std::vector<PlanStep> parts = unfused->steps();
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].op, "Conv");
  EXPECT_EQ(parts[1].op, "Pointwise");
  EXPECT_THAT(parts[0].origins, ElementsAre(parts[0].name));

  auto plan = conv_relu_plan(1, false);
  ASSERT_TRUE(plan);
  std::vector<PlanStep> steps = plan->steps();
  ASSERT_EQ(steps.size(), 1u);
  const PlanStep& s = steps[0];
  EXPECT_EQ(s.index, 0u);
  EXPECT_EQ(s.op, "Conv");
  EXPECT_EQ(s.name, parts[0].name);
  EXPECT_FALSE(s.tactic.empty());
  EXPECT_THAT(s.origins, ElementsAre(parts[0].name, parts[1].name));
  EXPECT_EQ(s.precision, "float32");
  EXPECT_EQ(s.layout, "NCHW");  // channels-first on the CPU
  EXPECT_THAT(s.inputs, HasSubstr("x:float32[2,3,9,7]"));
  EXPECT_THAT(s.outputs, HasSubstr("y:float32[2,4,9,7]"));
  EXPECT_THAT(plan->describe(), HasSubstr("covers " + parts[0].name + ", " + parts[1].name));

  // The origins travel in the plan file.
  std::shared_ptr<Plan> loaded;
  ASSERT_TRUE(Plan::deserialize(plan->serialize(), loaded).is_ok());
  std::vector<PlanStep> again = loaded->steps();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].origins, s.origins);
  EXPECT_EQ(again[0].tactic, s.tactic);
}

TEST(PlanSteps, Float16BuildShowsFloat16Steps) {
  auto plan = conv_relu_plan(1, true);
  ASSERT_TRUE(plan);
  std::vector<PlanStep> steps = plan->steps();
  bool saw_conv = false;
  for (const PlanStep& s : steps) {
    if (s.op != "Conv") continue;
    saw_conv = true;
    EXPECT_EQ(s.precision, "float16") << s.outputs;
  }
  EXPECT_TRUE(saw_conv);
  // The graph output keeps its type: the last step writes float32.
  EXPECT_EQ(steps.back().precision, "float32") << steps.back().op;
}

// A plan over a graph the layout pass made channels-last (forced, as the CUDA backend would
// choose for float16): the region's Conv, Pool and Pointwise steps are NHWC, the Transpose into
// the region too, the one out of it NCHW, and a rank-2 branch has no layout.
TEST(PlanSteps, LayoutFollowsTheChannelsLastRegion) {
  G b;
  Value* x = b.input("x", {2, 3, 9, 7});
  Value* c = b.conv(x, 4, 3);
  const std::string conv_name = c->producer->name;
  Value* r = b.unary(expr::Op::kRelu, c);
  const std::string relu_name = r->producer->name;
  Value* p = b.pool("max", r, {2, 2}, {2, 2});
  Value* m = b.binary(expr::Op::kMul, p, b.constant("scale", filled({1, 4, 1, 1}, 0.5f)));
  b.output(m, "y");
  Value* z = b.input("z", {3, 5});
  b.output(b.unary(expr::Op::kNeg, z), "nz");
  PassContext ctx;
  ctx.force_channels_last = true;
  run_pipeline(*b.g, ctx);

  auto pd = std::make_unique<PlanData>();
  pd->info.kiln_version = version();
  pd->info.device = "cpu";
  for (size_t i = 0; i < b.g->nodes().size(); ++i) pd->steps.push_back({i, "cpu.reference", ""});
  pd->graph = std::move(b.g);
  auto plan = PlanAccess::make(std::move(pd));

  std::map<std::string, std::vector<std::string>> layouts;  // op -> layouts in step order
  for (const PlanStep& s : plan->steps()) {
    layouts[s.op].push_back(s.layout);
    EXPECT_EQ(s.precision, "float32") << s.name;
    if (s.op == "Conv") {
      EXPECT_THAT(s.origins, ElementsAre(conv_name, relu_name));
    }
  }
  EXPECT_THAT(layouts["Conv"], ElementsAre("NHWC"));
  EXPECT_THAT(layouts["Pool"], ElementsAre("NHWC"));
  EXPECT_THAT(layouts["Transpose"], ElementsAre("NHWC", "NCHW"));  // into, then out of the region
  EXPECT_THAT(layouts["Pointwise"], ::testing::UnorderedElementsAre("NHWC", "-"));
}

}  // namespace
}  // namespace kiln
