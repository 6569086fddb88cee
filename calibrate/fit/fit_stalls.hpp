// The intake's stalls (scenario.stall_rate, stall_length) fitted by simulation: the one part of
// the model no single measurement pins down, so candidates are simulated against every step.
//
// A stall shows in three places: the tail of the latency (a request due during a pause waits
// for its end), the dials (a burst needs more connections than the pool keeps idle) and, through
// those dials, whether a run falls over. None of them has a closed form once the pool and the
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
  double fell_over_latency = 0.6;  // a run whose p99 passes this counts as fallen over
};

// `model`: the fitted scenario without stalls. `ran`: steps that ran to their end (one whose p99
// passed fell_over_latency counts as fallen over); `stopped`: steps a guard stopped (latency or
// errors), fallen over. Each step is simulated at its own rate, pool setting and length
// (scenario_for_step).
stall_fit fit_stalls(const scenario& model, const std::vector<const calibration_step*>& ran,
                     const std::vector<const calibration_step*>& stopped,
                     const stall_fit_options& options = {});

}  // namespace headroom::calibrate
