// Graph passes. A pass is a struct with `std::string_view name() const` and
// `void run(Graph&, PassContext&) const`; its header comment states what it expects and
// guarantees. passes/pipeline.cc is the only place where passes are ordered.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "ir/graph.h"

namespace kiln {

struct PassContext {
  int opt_level = 1;
  std::string device = "cpu";   // the backend the plan is built for ("cpu", "cuda")
  bool fp16 = false;            // BuildOptions::fp16: float32 activations may be stored as float16
  bool tf32 = false;            // BuildOptions::tf32: Conv/MatMul may use TF32 tensor cores
  // Tests only: ChooseLayout treats every 2-D convolution as preferring NHWC, whatever the
  // device and dtype, so that the layout rewrite can be checked on the CPU.
  bool force_channels_last = false;
  std::function<void(const std::string&)> progress;
  std::map<std::string, int64_t> stats;   // "fold_constants.folded" -> 12
  void report(const std::string& line) const;  // to the progress callback and the info log
};

// Runs the pipeline of passes for ctx.opt_level over g. After every pass the manager runs dead
// node elimination and the verifier, and prints the graph when KILN_DUMP_AFTER names the pass.
void run_pipeline(Graph& g, PassContext& ctx);

struct FoldConstants {
  // Expects: a verified graph whose input shapes are as the build fixes them.
  // Guarantees: shapes re-inferred in order; every node whose inputs are all constant (and whose
  // outputs are at most kMaxFoldBytes) is computed with the reference and replaced by constant
  // values; Shape/Size of a fully known shape fold even when the data is not constant.
  static constexpr size_t kMaxFoldBytes = 64 << 20;
  std::string_view name() const { return "fold_constants"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct EliminateIdentity {
  // Expects: shapes inferred. Guarantees: Pointwise nodes that copy their input unchanged (same
  // dtype and shape) are bypassed, unless that would make a graph output alias an input or
  // another output.
  std::string_view name() const { return "eliminate_identity"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct EliminateDead {
  // Guarantees: no node whose outputs are all unused (and not graph outputs) remains; values
  // nothing refers to are dropped.
  std::string_view name() const { return "eliminate_dead"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct FuseConvEpilogue {
  // Expects: shapes inferred. Guarantees: a Conv (not transposed, float type, no epilogue yet)
  // absorbs the chain that follows it when every intermediate value has that one consumer and is
  // not a graph output, in this order: an Add of a per-channel constant ([M,1,..], [1,M,1,..])
  // folds into B; an Add of another tensor of the output's shape and dtype becomes the residual
  // input 3 (Z); a Relu becomes activation "relu". The fused Conv produces the chain's last value
  // (same name), and the node order stays topological.
  std::string_view name() const { return "fuse_conv_epilogue"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct AssignPrecision {
  // Runs when ctx.fp16 (any device, so the CPU reference can check it) or ctx.tf32.
  // Expects: shapes inferred. Guarantees (fp16): float32 tensors computed by ops whose fp16 path
  // keeps accuracy (Conv, MatMul, Pool, Normalization, Softmax, Resize, mean/max/min/arg Reduce)
  // become float16, and layout-agnostic ops (movement, Pointwise) follow their data inputs; their
  // float32 constant operands are converted (duplicated when an fp32 consumer also reads them,
  // saturated to the float16 range). Graph inputs and outputs keep their types; Cast Pointwise
  // nodes sit at the edges and before consumers that stay float32. Pointwise programs read float16
  // inputs, cast them to float32, run their float32 math unchanged and cast the results to
  // float16. (tf32) Conv and MatMul get allow_tf32.
  std::string_view name() const { return "assign_precision"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct ChooseLayout {
  // Expects: shapes inferred; runs after AssignPrecision (it keys on the final dtypes).
  // Guarantees: 2-D convolutions that prefer NHWC (conv_prefers_channels_last) become
  // channels_last, together with the Pools and Pointwise nodes fed only by such a region; 4-D
  // values inside the region are stored NHWC; Transpose nodes appear only at the region's edges
  // (one per value crossing it); per-channel constants of region Pointwise nodes are permuted at
  // build time. Graph inputs and outputs keep their layouts and names.
  std::string_view name() const { return "choose_layout"; }
  void run(Graph& g, PassContext& ctx) const;
};

// Whether ChooseLayout puts this Conv in NHWC: a 2-D convolution whose data is float16/bfloat16 on
// the CUDA backend (what tensor cores want), or any 2-D convolution when ctx.force_channels_last.
bool conv_prefers_channels_last(const Node& conv, const PassContext& ctx);

}  // namespace kiln
