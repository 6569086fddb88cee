// Cross-validation of a calibration (each step predicted by a fit that left it out) and the
// calibration's text summary.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "calibration_file.hpp"
#include "calibration_fit.hpp"
#include "slo.hpp"

namespace headroom::calibrate {

// One row per usable step: {"index", "label", "rate", "repeat", "measured": {"achieved",
// "quantile"}, "predicted": {"stable", "p_stable", "low", "median", "high", "p_slo",
// "throughput"}, "inside"} (seconds; the quantile is the SLO's). `progress(i, n)` before each.
boost::json::array cross_validate(
    const std::vector<calibration_step>& steps, const calibration_fit_options& options,
    const latency_slo& slo, const std::function<void(std::size_t, std::size_t)>& progress = {});

// The file as a person reads it: steps, fitted parameters, what was not fitted, the
// cross-validation, and the knee check (knee_summary).
std::string calibration_summary(const calibration_file& f, const latency_slo& slo);

// The knee the steps measured at the model's setting beside the model's (knee_check.hpp), and
// the warning line when they disagree; "" without a model or steps at its setting.
std::string knee_summary(const calibration_file& f, const latency_slo& slo);

// Seconds as milliseconds for a table (2 decimals under 10 ms, else 1); "fell over" for a run
// that did not finish (+inf).
std::string format_ms(double seconds);

// What one live step measured, as the plan and validate read it: achieved rate and the SLO's
// percentile of all requests (failed and censored ones included).
double achieved_rate(const calibration_step& s);
double measured_quantile(const calibration_step& s, double quantile);

}  // namespace headroom::calibrate
