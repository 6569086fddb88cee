// What the HTML report shows, gathered in one place: the calibration's measured steps (latency,
// where the time went, the pool), the model's predicted curves over the calibrated rate range
// (a sweep), the plan and validation files when given, and the live window from Prometheus
// when asked for (live_window.hpp). Drawing is report_page.hpp.
#pragma once

#include <boost/json.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "calibration_file.hpp"
#include "knee_check.hpp"
#include "live_window.hpp"
#include "slo.hpp"
#include "sweep.hpp"

namespace headroom::report {

// Server-Timing phases in the order a request passes them (DESIGN.md).
inline constexpr const char* step_phases[] = {"queue", "wait", "dial", "query", "release"};
inline constexpr int step_phase_count = 5;

// One live step of the calibration, as measured.
struct measured_step {
  std::size_t index = 0;
  std::string label;              // the run (pool setting) it belongs to
  double rate = 0, achieved = 0;  // offered and completed req/s
  int repeat = 0;
  bool stopped_early = false;
  bool at_model_setting = true;              // measured at the pool setting the model describes
  double p50 = 0, p99 = 0;                   // all requests, seconds (+inf: none finished)
  bool has_phases = false;                   // the service sent Server-Timing
  double phase_mean[step_phase_count] = {};  // seconds per request, by step_phases
  bool has_pool = false;                     // the service's /metrics answered
  double dials_per_s = 0, waits_per_s = 0, closes_per_s = 0;
};

// The model's predictions at one pool setting over the report's rates.
struct predicted_curve {
  std::string setting;  // "max_open 0 (unlimited), max_idle 2"
  std::string label;  // the setting and its role: "... (calibrated)", "... (plan's recommendation)"
  int max_open = 0, max_idle = 0;
  std::vector<sweep_result> points;
  double knee = 0;  // knee_rate at the report's confidence (0: not within the rates)
};

struct report_inputs {
  std::string calibration_path;
  boost::json::object provenance;  // the calibration's
  std::vector<std::string> not_fitted;
  scenario model;
  latency_slo slo;
  double confidence = 0.9;  // P(one run meets the SLO) that defines the knee
  std::vector<measured_step> steps;
  std::vector<predicted_curve> curves;    // [0]: the calibrated setting; then the plan's pick
  calibrate::knee_comparison knee_check;  // the steps' knee beside the model's (knee_check.hpp)
  std::optional<boost::json::object> plan, validation;
  std::optional<live_window> live;  // --prometheus
  std::string generated_at;         // UTC, ISO 8601
};

struct report_request {
  std::string calibration, plan, validation;  // paths; plan and validation may be ""
  std::optional<std::string> slo;             // default: the plan's, else the calibration's
  int points = 12;                            // predicted rates per curve
  double precision = 0.05;                    // run.target_half_width of each prediction
  int threads = 0;
  live_request live;  // live.prometheus "": no live window
  // Each predicted point as it finishes (curve label, sweep progress).
  std::function<void(const std::string&, const sweep_progress&)> progress;
};

// Reads the files (and the live window, first, so an unreachable Prometheus fails before the
// sweeps) and runs the sweeps. Throws std::invalid_argument naming the file and the problem for
// a missing, unreadable or foreign file, calibrate::prometheus_error when Prometheus fails.
report_inputs gather_report_inputs(const report_request& request);

// The steps of a calibration as the report shows them (the model's pool setting decides
// at_model_setting).
std::vector<measured_step> measured_steps(const calibrate::calibration_file& f,
                                          const scenario& model);

// The report's rates: `points` evenly spaced from half the lowest calibrated rate to 1.5 x the
// highest (the knee is often just past the last step a guard allowed).
std::vector<double> report_rates(const std::vector<measured_step>& steps, int points);

}  // namespace headroom::report
