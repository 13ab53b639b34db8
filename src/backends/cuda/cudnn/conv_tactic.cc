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
// - The algorithm is chosen per concrete shape on first use (Kernel::workspace_size, which the
//   runtime calls before running a new shape): cudnnFind*Ex times the candidates on the GPU on
//   temporary buffers (kiln's autotuning for convs). A shape first seen by enqueue() (not expected)
//   uses cuDNN's heuristics instead, which neither synchronise nor allocate. A forward conv with
//   an epilogue times cudnnFind's best few again as whole steps, fused call against conv + kiln's
//   epilogue kernel, because cudnnFind times the bare convolution only.
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

// Times candidates on one stream: the mean milliseconds of kRuns runs back to back after a
// warm-up run, or a negative number when a run fails (returns false or throws). Not replayed from
// a captured CUDA graph, although the runtime runs steps that way: capturing here, while other
// threads' contexts run cuDNN, made their cuDNN calls fail (CUDNN_STATUS_EXECUTION_FAILED in the
// 16-context demo on the H100).
class StepTimer {
 public:
  static constexpr int kRuns = 10;
  explicit StepTimer(cudaStream_t s) : s_(s) {
    KILN_CUDA_CHECK(cudaEventCreate(&e0_));
    if (cudaEventCreate(&e1_) != cudaSuccess) {
      cudaEventDestroy(e0_);
      fail(StatusCode::kDeviceError, "cannot create a CUDA event");
    }
  }
  ~StepTimer() {
    cudaEventDestroy(e0_);
    cudaEventDestroy(e1_);
  }
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;

  template <class F>
  float mean_ms(F&& once) {
    auto run = [&] {
      try {
        return once();
      } catch (const Error&) {
        return false;
      }
    };
    if (!run()) {
      cudaGetLastError();
      return -1.f;
    }
    bool ok = cudaEventRecord(e0_, s_) == cudaSuccess;
    for (int r = 0; ok && r < kRuns; ++r) ok = run();
    ok = ok && cudaEventRecord(e1_, s_) == cudaSuccess && cudaEventSynchronize(e1_) == cudaSuccess;
    float ms = 0.f;
    ok = ok && cudaEventElapsedTime(&ms, e0_, e1_) == cudaSuccess;
    cudaGetLastError();
    return ok ? ms / kRuns : -1.f;
  }

 private:
  cudaStream_t s_;
  cudaEvent_t e0_ = nullptr, e1_ = nullptr;
};

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
    if (has_epilogue_program(attrs_.epilogue)) {
      KILN_EXPECT(!state.empty(), StatusCode::kCorruptPlan,
                  "cuda.cudnn_conv: the plan lacks the compiled epilogue of ", n.label());
      program_ = std::make_unique<EpilogueKernel>(attrs_.epilogue, state);
    } else {
      KILN_EXPECT(state.empty(), StatusCode::kCorruptPlan,
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
    return plan_for(a, true).workspace;
  }

  // Strided X (a channel slice of a wider tensor) and strided Y (a channel slice of a Concat's
  // output): only cuDNN graph-API plans take those (the legacy API finds no algorithm for them,
  // bench/cudnn_strided_probe.cu), for float16/bfloat16 and with W, bias and Z dense. The plan is
  // made and timed here, once per shape and strides, and kept for enqueue().
  bool accepts_strided(const LaunchArgs& a) const override {
    if (prec_.dtype == DataType::kFloat || program_ || a.out(0).numel() == 0) return false;
    for (size_t i = 1; i < a.inputs.size(); ++i)
      if (a.has(i) && !a.in(i).dense()) return false;
    try {
      return plan_for(a, true).graph != nullptr;
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
    const ConvPlan& p = plan_for(a, false);
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

  // The plan for the launch's shapes, made on first use: timed (cudnnFind*Ex) when `tune`, else
  // from heuristics and within the launch's workspace.
  const ConvPlan& plan_for(const LaunchArgs& a, bool tune) const {
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
      KILN_EXPECT(search_strided(*p, a.in(0), a.out(0)), StatusCode::kUnsupported,
                  "cuda.cudnn_conv: cuDNN has no graph-API plan for X ",
                  dims_to_string(a.in(0).dims), " strides ", dims_to_string(a.in(0).strides),
                  ", Y strides ", dims_to_string(a.out(0).strides));
      p->workspace = p->algo_workspace;
    } else if (!p->map.no_conv) {
      describe(p->map, prec_, p->desc);
      const size_t es = dtype_size(prec_.dtype);
      const size_t native_bytes =
          p->map.direct ? 0 : static_cast<size_t>(p->map.native_numel()) * es;
      bool done = false;
      if (tune) {
        try {
          done = search(*p);
        } catch (const Error&) {
          // Not enough memory to time candidates, or a candidate failed: use the heuristics.
          done = false;
        }
      }
      if (!done) {
        size_t limit = kMaxAlgoWorkspace;
        if (!tune) {
          const size_t room = a.workspace_bytes > native_bytes + kAlign
                                  ? a.workspace_bytes - native_bytes - kAlign
                                  : 0;
          limit = std::min(limit, room);
        }
        TuningHandle th = cudnn_tuning_handle();
        Choice c = heuristic_choice(th.handle, p->map, p->desc, prec_, limit);
        KILN_EXPECT(c.algo >= 0, StatusCode::kUnsupported,
                    "cuDNN has no convolution algorithm for X ", dims_to_string(a.in(0).dims),
                    " W ", dims_to_string(a.in(1).dims), " within ", limit, " bytes of workspace");
        p->algo = c.algo;
        p->algo_workspace = c.workspace;
      }
      p->native_offset = align_up(p->algo_workspace);
      p->workspace = p->map.direct ? p->algo_workspace : p->native_offset + native_bytes;
    }
    ConvPlan& ref = *p;
    plans_.emplace(std::move(key), std::move(p));
    return ref;
  }

  // Times the candidate algorithms on temporary buffers (cudnnFind*Ex) and keeps the fastest
  // acceptable one; a direct forward conv with an epilogue then times its finalists as whole
  // steps (time_steps). False when nothing fits.
  bool search(ConvPlan& p) const {
    const CudnnConvMapping& m = p.map;
    const size_t es = dtype_size(prec_.dtype);
    const size_t xb = align_up(volume(m.x_dims) * es), wb = align_up(volume(m.w_dims) * es);
    const size_t yb = align_up(volume(m.y_dims) * es), bb = align_up(m.y_dims[1] * es);
    size_t free_b = 0, total_b = 0;
    KILN_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const size_t data = xb + wb + 2 * yb + bb;
    if (free_b < data) return false;
    const size_t limit = std::min(kMaxAlgoWorkspace, (free_b - data) / 4);
    DeviceBuffer buf(data + limit);
    char* base = static_cast<char*>(buf.get());
    void* xp = base;
    void* wp = base + xb;
    void* yp = base + xb + wb;
    void* zp = base + xb + wb + yb;
    void* bp = base + xb + wb + 2 * yb;
    void* ws = base + data;
    TuningHandle th = cudnn_tuning_handle();
    // Defined values (zeros) so that no candidate meets NaNs or denormals while it is timed.
    KILN_CUDA_CHECK(cudaMemsetAsync(base, 0, data, th.stream));
    KILN_CUDA_CHECK(cudaStreamSynchronize(th.stream));
    Choice c;
    int max_count = 0;
    if (m.transposed) {
      KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(th.handle, &max_count));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(std::max(max_count, 1));
      int got = 0;
      KILN_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
          th.handle, p.desc.w.get(), wp, p.desc.x.get(), xp, p.desc.conv.get(), p.desc.y.get(), yp,
          max_count, &got, perf.data(), ws, limit));
      KILN_CUDA_CHECK(cudaStreamSynchronize(th.stream));
      c = pick(th.handle, m, p.desc, perf.data(), got, prec_, limit, bwd_algo_ok);
    } else {
      KILN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(th.handle, &max_count));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(std::max(max_count, 1));
      int got = 0;
      KILN_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
          th.handle, p.desc.x.get(), xp, p.desc.w.get(), wp, p.desc.conv.get(), p.desc.y.get(), yp,
          max_count, &got, perf.data(), ws, limit));
      KILN_CUDA_CHECK(cudaStreamSynchronize(th.stream));
      if (m.direct) {
        // cudnnFind timed the bare convolution; the step also pays for its epilogue, which
        // cuDNN fuses into some algorithms and runs as extra kernels (or kiln's kernel) for
        // others, and graph-API plans compete too. So the finalists are timed again as the
        // whole step.
        if (!has_bias_ && (relu_ || has_z_)) {
          p.zero_bias = DeviceBuffer(m.y_dims[1] * es);
          KILN_CUDA_CHECK(cudaMemset(p.zero_bias.get(), 0, p.zero_bias.size()));
        }
        if (time_steps(p, perf.data(), got, limit, th, xp, wp, yp, zp, bp, ws)) return true;
        p.zero_bias = DeviceBuffer();
      }
      c = pick(th.handle, m, p.desc, perf.data(), got, prec_, limit, fwd_algo_ok);
    }
    if (c.algo < 0) return false;
    p.algo = c.algo;
    p.algo_workspace = c.workspace;
    return true;
  }

  // The graph-API description of the mapped convolution and this node's epilogue (packed).
  ConvGraphSpec graph_spec(const CudnnConvMapping& m) const {
    ConvGraphSpec spec;
    spec.dtype = cudnn_type(prec_.dtype);
    spec.channels_last = m.channels_last;
    spec.x_dims.assign(m.x_dims.begin(), m.x_dims.end());
    spec.w_dims.assign(m.w_dims.begin(), m.w_dims.end());
    spec.y_dims.assign(m.y_dims.begin(), m.y_dims.end());
    spec.pad.assign(m.pad.begin(), m.pad.end());
    spec.stride.assign(m.stride.begin(), m.stride.end());
    spec.dilation.assign(m.dilation.begin(), m.dilation.end());
    spec.bias = has_bias_;
    spec.residual = has_z_;
    spec.relu = relu_;
    return spec;
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

  // Times the graph-API plans cuDNN's heuristics propose for `spec` (up to kGraphPlans) and keeps
  // in `best` the first that beats best_ms (negative: nothing yet).
  static void time_graph_plans(TuningHandle& th, const ConvGraphSpec& spec, size_t limit,
                               StepTimer& timer, void* xp, void* wp, void* bp, void* zp, void* yp,
                               void* ws, float& best_ms, std::unique_ptr<ConvGraphPlan>& best) {
    constexpr int kGraphPlans = 4;
    for (auto& g : conv_graph_plans(th.handle, spec, kGraphPlans, static_cast<int64_t>(limit))) {
      const float ms = timer.mean_ms([&] {
        return g->execute(th.handle, xp, wp, bp, zp, yp, ws) == CUDNN_STATUS_SUCCESS;
      });
      if (ms < 0.f || (best_ms >= 0.f && ms >= best_ms)) continue;
      best_ms = ms;
      best = std::move(g);
    }
  }

  // A convolution with a strided X or Y: times the graph-API plans cuDNN's heuristics propose for
  // those strides (first with the epilogue's intermediates laid out like Y, then packed) on
  // temporary buffers, and keeps the fastest in p.graph. False when none runs.
  bool search_strided(ConvPlan& p, const DeviceTensor& x, const DeviceTensor& y) const {
    const CudnnConvMapping& m = p.map;
    const size_t es = dtype_size(prec_.dtype);
    const size_t xb = align_up(extent(x) * es), wb = align_up(volume(m.w_dims) * es);
    const size_t yb = align_up(extent(y) * es), zb = align_up(y.numel() * es);
    const size_t bb = align_up(m.y_dims[1] * es);
    size_t free_b = 0, total_b = 0;
    KILN_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const size_t data = xb + wb + yb + zb + bb;
    if (free_b < data) return false;
    const size_t limit = std::min(kMaxAlgoWorkspace, (free_b - data) / 4);
    DeviceBuffer buf(data + limit);
    char* base = static_cast<char*>(buf.get());
    void* xp = base;
    void* wp = base + xb;
    void* yp = base + xb + wb;
    void* zp = base + xb + wb + yb;
    void* bp = base + xb + wb + yb + zb;
    void* ws = base + data;
    TuningHandle th = cudnn_tuning_handle();
    KILN_CUDA_CHECK(cudaMemsetAsync(base, 0, data, th.stream));
    KILN_CUDA_CHECK(cudaStreamSynchronize(th.stream));
    StepTimer timer(th.stream);
    ConvGraphSpec spec = graph_spec(m);
    spec.x_strides = cudnn_strides(x, m.channels_last);
    spec.y_strides = cudnn_strides(y, m.channels_last);
    float best_ms = -1.f;
    std::unique_ptr<ConvGraphPlan> best;
    for (bool like_y : {true, false}) {
      if (like_y && spec.y_strides.empty()) continue;
      spec.virtual_like_y = like_y;
      time_graph_plans(th, spec, limit, timer, xp, wp, bp, zp, yp, ws, best_ms, best);
      if (best) break;
    }
    cudaStreamSynchronize(th.stream);
    cudaGetLastError();
    if (!best) return false;
    p.algo_workspace = static_cast<size_t>(best->workspace());
    p.graph = std::move(best);
    log(LogLevel::kVerbose, "cuda.cudnn_conv: strided graph-API engine ", p.graph->engine(),
        " for X ", dims_to_string(x.dims), " strides ", dims_to_string(x.strides), ", Y strides ",
        dims_to_string(y.strides), ", ", best_ms, " ms");
    return true;
  }

  // Times, as whole steps: up to kTimedAlgos of cudnnFind's acceptable algorithms, each
  // through cudnnConvolutionBiasActivationForward where cuDNN allows it (an epilogue; relu: any
  // algorithm; identity: IMPLICIT_PRECOMP_GEMM only) and as cudnnConvolutionForward + kiln's
  // epilogue kernel; then, for float16/bfloat16 ungrouped convs, the graph-API plans
  // (conv_graph.h) of the same step. Keeps the fastest in `p`. A candidate that fails is
  // skipped. False when nothing could be timed.
  bool time_steps(ConvPlan& p, const cudnnConvolutionFwdAlgoPerf_t* perf, int n, size_t limit,
                  TuningHandle& th, void* xp, void* wp, void* yp, void* zp, void* bp,
                  void* ws) const {
    constexpr int kTimedAlgos = 6;
    const CudnnConvMapping& m = p.map;
    const bool has_epilogue = relu_ || has_bias_ || has_z_;
    StepTimer timer(th.stream);
    cudaStream_t st = th.stream;
    const void* bias = has_bias_ ? bp : p.zero_bias.get();
    const float one = 1.f, zero = 0.f, alpha2 = has_z_ ? 1.f : 0.f;
    auto time = [&](auto&& once) { return timer.mean_ms(once); };
    float best_ms = -1.f;
    Choice best;
    bool best_fused = false, best_identity = false;
    auto better = [&](float ms) { return ms >= 0.f && (best_ms < 0.f || ms < best_ms); };
    int timed = 0;
    for (int i = 0; i < n && timed < kTimedAlgos; ++i) {
      const cudnnConvolutionFwdAlgoPerf_t& r = perf[i];
      if (r.status != CUDNN_STATUS_SUCCESS || !math_ok(r.mathType, prec_) ||
          !fwd_algo_ok(r.algo, prec_))
        continue;
      const cudnnMathType_t math = run_math(r.mathType, prec_);
      KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(p.desc.conv.get(), math));
      size_t wsb = 0;
      if (!algo_workspace(th.handle, m, p.desc, static_cast<int>(r.algo), wsb)) continue;
      wsb = std::max(wsb, r.memory);
      if (wsb > limit) continue;
      ++timed;
      auto consider = [&](float ms, bool fused, bool identity) {
        if (!better(ms)) return;
        best_ms = ms;
        best = {static_cast<int>(r.algo), math, wsb};
        best_fused = fused;
        best_identity = identity;
      };
      if (has_epilogue && (relu_ || r.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)) {
        const bool identity = !relu_;
        consider(time([&] {
                   return cudnnConvolutionBiasActivationForward(
                              th.handle, &one, p.desc.x.get(), xp, p.desc.w.get(), wp,
                              p.desc.conv.get(), r.algo, ws, wsb, &alpha2, p.desc.y.get(),
                              has_z_ ? zp : yp, p.desc.bias.get(), bias,
                              identity ? identity_act_.get() : relu_act_.get(), p.desc.y.get(),
                              yp) == CUDNN_STATUS_SUCCESS;
                 }),
                 true, identity);
      }
      consider(time([&] {
                 if (cudnnConvolutionForward(th.handle, &one, p.desc.x.get(), xp, p.desc.w.get(),
                                             wp, p.desc.conv.get(), r.algo, ws, wsb, &zero,
                                             p.desc.y.get(), yp) != CUDNN_STATUS_SUCCESS)
                   return false;
                 if (has_epilogue)
                   epilogue(p, yp, yp, has_bias_ ? bp : nullptr, has_z_ ? zp : nullptr, st);
                 return true;
               }),
               false, false);
    }
    // The graph API: float16/bfloat16 only (float32 would need its own accuracy rules), and
    // ungrouped convs (the graph infers groups from the shapes; not needed so far).
    std::unique_ptr<ConvGraphPlan> best_graph;
    if (prec_.dtype != DataType::kFloat && m.groups == 1) {
      time_graph_plans(th, graph_spec(m), limit, timer, xp, wp, bp, zp, yp, ws, best_ms,
                       best_graph);
    }
    cudaStreamSynchronize(st);
    cudaGetLastError();  // a candidate that failed to launch leaves nothing behind
    if (best_ms < 0.f) {
      KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(p.desc.conv.get(), search_math(prec_)));
      return false;
    }
    if (best_graph) {
      p.algo_workspace = static_cast<size_t>(best_graph->workspace());
      p.graph = std::move(best_graph);
      p.fused = false;
      p.zero_bias = DeviceBuffer();
      log(LogLevel::kVerbose, "cuda.cudnn_conv: graph-API engine ", p.graph->engine(), " for X ",
          dims_to_string(Dims(m.x_dims.begin(), m.x_dims.end())), ", ", best_ms, " ms");
      return true;
    }
    KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(p.desc.conv.get(), best.math));
    p.algo = best.algo;
    p.algo_workspace = best.workspace;
    p.fused = best_fused;
    p.identity = best_identity;
    if (!p.fused) p.zero_bias = DeviceBuffer();
    log(LogLevel::kVerbose, "cuda.cudnn_conv: legacy algorithm ", p.algo,
        p.fused ? " (fused call)" : "", " for X ",
        dims_to_string(Dims(m.x_dims.begin(), m.x_dims.end())), ", ", best_ms, " ms");
    return true;
  }

  ConvAttrs attrs_;
  Precision prec_;
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

  // The NVRTC-compiled epilogue program, when the node has one (empty otherwise).
  std::string prepare(const Node& n) const override {
    const expr::Program& p = n.a<ConvAttrs>().epilogue;
    return has_epilogue_program(p) ? compile_epilogue_kernel(p, n.label()) : std::string();
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
