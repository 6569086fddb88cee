// Tests of the HDR-style latency histogram: accuracy against sorted samples, merging, extremes.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "latency_histogram.hpp"

using headroom::calibrate::latency_histogram;

namespace {
// The sample HdrHistogram's rank rule picks for percentile p (1-based rank, at least 1).
double exact_percentile(const std::vector<double>& sorted, double p) {
  auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.5);
  rank = std::max<std::size_t>(rank, 1);
  return sorted[rank - 1];
}
}  // namespace

TEST_CASE("percentiles are within the 3-significant-digit bound of the sorted samples") {
  // Log-normal latencies from ~10 µs to ~10 s, the range a load test meets.
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(std::log(2e-3), 2.0);
  latency_histogram h;
  std::vector<double> samples;
  for (int i = 0; i < 200000; ++i) {
    double v = std::clamp(dist(rng), 1e-5, 10.0);
    samples.push_back(v);
    h.record(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double p : {1.0, 10.0, 50.0, 90.0, 95.0, 99.0, 99.9, 99.99}) {
    double exact = exact_percentile(samples, p);
    double got = h.percentile(p);
    // The histogram reports the top of the exact value's bucket: never below the value (less
    // 0.5 µs of rounding to whole microseconds) and above it by at most one bucket width,
    // 1/1024 of the value (+1 µs unit), which is inside "3 significant digits" (1/1000).
    CHECK(got >= exact - 0.5e-6);
    CHECK(got <= exact * (1.0 + 1.0 / 1000.0) + 1e-6);
  }
  CHECK(h.percentile(100) == samples.back());  // max is kept exactly
  CHECK(h.min() == samples.front());
  CHECK(h.total_count() == samples.size());
  double mean = 0;
  for (double v : samples) mean += v;
  mean /= static_cast<double>(samples.size());
  CHECK(h.mean() == Approx(mean).epsilon(1e-9));  // from exact sums, only rounding error
}

TEST_CASE("merging two histograms equals recording every value in one") {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> fast(1000.0);  // mean 1 ms
  std::exponential_distribution<double> slow(5.0);     // mean 200 ms
  latency_histogram a, b, all;
  for (int i = 0; i < 50000; ++i) {
    double x = fast(rng), y = slow(rng);
    a.record(x);
    b.record(y);
    all.record(x);
    all.record(y);
  }
  a.merge(b);
  CHECK(a.nonzero_counts() == all.nonzero_counts());  // bucket for bucket, exactly
  CHECK(a.total_count() == all.total_count());
  CHECK(a.min() == all.min());
  CHECK(a.max() == all.max());
  for (double p : {50.0, 99.0, 99.99}) CHECK(a.percentile(p) == all.percentile(p));
  latency_histogram coarse(2);
  CHECK_THROWS_AS(a.merge(coarse), std::invalid_argument);
}

TEST_CASE("extreme values are kept at the ends of the range and out-of-range ones are counted") {
  latency_histogram h;
  CHECK(h.percentile(99) == 0.0);  // empty: 0, not a crash
  CHECK(h.max() == 0.0);
  h.record(0.0);
  h.record(1e-6);
  h.record(3600.0);
  CHECK(h.clamped_count() == 0);
  CHECK(h.percentile(0) == 0.0);
  CHECK(h.percentile(100) == 3600.0);
  // 1 h is in range; its bucket is 1/1024 wide at most, so the p50 of {0, 1 µs, 1 h} is 1 µs.
  CHECK(h.percentile(50) == Approx(1e-6).margin(1e-9));
  h.record(7200.0);  // beyond 1 h: clamped to 1 h and counted
  h.record(-1.0);    // a negative duration is a caller's clock bug: clamped to 0 and counted
  CHECK(h.clamped_count() == 2);
  CHECK(h.total_count() == 5);
  CHECK(h.max() == 3600.0);
  CHECK(h.min() == 0.0);
  // Values below 2048 µs are exact to the microsecond.
  latency_histogram small;
  small.record(1.234e-3);
  CHECK(small.percentile(50) == Approx(1.234e-3).margin(1e-12));
}

TEST_CASE("the sparse bucket list rebuilds the same histogram") {
  latency_histogram h;
  for (int i = 1; i <= 1000; ++i) h.record(i * 1e-4);
  latency_histogram copy;
  copy.restore(h.nonzero_counts(), h.min(), h.max(), h.sum(), h.sum_of_squares(),
               h.clamped_count());
  CHECK(copy.nonzero_counts() == h.nonzero_counts());
  CHECK(copy.percentile(99.9) == h.percentile(99.9));
  CHECK(copy.mean() == h.mean());
}
