// Graph passes. A pass is a struct with `std::string_view name() const` and
// `void run(Graph&, PassContext&) const`; its header comment states what it expects and
// guarantees. passes/pipeline.cc is the only place where passes are ordered.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "ir/graph.h"
#include "runtime/backend_traits.h"

namespace kiln {

struct PassContext {
  int opt_level = 1;
  // The backend the plan is built for: passes ask it what it can do (runtime/backend_traits.h)
  // and never compare its name.
  const BackendTraits* target = &backend_traits("cpu");
  bool fp16 = false;            // BuildOptions::fp16: float32 activations may be stored as float16
  bool tf32 = false;            // BuildOptions::tf32: Conv/MatMul may use TF32 tensor cores
  // Tests only: ChooseLayout treats every 2-D convolution as preferring NHWC, whatever the
  // target and dtype, so that the layout rewrite can be checked on the CPU.
  bool force_channels_last = false;
  // INT8 (BuildOptions::int8): calibrated scales of the tensors InsertQuantization quantizes
  // (null: nothing inserted; explicit Q/DQ in the model still folds), and layer name globs with
  // the precision asked for them (--layer-precision; a layer not "int8" stays in float).
  const std::map<std::string, double>* activation_scales = nullptr;
  // The type InsertQuantization quantizes to: int8 (--int8), or float8e4m3fn (--fp8: scales
  // are amax / 448, weights float8 per output channel).
  DataType quantized_type = DataType::kInt8;
  std::vector<std::pair<std::string, std::string>> layer_precisions;
  // Calibration: run_pipeline stops where InsertQuantization would run, so that the graph's
  // tensors are the ones scales are wanted for.
  bool stop_before_quantization = false;
  std::function<void(const std::string&)> progress;
  std::map<std::string, int64_t> stats;   // "fold_constants.folded" -> 12
  void report(const std::string& line) const;  // to the progress callback and the info log
};

// The precision --layer-precision asks for `n` ("fp32", "fp16", "int8", "fp8"): the last pattern (a
// shell glob) that matches its name; null when none does.
const std::string* layer_precision(const Node& n, const PassContext& ctx);

// What the built graph gives the layers --layer-precision names: one line per layer whose
// precision differs from the one asked for, and per pattern that names no node (by name or
// origin). BuildOptions::precision_constraints decides whether these are warnings or an error.
std::vector<std::string> unmet_layer_precisions(const Graph& g, const PassContext& ctx);

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

struct GatherToSlice {
  // Expects: shapes inferred, constants folded. Guarantees: a Gather whose constant indices (a
  // scalar or a 1-D list) name one increasing run of consecutive positions along its axis becomes
  // a Slice of that run (and, for a scalar index, a Reshape that drops the axis): both are views
  // where the run is contiguous in memory (runtime/memory_plan.h), where the Gather copied. The
  // q/k/v split of a fused attention projection (qkv[0], qkv[1], qkv[2]) and a class token x[:, 0]
  // are such Gathers.
  std::string_view name() const { return "gather_to_slice"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct EliminateDead {
  // Guarantees: no node whose outputs are all unused (and not graph outputs) remains; values
  // nothing refers to are dropped.
  std::string_view name() const { return "eliminate_dead"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct FoldBatchNorm {
  // Expects: shapes inferred. Guarantees: a Conv (float32/float16/bfloat16/double, channels-first,
  // no residual or activation yet, constant W and B if any) or a MatMul (constant 2-D B, rank-2
  // output) absorbs the chain after it of batch Normalizations with constant per-channel
  // parameters and Pointwise Mul/Add of per-channel constants ([M,1,..], [1,M,1,..], scalar;
  // channel = axis 1), when every intermediate value has that one consumer and is not a graph
  // output and the chain holds at least one scaling (a batch norm or a Mul). The weights become
  // new constants W[m] * s[m] (computed in double, rounded once); a Conv's B becomes
  // B * s + shift, a MatMul's shift a Pointwise Add of an [N] constant after it. The producer (or
  // that Add) produces the chain's last value (same name). Existing constants are never modified.
  std::string_view name() const { return "fold_batch_norm"; }
  void run(Graph& g, PassContext& ctx) const;
};

// The products InsertQuantization quantizes (and calibration measures the input 0 of): Conv
// (not transposed, channels-first) and MatMul (2-D constant B, alpha 1) with a float32 computed
// input 0 and a float32 constant W, whose name no --layer-precision pattern keeps in float.
std::vector<Node*> quantization_targets(Graph& g, const PassContext& ctx);

// The node computes input 0 + input 1 in their common type (a Pointwise Add that FuseEpilogue
// can fuse as a residual); returns the slot of the operand that is not `v`, or -1 when the node
// is no such Add or adds v to itself.
int add_other_operand(const Node& n, const Value* v);

struct InsertQuantization {
  // Runs when ctx.activation_scales is set (post-training INT8). Expects: shapes inferred,
  // BatchNorm folded (the weights are final). Guarantees: each target's input 0 x with a scale
  // is replaced by DequantizeLinear(QuantizeLinear(x, s, 0), s, 0) (int8, symmetric; one pair per
  // tensor); targets without a scale stay in float and are reported. A residual Add of a target
  // Conv's only output and such an x (a ResNet block's identity path) reads the same
  // DequantizeLinear where the target says it reads an int8 residual (as TensorRT's implicit
  // INT8 quantizes residuals): FoldRequantization then folds it into the Conv.
  std::string_view name() const { return "insert_quantization"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct PropagateDequantize {
  // Expects: shapes inferred. Guarantees, as TensorRT propagates explicit quantization: a
  // per-tensor DequantizeLinear (constant scale and zero point) feeding a data-movement op that
  // commutes with it (Reshape, Transpose, Slice, Gather of its data, Expand, Tile, max Pool,
  // constant Pad of zeros with zero point 0, and Concat of inputs dequantized alike) moves past
  // it: the op moves the integers and one DequantizeLinear follows; and QuantizeLinear(
  // DequantizeLinear(q)) with the same scale, zero point and type is q itself. Run to a fixed
  // point, the DequantizeLinear nodes of a QAT model sit right before the products that fold them.
  std::string_view name() const { return "propagate_dequantize"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct FoldQuantization {
  // Expects: shapes inferred. Guarantees: a Conv or MatMul (as quantization_targets, any input
  // 0) whose input 0 is a per-tensor DequantizeLinear of an int8/uint8 tensor with constant scale
  // and zero point, and whose W is a float32 constant (quantized here, symmetric per output
  // channel, scale max|w|/127) or a DequantizeLinear of a constant int8 tensor with zero points 0
  // and per-tensor or per-output-channel scales, becomes a quantized node (ConvAttrs q_*) reading
  // the integer tensor and int8 weights; the DequantizeLinear nodes die with their last use.
  std::string_view name() const { return "fold_quantization"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct FoldRequantization {
  // Expects: shapes inferred, epilogues fused. Guarantees: a quantized Conv whose residual Z is a
  // per-tensor DequantizeLinear of int8 with a constant positive scale and zero point 0 reads the
  // int8 tensor (ConvAttrs::q_z_scale), where the target runs such a residual. Then a quantized
  // Conv (no epilogue program, Y not a graph output) whose only reader is a per-tensor
  // QuantizeLinear to int8 with a constant positive scale and zero point 0 writes that int8
  // tensor itself (ConvAttrs::q_y_scale): the next layer's input never exists in floating point.
  // The QuantizeLinear is removed.
  std::string_view name() const { return "fold_requantization"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct FuseEpilogue {
  // Expects: shapes inferred. Guarantees: a Conv (float type, channels-first, no epilogue yet) or
  // a MatMul (float type, constant B of rank >= 2, no epilogue yet) absorbs the chain that follows
  // it when every intermediate value has that one consumer and is not a graph output, in this
  // order: an Add of a constant that varies only along the output channels (Conv: [M,1,..],
  // [1,M,1,..]; MatMul: [N], [1,..,N], along the last axis) folds into the bias input 2; an Add of
  // another tensor of the output's shape and dtype becomes the residual input 3 (Z); a Relu
  // becomes activation "relu". With ctx.fp16 a MatMul takes the Relu only (AssignPrecision does
  // not switch a MatMul's inputs 2 and 3). The fused node produces the chain's last value (same
  // name), and the node order stays topological.
  std::string_view name() const { return "fuse_epilogue"; }
  void run(Graph& g, PassContext& ctx) const;
};
// The pass's name before it fused MatMul epilogues too; kept for tests written against it.
using FuseConvEpilogue = FuseEpilogue;

struct FuseAttention {
  // Expects: shapes inferred, constants folded, identities removed. Guarantees: the core of
  // scaled dot-product attention, MatMul(Q, Kᵀ) -> scalar scales -> at most one mask step (an Add
  // of a tensor, or a Where(bool, scores, c <= -1e4) that keeps the scores where true) -> scalar
  // scales (only before an additive mask) -> Softmax(last axis) -> [same-type Cast] -> MatMul(., V), with scalar
  // scales (Mul/Div by a positive constant) also on Q, on Kᵀ and on K before its Transpose, becomes
  // one Attention node (ops/attention.h) when every intermediate value has its one reader and is
  // no graph output, all of one float type, rank 4 (or rank 3, bmm form: unsqueezed to batch 1 and
  // squeezed back by Reshape views). Kᵀ may come from a Transpose (any perm; one swapping the last
  // two dims is dropped, another becomes a Transpose of its input) or trans_b; otherwise a
  // Transpose of B is inserted. K and V repeated to the query heads by Reshape(Expand(Unsqueeze))
  // (Llama's repeat_kv) are read before the repetition (grouped-query). The scale attribute is
  // the product of every factor absorbed. The Attention node writes the value MatMul's output
  // (same name). The Reshape/Transpose head splits around it stay. A Where mask differs from the
  // unfused graph only in rows that mask every key (zeros instead of an average of V).
  // stats["fuse_attention.fused"], ["fuse_attention.grouped"].
  std::string_view name() const { return "fuse_attention"; }
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

struct NegotiatePluginFormats {
  // Runs at every opt level, after AssignPrecision (which leaves Plugin nodes' operands in the
  // types their producers write). Expects: shapes inferred, every plugin registered. Guarantees:
  // each Plugin node's formats are ones its plugin accepts on the target's plugin device
  // (BackendTraits::plugin_device), with Casts and Transposes inserted in front of inputs and
  // behind outputs where they differ (readers keep their values, types and names);
  // PluginAttrs::layouts records channels-last positions. A plugin without an implementation for
  // that device, or accepting no format, is a kUnsupported error naming the layer and the plugin.
  std::string_view name() const { return "negotiate_plugin_formats"; }
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

struct FusePointwise {
  // Expects: shapes inferred; runs after AssignPrecision and ChooseLayout (it fuses their Casts and
  // the element-wise ops around their Transposes). Guarantees: a Pointwise node whose outputs are
  // read by Pointwise nodes is inlined into them (one program, each input Value loaded once,
  // broadcasting composed) when the shapes provably broadcast: into its only consumer; into all of
  // several consumers when it is cheap to recompute and not a graph output; otherwise into one
  // consumer of its shape whose merged node also writes the outputs others still read (a
  // multi-output program). Results are bit-identical on the reference (every rounding of a stored
  // value is kept); merged programs stay within what the target runs as one kernel
  // (BackendTraits::runs_pointwise: the CUDA code generator's limits). Consumers keep
  // their names and output names; the order stays topological; absorbed nodes are recorded.
  std::string_view name() const { return "fuse_pointwise"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct MergeSiblings {
  // Expects: shapes inferred; runs after AssignPrecision and ChooseLayout (it keys on the final
  // dtypes and on the layout the values are stored in). Guarantees: Conv nodes reading the same X
  // (float type, constant W, group 1, not transposed, no epilogue program, no residual, constant
  // or no bias, same dtype, kernel shape, strides, pads, dilations, auto_pad, channels_last,
  // activation and allow_tf32), and MatMul nodes reading the same A (constant 2-D B with the same
  // K, same attributes, constant or no bias, no residual, no epilogue program), become one node
  // with the weights and biases (zeros where a sibling had none) concatenated along the output
  // channels, followed by one Slice (constant starts/ends/axes, step 1) per original output that
  // writes that output Value (names and consumers unchanged). Only where every Slice is a view for
  // the memory planner at the graph's fully known shapes: the dims before the channel axis
  // (NCHW: N; channels-last, whose values hold physical NHWC dims: N*H*W; MatMul: all but the
  // last) have product 1, and each sibling starts at a 16-byte offset (zero channels fill the
  // gaps). Where the Slices would be strided (the product is not 1), only the siblings that are
  // channels-last Convs whose every reader the target says reads a strided channel slice in
  // place (BackendTraits::reads_strided_channel_slice: on CUDA, ungrouped channels-last
  // float16/bfloat16 Convs reading it as X, through cuDNN graph-API plans); groups with fewer
  // than two such siblings are left alone and counted in
  // stats["merge_siblings.strided_skipped"]. Graph outputs, and values whose only reader is a
  // Concat (the planner writes those into the Concat already; counted in
  // stats["merge_siblings.concat_kept"] when they had a sibling), are never sliced. The merged node
  // takes the first sibling's place and name and absorbs the others' origins.
  std::string_view name() const { return "merge_siblings"; }
  void run(Graph& g, PassContext& ctx) const;
};

// Whether ChooseLayout puts this Conv in NHWC: a 2-D convolution with constant weights that the
// target prefers channels-last (BackendTraits::prefers_channels_last: on CUDA, float16/bfloat16
// data, what tensor cores want), or any such 2-D convolution when ctx.force_channels_last.
bool conv_prefers_channels_last(const Node& conv, const PassContext& ctx);

}  // namespace kiln
