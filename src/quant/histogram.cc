#include "quant/histogram.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"

namespace kiln {

void AbsHistogram::grow_to(double v) {
  if (range_ == 0) {
    range_ = v;
    return;
  }
  while (v >= range_) {
    // Doubling the range halves the resolution: bin i of the new histogram is bins 2i and
    // 2i + 1 of the old one.
    for (int i = 0; i < kBins / 2; ++i) bins_[i] = bins_[2 * i] + bins_[2 * i + 1];
    std::fill(bins_.begin() + kBins / 2, bins_.end(), 0.0);
    range_ *= 2;
  }
}

void AbsHistogram::add(const float* x, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = std::fabs(static_cast<double>(x[i]));
    if (std::isfinite(a)) m = std::max(m, a);
  }
  max_abs_ = std::max(max_abs_, m);
  // The range's top is open: a value equal to it needs the next doubling.
  if (m > 0 && (range_ == 0 || m >= range_)) grow_to(range_ == 0 ? m * (1 + 1e-7) : m);
  count_ += n;
  if (range_ == 0) {  // only zeros so far
    bins_[0] += static_cast<double>(n);
    return;
  }
  const double per = kBins / range_;
  // Counted in integers first (a double increment per value waits on the previous one to the
  // same bin), then added to the bins once.
  std::vector<int64_t> counts(kBins, 0);
  for (int64_t i = 0; i < n; ++i) {
    const double a = std::fabs(static_cast<double>(x[i]));
    if (!std::isfinite(a)) continue;  // NaN and infinity say nothing about a scale
    ++counts[std::min(kBins - 1, static_cast<int>(a * per))];
  }
  for (int b = 0; b < kBins; ++b) bins_[b] += static_cast<double>(counts[b]);
}

CalibrationAlgo parse_calibration_algo(const std::string& s) {
  if (s == "entropy") return CalibrationAlgo::kEntropy;
  if (s == "percentile") return CalibrationAlgo::kPercentile;
  if (s == "minmax") return CalibrationAlgo::kMinMax;
  fail(StatusCode::kInvalidArgument, "calibration algorithm '", s,
       "' does not exist (entropy, percentile or minmax)");
}

const char* calibration_algo_name(CalibrationAlgo a) {
  switch (a) {
    case CalibrationAlgo::kEntropy:
      return "entropy";
    case CalibrationAlgo::kPercentile:
      return "percentile";
    default:
      return "minmax";
  }
}

namespace {

double entropy_threshold(const AbsHistogram& h) {
  constexpr int kLevels = 128;
  // The first bin holds every exact zero (half of a ReLU's output) besides the small values: a
  // spike no choice of threshold can represent better or worse, which would otherwise dominate
  // the divergence and pull the threshold down. It counts as much as its neighbour.
  std::vector<double> bins = h.bins();
  bins[0] = bins[1];
  const int n = AbsHistogram::kBins;
  // Bins past the last non-empty one change nothing: stop there.
  int last = n;
  while (last > 0 && bins[last - 1] == 0) --last;
  if (last <= kLevels) return h.range() * last / n;
  // A tensor of few distinct magnitudes (a network input of 8-bit pixels: at most 256) fills few
  // bins, and the divergence then favours a threshold right at one of its spikes: levels that
  // hold a single non-empty bin represent it exactly, whatever is clipped into it. On the
  // Fashion-MNIST model that clipped the normalized input at 40 % of its range and cost 6 points
  // of top-1 (docs/quantization.md). Such a tensor is on a grid about as coarse as int8's
  // already: its whole range is kept.
  int nonempty = 0;
  for (int b = 0; b < last; ++b) nonempty += bins[b] != 0;
  if (nonempty <= 2 * kLevels) return h.range() * last / n;
  double best_kl = INFINITY;
  int best = last;
  std::vector<double> p, q;
  for (int i = kLevels; i <= last; ++i) {
    // P: the first i bins, everything beyond folded into the last one (clipping).
    p.assign(bins.begin(), bins.begin() + i);
    double outliers = 0;
    for (int j = i; j < n; ++j) outliers += bins[j];
    p[i - 1] += outliers;
    // Q: the first i bins merged into kLevels levels, each level's mass spread evenly over its
    // non-empty bins (an empty bin stays empty: quantization cannot create values there).
    q.assign(i, 0.0);
    for (int l = 0; l < kLevels; ++l) {
      const int b0 = static_cast<int>(static_cast<int64_t>(l) * i / kLevels);
      const int b1 = static_cast<int>(static_cast<int64_t>(l + 1) * i / kLevels);
      double mass = 0;
      int nonempty = 0;
      for (int b = b0; b < b1; ++b) {
        mass += bins[b];
        nonempty += bins[b] != 0;
      }
      if (nonempty == 0) continue;
      for (int b = b0; b < b1; ++b)
        if (bins[b] != 0) q[b] = mass / nonempty;
    }
    double sp = 0, sq = 0;
    for (int b = 0; b < i; ++b) {
      sp += p[b];
      sq += q[b];
    }
    if (sp == 0 || sq == 0) continue;
    for (double& v : p) v /= sp;
    for (double& v : q) v /= sq;
    // Where P has mass that Q cannot represent (the clipped outliers landing on an empty last
    // bin) the divergence is infinite: that threshold is out.
    double kl = 0;
    for (int b = 0; b < i && std::isfinite(kl); ++b)
      if (p[b] > 0) kl = q[b] > 0 ? kl + p[b] * std::log(p[b] / q[b]) : INFINITY;
    if (kl < best_kl) {
      best_kl = kl;
      best = i;
    }
  }
  return h.range() * best / n;
}

}  // namespace

double calibration_threshold(const AbsHistogram& h, CalibrationAlgo algo, double percentile) {
  if (h.max_abs() == 0) return 0;
  switch (algo) {
    case CalibrationAlgo::kMinMax:
      return h.max_abs();
    case CalibrationAlgo::kPercentile: {
      KILN_EXPECT(percentile > 0 && percentile <= 100, StatusCode::kInvalidArgument,
                  "calibration percentile ", percentile, " is not in (0, 100]");
      const double want = static_cast<double>(h.count()) * percentile / 100.0;
      double seen = 0;
      const std::vector<double>& bins = h.bins();
      for (int i = 0; i < AbsHistogram::kBins; ++i) {
        seen += bins[i];
        if (seen >= want)
          return std::min(h.max_abs(), h.range() * (i + 1) / AbsHistogram::kBins);
      }
      return h.max_abs();
    }
    default:
      return std::min(h.max_abs(), entropy_threshold(h));
  }
}

}  // namespace kiln
