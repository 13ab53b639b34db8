// cuda.pointwise_nvrtc: a Pointwise node's program compiled to a CUDA module with NVRTC at build
// time (pointwise_codegen.h). The plan stores the CUBIN, so engines load it with the driver API
// and need no compiler. A plan compiled for one GPU architecture is refused on another.

#include <algorithm>

#include "backends/cuda/codegen/nvrtc.h"
#include "backends/cuda/codegen/pointwise_codegen.h"
#include "backends/cuda/cuda_common.h"
#include "ops/pointwise.h"
#include "plan/bytes.h"

namespace kiln {
namespace cuda {
namespace {

constexpr uint32_t kStateMagic = 0x3157504b;  // "KPW1"
constexpr uint32_t kStateVersion = 1;

// What prepare() stores in the plan.
struct State {
  uint32_t device_sm = 0;  // the GPU the plan was built on
  uint32_t target_sm = 0;  // the architecture the CUBIN was compiled for
  uint32_t max_rank = 1, vec = 1, inputs = 0, outputs = 0;
  std::vector<std::string> names;
  std::string cubin;
};

std::string write_state(const State& s) {
  ByteWriter w;
  w.u32(kStateMagic);
  w.u32(kStateVersion);
  w.u32(s.device_sm);
  w.u32(s.target_sm);
  w.u32(s.max_rank);
  w.u32(s.vec);
  w.u32(s.inputs);
  w.u32(s.outputs);
  w.u32(static_cast<uint32_t>(s.names.size()));
  for (const std::string& n : s.names) w.str(n);
  w.str(s.cubin);
  return std::move(w.buf);
}

State read_state(std::string_view bytes) {
  ByteReader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
               "pointwise kernel state");
  if (r.u32("magic") != kStateMagic) r.corrupt("not a pointwise kernel state");
  uint32_t version = r.u32("version");
  if (version != kStateVersion)
    fail(StatusCode::kIncompatible, "the plan's pointwise kernel state has version ", version,
         ", this kiln reads version ", kStateVersion, "; rebuild the plan");
  State s;
  s.device_sm = r.u32("device architecture");
  s.target_sm = r.u32("target architecture");
  s.max_rank = r.u32("rank");
  s.vec = r.u32("vector width");
  s.inputs = r.u32("inputs");
  s.outputs = r.u32("outputs");
  uint32_t names = r.u32("kernel count");
  if (names != 4) r.corrupt(cat("expected 4 kernels, found ", names));
  for (uint32_t i = 0; i < names; ++i) {
    s.names.push_back(r.str("kernel name"));
    if (s.names.back() != kPointwiseKernelNames[i])
      r.corrupt(cat("kernel ", i, " is '", s.names.back(), "', expected '",
                    kPointwiseKernelNames[i], "'"));
  }
  s.cubin = r.str("CUBIN");
  if (!r.done()) r.corrupt("trailing bytes");
  if (s.cubin.empty()) r.corrupt("empty CUBIN");
  if (s.max_rank < 1 || s.max_rank > kPointwiseMaxRank) r.corrupt(cat("rank ", s.max_rank));
  if (s.vec != 1 && s.vec != 2 && s.vec != 4 && s.vec != 8)
    r.corrupt(cat("vector width ", s.vec));
  return s;
}

int output_rank(const Node& n) { return static_cast<int>(n.outputs[0]->shape.rank()); }

Status supports_pointwise(const Node& n) {
  if (n.op() != "Pointwise") return unsupported("not a Pointwise node");
  const expr::Program& p = n.a<PointwiseAttrs>().program;
  if (n.inputs.size() != p.input_types.size())
    return unsupported("the node's inputs do not match its program");
  if (n.outputs.empty() || n.outputs.size() != p.outputs.size())
    return unsupported("the node's outputs do not match its program");
  for (const Value* v : n.inputs) {
    if (!v) return unsupported("an input is omitted");
    if (!device_dtype_ok(v->dtype))
      return unsupported(cat("input type ", dtype_name(v->dtype), " is not handled on the GPU"));
    if (!v->shape.rank_known) return unsupported("an input's rank is unknown");
  }
  for (const Value* v : n.outputs) {
    if (!v) return unsupported("an output is missing");
    if (!device_dtype_ok(v->dtype))
      return unsupported(cat("output type ", dtype_name(v->dtype), " is not handled on the GPU"));
    if (!v->shape.rank_known) return unsupported("the output rank is unknown");
  }
  int rank = output_rank(n);
  if (rank > kPointwiseMaxRank)
    return unsupported(cat("rank ", rank, " exceeds ", kPointwiseMaxRank));
  for (const Value* v : n.inputs)
    if (static_cast<int>(v->shape.rank()) > rank)
      return unsupported("an input's rank exceeds the output's");
  std::string why = pointwise_codegen_unsupported(p, rank);
  if (!why.empty()) return unsupported(why);
  return Status::ok();
}

class PointwiseKernel : public Kernel {
 public:
  PointwiseKernel(const expr::Program& p, const State& s) {
    layout_.max_rank = s.max_rank;
    layout_.inputs = s.inputs;
    layout_.outputs = s.outputs;
    vec_ = static_cast<int>(s.vec);
    for (DataType t : p.input_types) in_size_.push_back(dtype_size(t));
    for (int32_t o : p.outputs) out_size_.push_back(dtype_size(p.code[o].dtype));
    // The runtime API makes the device's primary context current; the module lives in it, like
    // every allocation and stream the runtime makes.
    KILN_CUDA_CHECK(cudaFree(nullptr));
    int dev = 0, sms = 0;
    KILN_CUDA_CHECK(cudaGetDevice(&dev));
    KILN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    // Enough resident blocks to fill every SM (2048 threads each); grid-stride loops do the rest.
    max_blocks_ = std::max(1, sms) * (2048 / kPointwiseBlock);
    // The runtime's library API (not the driver's cuModule*): kiln links only libcudart, so a
    // build with the CUDA backend still starts on machines without the NVIDIA driver.
    KILN_CUDA_CHECK(cudaLibraryLoadData(&library_, s.cubin.data(), nullptr, nullptr, 0, nullptr,
                                        nullptr, 0));
    try {
      for (int i = 0; i < 4; ++i)
        KILN_CUDA_CHECK(cudaLibraryGetKernel(&fn_[i], library_, kPointwiseKernelNames[i]));
    } catch (...) {
      cudaLibraryUnload(library_);  // the destructor does not run for a throwing constructor
      throw;
    }
  }
  ~PointwiseKernel() override {
    if (library_) cudaLibraryUnload(library_);
  }
  PointwiseKernel(const PointwiseKernel&) = delete;
  PointwiseKernel& operator=(const PointwiseKernel&) = delete;

  void enqueue(const LaunchArgs& a) override {
    const size_t nin = layout_.inputs, nout = layout_.outputs;
    KILN_CHECK(a.inputs.size() == nin && a.outputs.size() == nout,
               "pointwise kernel launched with ", a.inputs.size(), " inputs and ",
               a.outputs.size(), " outputs");
    const Dims& od = a.out(0).dims;
    for (size_t k = 1; k < nout; ++k)
      KILN_CHECK(a.out(k).dims == od, "pointwise outputs differ in shape");
    std::vector<Dims> in_dims(nin);
    std::vector<const void*> in_ptrs(nin);
    std::vector<void*> out_ptrs(nout);
    for (size_t k = 0; k < nin; ++k) {
      KILN_CHECK(a.in(k).defined(), "pointwise input ", k, " is missing");
      in_dims[k] = a.in(k).dims;
      in_ptrs[k] = a.in(k).data;
    }
    for (size_t k = 0; k < nout; ++k) out_ptrs[k] = a.out(k).data;
    PointwiseLaunch L = plan_pointwise_launch(layout_, vec_, in_size_, out_size_, in_dims, od,
                                              in_ptrs, out_ptrs);
    if (L.items == 0) return;  // empty output: nothing to launch
    const int64_t blocks =
        std::min<int64_t>((L.items + kPointwiseBlock - 1) / kPointwiseBlock, max_blocks_);

    // A cudaKernel_t is launched through cudaLaunchKernel like a function symbol; the runtime
    // makes the primary context current on any thread.
    void* params[] = {L.params.data()};
    KILN_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(fn_[L.kernel]),
                                     dim3(static_cast<unsigned>(blocks)), dim3(kPointwiseBlock),
                                     params, 0, stream_of(a)));
  }

 private:
  cudaLibrary_t library_ = nullptr;
  cudaKernel_t fn_[4] = {};
  PointwiseParamLayout layout_;
  int vec_ = 1;
  std::vector<size_t> in_size_, out_size_;
  int64_t max_blocks_ = 1;
};

class PointwiseTactic : public Tactic {
 public:
  std::string_view id() const override { return "cuda.pointwise_nvrtc"; }
  std::string_view op() const override { return "Pointwise"; }
  Status supports(const Node& node) const override { return supports_pointwise(node); }

  std::string prepare(const Node& node) const override {
    const expr::Program& p = node.a<PointwiseAttrs>().program;
    PointwiseSource src = generate_pointwise_source(p, output_rank(node));
    State s;
    s.device_sm = static_cast<uint32_t>(current_device_sm());
    s.target_sm = static_cast<uint32_t>(nvrtc_target_sm(static_cast<int>(s.device_sm)));
    s.max_rank = static_cast<uint32_t>(src.max_rank);
    s.vec = static_cast<uint32_t>(src.vec);
    s.inputs = static_cast<uint32_t>(src.layout.inputs);
    s.outputs = static_cast<uint32_t>(src.layout.outputs);
    for (const char* n : kPointwiseKernelNames) s.names.emplace_back(n);
    s.cubin = nvrtc_compile_cubin(src.source, static_cast<int>(s.target_sm),
                                  "pointwise " + node.label());
    return write_state(s);
  }

  std::unique_ptr<Kernel> instantiate(const Node& node, std::string_view state) const override {
    const expr::Program& p = node.a<PointwiseAttrs>().program;
    State s = read_state(state);
    if (s.inputs != p.input_types.size() || s.outputs != p.outputs.size())
      fail(StatusCode::kCorruptPlan, "pointwise kernel state is for ", s.inputs, " inputs and ",
           s.outputs, " outputs, but the node's program has ", p.input_types.size(), " and ",
           p.outputs.size());
    if (s.vec != static_cast<uint32_t>(pointwise_vector_width(p)))
      fail(StatusCode::kCorruptPlan, "pointwise kernel state has vector width ", s.vec,
           ", the program needs ", pointwise_vector_width(p));
    for (int32_t o : p.outputs)
      if (o < 0 || static_cast<size_t>(o) >= p.code.size())
        fail(StatusCode::kCorruptPlan, "pointwise program output register out of range");
    int sm = current_device_sm();
    if (static_cast<uint32_t>(sm) != s.device_sm)
      fail(StatusCode::kIncompatible, "the plan's pointwise kernels were compiled for sm_",
           s.device_sm, " (as sm_", s.target_sm, " code) but this GPU is sm_", sm,
           "; rebuild the plan on this GPU");
    return std::make_unique<PointwiseKernel>(p, s);
  }
};

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_pointwise_nvrtc() {
  static const cuda::PointwiseTactic t;
  return t;
}

}  // namespace kiln
