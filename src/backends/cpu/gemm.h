// Single-precision GEMM for the CPU tactics: C[M,N] (+)= A[M,K] · B[K,N], all row-major with
// leading dimensions. Accumulates in float32 (unlike the reference, which uses double): the
// tactics' tests compare against the reference with a float32 tolerance.
#pragma once
#include <cstdint>

namespace kiln::cpu {

// When accumulate is false, C is overwritten.
void sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc, bool accumulate);

}  // namespace kiln::cpu
