// The log-linear latency histogram; the index arithmetic is explained in latency_histogram.hpp.
#include "latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

namespace headroom::calibrate {
namespace {
constexpr std::uint64_t highest_micros = static_cast<std::uint64_t>(3600.0 * 1e6);
}

latency_histogram::latency_histogram(int significant_digits) : digits_(significant_digits) {
  if (digits_ < 1 || digits_ > 5) throw std::invalid_argument("histogram: significant digits 1..5");
  // Unit resolution up to 2 * 10^d keeps every value within 1 part in 10^d of itself.
  double single_unit_limit = 2.0 * std::pow(10.0, digits_);
  int magnitude = static_cast<int>(std::ceil(std::log2(single_unit_limit)));
  sub_bucket_half_count_magnitude_ = std::max(magnitude, 1) - 1;
  sub_bucket_count_ = 1 << (sub_bucket_half_count_magnitude_ + 1);
  sub_bucket_half_count_ = sub_bucket_count_ / 2;
  // Enough power-of-two buckets that the last one holds 1 h.
  std::uint64_t smallest_untrackable = static_cast<std::uint64_t>(sub_bucket_count_);
  bucket_count_ = 1;
  while (smallest_untrackable <= highest_micros) {
    smallest_untrackable <<= 1;
    ++bucket_count_;
  }
  counts_.assign(static_cast<std::size_t>(bucket_count_ + 1) * sub_bucket_half_count_, 0);
}

std::uint32_t latency_histogram::index_of(std::uint64_t v) const {
  const std::uint64_t mask = static_cast<std::uint64_t>(sub_bucket_count_ - 1);
  int pow2ceiling = 64 - std::countl_zero(v | mask);
  int bucket = pow2ceiling - (sub_bucket_half_count_magnitude_ + 1);
  auto sub = static_cast<std::int64_t>(v >> bucket);
  auto base = static_cast<std::int64_t>(bucket + 1) << sub_bucket_half_count_magnitude_;
  return static_cast<std::uint32_t>(base + (sub - sub_bucket_half_count_));
}

std::uint64_t latency_histogram::value_from_index(std::uint32_t index) const {
  int bucket = static_cast<int>(index >> sub_bucket_half_count_magnitude_) - 1;
  std::uint64_t sub = (index & (sub_bucket_half_count_ - 1)) + sub_bucket_half_count_;
  if (bucket < 0) {
    sub -= sub_bucket_half_count_;
    bucket = 0;
  }
  return sub << bucket;
}

std::uint64_t latency_histogram::range_size(std::uint32_t index) const {
  int bucket = std::max(0, static_cast<int>(index >> sub_bucket_half_count_magnitude_) - 1);
  return std::uint64_t{1} << bucket;
}

void latency_histogram::record(double seconds, std::uint64_t count) {
  if (count == 0) return;
  double clamped_seconds = seconds;
  if (!(seconds >= 0.0)) {  // negative or NaN: clock misuse upstream; keep it visible
    clamped_seconds = 0.0;
    clamped_ += count;
  } else if (seconds > highest_seconds) {
    clamped_seconds = highest_seconds;
    clamped_ += count;
  }
  auto micros = static_cast<std::uint64_t>(std::llround(clamped_seconds * 1e6));
  counts_[index_of(micros)] += count;
  if (total_ == 0 || clamped_seconds < min_) min_ = clamped_seconds;
  if (total_ == 0 || clamped_seconds > max_) max_ = clamped_seconds;
  total_ += count;
  sum_ += clamped_seconds * static_cast<double>(count);
  sum_sq_ += clamped_seconds * clamped_seconds * static_cast<double>(count);
}

void latency_histogram::merge(const latency_histogram& other) {
  if (other.digits_ != digits_)
    throw std::invalid_argument("histogram: cannot merge different significant digits");
  if (other.total_ == 0) return;
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  if (total_ == 0 || other.min_ < min_) min_ = other.min_;
  if (total_ == 0 || other.max_ > max_) max_ = other.max_;
  total_ += other.total_;
  clamped_ += other.clamped_;
  sum_ += other.sum_;
  sum_sq_ += other.sum_sq_;
}

void latency_histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = clamped_ = 0;
  min_ = max_ = sum_ = sum_sq_ = 0;
}

double latency_histogram::min() const { return min_; }
double latency_histogram::max() const { return max_; }
double latency_histogram::mean() const {
  return total_ == 0 ? 0.0 : sum_ / static_cast<double>(total_);
}
double latency_histogram::stddev() const {
  if (total_ == 0) return 0.0;
  double m = mean();
  double var = sum_sq_ / static_cast<double>(total_) - m * m;
  return var > 0 ? std::sqrt(var) : 0.0;
}

double latency_histogram::lowest_equivalent(std::uint32_t index) const {
  return static_cast<double>(value_from_index(index)) * 1e-6;
}
double latency_histogram::highest_equivalent(std::uint32_t index) const {
  return static_cast<double>(value_from_index(index) + range_size(index) - 1) * 1e-6;
}

double latency_histogram::percentile(double p) const {
  if (total_ == 0) return 0.0;
  if (p <= 0.0) return min_;
  double requested = std::min(p, 100.0);
  // Same rank rule as HdrHistogram: the ceil-ish rank of p % of the count, at least 1.
  auto wanted = static_cast<std::uint64_t>((requested / 100.0) * static_cast<double>(total_) + 0.5);
  wanted = std::max<std::uint64_t>(wanted, 1);
  std::uint64_t seen = 0;
  for (std::uint32_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= wanted) return std::min(highest_equivalent(i), max_);
  }
  return max_;
}

std::vector<std::pair<std::uint32_t, std::uint64_t>> latency_histogram::nonzero_counts() const {
  std::vector<std::pair<std::uint32_t, std::uint64_t>> out;
  for (std::uint32_t i = 0; i < counts_.size(); ++i)
    if (counts_[i] != 0) out.emplace_back(i, counts_[i]);
  return out;
}

void latency_histogram::restore(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& counts,
                                double min, double max, double sum, double sum_of_squares,
                                std::uint64_t clamped) {
  reset();
  for (auto [index, count] : counts) {
    if (index >= counts_.size())
      throw std::invalid_argument("histogram: bucket index out of range");
    counts_[index] += count;
    total_ += count;
  }
  min_ = min;
  max_ = max;
  sum_ = sum;
  sum_sq_ = sum_of_squares;
  clamped_ = clamped;
}

}  // namespace headroom::calibrate
