// cuda.host_fallback: runs a node's reference compute on the host, inside a GPU plan. It waits for
// the stream, copies the inputs down, computes, and copies the outputs back up. Slow by design:
// it exists so that every model that runs on the CPU also runs in a GPU plan where an op has no
// device kernel (today only the ops whose output size depends on the data: NonZero, Unique,
// NonMaxSuppression, Compress). `kiln build`, `kiln inspect` and `kiln bench` count the steps that
// use it (Tactic::computes_on_host). Being last in the tactic list, it is never preferred over a
// device kernel.
#include <vector>

#include "backends/cuda/cuda_common.h"

namespace kiln {
namespace cuda {
namespace {

class HostFallbackKernel : public Kernel {
 public:
  bool capturable() const override { return false; }
  void enqueue(const LaunchArgs& a) override {
    cudaStream_t s = stream_of(a);
    const Node& n = a.node;
    std::vector<Tensor> ins(a.inputs.size());
    for (size_t i = 0; i < a.inputs.size(); ++i) {
      const DeviceTensor& d = a.inputs[i];
      if (!d.defined()) continue;
      ins[i] = Tensor(d.dtype, d.dims);
      if (d.nbytes())
        KILN_CUDA_CHECK(cudaMemcpyAsync(ins[i].raw(), d.data, d.nbytes(), cudaMemcpyDeviceToHost, s));
    }
    KILN_CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<Tensor> outs(a.outputs.size());
    for (size_t k = 0; k < a.outputs.size(); ++k)
      if (a.outputs[k].defined()) outs[k] = Tensor(a.outputs[k].dtype, a.outputs[k].dims);
    n.def->compute(ComputeArgs{n, ins, outs});
    for (size_t k = 0; k < a.outputs.size(); ++k) {
      KILN_CHECK(outs[k].defined(), n.label(), " did not produce output ", k);
      if (!a.outputs[k].defined()) a.allocate_output(k, outs[k].dims());
      DeviceTensor& d = a.outputs[k];
      KILN_CHECK(d.nbytes() == outs[k].nbytes(), "output ", k, " of ", n.label(), " is ",
                 outs[k].nbytes(), " bytes but ", d.nbytes(), " were allocated");
      if (d.nbytes())
        KILN_CUDA_CHECK(cudaMemcpyAsync(d.data, outs[k].raw(), d.nbytes(), cudaMemcpyHostToDevice, s));
    }
    // The host tensors must outlive the copies.
    KILN_CUDA_CHECK(cudaStreamSynchronize(s));
  }
};

class HostFallbackTactic : public Tactic {
 public:
  std::string_view id() const override { return "cuda.host_fallback"; }
  bool computes_on_host() const override { return true; }
  Status supports(const Node& node) const override {
    if (!node.def || !node.def->compute) return unsupported("op has no reference compute");
    return Status::ok();
  }
  std::unique_ptr<Kernel> instantiate(const Node&, std::string_view) const override {
    return std::make_unique<HostFallbackKernel>();
  }
};

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_host_fallback() {
  static const cuda::HostFallbackTactic t;
  return t;
}

}  // namespace kiln
