// The study's dashboard without Grafana: the service's request rate, latency, phases, pool and
// CPU over a live time window, read from Prometheus, with the model's figures at the same pool
// setting and rate to read beside them. Reading is here; drawing is live_charts.hpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "scenario.hpp"
#include "sweep.hpp"

namespace headroom::report {

// Where and when to read (`headroom report --prometheus URL --job NAME --from T --to T --step D`,
// the same flags as `headroom calibrate`'s).
struct live_request {
  std::string prometheus;  // base URL, "http://127.0.0.1:9090"; "" = no live window
  std::string job = "headroom-service";
  std::string node_job = "node";  // node_exporter's job (scripts/observe --node-job)
  std::string from = "now-15m", to = "now";  // calibrate::parse_time_point's forms
  std::optional<double> step;                // seconds; default: default_live_step
};

// One line of a panel: (unix seconds, value) points; a NaN value (Prometheus's answer for a
// quantile of no requests) breaks the line.
struct live_series {
  std::string name;  // legend: "code 200", "p99", "dial"
  std::vector<double> t, v;
};

// A figure the model predicts for a panel, drawn as a dashed level across it.
struct model_level {
  std::string name;  // "model p99"
  double value = 0;
  std::string series;  // the live series it is to be read against ("p99"), for its colour
};

// One panel of the dashboard: what Prometheus had, and what it had nothing for.
struct live_panel {
  std::string title;    // "Latency"
  std::string y_label;  // with its unit: "latency (ms, log scale)"
  double y_scale = 1;   // tick labels are value x y_scale (seconds drawn as ms: 1000)
  bool y_log = false;
  bool slo = false;  // the SLO is drawn on it
  std::vector<live_series> series;
  std::vector<std::string> missing;  // metrics that had no series in the window
  std::vector<model_level> model;
};

struct live_window {
  std::string prometheus, job, node_job;
  double from = 0, to = 0, step = 0;
  double rate_window = 0;  // seconds each rate() and histogram_quantile() looks back
  std::vector<live_panel> panels;
  // The points at which requests arrived (the total request rate above zero), the median total
  // rate over them (all instances; the median, so the partial rate windows at a load test's
  // start and end do not pull it down), and how many instances answered: the rate the model is
  // run at is busy_rate / instances.
  std::vector<double> busy_times;
  double busy_rate = 0;
  int instances = 0;
  // The service's pool setting as its gauges said (else the calibration's, said so).
  int max_open = 0, max_idle = 0;
  std::string go_version;  // headroom_pool_info's label; "" when not scraped
  bool setting_from_service = false;
  // The model at that setting and busy_rate / instances (none when no request arrived).
  std::optional<sweep_result> model;
};

// A series' median over the window's busy_times (NaN when it has no value at any of them).
double busy_median(const live_series& s, const std::vector<double>& busy_times);

// The step that gives a panel at most about 300 points: (to - from) / 300, rounded up to a
// whole second, at least 1 s.
double default_live_step(double from, double to);

// Reads every panel's series. Throws calibrate::prometheus_error (one line naming the URL and
// the problem) when Prometheus does not answer, std::invalid_argument for a bad --from, --to or
// --step. A metric that has no series becomes a "missing" entry of its panel, never an error.
// `calibrated` gives the pool setting when the service's gauges are missing.
live_window read_live_window(const live_request& request, const scenario& calibrated);

// Runs the model at the window's setting and rate (base: the report's scenario, with its SLO
// and precision) and adds its figures to the panels. Does nothing when no request arrived.
void add_model_levels(live_window& w, const scenario& base, int threads);

}  // namespace headroom::report
