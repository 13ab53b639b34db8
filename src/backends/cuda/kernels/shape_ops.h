// Launchers of the kernels behind Shape, Size, ConstantOfShape and Range: small outputs whose
// values are known on the host (dims, a fill value) are passed as kernel arguments, never copied
// from pageable host memory, so the steps stay asynchronous and capturable. Plain C++; see
// movement.h for the conventions.
#pragma once
#include <cstdint>

#include "backends/cuda/kernels/movement.h"

namespace kiln::cuda::mv {

// dst[i] = values[i] for i < n (any n: launched in chunks).
void write_int64s(int64_t* dst, const int64_t* values, int64_t n, void* stream);

// n elements of elem_bytes (1, 2, 4 or 8) set to the low bytes of `bits`.
void fill(void* dst, int elem_bytes, uint64_t bits, int64_t n, void* stream);

// Range: dst[i] = start + i * delta with start and delta read from device scalars of type t
// (floats in double, rounded as Tensor::set_f64; integers wrapping in 64 bits).
void range(const void* start, const void* delta, ElemType t, void* dst, int64_t n, void* stream);

// WindowFunction: dst[k] = a0 - a1 cos(2 pi k / N) + a2 cos(4 pi k / N) in double, N = n
// (periodic) or n - 1 (symmetric; 1 when N is 0), written as Tensor::set_f64 writes type t.
void window(void* dst, ElemType t, int64_t n, bool periodic, double a0, double a1, double a2,
            void* stream);

}  // namespace kiln::cuda::mv
