// Probe: can cuDNN's backend GRAPH API (cudnnBackend*; no cudnn_frontend) run fp16 NHWC convolutions
// whose x or y is a CHANNEL SLICE of a wider NHWC tensor, which the legacy API refuses (see
// cudnn_strided_probe.cu)? And how fast is it, against legacy packed convs? Also: does a fused
// conv+bias+residual+relu graph (runtime-fusion engines) beat legacy cudnnConvolutionBiasActivationForward?
//
// Build:  nvcc -O2 -std=c++17 -arch=sm_90 bench/cudnn_graph_probe.cu -lcudnn -o cudnn_graph_probe
// Run:    ./cudnn_graph_probe            (needs a GPU; prints per-plan detail lines, then a summary table)
//
// A slice of channels [co, co+C) of an NHWC tensor with Ctot channels is described as dims [N,C,H,W]
// (the backend always takes dims in NCHW order) with strides {H*W*Ctot, 1, W*Ctot, Ctot}, and the data
// pointer moved by co elements. This is exactly what kiln needs to write a conv straight into a Concat
// output (no copy) or read a Split/Slice input in place.
//
// Every finalized plan is checked against a naive fp32 GPU reference; channels outside the written
// slice are pre-filled with a sentinel and must still hold it after all runs.
#include <cudnn.h>
#include <cuda_fp16.h>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <string>
#include <vector>

// ---------------------------------------------------------------------------------------------
// Error handling: every cuDNN/CUDA failure is printed (with cuDNN's last-error text, which usually
// says WHY a graph/plan is unsupported) and makes the current step return false. Nothing aborts.
static void print_cudnn_err(cudnnStatus_t s, const char* what, int line) {
  char msg[1024] = {0};
  cudnnGetLastErrorString(msg, sizeof msg);
  printf("    [cudnn L%d] %s -> %s%s%s\n", line, what, cudnnGetErrorString(s), msg[0] ? " | " : "", msg);
}
#define DNN(x) do { cudnnStatus_t s_ = (x); if (s_ != CUDNN_STATUS_SUCCESS) { print_cudnn_err(s_, #x, __LINE__); return false; } } while (0)
#define CU(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("    [cuda L%d] %s -> %s\n", __LINE__, #x, cudaGetErrorString(e_)); return false; } } while (0)

static cudnnHandle_t g_h;
static const float TOL = 2e-2f;          // outputs are O(1); fp16 rounding is ~1e-3, so 2e-2 = "right"
static const uint16_t SENTINEL = 0x64D2; // fp16 1234.0: never produced by these convs

// Owns every backend descriptor made for one case; destroyed (reverse order) when the case ends.
struct Pool {
  std::vector<cudnnBackendDescriptor_t> v;
  ~Pool() { for (size_t i = v.size(); i-- > 0;) cudnnBackendDestroyDescriptor(v[i]); }
  bool make(cudnnBackendDescriptorType_t t, cudnnBackendDescriptor_t* d) {
    DNN(cudnnBackendCreateDescriptor(t, d)); v.push_back(*d); return true;
  }
};
// Owns device buffers for one case.
struct Mem {
  std::vector<void*> v;
  ~Mem() { for (void* p : v) cudaFree(p); }
  template <class T> bool alloc(T** p, size_t n) { CU(cudaMalloc((void**)p, n * sizeof(T) + 256)); v.push_back(*p); return true; }
};

static cudnnStatus_t set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a, cudnnBackendAttributeType_t t,
                         int64_t n, const void* p) { return cudnnBackendSetAttribute(d, a, t, n, p); }

// ---------------------------------------------------------------------------------------------
// Small GPU kernels: random fill, sentinel fill, naive reference conv, compare.
__global__ void k_fill_rand(__half* p, size_t n, uint32_t seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed; h ^= h >> 15; h *= 2246822519u; h ^= h >> 13; h *= 3266489917u; h ^= h >> 16;
    p[i] = __float2half(((h & 0xFFFF) / 32767.5f - 1.f) * scale);   // uniform in [-scale, scale]
  }
}
__global__ void k_fill_bits(uint16_t* p, size_t n, uint16_t bits) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) p[i] = bits;
}
// out[n,p,q,k] (packed NHWC fp32) = act(sum_{r,s,c} x[n, p+r-pad, q+s-pad, xco+c] * w[k,r,s,c] + bias[k] + z[n,p,q,k])
// x is read through (Ctot=xct, offset=xco) exactly like the slice descriptor; w is KRSC packed.
__global__ void k_ref_conv(const __half* x, int xct, int xco, const __half* w, const __half* bias, const __half* z,
                           bool relu, float* out, int N, int C, int H, int W, int K, int R, int pad, int P, int Q) {
  size_t total = (size_t)N * P * Q * K;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    int k = i % K; size_t t = i / K; int q = t % Q; t /= Q; int p = t % P; int n = t / P;
    float acc = 0.f;
    for (int r = 0; r < R; ++r) {
      int hh = p + r - pad; if (hh < 0 || hh >= H) continue;
      for (int s = 0; s < R; ++s) {
        int ww = q + s - pad; if (ww < 0 || ww >= W) continue;
        const __half* xp = x + (((size_t)n * H + hh) * W + ww) * xct + xco;
        const __half* wp = w + (((size_t)k * R + r) * R + s) * C;
        for (int c = 0; c < C; ++c) acc += __half2float(xp[c]) * __half2float(wp[c]);
      }
    }
    if (bias) acc += __half2float(bias[k]);
    if (z) acc += __half2float(z[i]);
    if (relu) acc = fmaxf(acc, 0.f);
    out[i] = acc;
  }
}
// Walk the whole wide y (npix pixels x yct channels): inside [yco, yco+K) -> max |y - ref| (NaN -> inf),
// outside -> count elements that no longer hold the sentinel.
__global__ void k_compare(const __half* y, int yct, int yco, int K, const float* ref, size_t npix,
                          unsigned* maxerr_bits, unsigned long long* clobbered) {
  size_t total = npix * yct;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    int c = i % yct; size_t pix = i / yct;
    if (c >= yco && c < yco + K) {
      float e = fabsf(__half2float(y[i]) - ref[pix * K + (c - yco)]);
      if (!(e <= 3.0e38f)) e = INFINITY;
      atomicMax(maxerr_bits, __float_as_uint(e));   // non-negative floats order like their bit patterns
    } else if (__half_as_ushort(y[i]) != SENTINEL) {
      atomicAdd(clobbered, 1ull);
    }
  }
}
static const int GRID = 1024, BLK = 256;

// ---------------------------------------------------------------------------------------------
struct Case {
  const char* name;
  int C, H, W, K, R, pad;
  int xct, xco;   // input lives in channels [xco, xco+C) of an xct-channel NHWC tensor
  int yct, yco;   // output lives in channels [yco, yco+K) of a yct-channel NHWC tensor
  bool fused;     // conv -> +bias -> +residual z -> relu, one operation graph
};
struct Row {
  std::string name; int N = 0;
  int triedA = 0, finA = 0, triedF = 0, finF = 0, bad = 0;
  float best_ms = -1, best_err = -1; long long best_eng = -1; unsigned long long best_clob = 0;
  float legacy_ms = -1, legacy_err = -1; std::string note;
};

// Backend tensor: dims in NCHW order, NHWC-with-Ctot strides. Virtual tensors never touch memory.
static bool make_tensor(Pool& pool, cudnnBackendDescriptor_t* t, int64_t uid, cudnnDataType_t dt,
                        int64_t n, int64_t c, int64_t h, int64_t w, int64_t ctot, bool is_virtual = false) {
  int64_t dims[4] = {n, c, h, w}, strides[4] = {h * w * ctot, 1, w * ctot, ctot};
  int64_t align = 16;  // cudaMalloc is 256B-aligned; slice offsets here are 128B; Ctot*2 is a multiple of 16
  if (!pool.make(CUDNN_BACKEND_TENSOR_DESCRIPTOR, t)) return false;
  DNN(set(*t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt));
  DNN(set(*t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims));
  DNN(set(*t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides));
  DNN(set(*t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
  DNN(set(*t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align));
  bool v = is_virtual;
  DNN(set(*t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v));
  DNN(cudnnBackendFinalize(*t));
  return true;
}
// Pointwise op y = mode(x [, b]). Math precision float, as the frontend does for fp16 fusions.
static bool make_pointwise(Pool& pool, cudnnBackendDescriptor_t* op, cudnnPointwiseMode_t mode,
                           cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t y) {
  cudnnBackendDescriptor_t pw; cudnnDataType_t prec = CUDNN_DATA_FLOAT;
  if (!pool.make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw)) return false;
  DNN(set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode));
  DNN(set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec));
  DNN(cudnnBackendFinalize(pw));
  if (!pool.make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op)) return false;
  DNN(set(*op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw));
  DNN(set(*op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
  if (b) DNN(set(*op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b));
  DNN(set(*op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
  DNN(cudnnBackendFinalize(*op));
  return true;
}

// Variant-pack unique ids.
enum : int64_t { UID_X = 1, UID_W = 2, UID_Y = 3, UID_B = 4, UID_Z = 5, UID_V1 = 101, UID_V2 = 102, UID_V3 = 103 };

// Build the operation graph for case c at batch N.
static bool build_graph(Pool& pool, const Case& c, int N, cudnnBackendDescriptor_t* graph) {
  int P = c.H + 2 * c.pad - c.R + 1, Q = c.W + 2 * c.pad - c.R + 1;
  cudnnBackendDescriptor_t tx, tw, ty;
  if (!make_tensor(pool, &tx, UID_X, CUDNN_DATA_HALF, N, c.C, c.H, c.W, c.xct)) return false;
  if (!make_tensor(pool, &tw, UID_W, CUDNN_DATA_HALF, c.K, c.C, c.R, c.R, c.C)) return false;  // KRSC
  if (!make_tensor(pool, &ty, UID_Y, CUDNN_DATA_HALF, N, c.K, P, Q, c.yct)) return false;

  cudnnBackendDescriptor_t conv;
  if (!pool.make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv)) return false;
  cudnnDataType_t comp = CUDNN_DATA_FLOAT; cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  int64_t nsp = 2, pad[2] = {c.pad, c.pad}, one[2] = {1, 1};
  DNN(set(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp));
  DNN(set(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode));
  DNN(set(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &nsp));
  DNN(set(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad));
  DNN(set(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad));
  DNN(set(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, one));
  DNN(set(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, one));
  DNN(cudnnBackendFinalize(conv));

  // In the fused graph the conv writes a virtual fp32 tensor that only lives inside the fused kernel.
  cudnnBackendDescriptor_t conv_out = ty, v1, v2, v3, tb, tz;
  if (c.fused) {
    if (!make_tensor(pool, &v1, UID_V1, CUDNN_DATA_FLOAT, N, c.K, P, Q, c.K, true)) return false;
    if (!make_tensor(pool, &v2, UID_V2, CUDNN_DATA_FLOAT, N, c.K, P, Q, c.K, true)) return false;
    if (!make_tensor(pool, &v3, UID_V3, CUDNN_DATA_FLOAT, N, c.K, P, Q, c.K, true)) return false;
    if (!make_tensor(pool, &tb, UID_B, CUDNN_DATA_HALF, 1, c.K, 1, 1, c.K)) return false;  // broadcast bias
    if (!make_tensor(pool, &tz, UID_Z, CUDNN_DATA_HALF, N, c.K, P, Q, c.K)) return false;  // residual
    conv_out = v1;
  }
  cudnnBackendDescriptor_t ops[4]; int nops = 0;
  if (!pool.make(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, &ops[0])) return false;
  float alpha = 1.f, beta = 0.f;  // float alpha/beta for float compute type (double only for double compute)
  DNN(set(ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tx));
  DNN(set(ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tw));
  DNN(set(ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv_out));
  DNN(set(ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv));
  DNN(set(ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha));
  DNN(set(ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta));
  DNN(cudnnBackendFinalize(ops[0]));
  nops = 1;
  if (c.fused) {
    if (!make_pointwise(pool, &ops[1], CUDNN_POINTWISE_ADD, v1, tb, v2)) return false;
    if (!make_pointwise(pool, &ops[2], CUDNN_POINTWISE_ADD, v2, tz, v3)) return false;
    if (!make_pointwise(pool, &ops[3], CUDNN_POINTWISE_RELU_FWD, v3, nullptr, ty)) return false;
    nops = 4;
  }
  if (!pool.make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, graph)) return false;
  DNN(set(*graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, nops, ops));
  // HANDLE is marked deprecated in 9.19 headers but is still the documented way in 9.14; keep it.
  DNN(set(*graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &g_h));
  DNN(cudnnBackendFinalize(*graph));
  return true;
}

// Heuristics: returns (in cfgs) the engine configs proposed by `mode` for the graph.
static bool heuristics(Pool& pool, cudnnBackendDescriptor_t graph, cudnnBackendHeurMode_t mode,
                       std::vector<cudnnBackendDescriptor_t>& cfgs) {
  cudnnBackendDescriptor_t heur;
  if (!pool.make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur)) return false;
  DNN(set(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph));
  DNN(set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode));
  DNN(cudnnBackendFinalize(heur));
  int64_t count = 0;  // ask for the count first, then fetch into freshly created ENGINECFG descriptors
  DNN(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
  if (count > 64) count = 64;  // bound probe time (runtime-fusion engines compile at finalize)
  if (count <= 0) { printf("    heuristics mode %d: 0 engine configs\n", (int)mode); return true; }
  cfgs.resize(count);
  for (auto& d : cfgs) if (!pool.make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &d)) return false;
  int64_t got = 0;
  DNN(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, cfgs.data()));
  cfgs.resize(got);
  return true;
}

// Engine global index of a config (for reporting only; -1 if the query fails).
static long long engine_index(Pool& pool, cudnnBackendDescriptor_t cfg) {
  cudnnBackendDescriptor_t eng; int64_t n = 0, gi = -1;
  if (!pool.make(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng)) return -1;
  if (cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &eng) != CUDNN_STATUS_SUCCESS) return -1;
  if (cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &gi) != CUDNN_STATUS_SUCCESS) return -1;
  return gi;
}

// Average ms of 20 back-to-back launches after 3 warm-ups (includes host launch cost, which matters at N=1).
template <class F> static float time_ms(F&& launch) {
  for (int i = 0; i < 3; ++i) if (!launch()) return -1;
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  cudaEventRecord(a);
  bool ok = true;
  for (int i = 0; i < 20 && ok; ++i) ok = launch();
  cudaEventRecord(b); cudaEventSynchronize(b);
  float ms = 0; cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a); cudaEventDestroy(b);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) { printf("    [cuda] during timing: %s\n", cudaGetErrorString(e)); return -1; }
  return ok ? ms / 20 : -1;
}

// Compare wide y against ref: returns max abs err in the slice, and how many outside elements changed.
static bool compare(const __half* y, const Case& c, size_t npix, const float* ref, unsigned* d_err,
                    unsigned long long* d_clob, float* err, unsigned long long* clob) {
  CU(cudaMemset(d_err, 0, sizeof(unsigned))); CU(cudaMemset(d_clob, 0, sizeof(unsigned long long)));
  k_compare<<<GRID, BLK>>>(y, c.yct, c.yco, c.K, ref, npix, d_err, d_clob);
  unsigned eb; CU(cudaMemcpy(&eb, d_err, 4, cudaMemcpyDeviceToHost));
  CU(cudaMemcpy(clob, d_clob, 8, cudaMemcpyDeviceToHost));
  memcpy(err, &eb, 4);
  return true;
}

// Legacy API on PACKED descriptors: cudnnFindConvolutionForwardAlgorithmEx, then time every algo it
// returned (plain conv, or ConvolutionBiasActivationForward for the fused case), keep the best.
// Checks correctness too when the case's own x is packed (then the same data is valid input).
static bool run_legacy(const Case& c, int N, Mem& mem, const __half* x, const __half* w, const __half* bias,
                       const __half* z, const float* ref, unsigned* d_err, unsigned long long* d_clob, Row& row) {
  int P = c.H + 2 * c.pad - c.R + 1, Q = c.W + 2 * c.pad - c.R + 1;
  bool same_data = (c.xct == c.C);
  const __half* lx = x;
  if (!same_data) { __half* t; if (!mem.alloc(&t, (size_t)N * c.H * c.W * c.C)) return false;
    k_fill_rand<<<GRID, BLK>>>(t, (size_t)N * c.H * c.W * c.C, 7, 1.f); lx = t; }
  __half* ly; if (!mem.alloc(&ly, (size_t)N * P * Q * c.K)) return false;
  size_t wsn = 256 << 20; void* ws; if (!mem.alloc((char**)&ws, wsn)) return false;

  cudnnTensorDescriptor_t xd, yd, bd; cudnnFilterDescriptor_t wd; cudnnConvolutionDescriptor_t cd;
  cudnnActivationDescriptor_t ad;
  cudnnCreateTensorDescriptor(&xd); cudnnCreateTensorDescriptor(&yd); cudnnCreateTensorDescriptor(&bd);
  cudnnCreateFilterDescriptor(&wd); cudnnCreateConvolutionDescriptor(&cd); cudnnCreateActivationDescriptor(&ad);
  struct Guard { cudnnTensorDescriptor_t a, b, c; cudnnFilterDescriptor_t w; cudnnConvolutionDescriptor_t cv; cudnnActivationDescriptor_t ac;
    ~Guard() { cudnnDestroyTensorDescriptor(a); cudnnDestroyTensorDescriptor(b); cudnnDestroyTensorDescriptor(c);
      cudnnDestroyFilterDescriptor(w); cudnnDestroyConvolutionDescriptor(cv); cudnnDestroyActivationDescriptor(ac); } } g{xd, yd, bd, wd, cd, ad};
  DNN(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, N, c.C, c.H, c.W));
  DNN(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, N, c.K, P, Q));
  DNN(cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, 1, c.K, 1, 1));
  DNN(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, c.K, c.C, c.R, c.R));
  DNN(cudnnSetConvolution2dDescriptor(cd, c.pad, c.pad, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  DNN(cudnnSetConvolutionMathType(cd, CUDNN_TENSOR_OP_MATH));
  DNN(cudnnSetActivationDescriptor(ad, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0));

  cudnnConvolutionFwdAlgoPerf_t perf[16]; int got = 0;
  DNN(cudnnFindConvolutionForwardAlgorithmEx(g_h, xd, lx, wd, w, cd, yd, ly, 16, &got, perf, ws, wsn));
  float one = 1.f, zero = 0.f;
  for (int i = 0; i < got; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > wsn) continue;
    cudnnConvolutionFwdAlgo_t algo = perf[i].algo;
    auto launch = [&]() -> bool {
      cudnnStatus_t s = c.fused
          ? cudnnConvolutionBiasActivationForward(g_h, &one, xd, lx, wd, w, cd, algo, ws, wsn, &one, yd, z, bd, bias, ad, yd, ly)
          : cudnnConvolutionForward(g_h, &one, xd, lx, wd, w, cd, algo, ws, wsn, &zero, yd, ly);
      if (s != CUDNN_STATUS_SUCCESS) { print_cudnn_err(s, c.fused ? "legacy BiasActivation" : "legacy conv", __LINE__); return false; }
      return true;
    };
    float ms = time_ms(launch);
    if (ms < 0) continue;
    printf("    legacy packed algo %d: %.4f ms\n", (int)algo, ms);
    if (row.legacy_ms < 0 || ms < row.legacy_ms) {
      row.legacy_ms = ms;
      if (same_data) {  // y is packed here, so compare with a packed view (yct=K, yco=0, no sentinel)
        Case pc = c; pc.yct = c.K; pc.yco = 0; unsigned long long clob;
        if (!compare(ly, pc, (size_t)N * P * Q, ref, d_err, d_clob, &row.legacy_err, &clob)) return false;
      }
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
static void run_case(const Case& c, int N, Row& row) {
  row.name = c.name; row.N = N;
  printf("\n== %s  N=%d  (C=%d K=%d %dx%d pad %d HxW=%dx%d; x ch [%d,%d) of %d; y ch [%d,%d) of %d%s)\n",
         c.name, N, c.C, c.K, c.R, c.R, c.pad, c.H, c.W, c.xco, c.xco + c.C, c.xct, c.yco, c.yco + c.K, c.yct,
         c.fused ? "; +bias +residual relu" : "");
  int P = c.H + 2 * c.pad - c.R + 1, Q = c.W + 2 * c.pad - c.R + 1;
  size_t xn = (size_t)N * c.H * c.W * c.xct, wn = (size_t)c.K * c.R * c.R * c.C;
  size_t npix = (size_t)N * P * Q, yn = npix * c.yct, rn = npix * c.K;
  Mem mem;
  __half *x, *w, *y, *bias = nullptr, *z = nullptr; float* ref; unsigned* d_err; unsigned long long* d_clob;
  if (!mem.alloc(&x, xn) || !mem.alloc(&w, wn) || !mem.alloc(&y, yn) || !mem.alloc(&ref, rn) ||
      !mem.alloc(&d_err, 1) || !mem.alloc(&d_clob, 1)) { row.note = "alloc failed"; return; }
  k_fill_rand<<<GRID, BLK>>>(x, xn, 1, 1.f);
  k_fill_rand<<<GRID, BLK>>>(w, wn, 2, 1.f / sqrtf((float)(c.C * c.R * c.R)));  // keeps outputs O(1)
  if (c.fused) {
    if (!mem.alloc(&bias, c.K) || !mem.alloc(&z, rn)) { row.note = "alloc failed"; return; }
    k_fill_rand<<<GRID, BLK>>>(bias, c.K, 3, 0.5f);
    k_fill_rand<<<GRID, BLK>>>(z, rn, 4, 1.f);
  }
  k_ref_conv<<<4096, BLK>>>(x, c.xct, c.xco, w, bias, z, c.fused, ref, N, c.C, c.H, c.W, c.K, c.R, c.pad, P, Q);
  if (cudaDeviceSynchronize() != cudaSuccess) { row.note = "reference kernel failed"; return; }

  Pool pool;
  cudnnBackendDescriptor_t graph;
  if (!build_graph(pool, c, N, &graph)) { row.note = "graph rejected"; }
  else {
    // Pointers for the variant pack: the slice is expressed purely as a pointer offset + strides.
    int64_t uids[5] = {UID_X, UID_W, UID_Y, UID_B, UID_Z};
    void* ptrs[5] = {x + c.xco, w, y + c.yco, bias, z};
    int nptr = c.fused ? 5 : 3;
    const cudnnBackendHeurMode_t modes[2] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
    for (int m = 0; m < 2; ++m) {
      std::vector<cudnnBackendDescriptor_t> cfgs;
      if (!heuristics(pool, graph, modes[m], cfgs)) { printf("    heuristics %s failed\n", m ? "FALLBACK" : "A"); continue; }
      (m ? row.triedF : row.triedA) = (int)cfgs.size();
      for (size_t i = 0; i < cfgs.size(); ++i) {
        long long eng = engine_index(pool, cfgs[i]);
        // Plan: finalize is where "does this engine support strided/sliced tensors" is decided.
        cudnnBackendDescriptor_t plan;
        if (!pool.make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan)) continue;
        if (set(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &g_h) != CUDNN_STATUS_SUCCESS ||
            set(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[i]) != CUDNN_STATUS_SUCCESS) {
          printf("    %s cfg %zu eng %lld: plan attrs rejected\n", m ? "FB" : "A ", i, eng); continue;
        }
        cudnnStatus_t fs = cudnnBackendFinalize(plan);
        if (fs != CUDNN_STATUS_SUCCESS) {
          char msg[512] = {0}; cudnnGetLastErrorString(msg, sizeof msg);
          printf("    %s cfg %zu eng %lld: finalize -> %s %s\n", m ? "FB" : "A ", i, eng, cudnnGetErrorString(fs), msg);
          continue;
        }
        (m ? row.finF : row.finA)++;
        int64_t wsz = 0, cnt = 0;
        cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &cnt, &wsz);
        void* ws = nullptr;
        if (wsz > 0 && cudaMalloc(&ws, wsz) != cudaSuccess) { printf("    eng %lld: workspace %lld B alloc failed\n", eng, (long long)wsz); cudaGetLastError(); continue; }
        cudnnBackendDescriptor_t vp;
        bool ok = pool.make(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp) &&
                  set(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, nptr, uids) == CUDNN_STATUS_SUCCESS &&
                  set(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, nptr, ptrs) == CUDNN_STATUS_SUCCESS &&
                  set(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws) == CUDNN_STATUS_SUCCESS &&
                  cudnnBackendFinalize(vp) == CUDNN_STATUS_SUCCESS;
        if (!ok) { printf("    eng %lld: variant pack rejected\n", eng); cudaFree(ws); continue; }
        auto launch = [&]() -> bool {
          cudnnStatus_t s = cudnnBackendExecute(g_h, plan, vp);
          if (s != CUDNN_STATUS_SUCCESS) { print_cudnn_err(s, "cudnnBackendExecute", __LINE__); return false; }
          return true;
        };
        // Sentinel everywhere in the wide y, then one checked run, then timing; compare after all runs.
        k_fill_bits<<<GRID, BLK>>>((uint16_t*)y, yn, SENTINEL);
        bool ran = launch();
        cudaError_t ce = cudaDeviceSynchronize();
        if (!ran || ce != cudaSuccess) { printf("    eng %lld: execute failed (%s)\n", eng, cudaGetErrorString(ce)); cudaFree(ws); continue; }
        float ms = time_ms(launch), err = -1; unsigned long long clob = 0;
        compare(y, c, npix, ref, d_err, d_clob, &err, &clob);
        cudaFree(ws);
        bool good = ms >= 0 && err <= TOL && clob == 0;
        if (!good) row.bad++;
        printf("    %s cfg %2zu eng %4lld: ws %8lld B  %.4f ms  maxerr %.2e  clobbered %llu %s\n", m ? "FB" : "A ", i, eng,
               (long long)wsz, ms, err, clob, good ? "" : "  <-- BAD");
        if (good && (row.best_ms < 0 || ms < row.best_ms)) { row.best_ms = ms; row.best_err = err; row.best_eng = eng; row.best_clob = clob; }
      }
    }
  }
  if (!run_legacy(c, N, mem, x, w, bias, z, ref, d_err, d_clob, row)) row.note += row.note.empty() ? "legacy failed" : "; legacy failed";
  cudaGetLastError();
}

int main() {
  if (cudnnCreate(&g_h) != CUDNN_STATUS_SUCCESS) { printf("cudnnCreate failed (no GPU?)\n"); return 1; }
  printf("cuDNN runtime %zu (built against %d.%d.%d)\n", cudnnGetVersion(), CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
  //            name                   C   H   W    K  R pad  xct xco  yct yco fused
  const Case cases[] = {
      {"1 1x1 y-slice[0,64)/256",    192, 28, 28,  64, 1, 0, 192,  0, 256,  0, false},
      {"2 3x3 y-slice[64,192)/256",   96, 28, 28, 128, 3, 1,  96,  0, 256, 64, false},
      {"3 3x3 x-slice[64,160)/208",   96, 28, 28, 128, 3, 1, 208, 64, 128,  0, false},
      {"3b 3x3 x-slice + y-slice",    96, 28, 28, 128, 3, 1, 208, 64, 256, 64, false},
      {"4a 1x1 packed (base of 1)",  192, 28, 28,  64, 1, 0, 192,  0,  64,  0, false},
      {"4b 3x3 packed (base 2,3)",    96, 28, 28, 128, 3, 1,  96,  0, 128,  0, false},
      {"5 3x3 conv+b+res+relu fused", 64, 56, 56,  64, 3, 1,  64,  0,  64,  0, true},
  };
  std::vector<Row> rows;
  for (int N : {128, 1})
    for (const Case& c : cases) { rows.emplace_back(); run_case(c, N, rows.back()); }

  printf("\n# SUMMARY  (ms = avg of 20 back-to-back launches after warm-up; best over finalized+correct plans)\n");
  printf("# A t/f, FB t/f = engine configs returned by heuristics mode A / FALLBACK and how many finalized\n");
  printf("# bad = finalized plans that failed to run, were wrong (err > %.0e) or clobbered the sentinel\n", TOL);
  printf("# legacy = legacy API on PACKED tensors (same shape), best FindEx algo; for case 5 legacy = ConvBiasActivation\n");
  printf("%-30s %4s %7s %7s %4s %9s %6s %9s %9s %10s %9s  %s\n", "case", "N", "A t/f", "FB t/f", "bad", "graph ms", "eng",
         "maxerr", "sentinel", "legacy ms", "leg err", "note");
  for (const Row& r : rows) {
    char a[16], f[16]; snprintf(a, 16, "%d/%d", r.triedA, r.finA); snprintf(f, 16, "%d/%d", r.triedF, r.finF);
    printf("%-30s %4d %7s %7s %4d %9.4f %6lld %9.2e %9s %10.4f %9.2e  %s\n", r.name.c_str(), r.N, a, f, r.bad, r.best_ms,
           r.best_eng, r.best_err, r.best_ms < 0 ? "-" : (r.best_clob ? "CLOBBER" : "intact"), r.legacy_ms, r.legacy_err,
           r.note.c_str());
  }
  cudnnDestroy(g_h);
  return 0;
}
