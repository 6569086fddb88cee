// Calibration steps from Prometheus history instead of the load generator: the window is cut into
// periods of steady load (passive_periods.hpp) and each period becomes one calibration_step built
// from the increases of the service's histograms and counters and of node_exporter's CPU over it.
// The steps then go through the same fit as an active calibration's (calibration_fit.hpp).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "calibration_step.hpp"
#include "latency_histogram.hpp"
#include "passive_periods.hpp"
#include "prometheus_client.hpp"

namespace headroom::calibrate {

struct passive_options {
  std::string job = "headroom-service";  // the service's scrape job
  std::string node_job = "node";         // node_exporter's scrape job
  double from = 0, to = 0;               // unix seconds
  double step = 15;                      // seconds: the resolution of the rate series
  double tolerance = 0.10;               // of a steady period's rate
  double min_period = 0;                 // seconds; 0 = three steps
};

struct passive_reading {
  std::vector<steady_period> periods;   // every steady period found (one step each)
  std::vector<calibration_step> steps;  // source "prometheus"
  // What Prometheus cannot give, one line each ("what: because ..."), for the fit's not_fitted.
  std::vector<std::string> not_measured;
  int instances = 0;  // of the job, seen in the window
};

// Reads the window. Throws prometheus_error (unreachable, not Prometheus, a refused query) and
// std::invalid_argument with one line for bad input: to <= from, a window shorter than a
// steady period, a job with no series in the window, no steady period found.
passive_reading read_passive_steps(const prometheus_client& prometheus, const passive_options& o);

// A latency_histogram from a Prometheus histogram's cumulative bucket counts (upper bound `le`,
// count), in any order, +Inf included. Counts are rounded to whole requests (increase() gives
// fractions); each bucket's requests are spread evenly inside it, the +Inf bucket's put at the
// last finite bound (a lower bound). `zero_first`: the first bucket holds requests that spent no
// time in the phase (wait, dial: Server-Timing's 0), recorded as 0. A positive `exact_sum`
// replaces the spread values' sum, so the mean is exact.
latency_histogram histogram_from_buckets(std::vector<std::pair<double, double>> cumulative,
                                         bool zero_first = false, double exact_sum = 0);

}  // namespace headroom::calibrate
