// Launchers of the QuantizeLinear / DequantizeLinear kernels (per tensor or per axis). Plain C++;
// see movement.h for the conventions. Scale and zero point are read on the device: channel c of
// element i is (i / inner) % channels (channels = 1: per tensor).
#pragma once
#include <cstdint>

#include "backends/cuda/kernels/movement.h"

namespace kiln::cuda::mv {

struct QuantArgs {
  int64_t n = 0, channels = 1, inner = 1;
  const void* scale = nullptr;
  ElemType scale_type = ElemType::kFloat;
  const void* zero_point = nullptr;  // of the quantized type; null = 0
};

// y = saturate(round_half_even(x / scale) + zero_point) in float (double when the scale is
// double), as ops/quantize_linear.cc. x: float types or int32; y: uint8, int8, uint16, int16.
void quantize_linear(const void* x, ElemType x_type, void* y, ElemType y_type, const QuantArgs& a,
                     void* stream);

// y = (x - zero_point) * scale in float (double for a double scale), written in the scale's type.
// x: int8, uint8, int16, uint16, int32.
void dequantize_linear(const void* x, ElemType x_type, void* y, const QuantArgs& a, void* stream);

}  // namespace kiln::cuda::mv
