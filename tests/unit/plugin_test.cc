// Plugins (kiln/plugin.h): the registry, library loading, ONNX mapping, plan round trips with
// plugin state, format negotiation (Casts, channels-last Transposes), symbolic output shapes and
// the errors around them; and the example plugins (examples/plugins) against the NumPy reference
// tests/data/make_plugin_models.py saved.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "common/file.h"
#include "common/npy.h"
#include "kiln/kiln.h"
#include "ops/test_util.h"

namespace kiln {
namespace {

using testing::random_tensor;

const std::string kData = std::string(KILN_SOURCE_DIR) + "/tests/data/";

// Affine (namespace kiln.test): y = x * factor, and pairs[i] = x[2i] + x[2i+1] over x flattened
// in its logical (NCHW) order, [ceil(volume / 2)]. Fields pick what it accepts: `dtype` (one
// type, default float32), `channels_last` (a 4-D input and y stored NHWC only), `gpu_only`.
class Affine : public Plugin, public PluginCore, public PluginBuild, public PluginRuntime {
 public:
  explicit Affine(PluginFields f) : f_(std::move(f)) {}
  const PluginCore& core() const override { return *this; }
  const PluginBuild& build() const override { return *this; }
  const PluginRuntime& runtime() const override { return *this; }
  std::unique_ptr<Plugin> clone() const override { return std::make_unique<Affine>(*this); }
  std::string name() const override { return "Affine"; }
  std::string version() const override { return f_.get_string("version", "1"); }
  std::string plugin_namespace() const override { return "kiln.test"; }
  PluginFields fields() const override { return f_; }

  int32_t num_outputs() const override { return 2; }
  Status output_dtypes(std::span<const DataType> in, std::vector<DataType>& out) const override {
    out = {in[0], in[0]};
    return Status::ok();
  }
  Status output_shapes(std::span<const PluginTensorDesc> in, std::vector<ShapeExpr>& out) const override {
    ShapeExpr y;
    DimExpr volume = DimExpr::input(0, 0);
    for (size_t d = 0; d < in[0].dims.size(); ++d) {
      y.push_back(DimExpr::input(0, static_cast<int32_t>(d)));
      if (d > 0) volume = volume * DimExpr::input(0, static_cast<int32_t>(d));
    }
    out = {y, {ceil_div(volume, 2)}};
    return Status::ok();
  }
  bool supports_format(size_t pos, std::span<const PluginFormat> f, size_t nin,
                       PluginDevice) const override {
    DataType want = static_cast<DataType>(f_.get_int("dtype", int64_t(DataType::kFloat)));
    PluginLayout layout = f_.get_int("channels_last", 0) && pos <= 1 ? PluginLayout::kChannelsLast
                                                                     : PluginLayout::kLinear;
    return f[pos].dtype == want && f[pos].layout == layout;
  }
  bool runs_on(PluginDevice d) const override {
    return f_.get_int("gpu_only", 0) ? d == PluginDevice::kGpu : true;
  }
  Status run_host(const PluginLaunch& l) const override {
    const PluginTensor& x = l.inputs[0];
    const double factor = f_.get_float("factor", 1);
    const int64_t n = x.numel();
    auto physical = [&](int64_t i) {  // logical (NCHW) index -> storage index
      if (x.layout != PluginLayout::kChannelsLast) return i;
      const int64_t C = x.dims[1], H = x.dims[2], W = x.dims[3];
      const int64_t w = i % W, h = (i / W) % H, c = (i / (W * H)) % C, b = i / (W * H * C);
      return ((b * H + h) * W + w) * C + c;
    };
    auto run = [&]<class T>() {
      const T* xp = x.as<const T>();
      T* yp = l.outputs[0].as<T>();
      T* pp = l.outputs[1].as<T>();
      for (int64_t i = 0; i < n; ++i) yp[i] = static_cast<T>(xp[i] * factor);  // same storage order
      for (int64_t i = 0; i < (n + 1) / 2; ++i)
        pp[i] = static_cast<T>(xp[physical(2 * i)] + (2 * i + 1 < n ? xp[physical(2 * i + 1)] : 0));
    };
    if (x.dtype == DataType::kDouble) run.operator()<double>();
    else if (x.dtype == DataType::kFloat) run.operator()<float>();
    else return Status(StatusCode::kUnsupported, "Affine: float32 or float64");
    return Status::ok();
  }
  std::string serialize() const override {
    PluginStateWriter w;
    w.fields(f_);
    return w.bytes;
  }

 private:
  PluginFields f_;
};

class AffineCreator : public PluginCreator {
 public:
  explicit AffineCreator(std::string version = "1") : version_(std::move(version)) {}
  std::string name() const override { return "Affine"; }
  std::string version() const override { return version_; }
  std::string plugin_namespace() const override { return "kiln.test"; }
  Status create(const PluginFields& f, std::unique_ptr<Plugin>& out) const override {
    PluginFields g = f;
    g.set_string("version", version_);
    out = std::make_unique<Affine>(g);
    return Status::ok();
  }
  Status deserialize(std::string_view state, std::unique_ptr<Plugin>& out) const override {
    PluginStateReader r(state);
    PluginFields f = r.fields();
    if (!r.done()) return Status(StatusCode::kCorruptPlan, "Affine: bad state");
    out = std::make_unique<Affine>(f);
    return Status::ok();
  }

 private:
  std::string version_;
};

// Registers Affine version 1 for the test's duration.
struct AffineRegistered {
  AffineRegistered() { EXPECT_TRUE(plugin_registry().add(std::make_shared<AffineCreator>()).is_ok()); }
  ~AffineRegistered() { plugin_registry().remove("Affine", "1", "kiln.test"); }
};

std::unique_ptr<ExecutionContext> context_of(const std::shared_ptr<Plan>& plan) {
  std::shared_ptr<Engine> engine;
  Status s = Engine::create(plan, engine);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  std::unique_ptr<ExecutionContext> ctx;
  if (engine) EXPECT_TRUE(engine->create_context(ctx).is_ok());
  return ctx;
}

std::map<std::string, Tensor> run(const std::shared_ptr<Plan>& plan,
                                  const std::map<std::string, Tensor>& in) {
  std::map<std::string, Tensor> out;
  auto ctx = context_of(plan);
  if (!ctx) return out;
  Status s = ctx->run(in, out);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.dims() == b.dims() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

void expect_close(const Tensor& got, const Tensor& want, double atol, const std::string& what) {
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  ASSERT_EQ(got.dims(), want.dims()) << what;
  int64_t nonzero = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    nonzero += want.get_f64(i) != 0;
    ASSERT_NEAR(got.get_f64(i), want.get_f64(i), atol + 1e-5 * std::fabs(want.get_f64(i)))
        << what << " element " << i;
  }
  EXPECT_GT(nonzero, 0) << what << " is all zeros";
}

void load_examples() {
  Status s = load_plugin_library(KILN_EXAMPLE_PLUGINS);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
}

std::vector<PlanStep> steps_of(const Plan& p, const std::string& op) {
  std::vector<PlanStep> out;
  for (const auto& s : p.steps())
    if (s.op == op) out.push_back(s);
  return out;
}

TEST(PluginRegistry, RegisterFindDuplicateRemove) {
  PluginRegistry& r = plugin_registry();
  ASSERT_TRUE(r.add(std::make_shared<AffineCreator>("1.9")).is_ok());
  ASSERT_TRUE(r.add(std::make_shared<AffineCreator>("1.10")).is_ok());
  Status dup = r.add(std::make_shared<AffineCreator>("1.9"));
  EXPECT_EQ(dup.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dup.message().find("'Affine' (version 1.9, namespace 'kiln.test') is already registered"),
            std::string::npos) << dup.message();
  EXPECT_EQ(r.find("Affine", "1.9", "kiln.test")->version(), "1.9");
  EXPECT_EQ(r.find("Affine", "", "kiln.test")->version(), "1.10");  // the newest, numerically
  EXPECT_EQ(r.find("Affine", "2", "kiln.test"), nullptr);
  EXPECT_EQ(r.find("Affine", "1.9", "other"), nullptr);
  EXPECT_EQ(r.find("affine", "1.9", "kiln.test"), nullptr);
  EXPECT_TRUE(r.remove("Affine", "1.9", "kiln.test"));
  EXPECT_TRUE(r.remove("Affine", "1.10", "kiln.test"));
  EXPECT_FALSE(r.remove("Affine", "1.10", "kiln.test"));
  EXPECT_EQ(r.find("Affine", "", "kiln.test"), nullptr);
}

TEST(PluginLibrary, LoadsExamplesAndReportsBadLibraries) {
  load_examples();
  load_examples();  // a second load of the same file registers nothing twice
  PluginRegistry& r = plugin_registry();
  ASSERT_NE(r.find("YoloDecode", "1", "kiln.examples"), nullptr);
  ASSERT_NE(r.find("BatchedNMS", "", "kiln.examples"), nullptr);

  Status missing = load_plugin_library("/nonexistent/libnope.so");
  EXPECT_EQ(missing.code(), StatusCode::kIoError);
  EXPECT_NE(missing.message().find("'/nonexistent/libnope.so' does not exist"), std::string::npos)
      << missing.message();
  Status not_plugin = load_plugin_library(KILN_NOT_A_PLUGIN);
  EXPECT_EQ(not_plugin.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(not_plugin.message().find("is not a kiln plugin library: it does not export kiln_register_plugins"),
            std::string::npos) << not_plugin.message();
  Status not_so = load_plugin_library(kData + "plugin_detect.onnx");
  EXPECT_EQ(not_so.code(), StatusCode::kIoError);
  EXPECT_NE(not_so.message().find("cannot load plugin library"), std::string::npos) << not_so.message();
}

TEST(PluginOnnx, DetectorModelMatchesNumpy) {
  load_examples();
  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = "cpu"}).build_from_onnx(kData + "plugin_detect.onnx", plan);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  auto plugins = steps_of(*plan, "Plugin");
  ASSERT_EQ(plugins.size(), 2u);
  for (const auto& st : plugins) EXPECT_EQ(st.tactic, "cpu.plugin");
  // The batch stays symbolic through both plugins; the other dims are numbers.
  for (const TensorDesc& d : plan->outputs()) {
    ASSERT_FALSE(d.dims.empty()) << d.str();
    EXPECT_EQ(d.dims[0], -1) << d.str();
    EXPECT_EQ(d.dim_names[0], "batch") << d.str();
  }
  std::map<std::string, Tensor> in{{"head", read_npy(kData + "plugin_detect_input.npy")}};
  auto out = run(plan, in);
  for (const char* name : {"boxes", "scores", "det_boxes", "det_scores"})
    expect_close(out.at(name), read_npy(kData + "plugin_detect_" + name + ".npy"), 1e-4, name);
  for (const char* name : {"num_detections", "det_classes"})
    EXPECT_TRUE(same_bytes(out.at(name), read_npy(kData + "plugin_detect_" + name + ".npy"))) << name;

  // Another batch size through the same plan: the shapes follow.
  Tensor x = read_npy(kData + "plugin_detect_input.npy");
  Tensor one = Tensor(x.dtype(), {1, x.dim(1), x.dim(2), x.dim(3)});
  std::memcpy(one.raw(), x.raw(), one.nbytes());
  auto out1 = run(plan, {{"head", one}});
  EXPECT_EQ(out1.at("det_boxes").dims(), (Dims{1, 20, 4}));
  EXPECT_EQ(out1.at("num_detections").get_i64(0), out.at("num_detections").get_i64(0));
}

TEST(PluginOnnx, RowsModelMatchesNumpy) {
  load_examples();
  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = "cpu"}).build_from_onnx(kData + "plugin_rows.onnx", plan);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  auto out = run(plan, {{"rows", read_npy(kData + "plugin_rows_input.npy")}});
  for (const char* name : {"det_boxes", "det_scores"})
    expect_close(out.at(name), read_npy(kData + "plugin_rows_" + name + ".npy"), 1e-4, name);
  for (const char* name : {"num_detections", "det_classes"})
    EXPECT_TRUE(same_bytes(out.at(name), read_npy(kData + "plugin_rows_" + name + ".npy"))) << name;
  // Fewer than max_detections were found in one image: its last rows are padding.
  const Tensor& num = out.at("num_detections");
  EXPECT_LT(num.get_i64(0), 30);
  EXPECT_EQ(out.at("det_classes").get_i64(29), -1);
}

TEST(PluginOnnx, UnregisteredDomainNamesThePluginHint) {
  std::shared_ptr<Plan> plan;
  // A namespace nothing registered: the importer says so and how to provide it.
  std::string model = read_file(kData + "plugin_detect.onnx");
  for (size_t at = model.find("kiln.examples"); at != std::string::npos; at = model.find("kiln.examples", at))
    model.replace(at, 13, "kiln.nothere!");
  Status s = Builder(BuildOptions{.device = "cpu"}).build_from_onnx_bytes(model, plan);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("no plugin 'YoloDecode' of namespace 'kiln.nothere!' is registered (load its library with --plugin LIB.so)"),
            std::string::npos) << s.message();
}

TEST(PluginPlan, RoundTripAndMissingPlugin) {
  AffineRegistered reg;
  Network net;
  auto x = net.add_input("x", DataType::kFloat, {-1, 3});
  auto outs = net.add_plugin({x}, "Affine", "", "kiln.test", PluginFields().set_float("factor", 2.5));
  ASSERT_EQ(outs.size(), 2u) << net.first_error();
  net.mark_output(outs[0], "y");
  net.mark_output(outs[1], "pairs");
  ASSERT_EQ(net.first_error(), "");
  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = "cpu"}).build(net, plan);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  // [x_dim0 * 3 / 2] rounded up stays symbolic.
  auto od = plan->outputs();
  ASSERT_EQ(od[1].dim_names.size(), 1u);
  EXPECT_EQ(od[1].dim_names[0], "ceil(x_dim0*3/2)");

  std::mt19937 rng(3);
  Tensor in = random_tensor({5, 3}, rng);
  auto want = run(plan, {{"x", in}});
  ASSERT_EQ(want.at("pairs").dims(), (Dims{8}));
  for (int64_t i = 0; i < 15; ++i)
    EXPECT_FLOAT_EQ(want.at("y").data<float>()[i], in.data<float>()[i] * 2.5f);
  EXPECT_FLOAT_EQ(want.at("pairs").data<float>()[7], in.data<float>()[14]);
  EXPECT_FLOAT_EQ(want.at("pairs").data<float>()[1], in.data<float>()[2] + in.data<float>()[3]);

  // The state (factor 2.5) travels in the plan; a fresh object is made from it.
  std::string bytes = plan->serialize();
  std::shared_ptr<Plan> loaded;
  ASSERT_TRUE(Plan::deserialize(bytes, loaded).is_ok());
  auto got = run(loaded, {{"x", in}});
  EXPECT_TRUE(same_bytes(got.at("y"), want.at("y")));
  EXPECT_TRUE(same_bytes(got.at("pairs"), want.at("pairs")));

  // Without the creator, loading names the plugin and how to provide it.
  plugin_registry().remove("Affine", "1", "kiln.test");
  s = Plan::deserialize(bytes, loaded);
  EXPECT_EQ(s.code(), StatusCode::kIncompatible);
  EXPECT_NE(s.message().find("plugin 'Affine' (version 1, namespace 'kiln.test') is not registered"),
            std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--plugin LIB.so"), std::string::npos) << s.message();
  ASSERT_TRUE(plugin_registry().add(std::make_shared<AffineCreator>()).is_ok());
}

TEST(PluginBuild, GpuOnlyPluginInCpuPlanIsAnError) {
  AffineRegistered reg;
  Network net;
  auto x = net.add_input("x", DataType::kFloat, {2, 3});
  auto outs = net.add_plugin({x}, "Affine", "1", "kiln.test", PluginFields().set_int("gpu_only", 1));
  ASSERT_EQ(outs.size(), 2u) << net.first_error();
  net.mark_output(outs[0], "y");
  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = "cpu"}).build(net, plan);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("plugin 'Affine' (version 1, namespace 'kiln.test') has no CPU implementation"),
            std::string::npos) << s.message();
}

TEST(PluginBuild, NegotiationInsertsCastsAndTransposes) {
  AffineRegistered reg;
  std::mt19937 rng(5);
  Tensor in = random_tensor({2, 3, 4, 5}, rng);
  // float64 only: the builder casts the float32 input and casts the outputs back.
  {
    Network net;
    auto x = net.add_input("x", DataType::kFloat, {2, 3, 4, 5});
    auto outs = net.add_plugin({x}, "Affine", "1", "kiln.test",
                               PluginFields().set_float("factor", 3).set_int("dtype", int64_t(DataType::kDouble)));
    ASSERT_EQ(outs.size(), 2u) << net.first_error();
    net.mark_output(outs[0], "y");
    net.mark_output(outs[1], "pairs");
    std::shared_ptr<Plan> plan;
    Status s = Builder(BuildOptions{.device = "cpu"}).build(net, plan);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    auto st = steps_of(*plan, "Plugin");
    ASSERT_EQ(st.size(), 1u);
    EXPECT_NE(st[0].inputs.find("float64"), std::string::npos) << st[0].inputs;
    auto out = run(plan, {{"x", in}});
    ASSERT_EQ(out.at("y").dtype(), DataType::kFloat);
    for (int64_t i = 0; i < in.numel(); ++i)
      EXPECT_FLOAT_EQ(out.at("y").data<float>()[i], in.data<float>()[i] * 3);
  }
  // Channels-last only: the plugin reads NHWC storage with NCHW dims; pairs (in logical order)
  // prove the data it got was transposed.
  {
    Network net;
    auto x = net.add_input("x", DataType::kFloat, {2, 3, 4, 5});
    auto outs = net.add_plugin({x}, "Affine", "1", "kiln.test",
                               PluginFields().set_float("factor", 1).set_int("channels_last", 1));
    ASSERT_EQ(outs.size(), 2u) << net.first_error();
    net.mark_output(outs[0], "y");
    net.mark_output(outs[1], "pairs");
    std::shared_ptr<Plan> plan;
    Status s = Builder(BuildOptions{.device = "cpu"}).build(net, plan);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_GE(steps_of(*plan, "Transpose").size(), 2u);
    auto out = run(plan, {{"x", in}});
    ASSERT_EQ(out.at("y").dims(), (Dims{2, 3, 4, 5}));
    for (int64_t i = 0; i < in.numel(); ++i)
      ASSERT_FLOAT_EQ(out.at("y").data<float>()[i], in.data<float>()[i]) << i;
    for (int64_t i = 0; i < in.numel() / 2; ++i)
      ASSERT_FLOAT_EQ(out.at("pairs").data<float>()[i],
                      in.data<float>()[2 * i] + in.data<float>()[2 * i + 1]) << i;
  }
}

TEST(PluginNetwork, AddPluginObjectAndErrors) {
  load_examples();
  auto creator = plugin_registry().find("BatchedNMS", "1", "kiln.examples");
  ASSERT_NE(creator, nullptr);
  std::unique_ptr<Plugin> nms;
  ASSERT_TRUE(creator->create(PluginFields().set_int("max_detections", 2).set_float("score_threshold", 0.1), nms).is_ok());
  Network net;
  auto boxes = net.add_input("boxes", DataType::kFloat, {1, 3, 4});
  auto scores = net.add_input("scores", DataType::kFloat, {1, 3, 1});
  auto outs = net.add_plugin({boxes, scores}, *nms);
  ASSERT_EQ(outs.size(), 4u) << net.first_error();
  net.mark_output(outs[0], "num");
  net.mark_output(outs[1], "det_boxes");
  net.mark_output(outs[3], "det_classes");
  std::shared_ptr<Plan> plan;
  Status s = Builder(BuildOptions{.device = "cpu"}).build(net, plan);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  // Boxes 0 and 1 overlap (IoU 0.81 > 0.45): 1 (the higher score) suppresses 0; 2 is apart.
  Tensor b = testing::f32({1, 3, 4}, {0, 0, 10, 10, 0, 0, 10, 9, 20, 20, 30, 30});
  Tensor sc = testing::f32({1, 3, 1}, {0.5f, 0.9f, 0.3f});
  auto out = run(plan, {{"boxes", b}, {"scores", sc}});
  EXPECT_EQ(out.at("num").get_i64(0), 2);
  EXPECT_EQ(out.at("det_boxes").get_f64(3), 9);
  EXPECT_EQ(out.at("det_boxes").get_f64(4), 20);

  Network bad;
  auto y = bad.add_input("y", DataType::kFloat, {1, 3, 4});
  EXPECT_TRUE(bad.add_plugin({y}, "Nope", "", "kiln.test", {}).empty());
  EXPECT_NE(bad.first_error().find("plugin 'Nope' (version any, namespace 'kiln.test') is not registered"),
            std::string::npos) << bad.first_error();
  Network wrong;
  auto z = wrong.add_input("z", DataType::kFloat, {1, 3, 5});
  EXPECT_TRUE(wrong.add_plugin({z, z}, *nms).empty());
  EXPECT_NE(wrong.first_error().find("BatchedNMS: boxes must be [N, B, 4]"), std::string::npos)
      << wrong.first_error();
}

}  // namespace
}  // namespace kiln
