// cuda.cudnn_conv: Conv (forward and transposed; 1-D, 2-D, 3-D; grouped, dilated, strided, any
// pads; NCHW or channels-last; float32 / float16 / bfloat16) through cuDNN's legacy convolution
// API, with the node's fused epilogue y = act(conv(x, w) + b + z).
//
// - cuDNN wants symmetric pads and 2-D/3-D convolutions: conv_mapping.h maps every kiln Conv onto
//   one (a 1-D conv gets H = 1; asymmetric pads and ConvTranspose's output_padding compute a
//   slightly larger "native" output in the workspace, of which Y is a window).
// - Forward convs whose output is direct use cudnnConvolutionBiasActivationForward when there is
//   an epilogue (relu: with any algorithm; no activation: only with IMPLICIT_PRECOMP_GEMM, the one
//   algorithm cuDNN allows with the identity activation). Everything else is cudnnConvolution-
//   Forward / cudnnConvolutionBackwardData followed by kiln's epilogue kernel (conv_epilogue.cu),
//   which adds bias and residual, applies relu and takes the window in one pass.
// - The algorithm is chosen at build time by the autotuner (builder/autotuner.h) from this
//   tactic's candidates(): cuDNN's heuristic list of legacy algorithms (a forward conv with an
//   epilogue both fused through cudnnConvolutionBiasActivationForward and as the convolution
//   followed by kiln's epilogue kernel) and the graph API's engine configs (conv_graph.h), each
//   timed as the whole step. The choice and the workspace bound (BuildOptions::max_workspace_mib)
//   are the step's state; the runtime never times. At shapes other than the tuned ones (an
//   optimization profile's other shapes) the kernel keeps the kind of choice where it applies,
//   else takes cuDNN's heuristics; channel-slice views (strided X or Y, decided when a context
//   plans its memory) take the first graph-API plan that runs.
// - Precision: compute type float; float16 / bfloat16 use tensor-op math; float32 uses TF32 tensor
//   cores only when the node's allow_tf32 is set (the precision pass sets it), else FMA math.
//   FFT and non-fused Winograd algorithms are not used for float32: their error (1e-5..1e-4 of the
//   largest output) breaks the promise that float32 matches the reference to ~1e-5.
// - Channels-last W is reordered once, at instantiate, to cuDNN's KRSC filter layout, so it must
//   be a constant.
// - The node's epilogue program (ConvAttrs::epilogue: ReLU6, SiLU, sigmoid, ...) runs after all
//   of the above, in the same step, as an NVRTC-compiled kernel in place over Y
//   (codegen/epilogue_program.h), compiled at prepare() and stored in the tactic's state; relu
//   and no activation stay cuDNN's own.
#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include "backends/cuda/codegen/epilogue_program.h"
#include "backends/cuda/cudnn/conv_graph.h"
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cudnn/conv_mapping.h"
#include "backends/cuda/cudnn/cudnn_descriptors.h"
#include "backends/cuda/kernels/conv_epilogue.h"
#include "common/log.h"
#include "ops/conv.h"
#include "ops/epilogue.h"

namespace kiln {
namespace cuda {
namespace {

constexpr size_t kAlign = 256;
// Largest workspace an algorithm may ask for. The context's workspace is shared by all steps, so
// this bounds what one conv can add to every context; fast inference algorithms need far less.
constexpr size_t kMaxAlgoWorkspace = size_t(512) << 20;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

int64_t volume(const std::vector<int>& d) {
  int64_t v = 1;
  for (int e : d) v *= e;
  return v;
}

bool conv_dtype_ok(DataType t) {
  return t == DataType::kFloat || t == DataType::kFloat16 || t == DataType::kBFloat16;
}

cudnnDataType_t cudnn_type(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return CUDNN_DATA_HALF;
    case DataType::kBFloat16:
      return CUDNN_DATA_BFLOAT16;
    default:
      return CUDNN_DATA_FLOAT;
  }
}

EpilogueType epilogue_type(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return EpilogueType::kHalf;
    case DataType::kBFloat16:
      return EpilogueType::kBFloat16;
    default:
      return EpilogueType::kFloat;
  }
}

struct Precision {
  DataType dtype = DataType::kFloat;
  bool tf32 = false;
  bool strict_fp32() const { return dtype == DataType::kFloat && !tf32; }
};

// The math type algorithm searches start from: tensor cores allowed except for strict float32.
cudnnMathType_t search_math(const Precision& p) {
  return p.strict_fp32() ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}
bool math_ok(cudnnMathType_t m, const Precision& p) {
  // ALLOW_CONVERSION would round float32 data to float16 inside cuDNN.
  if (m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  return !(p.strict_fp32() && m == CUDNN_TENSOR_OP_MATH);
}
// cuDNN's DEFAULT_MATH lets float32 use TF32 on Ampere and later: strict float32 always runs FMA.
cudnnMathType_t run_math(cudnnMathType_t found, const Precision& p) {
  return p.strict_fp32() ? CUDNN_FMA_MATH : found;
}
bool fwd_algo_ok(cudnnConvolutionFwdAlgo_t a, const Precision& p) {
  if (p.dtype != DataType::kFloat) return true;
  return a != CUDNN_CONVOLUTION_FWD_ALGO_FFT && a != CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING &&
         a != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
bool bwd_algo_ok(cudnnConvolutionBwdDataAlgo_t a, const Precision& p) {
  if (p.dtype != DataType::kFloat) return true;
  return a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT &&
         a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING &&
         a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}

// cuDNN's description of one mapped convolution.
struct Descriptors {
  TensorDesc x, y, bias;  // transposed: x is dy (kiln's X), y is dx (the native output)
  FilterDesc w;
  ConvDesc conv;
};

void describe(const CudnnConvMapping& m, const Precision& p, Descriptors& d) {
  const cudnnDataType_t t = cudnn_type(p.dtype);
  set_tensor_nd(d.x.get(), t, m.x_dims, m.channels_last);
  set_tensor_nd(d.y.get(), t, m.y_dims, m.channels_last);
  std::vector<int> bias_dims(m.y_dims.size(), 1);
  bias_dims[1] = m.y_dims[1];
  set_tensor_nd(d.bias.get(), t, bias_dims, false);
  KILN_CUDNN_CHECK(cudnnSetFilterNdDescriptor(
      d.w.get(), t, m.channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
      static_cast<int>(m.w_dims.size()), m.w_dims.data()));
  KILN_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(d.conv.get(), m.nsp, m.pad.data(),
                                                   m.stride.data(), m.dilation.data(),
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  KILN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d.conv.get(), m.groups));
  KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), search_math(p)));
}

// Workspace of `algo` at the descriptor's current math type; false when cuDNN refuses the algo.
bool algo_workspace(cudnnHandle_t h, const CudnnConvMapping& m, const Descriptors& d, int algo,
                    size_t& bytes) {
  cudnnStatus_t s = m.transposed ? cudnnGetConvolutionBackwardDataWorkspaceSize(
                                       h, d.w.get(), d.x.get(), d.conv.get(), d.y.get(),
                                       static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), &bytes)
                                 : cudnnGetConvolutionForwardWorkspaceSize(
                                       h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(),
                                       static_cast<cudnnConvolutionFwdAlgo_t>(algo), &bytes);
  return s == CUDNN_STATUS_SUCCESS;
}

struct Choice {
  int algo = -1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

// Picks the first acceptable entry of a cuDNN perf list (sorted best first); leaves the chosen
// math type on the descriptor.
template <class Perf, class AlgoOk>
Choice pick(cudnnHandle_t h, const CudnnConvMapping& m, Descriptors& d, const Perf* perf, int n,
            const Precision& p, size_t limit, AlgoOk algo_ok) {
  for (int i = 0; i < n; ++i) {
    const Perf& r = perf[i];
    if (r.status != CUDNN_STATUS_SUCCESS || !math_ok(r.mathType, p) || !algo_ok(r.algo, p))
      continue;
    const cudnnMathType_t math = run_math(r.mathType, p);
    KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), math));
    size_t ws = 0;
    if (!algo_workspace(h, m, d, static_cast<int>(r.algo), ws)) continue;
    ws = std::max(ws, r.memory);
    if (ws > limit) continue;
    return {static_cast<int>(r.algo), math, ws};
  }
  KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), search_math(p)));
  return {};
}

// cuDNN's heuristics (no timing, no allocation, no synchronisation).
Choice heuristic_choice(cudnnHandle_t h, const CudnnConvMapping& m, Descriptors& d,
                        const Precision& p, size_t limit) {
  int max_count = 0;
  if (m.transposed) {
    KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max_count));
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(std::max(max_count, 1));
    int got = 0;
    KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        h, d.w.get(), d.x.get(), d.conv.get(), d.y.get(), max_count, &got, perf.data()));
    return pick(h, m, d, perf.data(), got, p, limit, bwd_algo_ok);
  }
  KILN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(std::max(max_count, 1));
  int got = 0;
  KILN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.get(), d.w.get(), d.conv.get(),
                                                          d.y.get(), max_count, &got, perf.data()));
  return pick(h, m, d, perf.data(), got, p, limit, fwd_algo_ok);
}

// Every candidate list is cut at this many legacy algorithms and graph-API plans: those further
// down cuDNN's heuristics rarely win, and each costs build time.
constexpr int kLegacyCandidates = 6;
constexpr int kGraphCandidates = 4;

// The graph-API description of a mapped convolution and a node's epilogue (packed).
ConvGraphSpec graph_spec(const CudnnConvMapping& m, const Precision& p, bool bias, bool z,
                         bool relu) {
  ConvGraphSpec spec = conv_graph_geometry(m);
  spec.dtype = cudnn_type(p.dtype);
  spec.bias = bias;
  spec.residual = z;
  spec.relu = relu;
  return spec;
}

// The graph API runs float16/bfloat16 (float32 would need its own accuracy rules), ungrouped
// (the graph infers groups from the shapes; not needed so far), direct forward convolutions.
bool graph_eligible(const CudnnConvMapping& m, const Precision& p) {
  return p.dtype != DataType::kFloat && m.groups == 1 && m.direct && !m.transposed && !m.no_conv;
}

// One way to run a convolution, as the autotuner's candidates and a plan's steps name it:
//   "fwd ALGO MATH FUSED"  legacy forward algorithm, math type, cudnnConvolutionBiasActivation-
//                          Forward (1) or cudnnConvolutionForward + kiln's epilogue kernel (0);
//   "bwd ALGO MATH"        legacy backward-data algorithm (ConvTranspose);
//   "graph CONFIG ENGINE"  the graph API's CONFIG-th engine config, which uses engine ENGINE;
// each followed by " @ DIMS", the X, W and Y dims it was tuned at.
struct ConvChoice {
  enum Kind { kNone, kFwd, kBwd, kGraph } kind = kNone;
  int algo = -1;  // fwd / bwd
  int math = 0;
  bool fused = false;
  int config = -1;  // graph
  int64_t engine = -1;
  std::string dims;  // "X;W;Y" as dims_to_string prints them

  std::string str() const {
    switch (kind) {
      case kFwd:
        return cat("fwd ", algo, " ", math, " ", fused ? 1 : 0, " @ ", dims);
      case kBwd:
        return cat("bwd ", algo, " ", math, " @ ", dims);
      case kGraph:
        return cat("graph ", config, " ", engine, " @ ", dims);
      default:
        return {};
    }
  }
  static ConvChoice parse(std::string_view s) {
    ConvChoice c;
    if (s.empty()) return c;
    const size_t at = s.find(" @ ");
    KILN_EXPECT(at != std::string_view::npos, StatusCode::kCorruptPlan,
                "cuda.cudnn_conv: malformed choice '", s, "'");
    c.dims = std::string(s.substr(at + 3));
    std::istringstream in{std::string(s.substr(0, at))};
    std::string kind;
    in >> kind;
    int fused = 0;
    if (kind == "fwd") {
      c.kind = kFwd;
      in >> c.algo >> c.math >> fused;
      c.fused = fused != 0;
    } else if (kind == "bwd") {
      c.kind = kBwd;
      in >> c.algo >> c.math;
    } else if (kind == "graph") {
      c.kind = kGraph;
      in >> c.config >> c.engine;
    }
    KILN_EXPECT(c.kind != kNone && !in.fail(), StatusCode::kCorruptPlan,
                "cuda.cudnn_conv: malformed choice '", s, "'");
    return c;
  }
};

std::string dims_key(const Dims& x, const Dims& w, const Dims& y) {
  return cat(dims_to_string(x), ";", dims_to_string(w), ";", dims_to_string(y));
}

// A step's state: "cudnn_conv LIMIT\n" (the workspace bound, bytes), the choice's line, then the
// compiled epilogue program (possibly empty).
std::string make_state(size_t limit, const std::string& choice, const std::string& program) {
  return cat("cudnn_conv ", limit, "\n", choice, "\n", program);
}
struct ConvState {
  size_t limit = kMaxAlgoWorkspace;
  ConvChoice choice;
  std::string_view program;
};
ConvState read_state(std::string_view s) {
  ConvState st;
  const size_t l1 = s.find('\n');
  const size_t l2 = l1 == std::string_view::npos ? l1 : s.find('\n', l1 + 1);
  KILN_EXPECT(s.rfind("cudnn_conv ", 0) == 0 && l2 != std::string_view::npos,
              StatusCode::kCorruptPlan, "cuda.cudnn_conv: the step's state is not this tactic's");
  std::istringstream in{std::string(s.substr(11, l1 - 11))};
  in >> st.limit;
  KILN_EXPECT(!in.fail(), StatusCode::kCorruptPlan, "cuda.cudnn_conv: malformed state");
  st.choice = ConvChoice::parse(s.substr(l1 + 1, l2 - l1 - 1));
  st.program = s.substr(l2 + 1);
  return st;
}

// Everything one concrete shape needs; made once, then read by any number of contexts.
struct ConvPlan {
  CudnnConvMapping map;
  Descriptors desc;
  int algo = 0;
  size_t algo_workspace = 0;
  size_t native_offset = 0;  // of the native output in the workspace, when the map is not direct
  size_t workspace = 0;
  bool fused = false;      // cudnnConvolutionBiasActivationForward
  bool identity = false;   // ... with the identity activation (IMPLICIT_PRECOMP_GEMM only)
  DeviceBuffer zero_bias;  // the fused call's bias when the node has none
  // When set, the step runs this cuDNN graph-API plan (conv and epilogue in one) instead of the
  // legacy calls; its workspace is algo_workspace.
  std::unique_ptr<ConvGraphPlan> graph;
};

class CudnnConvKernel : public Kernel {
 public:
  CudnnConvKernel(const Node& n, std::string_view state) : attrs_(n.a<ConvAttrs>()) {
    ConvState st = read_state(state);
    limit_ = st.limit;
    choice_ = st.choice;
    if (has_epilogue_program(attrs_.epilogue)) {
      KILN_EXPECT(!st.program.empty(), StatusCode::kCorruptPlan,
                  "cuda.cudnn_conv: the plan lacks the compiled epilogue of ", n.label());
      program_ = std::make_unique<EpilogueKernel>(attrs_.epilogue, st.program);
    } else {
      KILN_EXPECT(st.program.empty(), StatusCode::kCorruptPlan,
                  "cuda.cudnn_conv: unexpected state for ", n.label());
    }
    prec_.dtype = n.inputs[0]->dtype;
    prec_.tf32 = attrs_.allow_tf32;
    has_bias_ = n.in(2) != nullptr;
    has_z_ = n.in(3) != nullptr;
    relu_ = attrs_.activation == "relu";
    KILN_CUDNN_CHECK(cudnnSetActivationDescriptor(relu_act_.get(), CUDNN_ACTIVATION_RELU,
                                                  CUDNN_PROPAGATE_NAN, 0.0));
    KILN_CUDNN_CHECK(cudnnSetActivationDescriptor(identity_act_.get(), CUDNN_ACTIVATION_IDENTITY,
                                                  CUDNN_PROPAGATE_NAN, 0.0));
    if (attrs_.channels_last) {
      const Value* w = n.in(1);
      KILN_EXPECT(w && w->is_constant(), StatusCode::kInternal,
                  "cuda.cudnn_conv: a channels-last Conv needs a constant W");
      const Tensor& t = w->data;
      std::vector<char> host(t.nbytes());
      if (t.numel() > 0)
        reorder_filter_channels_last(t.raw(), host.data(), t.dims(), dtype_size(t.dtype()));
      filter_cl_ = std::make_unique<DeviceBuffer>(host.data(), host.size());
    }
  }

  size_t workspace_size(const LaunchArgs& a) const override {
    if (a.out(0).numel() == 0) return 0;
    return plan_for(a).workspace;
  }

  // Strided X (a channel slice of a wider tensor) and strided Y (a channel slice of a Concat's
  // output): only cuDNN graph-API plans take those (the legacy API finds no algorithm for them,
  // bench/cudnn_strided_probe.cu), for float16/bfloat16 and with W, bias and Z dense. The plan is
  // made here (cuDNN's heuristics, nothing timed), once per shape and strides, and kept for
  // enqueue().
  bool accepts_strided(const LaunchArgs& a) const override {
    if (prec_.dtype == DataType::kFloat || program_ || a.out(0).numel() == 0) return false;
    for (size_t i = 1; i < a.inputs.size(); ++i)
      if (a.has(i) && !a.in(i).dense()) return false;
    try {
      return plan_for(a).graph != nullptr;
    } catch (const Error&) {
      return false;
    }
  }

  void enqueue(const LaunchArgs& a) override {
    DeviceTensor& y = a.out(0);
    if (y.numel() == 0) return;
    convolve(a);
    if (program_) {
      program_->run(y.data, y.numel(), stream_of(a));
      check_launch("cuda.cudnn_conv epilogue");
    }
  }

 private:
  // Y = act(conv(X, W) + B + Z): everything but the epilogue program.
  void convolve(const LaunchArgs& a) const {
    DeviceTensor& y = a.out(0);
    const ConvPlan& p = plan_for(a);
    const CudnnConvMapping& m = p.map;
    cudaStream_t s = stream_of(a);
    const void* bias = a.has(2) ? a.in(2).data : nullptr;
    const void* z = a.has(3) ? a.in(3).data : nullptr;
    if (z)
      KILN_EXPECT(a.in(3).numel() == y.numel(), StatusCode::kInvalidArgument,
                  "Conv: the residual input has ", a.in(3).numel(), " elements but Y has ",
                  y.numel());
    if (m.no_conv) {
      epilogue(p, y.data, nullptr, bias, z, s);
      return;
    }
    KILN_EXPECT(a.workspace_bytes >= p.workspace, StatusCode::kInternal,
                "cuda.cudnn_conv: workspace of ", a.workspace_bytes, " bytes, ", p.workspace,
                " needed");
    void* ws = a.workspace;
    void* native = m.direct ? y.data : static_cast<char*>(a.workspace) + p.native_offset;
    const void* x = a.in(0).data;
    const void* w = filter_cl_ ? filter_cl_->get() : a.in(1).data;
    cudnnHandle_t h = resources_of(a).cudnn(s);
    const float one = 1.f, zero = 0.f;
    if (p.graph) {
      KILN_CUDNN_CHECK(p.graph->execute(h, x, w, bias, z, y.data, ws));
      return;
    }
    if (m.transposed) {
      KILN_CUDNN_CHECK(cudnnConvolutionBackwardData(
          h, &one, p.desc.w.get(), w, p.desc.x.get(), x, p.desc.conv.get(),
          static_cast<cudnnConvolutionBwdDataAlgo_t>(p.algo), ws, p.algo_workspace, &zero,
          p.desc.y.get(), native));
    } else if (p.fused) {
      // With no residual, z is y itself scaled by 0 (the usual idiom: cuDNN needs a z).
      const float alpha2 = z ? 1.f : 0.f;
      KILN_CUDNN_CHECK(cudnnConvolutionBiasActivationForward(
          h, &one, p.desc.x.get(), x, p.desc.w.get(), w, p.desc.conv.get(),
          static_cast<cudnnConvolutionFwdAlgo_t>(p.algo), ws, p.algo_workspace, &alpha2,
          p.desc.y.get(), z ? z : y.data, p.desc.bias.get(), bias ? bias : p.zero_bias.get(),
          p.identity ? identity_act_.get() : relu_act_.get(), p.desc.y.get(), y.data));
      return;
    } else {
      KILN_CUDNN_CHECK(cudnnConvolutionForward(h, &one, p.desc.x.get(), x, p.desc.w.get(), w,
                                               p.desc.conv.get(),
                                               static_cast<cudnnConvolutionFwdAlgo_t>(p.algo), ws,
                                               p.algo_workspace, &zero, p.desc.y.get(), native));
    }
    if (m.direct && !bias && !z && !relu_) return;
    epilogue(p, y.data, native, bias, z, s);
  }

  void epilogue(const ConvPlan& p, void* y, const void* src, const void* bias, const void* z,
                cudaStream_t s) const {
    const CudnnConvMapping& m = p.map;
    ConvEpilogueArgs e;
    e.y = y;
    e.src = src;
    e.bias = bias;
    e.z = z;
    e.type = epilogue_type(prec_.dtype);
    e.relu = relu_;
    e.channels_last = m.channels_last;
    e.n = m.out_dims[0];
    e.m = m.out_dims[1];
    e.nsp = m.nsp;
    for (int i = 0; i < m.nsp; ++i) {
      e.out[i] = m.out_dims[2 + i];
      e.offset[i] = m.offset[i];
      e.native[i] = m.no_conv ? m.out_dims[2 + i] : m.y_dims[2 + i];
    }
    e.window = !m.no_conv && !m.direct;
    launch_conv_epilogue(e, s);
    check_launch("Conv epilogue");
  }

  // The plan for the launch's shapes, made on first use and kept. Nothing is timed here: at the
  // shapes the plan was tuned at, the step's stored choice; at others (a profile's other shapes),
  // the same kind of choice where it applies (the tuned legacy algorithm, or the graph API's first
  // engine config), else cuDNN's heuristics, within the step's workspace bound.
  const ConvPlan& plan_for(const LaunchArgs& a) const {
    std::vector<int64_t> key;
    for (size_t i = 0; i < 2; ++i) {
      key.insert(key.end(), a.in(i).dims.begin(), a.in(i).dims.end());
      key.push_back(-1);
    }
    key.insert(key.end(), a.out(0).dims.begin(), a.out(0).dims.end());
    const bool strided = !a.in(0).dense() || !a.out(0).dense();
    if (strided) {
      key.push_back(-2);
      key.insert(key.end(), a.in(0).strides.begin(), a.in(0).strides.end());
      key.push_back(-3);
      key.insert(key.end(), a.out(0).strides.begin(), a.out(0).strides.end());
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return *it->second;
    auto p = std::make_unique<ConvPlan>();
    p->map = map_conv_to_cudnn(attrs_, a.in(0).dims, a.in(1).dims, a.out(0).dims);
    KILN_EXPECT(p->map.ok, StatusCode::kUnsupported, "cuda.cudnn_conv cannot run X ",
                dims_to_string(a.in(0).dims), " W ", dims_to_string(a.in(1).dims), ": ",
                p->map.why);
    if (strided) {
      const CudnnConvMapping& m = p->map;
      KILN_EXPECT(!m.no_conv && m.direct && !m.transposed && m.groups == 1 &&
                      m.x_dims.size() == a.in(0).dims.size() && prec_.dtype != DataType::kFloat,
                  StatusCode::kUnsupported,
                  "cuda.cudnn_conv: strided tensors need a direct, ungrouped 2-D/3-D float16 or "
                  "bfloat16 convolution");
      KILN_EXPECT(strided_plan(*p, a.in(0), a.out(0)), StatusCode::kUnsupported,
                  "cuda.cudnn_conv: cuDNN has no graph-API plan for X ",
                  dims_to_string(a.in(0).dims), " strides ", dims_to_string(a.in(0).strides),
                  ", Y strides ", dims_to_string(a.out(0).strides));
      p->workspace = p->algo_workspace;
    } else if (!p->map.no_conv) {
      describe(p->map, prec_, p->desc);
      const size_t es = dtype_size(prec_.dtype);
      const size_t native_bytes =
          p->map.direct ? 0 : static_cast<size_t>(p->map.native_numel()) * es;
      TuningHandle th = cudnn_tuning_handle();
      const bool tuned_here =
          choice_.kind != ConvChoice::kNone &&
          choice_.dims == dims_key(a.in(0).dims, a.in(1).dims, a.out(0).dims);
      bool done = apply(*p, choice_, th.handle, tuned_here);
      if (!done) {
        Choice c = heuristic_choice(th.handle, p->map, p->desc, prec_, limit_);
        KILN_EXPECT(c.algo >= 0, StatusCode::kUnsupported,
                    "cuDNN has no convolution algorithm for X ", dims_to_string(a.in(0).dims),
                    " W ", dims_to_string(a.in(1).dims), " within ", limit_,
                    " bytes of workspace");
        p->algo = c.algo;
        p->algo_workspace = c.workspace;
      }
      if (!tuned_here && choice_.kind != ConvChoice::kNone)
        log(LogLevel::kVerbose, "cuda.cudnn_conv: X ", dims_to_string(a.in(0).dims),
            " is not the shape the step was tuned at (", choice_.dims, "): ",
            p->graph ? cat("graph-API engine ", p->graph->engine())
                     : cat("legacy algorithm ", p->algo),
            ", untimed");
      p->native_offset = align_up(p->algo_workspace);
      p->workspace = p->map.direct ? p->algo_workspace : p->native_offset + native_bytes;
    }
    ConvPlan& ref = *p;
    plans_.emplace(std::move(key), std::move(p));
    return ref;
  }

  bool has_epilogue() const { return relu_ || has_bias_ || has_z_; }

  // Sets up `p` to run choice `c` (at the shapes it was tuned at when `exact`; else only its
  // kind: the same legacy algorithm, or the graph API's first engine config). False when the
  // choice does not apply to these shapes (cuDNN refuses it, or it needs more workspace than
  // the bound): the caller falls back on the heuristics.
  bool apply(ConvPlan& p, const ConvChoice& c, cudnnHandle_t h, bool exact) const {
    const CudnnConvMapping& m = p.map;
    switch (c.kind) {
      case ConvChoice::kGraph: {
        if (!graph_eligible(m, prec_)) return false;
        const ConvGraphSpec spec = graph_spec(m, prec_, has_bias_, has_z_, relu_);
        std::unique_ptr<ConvGraphPlan> g;
        if (exact)
          g = conv_graph_plan_at(h, spec, c.config, c.engine, static_cast<int64_t>(limit_));
        else if (auto v = conv_graph_plans(h, spec, 1, static_cast<int64_t>(limit_)); !v.empty())
          g = std::move(v[0]);
        if (!g) return false;
        p.algo_workspace = static_cast<size_t>(g->workspace());
        p.graph = std::move(g);
        return true;
      }
      case ConvChoice::kFwd:
      case ConvChoice::kBwd: {
        if ((c.kind == ConvChoice::kBwd) != m.transposed) return false;
        const cudnnMathType_t math = static_cast<cudnnMathType_t>(c.math);
        if (!math_ok(math, prec_)) return false;
        if (m.transposed ? !bwd_algo_ok(static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), prec_)
                         : !fwd_algo_ok(static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), prec_))
          return false;
        const bool fused = c.fused && m.direct && has_epilogue() &&
                           (relu_ || c.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);
        if (c.fused && !fused) return false;
        KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(p.desc.conv.get(), math));
        size_t ws = 0;
        if (!algo_workspace(h, m, p.desc, c.algo, ws) || ws > limit_) {
          KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(p.desc.conv.get(), search_math(prec_)));
          return false;
        }
        p.algo = c.algo;
        p.algo_workspace = ws;
        p.fused = fused;
        p.identity = fused && !relu_;
        if (fused && !has_bias_) {
          p.zero_bias = DeviceBuffer(m.y_dims[1] * dtype_size(prec_.dtype));
          KILN_CUDA_CHECK(cudaMemset(p.zero_bias.get(), 0, p.zero_bias.size()));
        }
        return true;
      }
      default:
        return false;
    }
  }

  // Elements from a tensor's first to its last, plus one.
  static size_t extent(const DeviceTensor& t) {
    if (t.dense()) return static_cast<size_t>(t.numel());
    size_t last = 0;
    for (size_t k = 0; k < t.dims.size(); ++k) {
      if (t.dims[k] == 0) return 0;
      last += static_cast<size_t>(t.dims[k] - 1) * static_cast<size_t>(t.strides[k]);
    }
    return last + 1;
  }

  // A tensor's strides in cuDNN's NCHW order (empty when dense): channels-last values hold
  // [N, spatial..., C], so C's stride moves to position 1.
  static std::vector<int64_t> cudnn_strides(const DeviceTensor& t, bool channels_last) {
    if (t.dense()) return {};
    const Dims& s = t.strides;
    if (!channels_last) return std::vector<int64_t>(s.begin(), s.end());
    std::vector<int64_t> r{s[0], s.back()};
    r.insert(r.end(), s.begin() + 1, s.end() - 1);
    return r;
  }

  // A convolution with a strided X or Y (decided when a context plans its memory, after the
  // build): the first of the graph-API plans cuDNN's heuristics propose for those strides (first
  // with the epilogue's intermediates laid out like Y, then packed) that runs once on temporary
  // buffers; a check that it runs, not a timing. False when none runs.
  bool strided_plan(ConvPlan& p, const DeviceTensor& x, const DeviceTensor& y) const {
    const CudnnConvMapping& m = p.map;
    const size_t es = dtype_size(prec_.dtype);
    const size_t xb = align_up(extent(x) * es), wb = align_up(volume(m.w_dims) * es);
    const size_t yb = align_up(extent(y) * es), zb = align_up(y.numel() * es);
    const size_t bb = align_up(m.y_dims[1] * es);
    const size_t data = xb + wb + yb + zb + bb;
    DeviceBuffer buf(data + limit_);
    char* base = static_cast<char*>(buf.get());
    void* xp = base;
    void* wp = base + xb;
    void* yp = base + xb + wb;
    void* zp = base + xb + wb + yb;
    void* bp = base + xb + wb + yb + zb;
    void* ws = base + data;
    TuningHandle th = cudnn_tuning_handle();
    KILN_CUDA_CHECK(cudaMemsetAsync(base, 0, data, th.stream));
    ConvGraphSpec spec = graph_spec(m, prec_, has_bias_, has_z_, relu_);
    spec.x_strides = cudnn_strides(x, m.channels_last);
    spec.y_strides = cudnn_strides(y, m.channels_last);
    std::unique_ptr<ConvGraphPlan> found;
    for (bool like_y : {true, false}) {
      if (like_y && spec.y_strides.empty()) continue;
      spec.virtual_like_y = like_y;
      for (auto& g : conv_graph_plans(th.handle, spec, kGraphCandidates,
                                      static_cast<int64_t>(limit_))) {
        if (g->execute(th.handle, xp, wp, bp, zp, yp, ws) == CUDNN_STATUS_SUCCESS &&
            cudaStreamSynchronize(th.stream) == cudaSuccess) {
          found = std::move(g);
          break;
        }
        cudaGetLastError();
      }
      if (found) break;
    }
    cudaStreamSynchronize(th.stream);
    cudaGetLastError();
    if (!found) return false;
    p.algo_workspace = static_cast<size_t>(found->workspace());
    p.graph = std::move(found);
    log(LogLevel::kVerbose, "cuda.cudnn_conv: strided graph-API engine ", p.graph->engine(),
        " for X ", dims_to_string(x.dims), " strides ", dims_to_string(x.strides), ", Y strides ",
        dims_to_string(y.strides));
    return true;
  }

  ConvAttrs attrs_;
  Precision prec_;
  size_t limit_ = kMaxAlgoWorkspace;  // the step's workspace bound
  ConvChoice choice_;                 // what the autotuner chose ("" kind kNone: untuned)
  bool has_bias_ = false, has_z_ = false, relu_ = false;
  std::unique_ptr<DeviceBuffer> filter_cl_;  // KRSC copy of W for channels-last
  std::unique_ptr<EpilogueKernel> program_;  // the epilogue program, in place over Y
  ActivationDesc relu_act_, identity_act_;
  mutable std::mutex mu_;
  mutable std::map<std::vector<int64_t>, std::unique_ptr<ConvPlan>> plans_;
};

// Asks cuDNN's heuristics whether any acceptable algorithm exists for a mapped convolution, so that
// a combination cuDNN lacks falls back at build time instead of failing at run time. Without a
// usable device (no handle) the question is left to run time.
Status probe(const CudnnConvMapping& m, const Precision& p) {
  std::optional<TuningHandle> th;
  try {
    th.emplace(cudnn_tuning_handle());
  } catch (const Error&) {
    return Status::ok();
  }
  try {
    Descriptors d;
    describe(m, p, d);
    if (heuristic_choice(th->handle, m, d, p, kMaxAlgoWorkspace).algo < 0)
      return unsupported("cuDNN reports no algorithm for this convolution");
  } catch (const Error& e) {
    return unsupported(cat("cuDNN refuses this convolution: ", e.message()));
  }
  return Status::ok();
}

class CudnnConvTactic : public Tactic {
 public:
  std::string_view id() const override { return "cuda.cudnn_conv"; }
  std::string_view op() const override { return "Conv"; }

  Status supports(const Node& n) const override {
    if (n.op() != "Conv") return unsupported("not a Conv");
    const auto& a = n.a<ConvAttrs>();
    const Value* x = n.in(0);
    const Value* w = n.in(1);
    if (!x || !w || n.outputs.size() != 1) return unsupported("needs X, W and one output");
    if (n.inputs.size() > 4) return unsupported("more than 4 inputs");
    if (!conv_dtype_ok(x->dtype))
      return unsupported(cat(dtype_name(x->dtype), " (takes float32, float16 and bfloat16)"));
    for (size_t i = 1; i < n.inputs.size(); ++i)
      if (n.in(i) && n.in(i)->dtype != x->dtype) return unsupported("inputs of mixed types");
    if (!is_conv_activation(a.activation))
      return unsupported(cat("activation '", a.activation, "'"));
    if (has_epilogue_program(a.epilogue)) {
      std::string why = epilogue_kernel_unsupported(a.epilogue, x->dtype);
      if (!why.empty()) return unsupported(cat("epilogue: ", why));
    }
    if (a.group < 1) return unsupported("group < 1");
    if (!x->shape.rank_known || x->shape.rank() < 3 || x->shape.rank() > 5)
      return unsupported("X must have a known rank of 3 to 5 (1-D to 3-D convolution)");
    if (a.channels_last && !w->is_constant())
      return unsupported("channels-last with a computed W (cuDNN's KRSC copy is made once)");
    const Value* y = n.outputs[0];
    const Value* z = n.in(3);
    if (z && z->shape.fully_known() && y->shape.fully_known() && !(z->shape == y->shape))
      return unsupported(cat("residual ", z->shape.str(), " is not Y's shape ", y->shape.str()));
    if (x->shape.fully_known() && w->shape.fully_known() && y->shape.fully_known()) {
      CudnnConvMapping m =
          map_conv_to_cudnn(a, x->shape.concrete(), w->shape.concrete(), y->shape.concrete());
      if (!m.ok) return unsupported(m.why);
      if (!m.no_conv) {
        Precision p;
        p.dtype = x->dtype;
        p.tf32 = a.allow_tf32;
        return probe(m, p);
      }
    }
    return Status::ok();
  }

  // The state without tuning: cuDNN's heuristics at run time, within the default bound.
  std::string prepare(const Node& n) const override { return prepare_choice(n, "", {}); }

  // The candidates at the node's (concrete) shapes, in cuDNN's heuristic order: the first
  // kLegacyCandidates acceptable legacy algorithms (a forward conv with an epilogue both through
  // cudnnConvolutionBiasActivationForward, where cuDNN allows it, and as the convolution followed
  // by kiln's epilogue kernel), then the graph API's first kGraphCandidates engine configs that
  // finalize. Each is timed by the autotuner as the whole step.
  std::vector<std::string> candidates(const Node& n, const TacticLimits& limits) const override {
    const Value* x = n.in(0);
    const Value* w = n.in(1);
    const Value* y = n.outputs[0];
    if (!x->shape.fully_known() || !w->shape.fully_known() || !y->shape.fully_known()) return {};
    const auto& a = n.a<ConvAttrs>();
    const Dims xd = x->shape.concrete(), wd = w->shape.concrete(), yd = y->shape.concrete();
    CudnnConvMapping m = map_conv_to_cudnn(a, xd, wd, yd);
    if (!m.ok || m.no_conv) return {};
    Precision p;
    p.dtype = x->dtype;
    p.tf32 = a.allow_tf32;
    const bool bias = n.in(2) != nullptr, z = n.in(3) != nullptr, relu = a.activation == "relu";
    const size_t limit = limits.workspace(kMaxAlgoWorkspace);
    ConvChoice c;
    c.dims = dims_key(xd, wd, yd);
    std::vector<std::string> out;
    auto add = [&](const ConvChoice& k) {
      std::string str = k.str();
      if (std::find(out.begin(), out.end(), str) == out.end()) out.push_back(std::move(str));
    };
    TuningHandle th = cudnn_tuning_handle();
    Descriptors d;
    describe(m, p, d);
    int max_count = 0, got = 0, legacy = 0;
    auto consider = [&](int algo, cudnnMathType_t found_math, size_t memory, bool ok) {
      if (!ok || legacy >= kLegacyCandidates || !math_ok(found_math, p)) return;
      const cudnnMathType_t math = run_math(found_math, p);
      KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), math));
      size_t ws = 0;
      if (!algo_workspace(th.handle, m, d, algo, ws) || std::max(ws, memory) > limit) return;
      ++legacy;
      c.algo = algo;
      c.math = static_cast<int>(math);
      if (m.transposed) {
        c.kind = ConvChoice::kBwd;
        add(c);
        return;
      }
      c.kind = ConvChoice::kFwd;
      if (m.direct && (relu || bias || z) &&
          (relu || algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)) {
        c.fused = true;
        add(c);
      }
      c.fused = false;
      add(c);
    };
    if (m.transposed) {
      KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(th.handle, &max_count));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(std::max(max_count, 1));
      KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          th.handle, d.w.get(), d.x.get(), d.conv.get(), d.y.get(), max_count, &got, perf.data()));
      for (int i = 0; i < got; ++i)
        consider(static_cast<int>(perf[i].algo), perf[i].mathType, perf[i].memory,
                 perf[i].status == CUDNN_STATUS_SUCCESS && bwd_algo_ok(perf[i].algo, p));
    } else {
      KILN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(th.handle, &max_count));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(std::max(max_count, 1));
      KILN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
          th.handle, d.x.get(), d.w.get(), d.conv.get(), d.y.get(), max_count, &got, perf.data()));
      for (int i = 0; i < got; ++i)
        consider(static_cast<int>(perf[i].algo), perf[i].mathType, perf[i].memory,
                 perf[i].status == CUDNN_STATUS_SUCCESS && fwd_algo_ok(perf[i].algo, p));
    }
    if (graph_eligible(m, p)) {
      c = ConvChoice();
      c.kind = ConvChoice::kGraph;
      c.dims = dims_key(xd, wd, yd);
      for (auto& g : conv_graph_plans(th.handle, graph_spec(m, p, bias, z, relu),
                                      kGraphCandidates, static_cast<int64_t>(limit))) {
        c.config = g->config();
        c.engine = g->engine();
        add(c);
      }
    }
    // One way only: nothing to choose.
    if (out.size() < 2) out.clear();
    return out;
  }

  // The state: the workspace bound, the choice (checked here, so that a plan never holds one
  // that cannot be read back) and the NVRTC-compiled epilogue program, when the node has one.
  std::string prepare_choice(const Node& n, std::string_view choice,
                             const TacticLimits& limits) const override {
    ConvChoice::parse(choice);
    const expr::Program& p = n.a<ConvAttrs>().epilogue;
    return make_state(limits.workspace(kMaxAlgoWorkspace), std::string(choice),
                      has_epilogue_program(p) ? compile_epilogue_kernel(p, n.label())
                                              : std::string());
  }

  std::unique_ptr<Kernel> instantiate(const Node& n, std::string_view state) const override {
    return std::make_unique<CudnnConvKernel>(n, state);
  }
};

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_cudnn_conv() {
  static const cuda::CudnnConvTactic t;
  return t;
}

}  // namespace kiln
