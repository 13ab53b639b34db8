// Host-side helpers shared by the movement, indexing, resize, shape-op and quantize tactics: the
// element-type mapping for the launchers, support checks, and a Kernel made from a function.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/movement.h"

namespace kiln::cuda {

inline std::optional<mv::ElemType> elem_type_of(DataType t) {
  switch (t) {
    case DataType::kFloat:
      return mv::ElemType::kFloat;
    case DataType::kFloat16:
      return mv::ElemType::kFloat16;
    case DataType::kBFloat16:
      return mv::ElemType::kBFloat16;
    case DataType::kDouble:
      return mv::ElemType::kDouble;
    case DataType::kInt8:
      return mv::ElemType::kInt8;
    case DataType::kUInt8:
      return mv::ElemType::kUInt8;
    case DataType::kInt16:
      return mv::ElemType::kInt16;
    case DataType::kUInt16:
      return mv::ElemType::kUInt16;
    case DataType::kInt32:
      return mv::ElemType::kInt32;
    case DataType::kUInt32:
      return mv::ElemType::kUInt32;
    case DataType::kInt64:
      return mv::ElemType::kInt64;
    case DataType::kUInt64:
      return mv::ElemType::kUInt64;
    case DataType::kBool:
      return mv::ElemType::kBool;
    default:
      return std::nullopt;
  }
}

inline mv::ElemType elem_type(DataType t) {
  auto e = elem_type_of(t);
  KILN_CHECK(e.has_value(), "no device element type for ", dtype_name(t));
  return *e;
}

inline int elem_bytes(DataType t) { return static_cast<int>(dtype_size(t)); }

// Ok when the node is `op` and its input `i` exists with an element type the device moves.
inline Status check_op_and_data(const Node& n, std::string_view op, size_t i = 0) {
  if (n.op() != op) return unsupported(cat("not a ", op, " node"));
  const Value* v = n.in(i);
  if (!v) return unsupported(cat("input ", i, " is missing"));
  if (!device_dtype_ok(v->dtype) || !elem_type_of(v->dtype))
    return unsupported(cat("element type ", dtype_name(v->dtype)));
  return Status::ok();
}

// Ok when input i's rank is known and at most `max_rank`.
inline Status check_rank(const Node& n, size_t i, int max_rank) {
  const Value* v = n.in(i);
  if (!v || !v->shape.rank_known) return unsupported(cat("the rank of input ", i, " is unknown"));
  if (static_cast<int>(v->shape.rank()) > max_rank)
    return unsupported(cat("rank ", v->shape.rank(), " exceeds ", max_rank));
  return Status::ok();
}

// The value of input i when it is a constant of the graph (known on the host), else null.
inline const Tensor* constant_input(const Node& n, size_t i) {
  const Value* v = n.in(i);
  return v && v->is_constant() ? &v->data : nullptr;
}

// True when input i is absent or constant.
inline bool absent_or_constant(const Node& n, size_t i) {
  const Value* v = n.in(i);
  return !v || v->is_constant();
}

inline int64_t volume(const Dims& d, size_t begin, size_t end) {
  int64_t v = 1;
  for (size_t k = begin; k < end && k < d.size(); ++k) v *= d[k];
  return v;
}

// A stateless kernel whose enqueue() is a function, and whose workspace is another (or none).
using EnqueueFn = void (*)(const LaunchArgs&);
using WorkspaceFn = size_t (*)(const LaunchArgs&);

class FnKernel : public Kernel {
 public:
  FnKernel(EnqueueFn e, WorkspaceFn w) : e_(e), w_(w) {}
  void enqueue(const LaunchArgs& a) override { e_(a); }
  size_t workspace_size(const LaunchArgs& a) const override { return w_ ? w_(a) : 0; }

 private:
  EnqueueFn e_;
  WorkspaceFn w_;
};

template <EnqueueFn E, WorkspaceFn W = nullptr>
std::unique_ptr<Kernel> make_fn_kernel(const Node&) {
  return std::make_unique<FnKernel>(E, W);
}

}  // namespace kiln::cuda
