// Periods of steady load in a window of history: consecutive intervals whose request rate stays
// within a tolerance of the period's mean, long enough to be measured. Each becomes one step of
// a passive calibration (passive_calibration.hpp). Pure: rates in, periods out.
#pragma once

#include <cstddef>
#include <vector>

namespace headroom::calibrate {

// The request rate over one interval (start, end], requests/s; NaN when nothing was scraped.
struct rate_interval {
  double start = 0, end = 0;
  double rate = 0;
};

struct steady_period {
  double start = 0, end = 0;  // unix seconds
  double mean_rate = 0;       // of its intervals, requests/s
  std::size_t intervals = 0;
};

struct steady_period_options {
  double tolerance = 0.10;  // every interval within +-10 % of the period's mean
  double min_length = 45;   // seconds; shorter runs of steady load are dropped
  double min_rate = 1;      // requests/s; an idle service tells nothing about its latency
};

// Scans left to right: an interval joins the open period while it stays within the tolerance of
// the period's running mean (the mean with it included); otherwise the period closes and a new
// one starts at that interval. An interval that straddles a change of load falls between two
// levels and ends up in a period too short to keep.
std::vector<steady_period> find_steady_periods(const std::vector<rate_interval>& intervals,
                                               const steady_period_options& options = {});

}  // namespace headroom::calibrate
