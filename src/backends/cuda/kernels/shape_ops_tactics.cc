// Tactics for the small shape-like ops on kiln's own kernels (shape_ops.cu): cuda.shape,
// cuda.size, cuda.constant_of_shape, cuda.range, cuda.window_function. Usually folded at build
// time; these run them when shapes are known only at run time. Values known on the host (dims,
// counts, the fill value) travel as kernel arguments: no pageable host copy, nothing that
// synchronises.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/cuda/kernels/movement_tactic_util.h"
#include "backends/cuda/kernels/shape_ops.h"
#include "ops/constant_of_shape.h"
#include "ops/shape.h"
#include "ops/window_function.h"

namespace kiln {
namespace cuda {
namespace {

// ---- Shape / Size ----

Status supports_shape(const Node& n) {
  if (n.op() != "Shape") return unsupported("not a Shape node");
  if (!n.in(0)) return unsupported("input 0 is missing");
  return Status::ok();
}

void enqueue_shape(const LaunchArgs& a) {
  const auto& at = a.node.a<ShapeAttrs>();
  const Dims& d = a.in(0).dims;
  const int64_t r = static_cast<int64_t>(d.size());
  auto clampi = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  const int64_t b = clampi(at.start), e = std::max(b, clampi(at.end));
  DeviceTensor& y = a.out(0);
  KILN_EXPECT(y.numel() == e - b, StatusCode::kInvalidArgument, "Shape output ",
              dims_to_string(y.dims), " for dims [", b, ", ", e, ") of ", dims_to_string(d));
  if (e == b) return;
  mv::write_int64s(static_cast<int64_t*>(y.data), d.data() + b, e - b, a.stream);
  check_launch("cuda.shape");
}

Status supports_size(const Node& n) {
  if (n.op() != "Size") return unsupported("not a Size node");
  if (!n.in(0)) return unsupported("input 0 is missing");
  return Status::ok();
}

void enqueue_size(const LaunchArgs& a) {
  int64_t v = a.in(0).numel();
  mv::write_int64s(static_cast<int64_t*>(a.out(0).data), &v, 1, a.stream);
  check_launch("cuda.size");
}

// ---- ConstantOfShape ----

Status supports_constant_of_shape(const Node& n) {
  if (n.op() != "ConstantOfShape") return unsupported("not a ConstantOfShape node");
  const auto& at = n.a<ConstantOfShapeAttrs>();
  if (at.value.defined()) {
    if (!device_dtype_ok(at.value.dtype()) || dtype_size(at.value.dtype()) > 8)
      return unsupported(cat("value of type ", dtype_name(at.value.dtype())));
    if (at.value.numel() != 1) return unsupported("value does not hold one element");
  }
  return Status::ok();
}

void enqueue_constant_of_shape(const LaunchArgs& a) {
  const auto& at = a.node.a<ConstantOfShapeAttrs>();
  DeviceTensor& y = a.out(0);
  if (y.numel() == 0) return;
  uint64_t bits = 0;  // undefined value: float32 zeros
  if (at.value.defined()) std::memcpy(&bits, at.value.raw(), dtype_size(at.value.dtype()));
  mv::fill(y.data, elem_bytes(y.dtype), bits, y.numel(), a.stream);
  check_launch("cuda.constant_of_shape");
}

// ---- Range ----

Status supports_range(const Node& n) {
  if (Status s = check_op_and_data(n, "Range"); !s) return s;
  DataType t = n.in(0)->dtype;
  if (t == DataType::kBool) return unsupported("bool ranges");
  for (size_t i = 1; i < 3; ++i)
    if (!n.in(i) || n.in(i)->dtype != t) return unsupported("inputs differ in type");
  return Status::ok();
}

void enqueue_range(const LaunchArgs& a) {
  DeviceTensor& y = a.out(0);
  KILN_EXPECT(y.rank() == 1, StatusCode::kInvalidArgument, "Range output ", dims_to_string(y.dims));
  KILN_EXPECT(a.in(0).numel() == 1 && a.in(2).numel() == 1, StatusCode::kInvalidArgument,
              "start, limit and delta must be scalars");
  if (y.numel() == 0) return;
  // The length came from the inputs' values when the runtime inferred the output shape.
  mv::range(a.in(0).data, a.in(2).data, elem_type(y.dtype), y.data, y.numel(), a.stream);
  check_launch("cuda.range");
}

// ---- WindowFunction ----

bool window_coefficients(const std::string& kind, double& a0, double& a1, double& a2) {
  a2 = 0;
  if (kind == "hann") {
    a0 = 0.5;
    a1 = 0.5;
  } else if (kind == "hamming") {
    a0 = 25.0 / 46;
    a1 = 21.0 / 46;
  } else if (kind == "blackman") {
    a0 = 0.42;
    a1 = 0.5;
    a2 = 0.08;
  } else {
    return false;
  }
  return true;
}

Status supports_window_function(const Node& n) {
  if (n.op() != "WindowFunction") return unsupported("not a WindowFunction node");
  const auto& at = n.a<WindowFunctionAttrs>();
  double a0, a1, a2;
  if (!window_coefficients(at.kind, a0, a1, a2)) return unsupported("unknown window kind");
  if (at.output_dtype == DataType::kBool || !device_dtype_ok(at.output_dtype) ||
      !elem_type_of(at.output_dtype))
    return unsupported(cat("windows of type ", dtype_name(at.output_dtype)));
  return Status::ok();
}

void enqueue_window_function(const LaunchArgs& a) {
  const auto& at = a.node.a<WindowFunctionAttrs>();
  DeviceTensor& y = a.out(0);
  KILN_EXPECT(y.rank() == 1, StatusCode::kInvalidArgument, "window output ",
              dims_to_string(y.dims));
  if (y.numel() == 0) return;
  double a0 = 0, a1 = 0, a2 = 0;
  KILN_EXPECT(window_coefficients(at.kind, a0, a1, a2), StatusCode::kInvalidModel,
              "unknown window '", at.kind, "'");
  // The size is the output's length (the runtime read it when it inferred the shape).
  mv::window(y.data, elem_type(y.dtype), y.numel(), at.periodic, a0, a1, a2, a.stream);
  check_launch("cuda.window_function");
}

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_window_function() {
  static const cuda::SimpleTactic t("cuda.window_function", "WindowFunction", cuda::supports_window_function,
                                    cuda::make_fn_kernel<cuda::enqueue_window_function>);
  return t;
}

const Tactic& kiln_cuda_tactic_shape() {
  static const cuda::SimpleTactic t("cuda.shape", "Shape", cuda::supports_shape,
                                    cuda::make_fn_kernel<cuda::enqueue_shape>);
  return t;
}
const Tactic& kiln_cuda_tactic_size() {
  static const cuda::SimpleTactic t("cuda.size", "Size", cuda::supports_size,
                                    cuda::make_fn_kernel<cuda::enqueue_size>);
  return t;
}
const Tactic& kiln_cuda_tactic_constant_of_shape() {
  static const cuda::SimpleTactic t("cuda.constant_of_shape", "ConstantOfShape", cuda::supports_constant_of_shape,
                                    cuda::make_fn_kernel<cuda::enqueue_constant_of_shape>);
  return t;
}
const Tactic& kiln_cuda_tactic_range() {
  static const cuda::SimpleTactic t("cuda.range", "Range", cuda::supports_range,
                                    cuda::make_fn_kernel<cuda::enqueue_range>);
  return t;
}

}  // namespace kiln
