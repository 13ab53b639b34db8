// Statistics of one tensor's values over the calibration set, and the three ways of turning them
// into an int8 scale (symmetric: q = round(x / scale) in [-127, 127]).
//
// The histogram is of |x| over [0, range) in kBins bins. Its range grows as larger values arrive
// (doubling, adjacent bins merged), so one pass over the data suffices and every batch costs one
// sweep; the first batch sets the initial range.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

class AbsHistogram {
 public:
  static constexpr int kBins = 2048;
  void add(const float* x, int64_t n);
  double max_abs() const { return max_abs_; }
  double range() const { return range_; }
  int64_t count() const { return count_; }
  const std::vector<double>& bins() const { return bins_; }

 private:
  void grow_to(double v);
  std::vector<double> bins_ = std::vector<double>(kBins, 0.0);
  double range_ = 0;  // 0: empty
  double max_abs_ = 0;
  int64_t count_ = 0;
};

enum class CalibrationAlgo { kEntropy, kPercentile, kMinMax };
// "entropy", "percentile", "minmax"; throws kInvalidArgument for anything else.
CalibrationAlgo parse_calibration_algo(const std::string& s);
const char* calibration_algo_name(CalibrationAlgo a);

// The clipping threshold T (scale = T / 127) by:
//   minmax      the largest |x| seen;
//   percentile  the smallest bin edge below which `percentile` % of the |x| values lie;
//   entropy     TensorRT's: the threshold (a bin edge from 128 bins up) whose clipped and
//               128-level quantized distribution has the least KL divergence from the clipped one.
// An all-zero tensor gets threshold 0 (the caller picks a harmless scale).
double calibration_threshold(const AbsHistogram& h, CalibrationAlgo algo, double percentile);

}  // namespace kiln
