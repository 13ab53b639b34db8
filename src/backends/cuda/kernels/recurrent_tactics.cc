// cuda.recurrent: Recurrent (ONNX RNN, GRU and LSTM) on cuBLASLt products and kiln's cell kernels
// (recurrent.cu), for float32, float16, bfloat16 and float64; every activation with its alpha and
// beta, clip, GRU linear_before_reset 0 and 1, LSTM input_forget and peepholes, forward, reverse
// and bidirectional, layouts 0 and 1, sequence_lens (int32 or int64), optional initial states and
// any subset of the outputs.
//
// - Work per launch: one GEMM projects X on W for every time step and both directions at once
//   (W of every direction is one [ndir*G*H, I] matrix); then per time step one GEMM, batched over
//   the directions, multiplies the state by Rᵀ, and one kernel applies the cell. GRU with
//   linear_before_reset = 0 needs (r ⊙ h_prev) · Rhᵀ: the step's product covers the z and r
//   gates, a kernel forms r ⊙ h_prev, and a second product covers the h gate. Both directions
//   advance in the same loop (forward at t, reverse at len - 1 - t).
// - Precision: float32 inputs compute in float32 (GEMMs strictly FP32, no TF32), float64 in
//   float64; float16 and bfloat16 inputs are converted to float32 (X per launch, W/R/B/P once at
//   instantiate when they are constants, else per launch) and compute exactly as float32 does.
//   The state h (and c) lives in the workspace in float32 / float64 for the whole sequence; only
//   Y, Y_h and Y_c are rounded to the input's type.
// - sequence_lens are read on the device (values are clamped to [0, S], where the reference
//   rejects others), so a launch never synchronises and is captured in CUDA graphs; the loop
//   always runs S steps, rows past their length holding their state.
// - Weights may be constants or computed at run time; constants that need no conversion are read
//   from the engine's copy.
#include <cctype>
#include <string>
#include <vector>

#include "backends/cuda/cublaslt/gemm.h"
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/recurrent.h"
#include "ops/recurrent.h"

namespace kiln {
namespace cuda {
namespace {

// The products' workspace: enough for cuBLASLt's split-K kernels at these sizes; the plans are
// chosen for this limit.
constexpr size_t kGemmWorkspace = size_t(4) << 20;
constexpr size_t kNone = ~size_t(0);

// Inputs in ONNX order.
enum InputIndex : size_t { kX = 0, kW = 1, kR = 2, kB = 3, kLens = 4, kH0 = 5, kC0 = 6, kP = 7 };

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

bool float_ok(DataType t) {
  return t == DataType::kFloat || t == DataType::kFloat16 || t == DataType::kBFloat16 ||
         t == DataType::kDouble;
}

void check_rc(int rc) {
  if (rc != 0) KILN_CUDA_CHECK(static_cast<cudaError_t>(rc));
}

// What the attributes say, parsed as the reference parses them.
struct Config {
  rk::RnnCell cell = rk::RnnCell::kRnn;
  int ndir = 1;
  bool reverse = false;
  int64_t gates = 1;
  rk::RnnActivation act[2][3];
};

// Names as the reference reads them: comma-separated, case and spaces ignored.
std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (!std::isspace(static_cast<unsigned char>(ch))) {
      cur += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
  }
  if (!s.empty()) out.push_back(cur);
  return out;
}

// Empty when the attributes are usable, else why not. alpha and beta are taken in order by the
// functions that use them; a list for one direction serves both (the reference's rules).
std::string parse(const RecurrentAttrs& a, Config& c) {
  size_t per = 0;
  std::vector<std::string> names = split_names(a.activations);
  if (a.cell == "rnn") {
    c.cell = rk::RnnCell::kRnn;
    c.gates = 1;
    per = 1;
    if (names.empty()) names = {"tanh"};
  } else if (a.cell == "gru") {
    c.cell = rk::RnnCell::kGru;
    c.gates = 3;
    per = 2;
    if (names.empty()) names = {"sigmoid", "tanh"};
  } else if (a.cell == "lstm") {
    c.cell = rk::RnnCell::kLstm;
    c.gates = 4;
    per = 3;
    if (names.empty()) names = {"sigmoid", "tanh", "tanh"};
  } else {
    return cat("cell '", a.cell, "'");
  }
  if (a.direction == "forward" || a.direction == "reverse") {
    c.ndir = 1;
    c.reverse = a.direction == "reverse";
  } else if (a.direction == "bidirectional") {
    c.ndir = 2;
    c.reverse = false;
  } else {
    return cat("direction '", a.direction, "'");
  }
  if (a.layout != 0 && a.layout != 1) return cat("layout ", a.layout);
  const size_t ndir = static_cast<size_t>(c.ndir);
  if (names.size() != per && names.size() != per * ndir)
    return cat("activations list ", names.size(), " functions, ", per * ndir, " expected");
  size_t ai = 0, bi = 0;
  auto take = [](const Floats& v, size_t& i, double def) { return i < v.size() ? v[i++] : def; };
  std::vector<rk::RnnActivation> acts;
  for (const std::string& n : names) {
    rk::RnnActivation f;
    if (n == "relu") {
      f.kind = rk::RnnActKind::kRelu;
    } else if (n == "tanh") {
      f.kind = rk::RnnActKind::kTanh;
    } else if (n == "sigmoid") {
      f.kind = rk::RnnActKind::kSigmoid;
    } else if (n == "softsign") {
      f.kind = rk::RnnActKind::kSoftsign;
    } else if (n == "softplus") {
      f.kind = rk::RnnActKind::kSoftplus;
    } else if (n == "affine") {
      f.kind = rk::RnnActKind::kAffine;
      f.alpha = take(a.activation_alpha, ai, 1.0);
      f.beta = take(a.activation_beta, bi, 0.0);
    } else if (n == "leakyrelu") {
      f.kind = rk::RnnActKind::kLeakyRelu;
      f.alpha = take(a.activation_alpha, ai, 0.01);
    } else if (n == "thresholdedrelu") {
      f.kind = rk::RnnActKind::kThresholdedRelu;
      f.alpha = take(a.activation_alpha, ai, 1.0);
    } else if (n == "scaledtanh") {
      f.kind = rk::RnnActKind::kScaledTanh;
      f.alpha = take(a.activation_alpha, ai, 1.0);
      f.beta = take(a.activation_beta, bi, 1.0);
    } else if (n == "hardsigmoid") {
      f.kind = rk::RnnActKind::kHardSigmoid;
      f.alpha = take(a.activation_alpha, ai, 0.2);
      f.beta = take(a.activation_beta, bi, 0.5);
    } else if (n == "elu") {
      f.kind = rk::RnnActKind::kElu;
      f.alpha = take(a.activation_alpha, ai, 1.0);
    } else {
      return cat("activation '", n, "'");
    }
    acts.push_back(f);
  }
  for (size_t d = 0; d < ndir; ++d)
    for (size_t k = 0; k < per; ++k) c.act[d][k] = acts[(acts.size() == per ? 0 : d * per) + k];
  return {};
}

Status supports(const Node& n) {
  const auto& at = n.a<RecurrentAttrs>();
  Config c;
  std::string why = parse(at, c);
  if (!why.empty()) return unsupported(why);
  const bool lstm = c.cell == rk::RnnCell::kLstm;
  const Value* x = n.in(kX);
  if (!x || !n.in(kW) || !n.in(kR)) return unsupported("needs X, W and R");
  if (!float_ok(x->dtype))
    return unsupported(cat(dtype_name(x->dtype), " (takes float32, float16, bfloat16, float64)"));
  if (n.inputs.size() > (lstm ? 8u : 6u))
    return unsupported(cat(n.inputs.size(), " inputs for ", at.cell));
  for (size_t i = 1; i < n.inputs.size(); ++i) {
    const Value* v = n.in(i);
    if (!v) continue;
    if (i == kLens) {
      if (v->dtype != DataType::kInt32 && v->dtype != DataType::kInt64)
        return unsupported(cat("sequence_lens of type ", dtype_name(v->dtype)));
    } else if (v->dtype != x->dtype) {
      return unsupported(cat("input ", i, " of type ", dtype_name(v->dtype), ", X is ",
                             dtype_name(x->dtype)));
    }
  }
  if (n.outputs.size() > (lstm ? 3u : 2u))
    return unsupported(cat(n.outputs.size(), " outputs for ", at.cell));
  for (const Value* o : n.outputs)
    if (o && o->dtype != x->dtype) return unsupported("an output of another type than X");
  if (x->shape.rank_known && x->shape.rank() != 3) return unsupported("X is not 3-D");
  const Value* r = n.in(kR);
  if (r->shape.rank_known && r->shape.rank() != 3) return unsupported("R is not 3-D");
  return Status::ok();
}

// Host copy of a constant in the accumulation type.
DeviceBuffer upload_as_acc(const Tensor& t, bool dbl) {
  const int64_t n = t.numel();
  if (dbl) {
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = t.get_f64(i);
    return DeviceBuffer(v.data(), v.size() * sizeof(double));
  }
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(t.get_f64(i));
  return DeviceBuffer(v.data(), v.size() * sizeof(float));
}

class RecurrentKernel : public Kernel {
 public:
  explicit RecurrentKernel(const Node& n) {
    const auto& at = n.a<RecurrentAttrs>();
    const std::string why = parse(at, cfg_);
    KILN_EXPECT(why.empty(), StatusCode::kUnsupported, "cuda.recurrent: ", why);
    hidden_size_ = at.hidden_size;
    layout_ = static_cast<int>(at.layout);
    clip_ = at.clip;
    linear_before_reset_ = at.linear_before_reset != 0;
    input_forget_ = at.input_forget != 0;
    dtype_ = n.in(kX)->dtype;
    acc_double_ = dtype_ == DataType::kDouble;
    for (size_t i : {kW, kR, kB, kP}) {
      const Value* v = n.in(i);
      if (v && v->is_constant() && v->dtype != acc_dtype() && v->data.numel() > 0)
        consts_[i] = upload_as_acc(v->data, acc_double_);
    }
  }

  size_t workspace_size(const LaunchArgs& a) const override {
    const Shapes s = shapes_of(a);
    if (s.N == 0 || s.H == 0) return 0;
    return carve(a, s).total;
  }

  void enqueue(const LaunchArgs& a) override {
    const Shapes s = shapes_of(a);
    if (s.N == 0 || s.H == 0) return;  // every output is empty
    const Carve w = carve(a, s);
    KILN_EXPECT(a.workspace && a.workspace_bytes >= w.total, StatusCode::kInternal,
                "cuda.recurrent: workspace of ", a.workspace_bytes, " bytes, ", w.total, " needed");
    char* ws = static_cast<char*>(a.workspace);
    cudaStream_t st = stream_of(a);
    const size_t es = acc_double_ ? 8 : 4;
    const bool lstm = cfg_.cell == rk::RnnCell::kLstm;

    // Operands in the accumulation type: the kernel's converted constant, the launch's tensor
    // when it already has that type, else a converted copy in the workspace.
    auto acc_of = [&](size_t i, size_t off) -> const void* {
      if (!a.has(i)) return nullptr;
      if (consts_[i].get()) return consts_[i].get();
      if (off == kNone) return a.in(i).data;
      check_rc(rk::launch_rnn_convert(a.in(i).data, rk_dtype(a.in(i).dtype), ws + off,
                                      acc_double_, a.in(i).numel(), a.stream));
      return ws + off;
    };
    const void* x = acc_of(kX, w.x);
    const void* wt = acc_of(kW, w.w);
    const void* rt = acc_of(kR, w.r);

    rk::RnnProblem p;
    p.dtype = rk_dtype(dtype_);
    p.cell = cfg_.cell;
    p.ndir = cfg_.ndir;
    p.reverse = cfg_.reverse;
    p.layout = layout_;
    p.seq = s.S;
    p.batch = s.N;
    p.hidden = s.H;
    p.clip = clip_;
    p.linear_before_reset = linear_before_reset_;
    p.input_forget = input_forget_;
    for (int d = 0; d < 2; ++d)
      for (int k = 0; k < 3; ++k) p.act[d][k] = cfg_.act[d][k];
    p.xw = ws + w.xw;
    p.hr = ws + w.hr;
    p.bias = acc_of(kB, w.b);
    p.peep = lstm ? acc_of(kP, w.p) : nullptr;
    p.h = ws + w.h;
    p.c = lstm ? ws + w.c : nullptr;
    p.rh = w.rh != kNone ? ws + w.rh : nullptr;
    if (a.has(kLens)) {
      p.lens = a.in(kLens).data;
      p.lens_dtype = rk_dtype(a.in(kLens).dtype);
    }
    p.h0 = a.has(kH0) ? a.in(kH0).data : nullptr;
    p.c0 = lstm && a.has(kC0) ? a.in(kC0).data : nullptr;
    p.y = output(a, 0);
    p.y_h = output(a, 1);
    p.y_c = lstm ? output(a, 2) : nullptr;

    cublasLtHandle_t lt = resources_of(a).cublaslt();
    void* gws = ws + w.gemm;
    const DataType acc = acc_dtype();
    const int64_t GH = s.G * s.H;

    // XW = X · Wᵀ for every time step and direction: [S*N, ndir*G*H], rows in X's order.
    const int64_t rows = s.S * s.N;
    if (rows > 0) {
      if (s.I == 0) {
        KILN_CUDA_CHECK(cudaMemsetAsync(ws + w.xw, 0, static_cast<size_t>(rows * s.ndir * GH) * es,
                                        st));
      } else {
        GemmSpec g;
        g.dtype = acc;
        g.m = rows;
        g.n = s.ndir * GH;
        g.k = s.I;
        g.trans_b = true;
        g.lda = s.I;
        g.ldb = s.I;
        g.ldc = s.ndir * GH;
        gemm_.run(lt, g, x, wt, ws + w.xw, 1.0, 0.0, gws, kGemmWorkspace, st);
      }
    }
    check_rc(rk::launch_rnn_init(p, a.stream));

    // HR[d] = h[d] · R[d]ᵀ over columns [col, col + n) of the gates, batched over directions.
    auto recurrent_product = [&](const void* h, int64_t col, int64_t n) {
      GemmSpec g;
      g.dtype = acc;
      g.m = s.N;
      g.n = n;
      g.k = s.H;
      g.trans_b = true;
      g.lda = s.H;
      g.ldb = s.H;
      g.ldc = GH;
      g.batch = s.ndir;
      g.stride_a = s.N * s.H;
      g.stride_b = GH * s.H;
      g.stride_c = s.N * GH;
      gemm_.run(lt, g, h, static_cast<const char*>(rt) + static_cast<size_t>(col * s.H) * es,
                ws + w.hr + static_cast<size_t>(col) * es, 1.0, 0.0, gws, kGemmWorkspace, st);
    };
    const bool reset_first = cfg_.cell == rk::RnnCell::kGru && !linear_before_reset_;
    for (int64_t step = 0; step < s.S; ++step) {
      if (reset_first) {
        recurrent_product(p.h, 0, 2 * s.H);
        check_rc(rk::launch_rnn_gru_reset(p, step, a.stream));
        recurrent_product(p.rh, 2 * s.H, s.H);
      } else {
        recurrent_product(p.h, 0, GH);
      }
      check_rc(rk::launch_rnn_step(p, step, a.stream));
    }
    check_rc(rk::launch_rnn_final(p, a.stream));
    check_launch("cuda.recurrent");
  }

 private:
  struct Shapes {
    int64_t S = 0, N = 0, I = 0, H = 0, G = 1, ndir = 1;
  };
  // Byte offsets into the workspace (kNone: not needed).
  struct Carve {
    size_t xw = kNone, hr = kNone, h = kNone, c = kNone, rh = kNone;
    size_t x = kNone, w = kNone, r = kNone, b = kNone, p = kNone, gemm = kNone;
    size_t total = 0;
  };

  DataType acc_dtype() const { return acc_double_ ? DataType::kDouble : DataType::kFloat; }

  static void* output(const LaunchArgs& a, size_t k) {
    if (k >= a.outputs.size() || !a.outputs[k].defined()) return nullptr;
    return a.outputs[k].data;
  }

  // The launch's sizes, every present tensor checked against them.
  Shapes shapes_of(const LaunchArgs& a) const {
    Shapes s;
    const Dims& xd = a.in(kX).dims;
    KILN_EXPECT(xd.size() == 3, StatusCode::kInvalidArgument, "Recurrent X must be 3-D, got ",
                dims_to_string(xd));
    s.S = xd[layout_ == 0 ? 0 : 1];
    s.N = xd[layout_ == 0 ? 1 : 0];
    s.I = xd[2];
    s.G = cfg_.gates;
    s.ndir = cfg_.ndir;
    if (hidden_size_ > 0) {
      s.H = hidden_size_;
    } else {
      const Dims& rd = a.in(kR).dims;
      KILN_EXPECT(rd.size() == 3, StatusCode::kInvalidArgument, "Recurrent R must be 3-D, got ",
                  dims_to_string(rd));
      s.H = rd[2];
    }
    const int64_t state = s.ndir * s.N * s.H;
    auto expect = [&](const DeviceTensor& t, int64_t n, const char* what) {
      KILN_EXPECT(t.numel() == n, StatusCode::kInvalidArgument, "Recurrent ", what, " has ",
                  t.numel(), " elements (", dims_to_string(t.dims), "), expected ", n);
    };
    expect(a.in(kW), s.ndir * s.G * s.H * s.I, "W");
    expect(a.in(kR), s.ndir * s.G * s.H * s.H, "R");
    if (a.has(kB)) expect(a.in(kB), s.ndir * 2 * s.G * s.H, "B");
    if (a.has(kLens)) expect(a.in(kLens), s.N, "sequence_lens");
    if (a.has(kH0)) expect(a.in(kH0), state, "initial_h");
    if (cfg_.cell == rk::RnnCell::kLstm) {
      if (a.has(kC0)) expect(a.in(kC0), state, "initial_c");
      if (a.has(kP)) expect(a.in(kP), s.ndir * 3 * s.H, "P");
    }
    const char* names[3] = {"Y", "Y_h", "Y_c"};
    for (size_t k = 0; k < a.outputs.size() && k < 3; ++k)
      if (a.outputs[k].defined())
        expect(a.outputs[k], k == 0 ? s.S * state : state, names[k]);
    return s;
  }

  bool needs_copy(const LaunchArgs& a, size_t i) const {
    return a.has(i) && !consts_[i].get() && a.in(i).dtype != acc_dtype();
  }

  Carve carve(const LaunchArgs& a, const Shapes& s) const {
    const size_t es = acc_double_ ? 8 : 4;
    size_t off = 0;
    auto take = [&](int64_t count) {
      const size_t o = off;
      off += (static_cast<size_t>(count) * es + 255) / 256 * 256;
      return o;
    };
    const int64_t GH = s.G * s.H, state = s.ndir * s.N * s.H;
    Carve w;
    w.xw = take(s.S * s.N * s.ndir * GH);
    w.hr = take(s.ndir * s.N * GH);
    w.h = take(state);
    if (cfg_.cell == rk::RnnCell::kLstm) w.c = take(state);
    if (cfg_.cell == rk::RnnCell::kGru && !linear_before_reset_) w.rh = take(state);
    if (needs_copy(a, kX)) w.x = take(a.in(kX).numel());
    if (needs_copy(a, kW)) w.w = take(a.in(kW).numel());
    if (needs_copy(a, kR)) w.r = take(a.in(kR).numel());
    if (needs_copy(a, kB)) w.b = take(a.in(kB).numel());
    if (cfg_.cell == rk::RnnCell::kLstm && needs_copy(a, kP)) w.p = take(a.in(kP).numel());
    w.gemm = off;
    w.total = off + kGemmWorkspace;
    return w;
  }

  Config cfg_;
  int64_t hidden_size_ = 0;
  int layout_ = 0;
  double clip_ = 0;
  bool linear_before_reset_ = false, input_forget_ = false;
  DataType dtype_ = DataType::kFloat;
  bool acc_double_ = false;
  DeviceBuffer consts_[8];  // constant W, R, B, P converted to the accumulation type
  LtGemm gemm_;             // plans per shape, shared by every context (guarded inside)
};

std::unique_ptr<Kernel> make(const Node& n) { return std::make_unique<RecurrentKernel>(n); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_recurrent() {
  static const cuda::SimpleTactic t("cuda.recurrent", "Recurrent", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
