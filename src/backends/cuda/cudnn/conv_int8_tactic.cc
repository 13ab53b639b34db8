// cuda.cudnn_conv_int8: the quantized Conv (ConvAttrs q_* fields, ops/quantized.h) on cuDNN's
// int8 tensor-core engines through the graph API (conv_graph.h): X int8 NHWC, W int8 (reordered
// once to KRSC), products accumulated in int32, and one fused epilogue in float32,
//   Y = relu?(acc * q_x_scale * q_w_scale[k] + B + Z),
// where Z is of the output type, or int8 read as Z * q_z_scale (a quantized residual), stored in the node's output type (q_out: float16 in a float16 build, float32 or bfloat16), or,
// requantized (ConvAttrs::q_y_scale), as the next layer's int8 input: the value times
// 1 / q_y_scale, rounded and saturated by cuDNN.
// The per-channel scales are folded into one float32 vector at instantiate.
//
// What it takes: 2-D, ungrouped, not transposed, channels-last (the layout pass makes quantized
// convolutions channels-last on CUDA, cuda_traits.cc), X int8 with zero point 0 (kiln's own
// calibration and QAT exporters make symmetric activations), input and output channels multiples
// of 4 (cuDNN's int8 kernels read channels four at a time; the layout pass pads a 3-channel stem
// to 4), no epilogue program. Anything else is left to the next tactic.
//
// Tuning: the candidates are the graph API's first engine configs for the node's shapes, timed by
// the one autotuner; the choice and the workspace bound are the step's state, as cuda.cudnn_conv's
// ("cudnn_conv_int8 LIMIT\n<choice>"). At other shapes (an optimization profile's) the kernel
// takes the heuristics' first plan that finalizes; nothing is timed at run time.
#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cudnn/conv_graph.h"
#include "backends/cuda/cudnn/conv_mapping.h"
#include "backends/cuda/cudnn/cudnn_descriptors.h"
#include "common/log.h"
#include "ops/conv.h"
#include "ops/epilogue.h"

namespace kiln {
namespace cuda {
namespace {

constexpr size_t kMaxWorkspace = size_t(512) << 20;
constexpr int kCandidates = 4;
constexpr const char* kId = "cuda.cudnn_conv_int8";

bool out_type_ok(DataType t) {
  return t == DataType::kFloat || t == DataType::kFloat16 || t == DataType::kBFloat16;
}

cudnnDataType_t cudnn_out_type(DataType t) {
  return t == DataType::kFloat16    ? CUDNN_DATA_HALF
         : t == DataType::kBFloat16 ? CUDNN_DATA_BFLOAT16
                                    : CUDNN_DATA_FLOAT;
}

std::string dims_key(const Dims& x, const Dims& w, const Dims& y) {
  return cat(dims_to_string(x), ";", dims_to_string(w), ";", dims_to_string(y));
}

// The graph for one mapped convolution.
ConvGraphSpec int8_spec(const CudnnConvMapping& m, DataType out, bool bias, bool z, bool relu,
                        bool requantize, bool int8_z) {
  ConvGraphSpec s = conv_graph_geometry(m);
  s.int8 = true;
  s.requantize = requantize;
  s.int8_residual = z && int8_z;
  s.dtype = cudnn_out_type(out);
  s.bias = bias;
  s.residual = z;
  s.relu = relu;
  return s;
}

// "graph CONFIG ENGINE @ X;W;Y": the graph API's CONFIG-th engine config at those dims.
struct Choice {
  int config = -1;
  int64_t engine = -1;
  std::string dims;
  bool empty() const { return config < 0; }
  std::string str() const { return cat("graph ", config, " ", engine, " @ ", dims); }
  static Choice parse(std::string_view s) {
    Choice c;
    if (s.empty()) return c;
    const size_t at = s.find(" @ ");
    std::istringstream in{std::string(s.substr(0, at == std::string_view::npos ? 0 : at))};
    std::string kind;
    in >> kind >> c.config >> c.engine;
    KILN_EXPECT(at != std::string_view::npos && kind == "graph" && !in.fail() && c.config >= 0,
                StatusCode::kCorruptPlan, kId, ": malformed choice '", s, "'");
    c.dims = std::string(s.substr(at + 3));
    return c;
  }
};

struct State {
  size_t limit = kMaxWorkspace;
  Choice choice;
};

std::string make_state(size_t limit, std::string_view choice) {
  return cat("cudnn_conv_int8 ", limit, "\n", choice);
}

State read_state(std::string_view s) {
  State st;
  const size_t nl = s.find('\n');
  KILN_EXPECT(s.rfind("cudnn_conv_int8 ", 0) == 0 && nl != std::string_view::npos,
              StatusCode::kCorruptPlan, kId, ": the step's state is not this tactic's");
  std::istringstream in{std::string(s.substr(16, nl - 16))};
  in >> st.limit;
  KILN_EXPECT(!in.fail(), StatusCode::kCorruptPlan, kId, ": malformed state");
  st.choice = Choice::parse(s.substr(nl + 1));
  return st;
}

class Int8ConvKernel : public Kernel {
 public:
  Int8ConvKernel(const Node& n, std::string_view state) : attrs_(n.a<ConvAttrs>()) {
    State st = read_state(state);
    limit_ = st.limit;
    choice_ = st.choice;
    out_ = attrs_.q_out;
    has_bias_ = n.in(2) != nullptr;
    has_z_ = n.in(3) != nullptr;
    relu_ = attrs_.activation == "relu";
    const Value* w = n.in(1);
    KILN_EXPECT(w && w->is_constant() && w->dtype == DataType::kInt8, StatusCode::kInternal, kId,
                ": needs a constant int8 W");
    const Tensor& t = w->data;
    std::vector<char> host(t.nbytes());
    if (t.numel() > 0) reorder_filter_channels_last(t.raw(), host.data(), t.dims(), 1);
    filter_ = std::make_unique<DeviceBuffer>(host.data(), host.size());
    // One float32 multiplier per output channel: what the epilogue's first step reads.
    const int64_t k = t.dim(0);
    std::vector<float> scale(static_cast<size_t>(k));
    for (int64_t i = 0; i < k; ++i)
      scale[i] = static_cast<float>(
          attrs_.q_x_scale * attrs_.q_w_scale[attrs_.q_w_scale.size() == 1 ? 0 : i]);
    scale_ = std::make_unique<DeviceBuffer>(scale.data(), scale.size() * sizeof(float));
    // The epilogue's last multiplier: 1 / q_y_scale when requantizing, times Z's scale for an
    // int8 Z, which the value is divided by before Z is added (conv_graph.h).
    const bool int8_z = has_z_ && attrs_.quantized_residual();
    if (attrs_.requantized() || int8_z) {
      const float post = static_cast<float>((int8_z ? attrs_.q_z_scale : 1.0) /
                                            (attrs_.requantized() ? attrs_.q_y_scale : 1.0));
      y_scale_ = std::make_unique<DeviceBuffer>(&post, sizeof(float));
    }
    if (int8_z) {
      const float pre = static_cast<float>(1.0 / attrs_.q_z_scale);
      z_pre_ = std::make_unique<DeviceBuffer>(&pre, sizeof(float));
    }
  }

  size_t workspace_size(const LaunchArgs& a) const override {
    if (a.out(0).numel() == 0) return 0;
    return static_cast<size_t>(plan_for(a).workspace());
  }

  void enqueue(const LaunchArgs& a) override {
    DeviceTensor& y = a.out(0);
    if (y.numel() == 0) return;
    const ConvGraphPlan& p = plan_for(a);
    KILN_EXPECT(a.workspace_bytes >= static_cast<size_t>(p.workspace()), StatusCode::kInternal,
                kId, ": workspace of ", a.workspace_bytes, " bytes, ", p.workspace(), " needed");
    if (has_z_)
      KILN_EXPECT(a.in(3).numel() == y.numel(), StatusCode::kInvalidArgument,
                  "Conv: the residual input has ", a.in(3).numel(), " elements but Y has ",
                  y.numel());
    cudaStream_t s = stream_of(a);
    cudnnHandle_t h = resources_of(a).cudnn(s);
    KILN_CUDNN_CHECK(p.execute(h, a.in(0).data, filter_->get(), has_bias_ ? a.in(2).data : nullptr,
                               has_z_ ? a.in(3).data : nullptr, y.data, a.workspace,
                               scale_->get(), y_scale_ ? y_scale_->get() : nullptr,
                               z_pre_ ? z_pre_->get() : nullptr));
  }

 private:
  // The plan for these shapes, made once and kept: the tuned choice at the tuned dims, else the
  // heuristics' first plan that finalizes (nothing timed).
  const ConvGraphPlan& plan_for(const LaunchArgs& a) const {
    const std::string key = dims_key(a.in(0).dims, a.in(1).dims, a.out(0).dims);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return *it->second;
    CudnnConvMapping m = map_conv_to_cudnn(attrs_, a.in(0).dims, a.in(1).dims, a.out(0).dims);
    KILN_EXPECT(m.ok && m.direct && !m.no_conv, StatusCode::kUnsupported, kId, " cannot run X ",
                dims_to_string(a.in(0).dims), " W ", dims_to_string(a.in(1).dims),
                m.ok ? "" : ": ", m.why);
    const ConvGraphSpec spec =
        int8_spec(m, out_, has_bias_, has_z_, relu_, attrs_.requantized(),
                  attrs_.quantized_residual());
    TuningHandle th = cudnn_tuning_handle();
    std::unique_ptr<ConvGraphPlan> p;
    if (!choice_.empty() && choice_.dims == key)
      p = conv_graph_plan_at(th.handle, spec, choice_.config, choice_.engine,
                             static_cast<int64_t>(limit_));
    if (!p) {
      auto v = conv_graph_plans(th.handle, spec, 1, static_cast<int64_t>(limit_));
      if (!v.empty()) p = std::move(v[0]);
    }
    KILN_EXPECT(p != nullptr, StatusCode::kUnsupported, kId, ": cuDNN has no int8 plan for X ",
                dims_to_string(a.in(0).dims), " W ", dims_to_string(a.in(1).dims));
    return *(plans_[key] = std::move(p));
  }

  ConvAttrs attrs_;
  DataType out_ = DataType::kFloat16;
  size_t limit_ = kMaxWorkspace;
  Choice choice_;
  bool has_bias_ = false, has_z_ = false, relu_ = false;
  std::unique_ptr<DeviceBuffer> filter_;  // KRSC int8
  std::unique_ptr<DeviceBuffer> scale_;   // float32 [K]
  std::unique_ptr<DeviceBuffer> y_scale_; // float32 multiplier after the ReLU (see above)
  std::unique_ptr<DeviceBuffer> z_pre_;   // float32 1 / q_z_scale, for an int8 Z
  mutable std::mutex mu_;
  mutable std::map<std::string, std::unique_ptr<ConvGraphPlan>> plans_;
};

class Int8ConvTactic : public Tactic {
 public:
  std::string_view id() const override { return kId; }
  std::string_view op() const override { return "Conv"; }

  Status supports(const Node& n) const override {
    const auto& a = n.a<ConvAttrs>();
    if (!a.quantized()) return unsupported("not a quantized Conv");
    const Value* x = n.in(0);
    const Value* w = n.in(1);
    if (!x || !w || n.outputs.size() != 1) return unsupported("needs X, W and one output");
    if (x->dtype != DataType::kInt8 || a.q_x_zero != 0)
      return unsupported("X must be int8 with zero point 0 (symmetric)");
    if (!w->is_constant() || w->dtype != DataType::kInt8)
      return unsupported("W must be a constant int8 tensor");
    const DataType out = a.q_out;
    if (!out_type_ok(out) ||
        n.outputs[0]->dtype != (a.requantized() ? DataType::kInt8 : a.q_out))
      return unsupported(cat("output type ", dtype_name(n.outputs[0]->dtype)));
    for (size_t i = 2; i < n.inputs.size(); ++i)
      if (n.in(i) &&
          n.in(i)->dtype != (i == 3 && a.quantized_residual() ? DataType::kInt8 : out))
        return unsupported("B or Z not of the output type (or an int8 Z without its scale)");
    if (!a.channels_last) return unsupported("channels-first (cuDNN's int8 engines want NHWC)");
    if (a.transposed || a.group != 1) return unsupported("transposed or grouped");
    if (!a.activation.empty() && a.activation != "relu")
      return unsupported(cat("activation '", a.activation, "'"));
    if (has_epilogue_program(a.epilogue)) return unsupported("an epilogue program");
    if (!x->shape.rank_known || x->shape.rank() != 4) return unsupported("not a 2-D convolution");
    if (w->data.rank() != 4 || w->data.dim(0) % 4 != 0 || w->data.dim(1) % 4 != 0)
      return unsupported("input or output channels not a multiple of 4");
    const Value* y = n.outputs[0];
    if (x->shape.fully_known() && y->shape.fully_known()) {
      CudnnConvMapping m =
          map_conv_to_cudnn(a, x->shape.concrete(), w->data.dims(), y->shape.concrete());
      if (!m.ok) return unsupported(m.why);
      if (!m.direct || m.no_conv) return unsupported("asymmetric pads or an empty convolution");
      return probe(m, out, n);
    }
    return Status::ok();
  }

  std::string prepare(const Node& n) const override { return prepare_choice(n, "", {}); }

  std::vector<std::string> candidates(const Node& n, const TacticLimits& limits) const override {
    const Value* x = n.in(0);
    const Value* y = n.outputs[0];
    if (!x->shape.fully_known() || !y->shape.fully_known()) return {};
    const Dims xd = x->shape.concrete(), wd = n.in(1)->data.dims(), yd = y->shape.concrete();
    CudnnConvMapping m = map_conv_to_cudnn(n.a<ConvAttrs>(), xd, wd, yd);
    if (!m.ok || !m.direct || m.no_conv) return {};
    TuningHandle th = cudnn_tuning_handle();
    Choice c;
    c.dims = dims_key(xd, wd, yd);
    std::vector<std::string> out;
    for (auto& g : conv_graph_plans(th.handle, spec_of(m, n), kCandidates,
                                    static_cast<int64_t>(limits.workspace(kMaxWorkspace)))) {
      c.config = g->config();
      c.engine = g->engine();
      out.push_back(c.str());
    }
    if (out.size() < 2) out.clear();
    return out;
  }

  std::string prepare_choice(const Node& n, std::string_view choice,
                             const TacticLimits& limits) const override {
    Choice::parse(choice);
    return make_state(limits.workspace(kMaxWorkspace), choice);
  }

  std::unique_ptr<Kernel> instantiate(const Node& n, std::string_view state) const override {
    return std::make_unique<Int8ConvKernel>(n, state);
  }

 private:
  static ConvGraphSpec spec_of(const CudnnConvMapping& m, const Node& n) {
    const auto& a = n.a<ConvAttrs>();
    return int8_spec(m, a.q_out, n.in(2) != nullptr, n.in(3) != nullptr, a.activation == "relu",
                     a.requantized(), a.quantized_residual());
  }

  // Whether cuDNN finalizes a plan for the graph, so that what it lacks falls back at build time.
  // Without a usable device the question is left to run time. Finalizing takes cuDNN tens of
  // milliseconds and the builder asks about every step more than once (and ResNet-50 has 53
  // convolutions of 20 geometries), so answers are kept per structure and shape.
  static Status probe(const CudnnConvMapping& m, DataType out, const Node& n) {
    std::string key = cat(n.attrs->structure(), "|", dtype_name(out));
    for (const Value* v : n.inputs) key += v ? "|" + v->shape.str() : "|-";
    key += "|" + n.outputs[0]->shape.str();
    static std::mutex mu;
    static std::map<std::string, bool> known;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (auto it = known.find(key); it != known.end())
        return it->second ? Status::ok()
                          : unsupported("cuDNN has no int8 engine for this convolution");
    }
    std::optional<TuningHandle> th;
    try {
      th.emplace(cudnn_tuning_handle());
    } catch (const Error&) {
      return Status::ok();
    }
    const bool ok =
        !conv_graph_plans(th->handle, spec_of(m, n), 1, static_cast<int64_t>(kMaxWorkspace))
             .empty();
    {
      std::lock_guard<std::mutex> lock(mu);
      known[key] = ok;
    }
    return ok ? Status::ok() : unsupported("cuDNN has no int8 engine for this convolution");
  }
};

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_cudnn_conv_int8() {
  static const cuda::Int8ConvTactic t;
  return t;
}

}  // namespace kiln
