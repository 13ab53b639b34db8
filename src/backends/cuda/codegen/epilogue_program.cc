#include "backends/cuda/codegen/epilogue_program.h"

#include <algorithm>

#include "backends/cuda/codegen/nvrtc.h"
#include "backends/cuda/codegen/pointwise_codegen.h"
#include "backends/cuda/cuda_common.h"
#include "ops/epilogue.h"
#include "plan/bytes.h"

namespace kiln::cuda {

namespace {

constexpr uint32_t kMagic = 0x3150454b;  // "KEP1"
constexpr uint32_t kVersion = 1;

struct State {
  uint32_t device_sm = 0, target_sm = 0, vec = 1;
  std::string program;  // fingerprint() of what was compiled
  std::string cubin;
};

State read_state(std::string_view bytes) {
  ByteReader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
               "epilogue kernel state");
  if (r.u32("magic") != kMagic) r.corrupt("not an epilogue kernel state");
  const uint32_t version = r.u32("version");
  if (version != kVersion)
    fail(StatusCode::kIncompatible, "the plan's epilogue kernel state has version ", version,
         ", this kiln reads version ", kVersion, "; rebuild the plan");
  State s;
  s.device_sm = r.u32("device architecture");
  s.target_sm = r.u32("target architecture");
  s.vec = r.u32("vector width");
  s.program = r.str("program");
  s.cubin = r.str("CUBIN");
  if (!r.done()) r.corrupt("trailing bytes");
  if (s.cubin.empty()) r.corrupt("empty CUBIN");
  if (s.vec != 1 && s.vec != 2 && s.vec != 4 && s.vec != 8) r.corrupt(cat("vector width ", s.vec));
  return s;
}

// The program's exact contents (Program::str() prints constants to 6 digits).
std::string fingerprint(const expr::Program& p) {
  ByteWriter w;
  w.u64(p.input_types.size());
  for (DataType t : p.input_types) w.i32(static_cast<int32_t>(t));
  w.u64(p.code.size());
  for (const expr::Instr& in : p.code) {
    w.u8(static_cast<uint8_t>(in.op));
    w.i32(static_cast<int32_t>(in.dtype));
    w.i32(in.a);
    w.i32(in.b);
    w.i32(in.c);
    w.f64(in.fconst);
    w.i64(in.iconst);
  }
  w.u64(p.outputs.size());
  for (int32_t o : p.outputs) w.i32(o);
  return std::move(w.buf);
}

}  // namespace

std::string epilogue_kernel_unsupported(const expr::Program& p, DataType t) {
  std::string why = epilogue_program_problem(p, t);
  if (!why.empty()) return why;
  if (!device_dtype_ok(t)) return cat("output type ", dtype_name(t), " is not handled on the GPU");
  return pointwise_codegen_unsupported(p, 1);
}

std::string compile_epilogue_kernel(const expr::Program& p, const std::string& name) {
  const std::string why = epilogue_kernel_unsupported(p, p.input_types.empty()
                                                             ? DataType::kUndefined
                                                             : p.input_types[0]);
  KILN_EXPECT(why.empty(), StatusCode::kUnsupported, "the epilogue of ", name,
              " cannot run on the GPU: ", why);
  PointwiseSource src = generate_pointwise_source(p, 1);
  State s;
  s.device_sm = static_cast<uint32_t>(current_device_sm());
  s.target_sm = static_cast<uint32_t>(nvrtc_target_sm(static_cast<int>(s.device_sm)));
  s.vec = static_cast<uint32_t>(src.vec);
  s.program = fingerprint(p);
  s.cubin = nvrtc_compile_cubin(src.source, static_cast<int>(s.target_sm), "epilogue " + name);
  ByteWriter w;
  w.u32(kMagic);
  w.u32(kVersion);
  w.u32(s.device_sm);
  w.u32(s.target_sm);
  w.u32(s.vec);
  w.str(s.program);
  w.str(s.cubin);
  return std::move(w.buf);
}

EpilogueKernel::EpilogueKernel(const expr::Program& p, std::string_view state) {
  State s = read_state(state);
  if (s.program != fingerprint(p))
    fail(StatusCode::kCorruptPlan, "the epilogue kernel state was compiled for another program");
  if (s.vec != static_cast<uint32_t>(pointwise_vector_width(p)))
    fail(StatusCode::kCorruptPlan, "epilogue kernel state has vector width ", s.vec,
         ", the program needs ", pointwise_vector_width(p));
  const int sm = current_device_sm();
  if (static_cast<uint32_t>(sm) != s.device_sm)
    fail(StatusCode::kIncompatible, "the plan's epilogue kernels were compiled for sm_",
         s.device_sm, " (as sm_", s.target_sm, " code) but this GPU is sm_", sm,
         "; rebuild the plan on this GPU");
  elem_ = dtype_size(p.input_types[0]);
  vec_ = static_cast<int>(s.vec);
  // The module lives in the device's primary context, like every allocation the runtime makes.
  KILN_CUDA_CHECK(cudaFree(nullptr));
  int dev = 0, sms = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&dev));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  max_blocks_ = std::max(1, sms) * (2048 / kPointwiseBlock);
  KILN_CUDA_CHECK(
      cudaLibraryLoadData(&library_, s.cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0));
  try {
    KILN_CUDA_CHECK(cudaLibraryGetKernel(&fn_[0], library_, kPointwiseKernelNames[kPwFlat]));
    KILN_CUDA_CHECK(cudaLibraryGetKernel(&fn_[1], library_, kPointwiseKernelNames[kPwVec]));
  } catch (...) {
    cudaLibraryUnload(library_);  // the destructor does not run for a throwing constructor
    throw;
  }
}

EpilogueKernel::~EpilogueKernel() {
  if (library_) cudaLibraryUnload(library_);
}

void EpilogueKernel::run(void* y, int64_t numel, cudaStream_t stream) const {
  if (numel <= 0) return;
  PointwiseParamLayout layout;
  layout.max_rank = 1;
  layout.inputs = 1;
  layout.outputs = 1;
  const Dims d{numel};
  PointwiseLaunch L = plan_pointwise_launch(layout, vec_, {elem_}, {elem_}, {d}, d, {y}, {y});
  if (L.items == 0) return;
  KILN_CHECK(L.kernel == kPwFlat || L.kernel == kPwVec, "epilogue launch chose kernel ",
             static_cast<int>(L.kernel));
  const int64_t blocks =
      std::min<int64_t>((L.items + kPointwiseBlock - 1) / kPointwiseBlock, max_blocks_);
  void* params[] = {L.params.data()};
  KILN_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(fn_[L.kernel == kPwVec ? 1 : 0]),
                                   dim3(static_cast<unsigned>(blocks)), dim3(kPointwiseBlock),
                                   params, 0, stream));
}

}  // namespace kiln::cuda
