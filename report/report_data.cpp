// Gathering the report's inputs (report_data.hpp): files read and checked here, the model run
// through the sweep library, nothing drawn.
#include "report_data.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "calibration_fit.hpp"
#include "cross_validation.hpp"

namespace headroom::report {

namespace json = boost::json;

namespace {

json::object read_json_object(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(path + ": cannot read the " + what);
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(text.str(), ec);
  if (ec || !v.is_object())
    throw std::invalid_argument(path + ": not a JSON object (" + what + ")");
  return std::move(v.as_object());
}

std::string string_or(const json::object& o, const char* key, const std::string& fallback) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().get_string())
                                                  : fallback;
}

double number_or(const json::object& o, const char* key, double fallback) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_number() ? it->value().to_number<double>() : fallback;
}

// headroom plan --json's output (the plan JSON contract): its format, and the fields drawn.
json::object read_plan(const std::string& path) {
  json::object plan = read_json_object(path, "plan (headroom plan --json)");
  if (string_or(plan, "format", "") != "headroom-plan/1")
    throw std::invalid_argument(path + ": not a plan (\"format\" is not \"headroom-plan/1\")");
  return plan;
}

// headroom validate --json's output: its cases are what the report draws.
json::object read_validation(const std::string& path) {
  json::object v = read_json_object(path, "validation (headroom validate --json)");
  auto it = v.find("cases");
  if (it == v.end() || !it->value().is_array())
    throw std::invalid_argument(path + ": not a validation (no \"cases\" list)");
  return v;
}

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string setting_label(int max_open, int max_idle) {
  return "max_open " + std::to_string(max_open) + (max_open == 0 ? " (unlimited)" : "") +
         ", max_idle " + std::to_string(max_idle);
}

}  // namespace

std::vector<measured_step> measured_steps(const calibrate::calibration_file& f,
                                          const scenario& model) {
  std::vector<measured_step> out;
  for (const calibrate::calibration_step& s : f.steps) {
    measured_step m;
    m.index = s.index;
    m.label = s.label;
    m.rate = s.rate;
    m.repeat = s.repeat;
    m.stopped_early = s.stopped_early;
    m.achieved = calibrate::achieved_rate(s);
    m.at_model_setting = !s.pool || (s.pool->max_open == model.pool.max_open &&
                                     s.pool->max_idle == model.pool.max_idle);
    // No request finished: the latency is not known, drawn at the chart's top.
    const bool any = s.load.latency_all.total_count() > 0;
    m.p50 = any ? calibrate::measured_quantile(s, 0.50) : INFINITY;
    m.p99 = any ? calibrate::measured_quantile(s, 0.99) : INFINITY;
    for (int i = 0; i < step_phase_count; ++i) {
      auto it = s.load.phases.find(step_phases[i]);
      if (it == s.load.phases.end() || it->second.total_count() == 0) continue;
      m.has_phases = true;
      m.phase_mean[i] = it->second.mean();
    }
    if (s.service && s.window > 0) {
      m.has_pool = true;
      m.dials_per_s = s.service->dials / s.window;
      m.waits_per_s = s.service->waits / s.window;
      m.closes_per_s = s.service->closes / s.window;
    }
    out.push_back(m);
  }
  return out;
}

std::vector<double> report_rates(const std::vector<measured_step>& steps, int points) {
  if (steps.empty() || points < 2) return {};
  double lo = steps.front().rate, hi = lo;
  for (const measured_step& s : steps) {
    lo = std::min(lo, s.rate);
    hi = std::max(hi, s.rate);
  }
  lo *= 0.5;
  hi *= 1.5;
  std::vector<double> rates;
  for (int i = 0; i < points; ++i) rates.push_back(std::round(lo + (hi - lo) * i / (points - 1)));
  rates.erase(std::unique(rates.begin(), rates.end()), rates.end());
  return rates;
}

report_inputs gather_report_inputs(const report_request& r) {
  report_inputs in;
  in.calibration_path = r.calibration;
  in.generated_at = utc_now();
  calibrate::calibration_file file = calibrate::read_calibration_file(r.calibration);
  if (!file.model)
    throw std::invalid_argument(r.calibration +
                                ": holds no fitted model (the calibration's fit "
                                "failed or was interrupted before one step)");
  in.model = *file.model;
  if (!r.live.prometheus.empty()) in.live = read_live_window(r.live, in.model);
  in.provenance = file.provenance;
  if (auto it = file.fit.find("not_fitted"); it != file.fit.end() && it->value().is_array())
    for (const json::value& v : it->value().get_array())
      if (v.is_string()) in.not_fitted.emplace_back(v.get_string());
  if (!r.plan.empty()) in.plan = read_plan(r.plan);
  if (!r.validation.empty()) in.validation = read_validation(r.validation);

  // The SLO: asked for, else the plan's (what it was planned for), else the calibration's.
  if (r.slo) {
    in.slo = parse_slo(*r.slo);
  } else if (in.plan && in.plan->contains("slo") && (*in.plan)["slo"].is_object()) {
    const json::object& s = (*in.plan)["slo"].get_object();
    in.slo.quantile = number_or(s, "quantile", 0.99);
    in.slo.latency = number_or(s, "latency", 0.060);
  } else {
    in.slo = parse_slo(string_or(in.provenance, "slo", "p99=60ms"));
  }
  if (in.plan) in.confidence = number_or(*in.plan, "confidence", in.confidence);

  in.steps = measured_steps(file, in.model);
  if (in.steps.empty()) throw std::invalid_argument(r.calibration + ": has no measured steps");
  in.knee_check = calibrate::compare_knees(in.model, file.steps, in.slo);

  scenario base = in.model;
  base.run.slo_quantile = in.slo.quantile;
  base.run.slo_latency = in.slo.latency;
  base.run.target_half_width = r.precision;
  // One live run as long as a calibration step, as the measured points are.
  if (base.run.live_length <= 0)
    base.run.live_length = number_or(in.provenance, "step_duration", 20);
  struct setting {
    std::string role;
    int max_open, max_idle;
  };
  std::vector<setting> settings{{"calibrated", base.pool.max_open, base.pool.max_idle}};
  if (in.plan && in.plan->contains("recommendation") && (*in.plan)["recommendation"].is_object()) {
    const json::object& rec = (*in.plan)["recommendation"].get_object();
    const int mo = static_cast<int>(number_or(rec, "max_open", base.pool.max_open));
    const int mi = static_cast<int>(number_or(rec, "max_idle", base.pool.max_idle));
    if (mo != base.pool.max_open || mi != base.pool.max_idle)
      settings.push_back({"plan's recommendation", mo, mi});
  }
  const std::vector<double> rates = report_rates(in.steps, r.points);
  for (const setting& st : settings) {
    sweep_grid grid;
    grid.rates = rates;
    grid.max_open = {st.max_open};
    grid.max_idle = {st.max_idle};
    predicted_curve c;
    c.setting = setting_label(st.max_open, st.max_idle);
    c.label = c.setting + " (" + st.role + ")";
    sweep_options o;
    o.threads = r.threads;
    if (r.progress) o.progress = [&](const sweep_progress& p) { r.progress(c.label, p); };
    c.max_open = st.max_open;
    c.max_idle = st.max_idle;
    c.points = run_sweep(base, grid, o);
    c.knee = knee_rate(c.points, in.confidence);
    in.curves.push_back(std::move(c));
  }
  if (in.live) add_model_levels(*in.live, base, r.threads);
  return in;
}

}  // namespace headroom::report
