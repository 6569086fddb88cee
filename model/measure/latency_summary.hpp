// Exact order statistics (mean, p50 ... p99.9, max) of one set of latency samples: Hyndman &
// Fan type 7 quantiles, found by selection rather than a full sort.
#pragma once

#include <cstdint>
#include <vector>

#include "quantile_histogram.hpp"

namespace headroom {

struct latency_summary {
  std::uint64_t count = 0;
  double mean = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0, p999 = 0, max = 0;
};
latency_summary summarize(std::vector<double>& samples);  // reorders `samples`
// The same figures (bit-identical) with `bucketed`, a histogram of exactly these samples, as
// an index: only the few samples in the buckets that hold the wanted order statistics are
// sorted. Falls back to the selection above if a sample is negative.
latency_summary summarize(std::vector<double>& samples, const quantile_histogram& bucketed);

}  // namespace headroom
