// kiln public API: building a plan from an ONNX model or a Network, and plan files.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/calibrator.h"
#include "kiln/status.h"
#include "kiln/types.h"

namespace kiln {

class Network;
struct PlanData;  // internal

// Description of one engine input or output. dims[i] is -1 for a dynamic dimension, whose name
// (e.g. "batch") is in dim_names[i].
struct TensorDesc {
  std::string name;
  DataType dtype = DataType::kUndefined;
  std::vector<int64_t> dims;
  std::vector<std::string> dim_names;
  std::string str() const;  // "image: float32[batch,1,28,28]"
};

// An optimization profile, as TensorRT's: for each named input, the smallest and the largest
// shape a context may run with this profile, and the shape to optimize for. Dims whose min and
// max differ stay dynamic in the plan; any shape inside the bounds runs without rebuilding, and a
// shape outside them is an error that names the bounds. Every dynamic input must be in every
// profile; fixed inputs may be left out.
struct OptimizationProfile {
  std::map<std::string, std::vector<int64_t>> min, opt, max;
};

struct BuildOptions {
  // Target device: "cpu" or "cuda" ("" = the GPU when there is one, else the CPU).
  std::string device;
  // Optimisation level (docs/optimizer.md):
  //   0  no optimising rewrites (the precision asked for by fp16/tf32 still applies), heuristics;
  //   1  every rewrite (folding, fusion, layout, sibling merging), tactics chosen by heuristics,
  //      nothing timed: the fastest builds, and plan bytes that depend on nothing but the inputs;
  //   2  (default) as 1, and on a GPU the one autotuner times the candidates of each step's
  //      tactic (algorithms, engine configs, launch variants) and keeps the fastest;
  //   3  as 2, on every device (CPU tactics too), and across every tactic that supports a step.
  int opt_level = 2;
  // The timing cache file (`--timing-cache FILE`): read before tuning, extended and written
  // after. A corrupt, truncated or foreign cache (another GPU or library versions) is reported,
  // ignored and rewritten. The same model, options and cache give the same plan bytes.
  std::string timing_cache;
  // The most device workspace (scratch memory) one step may use, in MiB (`--workspace MiB`);
  // 0 leaves each tactic its own bound (cuDNN convolutions 512 MiB, cuBLASLt 32 MiB). Library
  // algorithms that need more are not considered, at build time nor at run time (the bound is
  // stored in the plan's steps). Every context holds one workspace, the largest any step needs.
  int64_t max_workspace_mib = 0;
  // Precision. FP32 by default (no TF32). fp16: activations and weights of the ops that support it
  // are stored in float16 and accumulated in float32; graph inputs and outputs keep their types.
  bool fp16 = false;
  // Allows TF32 tensor-core math for float32 convolutions and matrix products (GPU only).
  bool tf32 = false;
  // INT8 (docs/quantization.md). A model with QuantizeLinear/DequantizeLinear nodes (quantization-
  // aware training) is quantized as its nodes say, with or without this flag. With it, the
  // convolutions and linear layers of a float model are quantized too (post-training): int8
  // inputs with calibrated per-tensor scales, int8 weights with per-output-channel scales,
  // exact integer accumulation, float outputs. Scales come from the calibration cache when it was
  // made for this model and algorithm, else from calibrating on `calibrator` (or the folder
  // `calib_dir`), after which the cache is written.
  bool int8 = false;
  // FP8 (trtexec's --fp8): as int8, with float8 E4M3 activations and weights (scale amax / 448).
  // Calibrates with min-max (amax) unless calib_algo asks for percentile; its cache is not an
  // int8 one. With int8 as well, fp8 wins for the layers both could quantize. CPU plans only in
  // this version: a GPU build is refused (no CUDA float8 tactic yet; compute capability 8.9 or
  // newer will be needed).
  bool fp8 = false;
  std::shared_ptr<Calibrator> calibrator;
  std::string calib_dir;        // `--calib DIR`: .npy (one input) or .npz batches
  std::string calib_algo = "entropy";  // entropy (TensorRT's default) | percentile | minmax
  double calib_percentile = 99.99;     // for percentile
  std::string calib_cache;      // `--calib-cache FILE`
  // Per-layer precision (`--layer-precision NAME:fp32|fp16|int8|fp8`): the Conv/MatMul layers whose
  // name matches the glob take that precision; with int8, a layer given fp32 or fp16 stays in
  // floating point. The last matching pattern wins.
  std::vector<std::pair<std::string, std::string>> layer_precisions;
  // `--precision-constraints` (trtexec's): "prefer" (a layer that cannot run in the precision
  // asked for runs in another, with a warning naming it) or "obey" (that is a build error). A
  // pattern that names no layer is warned about, or an error, the same way. fp32 keeps a layer
  // in strict float32 (no float16, no TF32); fp16 puts a layer in float16 even without `fp16`.
  std::string precision_constraints = "prefer";
  // Model tensors to make plan outputs as well (polygraphy's "mark outputs"), for debugging
  // accuracy: their values come back from run() by name. "*" marks every tensor a node computes.
  // Marked tensors cannot be fused away, so the plan is less optimized than without them.
  std::vector<std::string> mark_outputs;
  // Tactic ids the builder must not choose ("cuda.recurrent"): to compare an implementation with
  // the next one that supports the node (e.g. a device kernel with the host fallback), or to work
  // around one. An id that the target backend does not have is an error.
  std::vector<std::string> excluded_tactics;
  // Fixes the shapes of named inputs (overrides the model's dims; may fix symbolic ones).
  std::map<std::string, std::vector<int64_t>> input_shapes;
  // Optimization profiles (`--min-shapes/--opt-shapes/--max-shapes`): a context selects one
  // (ExecutionContext::set_optimization_profile, default 0). An input may not be both in
  // input_shapes and in a profile.
  std::vector<OptimizationProfile> profiles;
  // Called with progress lines during long builds ("[3/7] fold constants: 112 nodes folded").
  std::function<void(const std::string&)> progress;
};

// One step of a plan as `kiln inspect` shows it (Plan::steps()).
struct PlanStep {
  size_t index = 0;       // position in execution order
  std::string name, op, tactic;
  std::string precision;  // dtype of the first float output ("float16"); else the first output's
  std::string layout;     // "NHWC" (channels-last step), "NCHW" (other rank-4 float), or "-"
  // The imported (ONNX) nodes this step computes: several when passes fused nodes into it.
  std::vector<std::string> origins;
  std::string inputs, outputs;  // "x:float32[1,3,224,224], w:float32[8,3,3,3]=const"
  // A step of a GPU plan that computes on the host (its op has no device kernel for this node:
  // the host fallback copies the inputs down, runs the reference and copies the outputs up).
  bool on_host = false;
};

// A built, serialisable engine description.
class Plan {
 public:
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  Status save(const std::string& path) const;
  std::string serialize() const;
  // The reader treats the file as untrusted: every size, offset and checksum is checked.
  static Status load(const std::string& path, std::shared_ptr<Plan>& out);
  static Status deserialize(std::string_view bytes, std::shared_ptr<Plan>& out);

  std::vector<TensorDesc> inputs() const;
  std::vector<TensorDesc> outputs() const;
  std::string device() const;
  size_t num_steps() const;
  // Human-readable summary: builder versions, inputs/outputs, steps with their tactics.
  std::string describe() const;
  // The steps in execution order, with what `kiln inspect` shows of each.
  std::vector<PlanStep> steps() const;
  // How many steps of a device plan compute on the host (PlanStep::on_host); 0 for CPU plans.
  size_t num_host_steps() const;
  // The plan's optimization profiles (empty when it was built without any).
  const std::vector<OptimizationProfile>& profiles() const;

  const PlanData& data() const { return *data_; }  // internal

 private:
  friend class Builder;
  friend struct PlanAccess;
  explicit Plan(std::unique_ptr<PlanData> d);
  std::unique_ptr<PlanData> data_;
};

class Builder {
 public:
  explicit Builder(BuildOptions options = {});
  Status build_from_onnx(const std::string& model_path, std::shared_ptr<Plan>& out) const;
  Status build_from_onnx_bytes(std::string_view bytes, std::shared_ptr<Plan>& out) const;
  Status build(const Network& network, std::shared_ptr<Plan>& out) const;

 private:
  BuildOptions options_;
};

// Model inspection without building: inputs, outputs, op histogram, unsupported nodes.
struct ModelInfo {
  std::string producer;
  int64_t opset = 0;
  std::vector<TensorDesc> inputs;
  std::vector<TensorDesc> outputs;
  std::map<std::string, int> onnx_op_histogram;
  std::vector<std::string> unsupported;  // "node 'x' op Foo (opset 13): reason"
  size_t num_nodes = 0;
  size_t num_weights = 0;
  size_t weight_bytes = 0;
};
Status inspect_onnx(const std::string& model_path, ModelInfo& out);

std::string version();

}  // namespace kiln
