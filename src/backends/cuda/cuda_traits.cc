// What the CUDA backend wants from the graph it will run (runtime/backend_traits.h). Compiled in
// every build, with or without the CUDA toolkit: the answers are host-side knowledge (which dtypes
// the tensor-core convolutions want, the generated pointwise kernels' limits, what cuDNN's graph
// API reads in place), so plans and pass tests for "cuda" need no GPU and no CUDA headers.
#include "backends/cuda/codegen/pointwise_codegen.h"  // header-only limits; no CUDA headers
#include "ops/conv.h"
#include "ops/epilogue.h"
#include "ops/mat_mul.h"
#include "runtime/backend_traits.h"

namespace kiln {

namespace {

// The types the generated CUDA kernels hold in registers (mirrors device_type() in
// codegen/pointwise_codegen.cc): programs over other types run on the host.
bool pointwise_device_type(DataType t) {
  switch (t) {
    case DataType::kFloat: case DataType::kFloat16: case DataType::kBFloat16:
    case DataType::kDouble: case DataType::kInt8: case DataType::kUInt8: case DataType::kInt16:
    case DataType::kUInt16: case DataType::kInt32: case DataType::kUInt32: case DataType::kInt64:
    case DataType::kUInt64: case DataType::kBool:
      return true;
    default:
      return false;
  }
}

bool half_type(DataType t) { return t == DataType::kFloat16 || t == DataType::kBFloat16; }

constexpr int64_t kMinInt8Channels = 16;

class CudaTraits : public BackendTraits {
 public:
  std::string_view name() const override { return "cuda"; }
  PluginDevice plugin_device() const override { return PluginDevice::kGpu; }

  // Tensor-core convolutions in cuDNN want NHWC for 16-bit data; float32 convolutions gain
  // nothing from it and would pay for the transposes. cuDNN's int8 engines take NHWC only
  // (cuda.cudnn_conv_int8: ungrouped, symmetric int8 X).
  bool prefers_channels_last(const Node& conv) const override {
    const Value* x = conv.in(0);
    if (!x) return false;
    const auto& a = conv.a<ConvAttrs>();
    if (a.quantized())
      return (x->dtype == DataType::kInt8 || x->dtype == DataType::kFloat8E4M3FN) &&
             a.q_x_zero == 0 && a.group == 1 && !a.transposed;
    return half_type(x->dtype);
  }

  // The generated kernels' rank and parameter block (pointers and strides per input and output)
  // are bounded; where the generator is built, it has the last word (it also rejects operand
  // type mixes).
  bool runs_pointwise(const expr::Program& p, size_t rank) const override {
    if (rank > static_cast<size_t>(cuda::kPointwiseMaxRank)) return false;
    cuda::PointwiseParamLayout layout;
    layout.max_rank = std::max<size_t>(1, rank);
    layout.inputs = p.input_types.size();
    layout.outputs = p.outputs.size();
    if (layout.bytes() > cuda::kPointwiseMaxParamBytes) return false;
    for (DataType t : p.input_types)
      if (!pointwise_device_type(t)) return false;
    for (const expr::Instr& in : p.code)
      if (!pointwise_device_type(in.dtype)) return false;
#ifdef KILN_HAVE_CUDA
    if (!cuda::pointwise_codegen_unsupported(p, static_cast<int>(rank)).empty()) return false;
#endif
    return true;
  }

  // cuda.cudnn_conv_int8 runs 2-D, ungrouped, forward convolutions of symmetric int8 X with
  // channels in multiples of 4, of which kiln quantizes those with at least 16 input channels: a
  // network's stem (3 channels, padded to 4) took 5.6 ms in cuDNN's int8 engines against about
  // 0.3 ms in float16 (ResNet-50 at batch 128 on the H100, bench/RESULTS.md), so it stays in
  // float. cuda.int8_matmul products of symmetric int8 A and a constant [K, N] (or [N, K]) W with
  // K and N multiples of 4.
  // No CUDA tactic takes float8 operands yet (the builder refuses --fp8 for the GPU): float8
  // products would run on the host.
  bool runs_quantized(const Node& p, int64_t x_zero, DataType type) const override {
    if (x_zero != 0 || (type != DataType::kInt8 && type != DataType::kUInt8)) return false;
    const int64_t align = 4;
    if (p.op() == "MatMul") {
      const auto& m = p.a<MatMulAttrs>();
      const Value* w = p.in(1);
      if (m.trans_a || has_epilogue_program(m.epilogue) || !w || !w->is_constant() ||
          w->data.rank() != 2)
        return false;
      return w->data.dim(0) % align == 0 && w->data.dim(1) % align == 0;
    }
    if (p.op() != "Conv") return false;
    const auto& a = p.a<ConvAttrs>();
    const Value* x = p.in(0);
    const Value* w = p.in(1);
    if (a.transposed || a.group != 1 || has_epilogue_program(a.epilogue) || !x || !w ||
        !w->shape.rank_known || w->shape.rank() != 4 || !x->shape.rank_known ||
        x->shape.rank() != 4)
      return false;
    const Dim k = w->shape[0], c = w->shape[1];
    return k.known() && c.known() && k.value % align == 0 && c.value % align == 0 &&
           c.value >= kMinInt8Channels;
  }

  // cuda.cudnn_conv reads a strided X through cuDNN graph-API plans: ungrouped, not transposed,
  // channels-last, 16-bit, without an epilogue program (its kernel would read X densely).
  bool reads_strided_channel_slice(const Node& r, size_t slot) const override {
    if (r.op() != "Conv" || slot != 0) return false;
    const auto& a = r.a<ConvAttrs>();
    const Value* x = r.in(0);
    return x && half_type(x->dtype) && a.channels_last && a.group == 1 && !a.transposed &&
           !has_epilogue_program(a.epilogue);
  }
};

}  // namespace

const BackendTraits& cuda_backend_traits() {
  static const CudaTraits t;
  return t;
}

}  // namespace kiln
