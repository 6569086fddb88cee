// From measured steps to a calibrated scenario: the model's CPU demands, delays, pool setting,
// machine noise and client, each taken from the measurement that pins it down best, with a
// report of how well each was fitted and of what could not be.
//
// Where each parameter comes from (CALIBRATION.md has the reasons):
//   CPU per request, per dial, growth with runnable tasks, per-second floor: least squares
//     across steps (fit_demands) of the service's and PostgreSQL's CPU from /proc against the
//     service's own request and dial counters.
//   The postmaster's fork: its own CPU per dial (/proc), a CPU job on the shared CPU.
//   The rest of a connection's life (backend start, cold first query, exit): the database's CPU
//     per dial minus the fork, split by the shares measured on this kind of machine (DESIGN.md).
//   Query, release and dial delays: the Server-Timing phases at the lowest load (where the CPU
//     is least shared), minus the CPU the model adds on the same path.
//   Network round trip: what the client measured beyond the service's phases, at lowest load.
//   Background: host CPU not used by the service, PostgreSQL or the generator.
//   Speed factor: the spread of CPU per request between repeats of the same step.
//   Stalls of the intake: simulated against every step's p99, dials and whether it fell over
//     (fit_stalls), once everything else is fitted.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "calibration_step.hpp"
#include "scenario.hpp"

namespace headroom::calibrate {

struct calibration_fit_options {
  std::string label;  // the run whose pool setting the scenario describes ("": the last step's)
  bool exclude_generator = false;  // plan for production: no generator CPU, no client
  std::vector<std::size_t> leave_out;  // step indices not used (cross-validation)
  double slo_quantile = 0.99, slo_latency = 0;  // the SLO the file's predictions report (0: none)
  // Fit the intake's stalls by simulation (fit_stalls.hpp); seconds of CPU, so tests of other
  // parts may turn it off. `stall_runs`: live runs simulated per step and candidate.
  bool fit_stalls = true;
  int stall_runs = 6;
  // An earlier active calibration's model (calibrate --prometheus --prior FILE): what these
  // steps cannot give is taken from it, said in the assumptions, instead of this machine
  // kind's figures (DESIGN.md) or nothing: the postmaster's fork when no step measured the
  // postmaster's CPU (Prometheus has no per-process CPU), a connection's whole CPU when no step
  // dialed enough, and the run-to-run variability (speed and tail) when no step was repeated.
  std::optional<scenario> prior;
  std::string prior_name;  // the file, for the assumptions
};

struct calibration_fit {
  scenario model;
  boost::json::object report;           // fit quality, by part (CALIBRATION.md)
  std::vector<std::string> not_fitted;  // one line each: what, and why not
  std::vector<std::string> assumptions;  // fixed shares and priors used instead of a fit
};

// Throws std::invalid_argument when no step can be used.
calibration_fit fit_calibration(const std::vector<calibration_step>& steps,
                                const calibration_fit_options& options = {});

// The model's scenario for step `s` of a calibration: the fitted model at that step's pool
// setting, offered rate, length and client (for cross-validation and validate).
scenario scenario_for_step(const scenario& fitted, const calibration_step& s);

}  // namespace headroom::calibrate
