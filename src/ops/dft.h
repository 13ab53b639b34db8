#pragma once
#include <complex>
#include <vector>

#include "ir/attrs.h"

namespace kiln {

// DFT (ONNX opset 17). Inputs: x [..., N, ..., 1 or 2] (real, or complex as (re, im) pairs in the
// last dim), dft_length (optional scalar: zero-pad or truncate the signal to it). Output: the same
// shape with last dim 2 and the signal axis of length dft_length, or dft_length / 2 + 1 when
// onesided.
struct DftAttrs : AttrsOf<DftAttrs> {
  Int axis = 1;  // the signal axis; normalised against the rank including the (re, im) dim
  bool inverse = false;
  bool onesided = false;
  template <class V>
  void reflect(V& v) {
    v("axis", axis);
    v("inverse", inverse);
    v("onesided", onesided);
  }
};

// A direct DFT of one length, in double: exact twiddles (the phase index k*n is reduced mod the
// length before the trigonometry), O(length^2) per signal. Shared with STFT.
class DftPlan {
 public:
  DftPlan(int64_t length, bool inverse);
  // x: n samples (zero-padded / truncated to the length); writes the first n_out bins to y.
  // An inverse transform divides by the length.
  void run(const std::complex<double>* x, int64_t n, int64_t n_out, std::complex<double>* y) const;
  int64_t length() const { return length_; }

 private:
  int64_t length_;
  bool inverse_;
  std::vector<std::complex<double>> twiddle_;
};

}  // namespace kiln
