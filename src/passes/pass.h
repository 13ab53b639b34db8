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
  // Expects: shapes inferred. Guarantees: a Conv (float type, channels-first, no epilogue yet)
  // absorbs the chain that follows it when every intermediate value has that one consumer and is
  // not a graph output, in this order: an Add of a per-channel constant ([M,1,..], [1,M,1,..])
  // folds into B; an Add of another tensor of the output's shape and dtype becomes the residual
  // input 3 (Z); a Relu becomes activation "relu". The fused Conv produces the chain's last value
  // (same name), and the node order stays topological.
  std::string_view name() const { return "fuse_conv_epilogue"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct AssignPrecision {
  // Runs when ctx.fp16 or ctx.tf32, on any device (the CPU reference runs the result) and at every
  // opt level (precision is what the caller asked for). Expects: shapes inferred.
  // Guarantees (fp16): float32 tensors computed by ops whose float16 path keeps accuracy (Conv,
  // MatMul, Pool, Normalization's X, Softmax, Resize's X, mean/max/min/arg Reduce) become
  // float16; movement ops (Reshape, Transpose, Slice, Gather, Tile, Expand, Pad, Concat) follow
  // their data input; Pointwise nodes write float16 when they read a float tensor (not float math
  // on integers or constants only) and read float16 inputs by casting them to float32 inside the
  // program, whose math stays float32. Float32 constant operands of converted ops are converted
  // (a copy when a float32 consumer also reads them; finite values saturate to the float16
  // range). Graph inputs and outputs keep their types and names: Cast Pointwise nodes (as the
  // importer builds them) sit at the edges, unless a Pointwise node there does the cast itself,
  // and in front of consumers that stay float32.
  // (tf32) Conv and MatMul nodes still in float32 get allow_tf32.
  std::string_view name() const { return "assign_precision"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct ChooseLayout {
  // Expects: shapes inferred; runs after AssignPrecision (it keys on the final dtypes).
  // Guarantees: 2-D convolutions that prefer NHWC (conv_prefers_channels_last) become
  // channels_last, together with the Pools, Concats (axis remapped) and Pointwise nodes fed by
  // such a region (other Pointwise operands: constants, or 4-D tensors smaller than the output).
  // 4-D values inside the region are stored NHWC; Transpose nodes appear only at the region's
  // edges (one per value crossing it); constants of region nodes are permuted at build time.
  // Graph inputs and outputs keep their layouts and names.
  std::string_view name() const { return "choose_layout"; }
  void run(Graph& g, PassContext& ctx) const;
};

// Whether ChooseLayout puts this Conv in NHWC: a 2-D convolution with constant weights whose data
// is float16/bfloat16 on the CUDA backend (what tensor cores want), or any such 2-D convolution
// when ctx.force_channels_last.
bool conv_prefers_channels_last(const Node& conv, const PassContext& ctx);

}  // namespace kiln
