// Launchers of the DFT, STFT and MelWeightMatrix kernels (signal.cu). Plain C++, shared by
// signal.cu and signal_tactics.cc.
//
// DFT and STFT are direct transforms, one thread per output bin (both its real and imaginary
// parts), O(length) each, summed in double whatever the element type, with the reference's
// phase index (k * t mod length, advanced incrementally) and twiddles from sincospi in double.
// MelWeightMatrix runs one thread per matrix element, each recomputing the three mel bins its
// column needs as the reference (ops/mel_weight_matrix.cc) computes them.
//
// Scalar operands that set output sizes (dft_length, frame_step, frame_length, and every input of
// MelWeightMatrix) are taken from the host when the tactic knows them (constants, or derivable
// from the dims), else read by the kernel itself from device memory, so nothing synchronises.
// The reference rejects inconsistent or out-of-range values; a kernel that reads one it cannot
// use writes NaN (0 for integer MelWeightMatrix outputs) instead.
#pragma once
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

// An integer scalar: `value` when `ptr` is null, else the int32 / int64 element at `ptr`.
struct IntScalar {
  int64_t value = 0;
  const void* ptr = nullptr;
  bool is64 = true;
};

// ---- DFT ----

struct DftProblem {
  DType dtype = DType::kF32;  // of x and y
  const void* x = nullptr;    // [outer, n, inner, comps]
  void* y = nullptr;          // [outer, n_out, inner, 2]
  int64_t outer = 1, n = 0, inner = 1, comps = 1, n_out = 0;
  IntScalar length;  // the transform length (dft_length, or n)
  bool inverse = false;
  bool onesided = false;
};

// f32, f16, bf16, f64.
bool dft_supported(DType dtype);
void launch_dft(const DftProblem& p, void* stream);

// ---- STFT ----

struct StftProblem {
  DType dtype = DType::kF32;     // of the signal, the window and y
  const void* signal = nullptr;  // [batch, length, comps]
  const void* window = nullptr;  // [window_length] or null
  void* y = nullptr;             // [batch, frames, bins, 2]
  int64_t batch = 0, length = 0, comps = 1, frames = 0, bins = 0;
  int64_t window_length = -1;  // -1 without a window
  IntScalar frame_step;
  IntScalar frame_length;
  bool onesided = true;
};

bool stft_supported(DType dtype);
void launch_stft(const StftProblem& p, void* stream);

// ---- MelWeightMatrix ----

struct MelWeightMatrixProblem {
  DType out_dtype = DType::kF32;  // any float or integer type but bool
  IntScalar num_mel_bins, dft_length, sample_rate;
  const void* lower_edge_hertz = nullptr;  // one element of edge_dtype, on the device
  const void* upper_edge_hertz = nullptr;
  DType lower_dtype = DType::kF32, upper_dtype = DType::kF32;  // f32, f16, bf16, f64
  void* y = nullptr;  // [rows, cols] = [dft_length / 2 + 1, num_mel_bins]
  int64_t rows = 0, cols = 0;
};

bool mel_weight_matrix_supported(DType out_dtype, DType lower_dtype, DType upper_dtype);
void launch_mel_weight_matrix(const MelWeightMatrixProblem& p, void* stream);

}  // namespace kiln::cuda::rk
