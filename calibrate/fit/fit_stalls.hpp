// The intake's stalls (scenario.stall_rate, stall_length) fitted by simulation: the one part of
// the model no single measurement pins down, so candidates are simulated against every step.
//
// A stall shows in three places: the tail of the latency (a request due during a pause waits
// for its end), the dials (a burst needs more connections than the pool keeps idle) and, through
// those dials, whether a run meets the SLO. None of them has a closed form once the pool and the
// crowded CPU are in the path, so each candidate (a share of time stalled, a mean length) is
// simulated as each step's own live runs, and the one whose runs look most like the
// measurements wins (CALIBRATION.md, "Stalls").
#pragma once

#include <boost/json.hpp>
#include <vector>

#include "calibration_step.hpp"
#include "scenario.hpp"

namespace headroom::calibrate {

// The scenario's stall fields as fitted (none, also when there is no step to fit on: rate and
// per_request 0, length none).
struct stall_fit {
  double rate = 0;         // stalls per second, whatever the load (scenario.stall_rate)
  double per_request = 0;  // and per request offered (scenario.stall_per_request)
  distribution length = distribution::none();  // scenario.stall_length
  boost::json::object report;
};

struct stall_fit_options {
  int runs_per_step = 6;           // live runs simulated per step and candidate
  // A run whose latency at slo_quantile passes slo_latency missed the SLO.
  double slo_quantile = 0.99, slo_latency = 0.06;
};

// `model`: the fitted scenario without stalls. `ran`: steps that ran to their end (one whose p99
// at slo_quantile passed slo_latency missed the SLO); `stopped`: steps a guard stopped (latency or
// errors), missed too. Each step is simulated at its own rate, pool setting and length
// (scenario_for_step).
stall_fit fit_stalls(const scenario& model, const std::vector<const calibration_step*>& ran,
                     const std::vector<const calibration_step*>& stopped,
                     const stall_fit_options& options = {});

}  // namespace headroom::calibrate
