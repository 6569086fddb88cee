// Percentiles of one replication's samples (latency_summary.hpp): a plain selection, and the
// same selection narrowed to the histogram buckets that hold the wanted order statistics.
#include "latency_summary.hpp"

#include <algorithm>
#include <cstddef>

namespace headroom {

namespace {

// The reported quantiles, in increasing order (each search starts above the previous one).
constexpr double quantiles[] = {0.50, 0.90, 0.95, 0.99, 0.999};
constexpr int quantile_count = sizeof quantiles / sizeof quantiles[0];
// Type 7 interpolates between order statistics i and i + 1: two per quantile.
constexpr int order_statistics_wanted = 2 * quantile_count;

}  // namespace

latency_summary summarize(std::vector<double>& samples) {
  latency_summary s;
  s.count = samples.size();
  if (samples.empty()) return s;
  double sum = 0, largest = samples[0];
  for (double x : samples) {
    sum += x;
    largest = std::max(largest, x);
  }
  s.mean = sum / static_cast<double>(samples.size());
  s.max = largest;
  if (largest == 0) return s;  // a phase this scenario never spends time in
  // Linear interpolation between order statistics (Hyndman & Fan type 7). Selection instead of
  // a full sort: sorting every phase's samples was a third of the run time. Quantiles are taken
  // in increasing order, each selection searching only above the previous one.
  std::size_t searched_from = 0;
  auto quantile = [&](double p) {
    double h = p * static_cast<double>(samples.size() - 1);
    std::size_t i = static_cast<std::size_t>(h);
    auto first = samples.begin() + static_cast<std::ptrdiff_t>(searched_from);
    auto nth = samples.begin() + static_cast<std::ptrdiff_t>(i);
    std::nth_element(first, nth, samples.end());
    searched_from = i;
    if (i + 1 >= samples.size()) return samples[i];
    double next = *std::min_element(nth + 1, samples.end());
    return samples[i] + (h - static_cast<double>(i)) * (next - samples[i]);
  };
  s.p50 = quantile(0.50);
  s.p90 = quantile(0.90);
  s.p95 = quantile(0.95);
  s.p99 = quantile(0.99);
  s.p999 = quantile(0.999);
  return s;
}

latency_summary summarize(std::vector<double>& samples, const quantile_histogram& bucketed) {
  const std::uint64_t n = samples.size();
  if (n == 0 || bucketed.count() != n) return summarize(samples);
  // Order statistics i and i + 1 of each quantile (type 7, as summarize(samples)): the zeros
  // come first; any other lies in a bucket that the histogram names, with its count below it.
  struct order_statistic {
    std::uint64_t rank, bucket = 0, below = 0;
    bool zero = false;
    double value = 0;
  };
  order_statistic wanted[order_statistics_wanted];
  int wanted_count = 0;
  for (double p : quantiles) {
    std::uint64_t i = static_cast<std::uint64_t>(p * static_cast<double>(n - 1));
    for (std::uint64_t r = i; r <= i + 1 && r < n; ++r) {
      order_statistic& x = wanted[wanted_count++];
      x.rank = r;
      x.zero = !bucketed.bucket_of_rank(r, x.bucket, x.below);
      if (x.zero && r >= bucketed.zeros()) return summarize(samples);  // not these samples'
    }
  }
  // The wanted buckets, each once, in increasing order.
  std::uint64_t buckets[order_statistics_wanted];
  int bucket_total = 0;
  for (int j = 0; j < wanted_count; ++j)
    if (!wanted[j].zero &&
        std::find(buckets, buckets + bucket_total, wanted[j].bucket) == buckets + bucket_total)
      buckets[bucket_total++] = wanted[j].bucket;
  for (int a = 1; a < bucket_total; ++a)  // already in order (ranks increase); a sort costs nothing
    for (int b = a; b > 0 && buckets[b] < buckets[b - 1]; --b)
      std::swap(buckets[b], buckets[b - 1]);
  // One pass for the mean, the extremes and the samples in wanted buckets. The bucket test is
  // a table lookup without a branch (a key outside the range reads the last, unmarked slot),
  // so only the rare hit is a taken branch.
  const std::uint64_t lowest = bucket_total > 0 ? buckets[0] : 0,
                      span = bucket_total > 0 ? buckets[bucket_total - 1] - lowest + 1 : 0;
  std::vector<std::uint8_t> is_wanted(span + 1, 0);
  std::uint64_t expected = 0;
  for (int j = 0; j < bucket_total; ++j) {
    is_wanted[buckets[j] - lowest] = 1;
    expected += bucketed.bucket_count(buckets[j]);
  }
  std::vector<double> selected;
  selected.reserve(expected);
  double sum = 0, largest = samples[0], smallest = samples[0];
  for (double x : samples) {
    sum += x;
    largest = std::max(largest, x);
    smallest = std::min(smallest, x);
    const std::uint64_t k = std::min(quantile_histogram::bucket(x) - lowest, span);
    if (is_wanted[k]) selected.push_back(x);
  }
  // The histogram counts negatives with the zeros: then select as summarize(samples) does.
  if (smallest < 0 || selected.size() != expected) return summarize(samples);
  latency_summary s;
  s.count = n;
  s.mean = sum / static_cast<double>(n);
  s.max = largest;
  if (largest == 0) return s;  // a phase this scenario never spends time in
  // A bucket can hold many samples (a deterministic demand): select rather than sort, each
  // position at or above the previous one (the ranks increase).
  std::uint64_t searched_from = 0;
  for (int j = 0; j < wanted_count; ++j) {
    if (wanted[j].zero) continue;
    std::uint64_t before = 0;  // selected samples in wanted buckets below this one
    for (int m = 0; m < bucket_total && buckets[m] < wanted[j].bucket; ++m)
      before += bucketed.bucket_count(buckets[m]);
    const std::uint64_t at = before + (wanted[j].rank - wanted[j].below);
    if (at < searched_from)
      searched_from = 0;  // tiny samples: i + 1 of one quantile is past i of the next
    std::nth_element(selected.begin() + static_cast<std::ptrdiff_t>(searched_from),
                     selected.begin() + static_cast<std::ptrdiff_t>(at), selected.end());
    searched_from = at;
    wanted[j].value = selected[at];
  }
  // The wanted values in order: each quantile takes its i (and i + 1 unless i is the last).
  int next_wanted = 0;
  auto quantile = [&](double p) {
    double h = p * static_cast<double>(n - 1);
    std::uint64_t i = static_cast<std::uint64_t>(h);
    double vi = wanted[next_wanted].value;
    if (i + 1 >= n) {
      next_wanted += 1;
      return vi;
    }
    double next = wanted[next_wanted + 1].value;
    next_wanted += 2;
    return vi + (h - static_cast<double>(i)) * (next - vi);
  };
  s.p50 = quantile(0.50);
  s.p90 = quantile(0.90);
  s.p95 = quantile(0.95);
  s.p99 = quantile(0.99);
  s.p999 = quantile(0.999);
  return s;
}

}  // namespace headroom
