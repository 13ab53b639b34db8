// Single-precision GEMM for the CPU tactics: C[M,N] (+)= A[M,K] · B[K,N], all row-major with
// leading dimensions. Accumulates in float32 (unlike the reference, which uses double): the
// tactics' tests compare against the reference with a float32 tolerance.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::cpu {

// Cache blocking: how many columns of C (n) and how much of K one pass keeps hot. The best
// depends on the shapes and on the machine's caches, so the tactics offer a few to the autotuner.
// Every blocking adds the products of each C element in the same order (k ascending), so the
// results are bit-identical whichever is chosen.
struct GemmBlocking {
  int64_t k = 256, n = 512;
  bool operator==(const GemmBlocking&) const = default;
};
// The candidates, the default (the heuristic's choice) first.
const std::vector<GemmBlocking>& gemm_blockings();
std::string blocking_name(GemmBlocking b);                   // "k256n512"
// Parses blocking_name's form; "" gives the default. False for anything else.
bool parse_blocking(std::string_view s, GemmBlocking& out);

// When accumulate is false, C is overwritten.
void sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc, bool accumulate, GemmBlocking blocking = {});

}  // namespace kiln::cpu
