// Pools latency samples of many replications to estimate quantiles of the long-run
// distribution (the mean of per-replication quantiles is a different quantity when some
// replications hit rare episodes, such as dial storms, and others do not).
//
// Buckets come straight from a double's bits: for x > 0, bits >> 44 keeps the exponent and
// the top 8 mantissa bits, so each power of two is split into 256 buckets (relative width at
// most 1/256 = 0.39 %), and the key grows with x. Counts live in one dense vector over the
// keys actually used (about 256 per factor of two of range). Quantiles interpolate by rank
// inside a bucket. Zeros (a phase the request did not go through) are counted apart.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace headroom {

class quantile_histogram {
 public:
  std::uint64_t count() const { return n_; }
  bool empty() const { return n_ == 0; }

  void add_all(const std::vector<double>& xs) {
    std::uint64_t lo = UINT64_MAX, hi = 0;
    for (double x : xs)
      if (x > 0) {
        lo = std::min(lo, key(x));
        hi = std::max(hi, key(x));
      }
    if (lo <= hi) cover(lo, hi);
    for (double x : xs) {
      if (x > 0) {
        ++counts_[key(x) - base_];
      } else {
        ++zeros_;
      }
    }
    n_ += xs.size();
  }
  void add_zeros(std::uint64_t k) {
    zeros_ += k;
    n_ += k;
  }
  void merge(const quantile_histogram& o) {
    if (!o.counts_.empty()) {
      cover(o.base_, o.base_ + o.counts_.size() - 1);
      for (std::size_t i = 0; i < o.counts_.size(); ++i)
        counts_[o.base_ + i - base_] += o.counts_[i];
    }
    zeros_ += o.zeros_;
    n_ += o.n_;
  }
  void clear() {
    counts_.clear();
    counts_.shrink_to_fit();
    base_ = 0;
    zeros_ = n_ = 0;
  }

  // The buckets as an index into the samples they count (latency_summary.cpp's summarize
  // finds exact order statistics by sorting only the samples of the buckets that hold them).
  static std::uint64_t bucket(double x) { return key(x); }
  std::uint64_t zeros() const { return zeros_; }
  std::uint64_t bucket_count(std::uint64_t k) const {
    return k >= base_ && k - base_ < counts_.size() ? counts_[k - base_] : 0;
  }
  // The bucket of the rank-th smallest sample (from 0) and how many samples lie below that
  // bucket; false if that sample is one of the zeros (or rank >= count()).
  bool bucket_of_rank(std::uint64_t rank, std::uint64_t& k, std::uint64_t& below) const {
    if (rank < zeros_ || rank >= n_) return false;
    std::uint64_t b = zeros_;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      if (rank < b + counts_[i]) {
        k = base_ + i;
        below = b;
        return true;
      }
      b += counts_[i];
    }
    return false;
  }

  // Calls f(lower, upper, count) for every non-empty bucket, lowest first (values in the
  // samples' unit; zeros are not buckets: zeros()).
  template <class F>
  void for_each_bucket(F f) const {
    for (std::size_t i = 0; i < counts_.size(); ++i)
      if (counts_[i] != 0) f(value(base_ + i), value(base_ + i + 1), counts_[i]);
  }

  // The p-quantile at rank p (n - 1), as for sorted samples with linear interpolation.
  double quantile(double p) const {
    if (n_ == 0) return 0;
    double rank = p * static_cast<double>(n_ - 1);
    if (rank < static_cast<double>(zeros_)) return 0;
    double below = static_cast<double>(zeros_);
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      double c = static_cast<double>(counts_[i]);
      if (c == 0) continue;
      if (rank < below + c) {
        double lo = value(base_ + i), hi = value(base_ + i + 1);
        return lo + (hi - lo) * (rank - below + 0.5) / c;
      }
      below += c;
    }
    return value(base_ + counts_.size());  // rank = n - 1 in the last bucket's top
  }

 private:
  static std::uint64_t key(double x) { return std::bit_cast<std::uint64_t>(x) >> 44; }
  static double value(std::uint64_t k) { return std::bit_cast<double>(k << 44); }
  // Grows the dense range to hold keys lo..hi.
  void cover(std::uint64_t lo, std::uint64_t hi) {
    if (counts_.empty()) {
      base_ = lo;
      counts_.assign(hi - lo + 1, 0);
      return;
    }
    if (lo < base_) {
      counts_.insert(counts_.begin(), base_ - lo, 0);
      base_ = lo;
    }
    if (hi >= base_ + counts_.size()) counts_.resize(hi - base_ + 1, 0);
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t base_ = 0, zeros_ = 0, n_ = 0;
};

}  // namespace headroom
