// A forward convolution with its fused epilogue, y = relu?(conv(x, w) + bias? + z?), as a cuDNN
// backend ("graph" API) operation graph, and the finalized execution plans cuDNN's heuristics
// propose for it.
//
// Why next to the legacy API (conv_tactic.cc): on the H100 with cuDNN 9.14, the graph API's
// engines ran float16 NHWC 1x1 convolutions about 4x faster than the best legacy algorithm at
// batch 128 (bench/cudnn_graph_probe.cu; bench/RESULTS.md), and they accept tensors whose
// channels are a slice of a wider tensor, which the legacy API refuses. The tactic times these
// plans against the legacy algorithms as whole steps and keeps the fastest.
#pragma once
#include <cudnn.h>

#include "backends/cuda/cudnn/conv_mapping.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace kiln::cuda {

struct ConvGraphSpec {
  cudnnDataType_t dtype = CUDNN_DATA_HALF;  // of x, w, y, bias and z (int8: of y, bias and z)
  // Quantized (int8): x and w are int8, the products accumulate in int32, and the epilogue first
  // multiplies by a float32 scale per output channel (the scale input, [K]):
  // y = relu?(acc * scale[k] + bias? + z?).
  bool int8 = false;
  // With int8: y is int8, the epilogue's value times a float32 scalar (the y_scale input, 1/the
  // next layer's input scale), rounded to nearest and saturated by cuDNN's conversion.
  bool requantize = false;
  // With int8 and residual: z is int8 too (a quantized residual, ConvAttrs::q_z_scale). The
  // epilogue keeps one linear chain: before z is added, the value is multiplied by the z_pre
  // input (1 / z's scale), and after the ReLU by the y_scale input (z's scale, divided by the
  // requantization scale when requantizing): y = relu((v / zs + z)) * zs, as relu commutes with
  // a positive scale.
  bool int8_residual = false;
  bool channels_last = false;
  // cuDNN's NCHW-order view (conv_mapping.h): x [N, C, spatial], w [K, C, kernel], y [N, K, out].
  std::vector<int64_t> x_dims, w_dims, y_dims;
  std::vector<int64_t> pad, stride, dilation;
  bool bias = false, residual = false, relu = false;
  // Element strides of x and y in the same NCHW order; empty: packed (channels_last decides
  // how). Set for channel slices of wider tensors (runtime/memory_plan.h's strided views).
  std::vector<int64_t> x_strides, y_strides;
  // The epilogue's float32 intermediates (never in memory) take y's strides instead of packed
  // ones: cuDNN's fusion engines may want all of an epilogue's tensors laid out alike.
  bool virtual_like_y = false;
};

// The spec's geometry (dims, pads, strides, dilations, layout) of a mapped convolution; the
// types and the epilogue are the caller's to set.
ConvGraphSpec conv_graph_geometry(const CudnnConvMapping& m);

// One finalized execution plan and the descriptors it was made from.
class ConvGraphPlan {
 public:
  ConvGraphPlan();
  ~ConvGraphPlan();
  ConvGraphPlan(const ConvGraphPlan&) = delete;
  ConvGraphPlan& operator=(const ConvGraphPlan&) = delete;

  int64_t workspace() const { return workspace_; }
  int64_t engine() const { return engine_; }
  // Its engine config's position in the heuristics' list (conv_graph_plan_at rebuilds it).
  int config() const { return config_; }
  // Runs the plan on the handle's stream; bias / z / scale are ignored when the spec has none.
  cudnnStatus_t execute(cudnnHandle_t h, const void* x, const void* w, const void* bias,
                        const void* z, void* y, void* workspace,
                        const void* scale = nullptr, const void* y_scale = nullptr,
                        const void* z_pre = nullptr) const;

 public:
  struct Descs;  // defined in conv_graph.cc only

 private:
  friend std::unique_ptr<ConvGraphPlan> finalize_plan(cudnnHandle_t, const ConvGraphSpec&,
                                                      const std::shared_ptr<Descs>&,
                                                      cudnnBackendDescriptor_t, int, int64_t);

  std::shared_ptr<Descs> graph_;  // the operation graph's descriptors, shared by its plans
  cudnnBackendDescriptor_t plan_ = nullptr;
  int64_t workspace_ = 0;
  int64_t engine_ = -1;
  int config_ = -1;
  bool bias_ = false, residual_ = false, scale_ = false, y_scale_ = false, z_pre_ = false;
};

// The execution plans for up to `max_plans` of the heuristics' engine configs (mode A, in their
// order) that finalize and need at most `workspace_limit` bytes. Empty when cuDNN refuses the
// graph. Never throws for what cuDNN does not support.
std::vector<std::unique_ptr<ConvGraphPlan>> conv_graph_plans(cudnnHandle_t h,
                                                             const ConvGraphSpec& spec,
                                                             int max_plans,
                                                             int64_t workspace_limit);

// The plan of the heuristics' `config`-th engine config (as ConvGraphPlan::config() numbers
// them), when it still finalizes within `workspace_limit` and uses engine `engine` (negative: any):
// what a tuned plan's step stored. Null otherwise (another cuDNN, another GPU).
std::unique_ptr<ConvGraphPlan> conv_graph_plan_at(cudnnHandle_t h, const ConvGraphSpec& spec,
                                                  int config, int64_t engine,
                                                  int64_t workspace_limit);

}  // namespace kiln::cuda
