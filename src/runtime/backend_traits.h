// What the passes may ask about the backend a plan is built for (PassContext::target): capability
// questions, answered from host-side knowledge alone, so that a build with the CUDA backend can
// plan for "cuda" on any machine and the pass tests run everywhere. Passes ask these questions
// and never compare a backend's name; a new backend answers them and needs no edit to a pass.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "expr/program.h"
#include "ir/graph.h"
#include "kiln/plugin.h"

namespace kiln {

class BackendTraits {
 public:
  virtual ~BackendTraits() = default;
  virtual std::string_view name() const = 0;
  // ChooseLayout: whether this 2-D convolution (constant W; the pass checked the shapes) runs
  // better channels-last (NHWC) on this backend.
  virtual bool prefers_channels_last(const Node& conv) const { return false; }
  // FusePointwise: whether one kernel of this backend runs this program with outputs of this
  // rank. A fused program past a backend's limits would run on the host or not at all, so the
  // pass does not create one.
  virtual bool runs_pointwise(const expr::Program& program, size_t rank) const { return true; }
  // MergeSiblings: whether `reader` can read, as its input `slot`, a strided channel slice (a
  // channel range of a channels-last tensor at batch > 1) in place; the kernels' accepts_strided
  // has the last word when a context plans its memory.
  virtual bool reads_strided_channel_slice(const Node& reader, size_t slot) const { return false; }
  // InsertQuantization / FoldQuantization: whether this backend runs `product` (a float Conv or
  // MatMul about to be quantized, with X of type `type` (int8/uint8, or float8e4m3fn with
  // float8 W) and zero point `x_zero`, and constant int8 W) as a quantized product on the device.
  // A product it would run on the host stays in float.
  virtual bool runs_quantized(const Node& product, int64_t x_zero, DataType type) const {
    return true;
  }
  // InsertQuantization / FoldRequantization: whether this backend runs a quantized `conv` whose
  // residual Z is int8 (ConvAttrs::q_z_scale) as fast as one whose Z is in float. Where it says
  // no, residuals stay in float (TensorRT's trade too: an int8 residual is one more rounding).
  virtual bool runs_quantized_residual(const Node& conv) const { return true; }
  // NegotiatePluginFormats: which of a plugin's implementations (PluginRuntime::runs_on) a plan
  // for this backend runs, and whose formats (PluginBuild::supports_format) it asks about.
  virtual PluginDevice plugin_device() const { return PluginDevice::kCpu; }
};

// The traits of the backend named `device` ("cpu", "cuda"), in every build; throws
// kInvalidArgument for an unknown name.
const BackendTraits& backend_traits(std::string_view device);

}  // namespace kiln
