// kiln public API: defining a network layer by layer, without a model file.
//
//   kiln::Network net;
//   auto x = net.add_input("image", kiln::DataType::kFloat, {-1, 1, 28, 28});
//   auto y = net.add_conv(x, weights, bias, {.kernel = {3, 3}, .pads = {1, 1, 1, 1}});
//   y = net.add_activation(y, kiln::Activation::kRelu);
//   net.mark_output(y, "logits");
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kiln/plugin.h"
#include "kiln/types.h"

namespace kiln {

class Graph;

enum class Activation { kRelu, kSigmoid, kTanh, kLeakyRelu, kClip, kGelu, kIdentity };
enum class ElementwiseOp { kAdd, kSub, kMul, kDiv, kMax, kMin, kPow };
enum class PoolKind { kMax, kAverage };
enum class ReduceKind { kSum, kMean, kMax, kMin };

struct ConvParams {
  std::vector<int64_t> strides;    // default 1 per spatial dim
  std::vector<int64_t> pads;       // begin..., end...; default 0
  std::vector<int64_t> dilations;  // default 1
  int64_t groups = 1;
};

struct PoolParams {
  PoolKind kind = PoolKind::kMax;
  std::vector<int64_t> kernel;     // empty = global pooling
  std::vector<int64_t> strides;
  std::vector<int64_t> pads;
  bool count_include_pad = false;
};

class Network {
 public:
  // A handle to a tensor in the network.
  struct Tensor_ { int id = -1; };
  using Ref = Tensor_;

  Network();
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // dims: -1 marks a dynamic dimension (named "<input>_dim<i>").
  Ref add_input(const std::string& name, DataType dtype, const std::vector<int64_t>& dims);
  Ref add_constant(const Tensor& value);
  // weights: [out_channels, in_channels/groups, k...]; bias may be an undefined Tensor.
  Ref add_conv(Ref x, const Tensor& weights, const Tensor& bias, const ConvParams& p = {});
  Ref add_matmul(Ref a, Ref b, bool transpose_a = false, bool transpose_b = false);
  // y = x · weightsᵀ + bias (weights [out, in]), as in a fully connected layer.
  Ref add_fully_connected(Ref x, const Tensor& weights, const Tensor& bias);
  Ref add_activation(Ref x, Activation kind, double alpha = 0, double beta = 0);
  Ref add_elementwise(Ref a, Ref b, ElementwiseOp op);
  Ref add_pool(Ref x, const PoolParams& p);
  Ref add_batch_norm(Ref x, const Tensor& scale, const Tensor& bias, const Tensor& mean,
                     const Tensor& var, double epsilon = 1e-5);
  Ref add_softmax(Ref x, int64_t axis = -1);
  Ref add_reduce(Ref x, ReduceKind kind, const std::vector<int64_t>& axes, bool keepdims);
  Ref add_reshape(Ref x, const std::vector<int64_t>& shape);  // ONNX semantics: 0 copies, -1 infers
  Ref add_transpose(Ref x, const std::vector<int64_t>& perm);
  Ref add_concat(const std::vector<Ref>& xs, int64_t axis);
  // A plugin layer (kiln/plugin.h): a clone of `plugin` reading `inputs` (an invalid Ref, id -1,
  // leaves an optional input out). Returns one Ref per plugin output.
  std::vector<Ref> add_plugin(const std::vector<Ref>& inputs, const Plugin& plugin);
  // The same, with the plugin made from `fields` by the registered creator of that name, version
  // ("" for the newest) and namespace.
  std::vector<Ref> add_plugin(const std::vector<Ref>& inputs, const std::string& name,
                              const std::string& version, const std::string& plugin_namespace,
                              const PluginFields& fields);
  void mark_output(Ref x, const std::string& name);

  // Internal: the graph being built. Errors in add_* are thrown as kiln::Error inside the
  // library and reported by Builder::build as a Status; the first error is kept.
  const Graph& graph() const;
  const std::string& first_error() const { return error_; }

 private:
  std::unique_ptr<Graph> graph_;
  std::string error_;
};

}  // namespace kiln
