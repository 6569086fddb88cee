// Does the model contradict its own evidence? The knee a calibration's steps measured at the
// model's pool setting beside the knee the model predicts for the same steps, and one line for
// the user when they differ by more than knee_tolerance (calibrate, plan and report print it).
//
// Both knees use one definition, so they compare like with like: the highest rate at which most
// step-length runs meet the SLO. Measured: the highest step rate where most repeats met the SLO
// (its percentile over every request; a step a guard stopped missed it). Predicted: the highest
// rate where the model gives P(one run of the steps' length meets the SLO) >= 0.5, each run with
// its own machine speed (predict_live_runs), found by bisection to 2 %.
#pragma once

#include <string>
#include <vector>

#include "calibration_step.hpp"
#include "scenario.hpp"
#include "slo.hpp"

namespace headroom::calibrate {

inline constexpr double knee_tolerance = 0.15;  // relative difference that earns a warning

struct rate_verdict {
  double rate = 0;
  int met = 0, repeats = 0;  // steps at this rate, and those within the SLO
  bool most_met() const { return 2 * met > repeats; }
};

struct knee_comparison {
  bool available = false;           // false: no steps at the model's setting (nothing to compare)
  std::vector<rate_verdict> rates;  // the steps at the model's setting, by rate
  double measured = 0;              // highest rate where most repeats met (0: none did)
  bool measured_is_lower_bound = false;   // no faster rate was measured: the knee is >= measured
  double predicted = 0;                   // 0: even the lowest rate misses in the model
  bool predicted_is_lower_bound = false;  // the search's ceiling (4 x the highest step) met
  double step_length = 0, warmup = 0;     // seconds, the steps' median
  double difference = 0;                  // (predicted - measured) / measured
  bool disagrees = false;
  std::string line;  // the warning when disagrees, else ""
};

// The steps at `model`'s pool setting (steps without a reported setting count as at it).
// `runs`: simulated runs per rate. Throws scenario_error for a scenario the model refuses.
knee_comparison compare_knees(const scenario& model, const std::vector<calibration_step>& steps,
                              const latency_slo& slo, int runs = 40);

// A rate as the knee lines print it: whole req/s from 100 up, else one decimal.
std::string knee_rate_text(double rate);

// The measured half alone (no simulation): the demo's check rate comes from it.
knee_comparison measured_knee(const scenario& model, const std::vector<calibration_step>& steps,
                              const latency_slo& slo);

}  // namespace headroom::calibrate
