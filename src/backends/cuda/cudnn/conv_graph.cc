// cuDNN backend API plumbing for conv_graph.h. Every descriptor call is checked; anything cuDNN
// refuses makes the graph (or that one engine config) unavailable, never an error: the legacy
// algorithms remain.
#include "backends/cuda/cudnn/conv_graph.h"

#include <algorithm>
#include <utility>

namespace kiln::cuda {

namespace {

enum : int64_t {
  kUidX = 1, kUidW = 2, kUidY = 3, kUidBias = 4, kUidZ = 5, kUidScale = 6, kUidYScale = 7, kUidZPre = 8,
  kUidVirtual = 100
};

using Desc = cudnnBackendDescriptor_t;

cudnnStatus_t set(Desc d, cudnnBackendAttributeName_t a, cudnnBackendAttributeType_t t,
                  int64_t n, const void* v) {
  return cudnnBackendSetAttribute(d, a, t, n, v);
}

#define KILN_GRAPH_TRY(x)                            \
  do {                                               \
    if ((x) != CUDNN_STATUS_SUCCESS) return nullptr; \
  } while (0)

// NCHW-order dims -> strides of that tensor stored packed, channels-first or channels-last.
std::vector<int64_t> packed_strides(const std::vector<int64_t>& d, bool channels_last) {
  const size_t r = d.size();
  std::vector<int64_t> s(r, 1);
  if (!channels_last) {
    for (size_t i = r - 1; i-- > 0;) s[i] = s[i + 1] * d[i + 1];
    return s;
  }
  // Order in memory: dim 0, spatial dims 2..r-1, then dim 1 (channels).
  s[1] = 1;
  int64_t acc = d[1];
  for (size_t i = r; i-- > 2;) {
    s[i] = acc;
    acc *= d[i];
  }
  s[0] = acc;
  return s;
}

}  // namespace

struct ConvGraphPlan::Descs {
  std::vector<Desc> all;
  Desc graph = nullptr;
  ~Descs() {
    for (size_t i = all.size(); i-- > 0;) cudnnBackendDestroyDescriptor(all[i]);
  }
  Desc make(cudnnBackendDescriptorType_t t) {
    Desc d = nullptr;
    if (cudnnBackendCreateDescriptor(t, &d) != CUDNN_STATUS_SUCCESS) return nullptr;
    all.push_back(d);
    return d;
  }
  Desc tensor(int64_t uid, cudnnDataType_t t, const std::vector<int64_t>& dims, bool cl,
              bool is_virtual, const std::vector<int64_t>& given_strides = {}) {
    Desc d = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    if (!d) return nullptr;
    const std::vector<int64_t> strides =
        given_strides.empty() ? packed_strides(dims, cl) : given_strides;
    // kiln's arena and weights are 256-byte aligned; 16 is what the fast engines need and stays
    // true for channel-slice views at multiples of 8 float16 channels.
    const int64_t align = 16;
    const int64_t n = static_cast<int64_t>(dims.size());
    KILN_GRAPH_TRY(set(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &t));
    KILN_GRAPH_TRY(set(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, n, dims.data()));
    KILN_GRAPH_TRY(set(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, n, strides.data()));
    KILN_GRAPH_TRY(set(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
    KILN_GRAPH_TRY(set(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align));
    bool v = is_virtual;
    KILN_GRAPH_TRY(set(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v));
    KILN_GRAPH_TRY(cudnnBackendFinalize(d));
    return d;
  }
  // y = mode(x [, b]) in float math.
  Desc pointwise(cudnnPointwiseMode_t mode, Desc x, Desc b, Desc y) {
    Desc pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    if (!pw) return nullptr;
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    KILN_GRAPH_TRY(set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode));
    KILN_GRAPH_TRY(set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec));
    KILN_GRAPH_TRY(cudnnBackendFinalize(pw));
    Desc op = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    if (!op) return nullptr;
    KILN_GRAPH_TRY(
        set(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw));
    KILN_GRAPH_TRY(set(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
    if (b)
      KILN_GRAPH_TRY(
          set(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b));
    KILN_GRAPH_TRY(set(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
    KILN_GRAPH_TRY(cudnnBackendFinalize(op));
    return op;
  }
};

namespace {

// The operation graph of the spec, or nullptr when cuDNN refuses any part of it.
Desc build_graph(ConvGraphPlan::Descs& d, cudnnHandle_t h, const ConvGraphSpec& s) {
  const bool cl = s.channels_last;
  const cudnnDataType_t operands = s.int8 ? CUDNN_DATA_INT8 : s.dtype;
  Desc x = d.tensor(kUidX, operands, s.x_dims, cl, false, s.x_strides);
  Desc w = d.tensor(kUidW, operands, s.w_dims, cl, false);
  const bool requantize = s.int8 && s.requantize;
  Desc y = d.tensor(kUidY, requantize ? CUDNN_DATA_INT8 : s.dtype, s.y_dims, cl, false,
                    s.y_strides);
  if (!x || !w || !y) return nullptr;
  const int64_t nsp = static_cast<int64_t>(s.x_dims.size()) - 2;
  Desc conv = d.make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  if (!conv) return nullptr;
  const cudnnDataType_t comp = s.int8 ? CUDNN_DATA_INT32 : CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  KILN_GRAPH_TRY(set(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp));
  KILN_GRAPH_TRY(set(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode));
  KILN_GRAPH_TRY(set(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &nsp));
  KILN_GRAPH_TRY(set(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, nsp, s.pad.data()));
  KILN_GRAPH_TRY(
      set(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, nsp, s.pad.data()));
  KILN_GRAPH_TRY(
      set(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, nsp, s.stride.data()));
  KILN_GRAPH_TRY(set(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, nsp, s.dilation.data()));
  KILN_GRAPH_TRY(cudnnBackendFinalize(conv));

  // With an epilogue the convolution writes a float32 virtual tensor that lives only inside the
  // fused kernel; each pointwise op then reads the previous one's virtual output.
  const bool epilogue = s.int8 || s.bias || s.residual || s.relu;
  int64_t next_uid = kUidVirtual;
  const std::vector<int64_t> no_strides;
  const std::vector<int64_t>& vs = s.virtual_like_y ? s.y_strides : no_strides;
  auto virt = [&] { return d.tensor(next_uid++, CUDNN_DATA_FLOAT, s.y_dims, cl, true, vs); };
  Desc cur = epilogue ? virt() : y;
  if (!cur) return nullptr;
  std::vector<Desc> ops;
  Desc op = d.make(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  if (!op) return nullptr;
  const float alpha = 1.f, beta = 0.f;
  KILN_GRAPH_TRY(set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
  KILN_GRAPH_TRY(set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w));
  KILN_GRAPH_TRY(
      set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cur));
  KILN_GRAPH_TRY(set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv));
  KILN_GRAPH_TRY(set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha));
  KILN_GRAPH_TRY(set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta));
  KILN_GRAPH_TRY(cudnnBackendFinalize(op));
  ops.push_back(op);

  struct Step {
    cudnnPointwiseMode_t mode;
    Desc operand;
  };
  std::vector<Step> steps;
  if (s.int8) {
    std::vector<int64_t> sd(s.y_dims.size(), 1);
    sd[1] = s.y_dims[1];
    Desc sc = d.tensor(kUidScale, CUDNN_DATA_FLOAT, sd, cl, false);
    if (!sc) return nullptr;
    steps.push_back({CUDNN_POINTWISE_MUL, sc});
  }
  if (s.bias) {
    std::vector<int64_t> bd(s.y_dims.size(), 1);
    bd[1] = s.y_dims[1];
    Desc b = d.tensor(kUidBias, s.dtype, bd, cl, false);
    if (!b) return nullptr;
    steps.push_back({CUDNN_POINTWISE_ADD, b});
  }
  const bool int8_z = s.int8 && s.residual && s.int8_residual;
  const std::vector<int64_t> scalar_dims(s.y_dims.size(), 1);
  if (int8_z) {
    Desc pre = d.tensor(kUidZPre, CUDNN_DATA_FLOAT, scalar_dims, cl, false);
    if (!pre) return nullptr;
    steps.push_back({CUDNN_POINTWISE_MUL, pre});
  }
  if (s.residual) {
    Desc z = d.tensor(kUidZ, int8_z ? CUDNN_DATA_INT8 : s.dtype, s.y_dims, cl, false);
    if (!z) return nullptr;
    steps.push_back({CUDNN_POINTWISE_ADD, z});
  }
  if (s.relu) steps.push_back({CUDNN_POINTWISE_RELU_FWD, nullptr});
  if (requantize || int8_z) {
    Desc ys = d.tensor(kUidYScale, CUDNN_DATA_FLOAT, scalar_dims, cl, false);
    if (!ys) return nullptr;
    steps.push_back({CUDNN_POINTWISE_MUL, ys});
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    Desc out = i + 1 == steps.size() ? y : virt();
    if (!out) return nullptr;
    Desc p = d.pointwise(steps[i].mode, cur, steps[i].operand, out);
    if (!p) return nullptr;
    ops.push_back(p);
    cur = out;
  }
  Desc g = d.make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  if (!g) return nullptr;
  KILN_GRAPH_TRY(set(g, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                     static_cast<int64_t>(ops.size()), ops.data()));
  KILN_GRAPH_TRY(set(g, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h));
  KILN_GRAPH_TRY(cudnnBackendFinalize(g));
  return g;
}

// The heuristics' engine configs for the graph (mode A; the fallback list when A has none).
std::vector<Desc> engine_configs(ConvGraphPlan::Descs& d, Desc graph, int max_count) {
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    Desc heur = d.make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    if (!heur) return {};
    if (set(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
            &graph) != CUDNN_STATUS_SUCCESS ||
        set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode) !=
            CUDNN_STATUS_SUCCESS ||
        cudnnBackendFinalize(heur) != CUDNN_STATUS_SUCCESS)
      continue;
    int64_t count = 0;
    if (cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                 nullptr) != CUDNN_STATUS_SUCCESS ||
        count <= 0)
      continue;
    count = std::min<int64_t>(count, max_count);
    std::vector<Desc> cfgs;
    for (int64_t i = 0; i < count; ++i) {
      Desc c = d.make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
      if (!c) return {};
      cfgs.push_back(c);
    }
    int64_t got = 0;
    if (cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                                 cfgs.data()) != CUDNN_STATUS_SUCCESS)
      continue;
    cfgs.resize(static_cast<size_t>(std::max<int64_t>(got, 0)));
    if (!cfgs.empty()) return cfgs;
  }
  return {};
}

int64_t engine_index(ConvGraphPlan::Descs& d, Desc cfg) {
  Desc eng = d.make(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t n = 0, gi = -1;
  if (!eng ||
      cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                               &n, &eng) != CUDNN_STATUS_SUCCESS ||
      cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n,
                               &gi) != CUDNN_STATUS_SUCCESS)
    return -1;
  return gi;
}

}  // namespace

ConvGraphSpec conv_graph_geometry(const CudnnConvMapping& m) {
  ConvGraphSpec s;
  s.channels_last = m.channels_last;
  s.x_dims.assign(m.x_dims.begin(), m.x_dims.end());
  s.w_dims.assign(m.w_dims.begin(), m.w_dims.end());
  s.y_dims.assign(m.y_dims.begin(), m.y_dims.end());
  s.pad.assign(m.pad.begin(), m.pad.end());
  s.stride.assign(m.stride.begin(), m.stride.end());
  s.dilation.assign(m.dilation.begin(), m.dilation.end());
  return s;
}

ConvGraphPlan::ConvGraphPlan() = default;

ConvGraphPlan::~ConvGraphPlan() {
  if (plan_) cudnnBackendDestroyDescriptor(plan_);
}

cudnnStatus_t ConvGraphPlan::execute(cudnnHandle_t h, const void* x, const void* w,
                                     const void* bias, const void* z, void* y,
                                     void* workspace, const void* scale,
                                     const void* y_scale, const void* z_pre) const {
  int64_t uids[8];
  void* ptrs[8];
  int64_t n = 0;
  // The tensors the graph has, each by its unique id.
  auto add = [&](bool has, int64_t uid, const void* p) {
    if (!has) return;
    uids[n] = uid;
    ptrs[n++] = const_cast<void*>(p);
  };
  add(true, kUidX, x);
  add(true, kUidW, w);
  add(true, kUidY, y);
  add(y_scale_, kUidYScale, y_scale);
  add(scale_, kUidScale, scale);
  add(bias_, kUidBias, bias);
  add(residual_, kUidZ, z);
  add(z_pre_, kUidZPre, z_pre);
  Desc vp = nullptr;
  cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  st = set(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
  if (st == CUDNN_STATUS_SUCCESS)
    st = set(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs);
  if (st == CUDNN_STATUS_SUCCESS)
    st = set(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendFinalize(vp);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendExecute(h, plan_, vp);
  cudnnBackendDestroyDescriptor(vp);
  return st;
}

// The execution plan of engine config `cfg` (the heuristics' `index`-th) of `descs`' graph, or
// null when it does not finalize or needs more than `workspace_limit` bytes.
std::unique_ptr<ConvGraphPlan> finalize_plan(cudnnHandle_t h, const ConvGraphSpec& spec,
                                             const std::shared_ptr<ConvGraphPlan::Descs>& descs,
                                             Desc cfg, int index, int64_t workspace_limit) {
  Desc plan = nullptr;
  if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) !=
      CUDNN_STATUS_SUCCESS)
    return nullptr;
  int64_t ws = 0, n = 0;
  const bool ok =
      set(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h) ==
          CUDNN_STATUS_SUCCESS &&
      set(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg) ==
          CUDNN_STATUS_SUCCESS &&
      cudnnBackendFinalize(plan) == CUDNN_STATUS_SUCCESS &&
      cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1,
                               &n, &ws) == CUDNN_STATUS_SUCCESS &&
      ws <= workspace_limit;
  if (!ok) {
    cudnnBackendDestroyDescriptor(plan);
    return nullptr;
  }
  auto p = std::make_unique<ConvGraphPlan>();
  p->graph_ = descs;
  p->plan_ = plan;
  p->workspace_ = ws;
  p->engine_ = engine_index(*descs, cfg);
  p->config_ = index;
  p->bias_ = spec.bias;
  p->residual_ = spec.residual;
  p->scale_ = spec.int8;
  p->z_pre_ = spec.int8 && spec.residual && spec.int8_residual;
  p->y_scale_ = spec.int8 && (spec.requantize || p->z_pre_);
  return p;
}

std::vector<std::unique_ptr<ConvGraphPlan>> conv_graph_plans(cudnnHandle_t h,
                                                             const ConvGraphSpec& spec,
                                                             int max_plans,
                                                             int64_t workspace_limit) {
  std::vector<std::unique_ptr<ConvGraphPlan>> out;
  auto descs = std::make_shared<ConvGraphPlan::Descs>();
  descs->graph = build_graph(*descs, h, spec);
  if (!descs->graph) return out;
  // Configs beyond the first few rarely win and each may compile a kernel at finalize.
  int index = 0;
  for (Desc cfg : engine_configs(*descs, descs->graph, 2 * max_plans)) {
    if (static_cast<int>(out.size()) >= max_plans) break;
    if (auto p = finalize_plan(h, spec, descs, cfg, index, workspace_limit)) out.push_back(std::move(p));
    ++index;
  }
  return out;
}

std::unique_ptr<ConvGraphPlan> conv_graph_plan_at(cudnnHandle_t h, const ConvGraphSpec& spec,
                                                  int config, int64_t engine,
                                                  int64_t workspace_limit) {
  if (config < 0) return nullptr;
  auto descs = std::make_shared<ConvGraphPlan::Descs>();
  descs->graph = build_graph(*descs, h, spec);
  if (!descs->graph) return nullptr;
  std::vector<Desc> cfgs = engine_configs(*descs, descs->graph, config + 1);
  if (static_cast<int>(cfgs.size()) <= config) return nullptr;
  auto p = finalize_plan(h, spec, descs, cfgs[config], config, workspace_limit);
  if (p && engine >= 0 && p->engine() != engine) return nullptr;
  return p;
}

}  // namespace kiln::cuda
