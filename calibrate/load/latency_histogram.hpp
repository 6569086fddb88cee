// A log-linear latency histogram in the style of HdrHistogram (1 µs to 1 h, 3 significant digits).
//
// Why hand-written: Debian 12 has no HdrHistogram package for C or C++, and Headroom vendors no
// code. This is the same data structure, kept to what the load generator needs: O(1) record,
// lossless merge, percentiles, and a sparse bucket list so a JSON report can carry it exactly.
//
// The index arithmetic, once. Values are recorded as whole microseconds v (seconds * 1e6,
// rounded). With d significant digits, each power-of-two "bucket" is split into
// sub_bucket_count = 2^ceil(log2(2 * 10^d)) linear sub-buckets (2048 for d = 3), so any value is
// kept within 1 / (sub_bucket_count / 2) = 1/1024 of itself: better than 1 part in 10^3.
//   bucket b     = floor(log2(v | (sub_bucket_count - 1))) - log2(sub_bucket_count) + 1
//                  (values below sub_bucket_count all land in bucket 0, at unit resolution)
//   sub-bucket s = v >> b                       (in [sub_bucket_count/2, sub_bucket_count)
//                                                for b > 0, in [0, sub_bucket_count) for b = 0)
//   index        = (b + 1) * (sub_bucket_count / 2) + (s - sub_bucket_count / 2)
//   value(index) = s << b, and every v in [s << b, (s + 1) << b) shares that index.
// Bucket 0 uses all sub_bucket_count slots; every later bucket only needs its upper half, since
// its lower half would duplicate the previous bucket at coarser resolution.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace headroom::calibrate {

class latency_histogram {
 public:
  static constexpr double lowest_seconds = 1e-6;     // one unit: 1 µs
  static constexpr double highest_seconds = 3600.0;  // 1 h; larger values are clamped and counted

  explicit latency_histogram(int significant_digits = 3);

  // O(1): two shifts, a count-leading-zeros and an increment.
  void record(double seconds, std::uint64_t count = 1);
  // Adds other's counts; both must have the same significant digits (else throws).
  void merge(const latency_histogram& other);
  void reset();

  std::uint64_t total_count() const { return total_; }
  // Values outside [0, 1 h] that were clamped into range when recorded.
  std::uint64_t clamped_count() const { return clamped_; }
  double min() const;  // exact (not bucketed); 0 when empty
  double max() const;  // exact (not bucketed); 0 when empty
  double mean() const;
  double stddev() const;

  // The smallest recorded value v such that at least p % of the values are <= v, as the upper end
  // of its bucket (capped at the exact max), in seconds. p in [0, 100]; 0 when empty.
  double percentile(double p) const;

  int significant_digits() const { return digits_; }
  int bucket_count() const { return bucket_count_; }
  int sub_bucket_count() const { return sub_bucket_count_; }

  // Sparse, lossless form: (index, count) for every non-empty bucket, ascending by index.
  std::vector<std::pair<std::uint32_t, std::uint64_t>> nonzero_counts() const;
  // Rebuilds from nonzero_counts() plus the exact extremes and sums (for merging JSON reports).
  void restore(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& counts, double min,
               double max, double sum, double sum_of_squares, std::uint64_t clamped);
  double sum() const { return sum_; }
  double sum_of_squares() const { return sum_sq_; }

  // Bucket geometry, in seconds (used by the percentile-distribution writer).
  double lowest_equivalent(std::uint32_t index) const;
  double highest_equivalent(std::uint32_t index) const;
  std::uint64_t count_at_index(std::uint32_t index) const { return counts_[index]; }
  std::uint32_t counts_length() const { return static_cast<std::uint32_t>(counts_.size()); }

 private:
  std::uint32_t index_of(std::uint64_t micros) const;
  std::uint64_t value_from_index(std::uint32_t index) const;
  std::uint64_t range_size(std::uint32_t index) const;

  int digits_;
  int sub_bucket_count_;
  int sub_bucket_half_count_;
  int sub_bucket_half_count_magnitude_;
  int bucket_count_;
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t clamped_ = 0;
  double min_ = 0;
  double max_ = 0;
  double sum_ = 0;
  double sum_sq_ = 0;
};

}  // namespace headroom::calibrate
