// Cross-validation and the calibration's summary (cross_validation.hpp).
#include "cross_validation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "knee_check.hpp"
#include "prediction.hpp"

namespace headroom::calibrate {
namespace json = boost::json;
namespace {

json::value finite_or_null(double x) { return std::isfinite(x) ? json::value(x) : nullptr; }

double number(const json::object& o, const char* k) {
  auto it = o.find(k);
  if (it == o.end()) return NAN;
  const json::value& v = it->value();
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return NAN;
}

// "2.5 per second + 0.01 per request, exponential(mean 0.004 s)": the fitted stalls, or "none".
std::string fmt_stalls(const scenario& m) {
  if (!(m.stall_rate > 0 || m.stall_per_request > 0)) return "none";
  std::ostringstream os;
  if (m.stall_rate > 0) os << m.stall_rate << " per second";
  if (m.stall_rate > 0 && m.stall_per_request > 0) os << " + ";
  if (m.stall_per_request > 0) os << m.stall_per_request << " per request";
  os << ", " << m.stall_length.describe();
  return os.str();
}

std::string fmt_wakeup(const scenario& m) {
  if (m.wakeup_delay.is_zero()) return "none";
  std::ostringstream os;
  os << m.wakeup_delay.describe() << " after " << m.wakeup_idle << " s idle or more";
  return os.str();
}

}  // namespace

std::string format_ms(double seconds) {
  if (!std::isfinite(seconds)) return "fell over";
  std::ostringstream os;
  os << std::fixed << std::setprecision(seconds < 0.01 ? 2 : 1) << seconds * 1e3;
  return os.str();
}

double achieved_rate(const calibration_step& s) {
  const double d = s.load.duration > 0 ? s.load.duration : s.window;
  return d > 0 ? static_cast<double>(s.load.completed) / d : 0;
}

double measured_quantile(const calibration_step& s, double quantile) {
  return s.load.latency_all.percentile(100 * quantile);
}

json::array cross_validate(const std::vector<calibration_step>& steps,
                           const calibration_fit_options& options, const latency_slo& slo,
                           const std::function<void(std::size_t, std::size_t)>& progress) {
  json::array rows;
  std::vector<const calibration_step*> usable;
  for (const calibration_step& s : steps)
    if (!s.stopped_early && s.load.completed > 0 && s.window > 0) usable.push_back(&s);
  for (std::size_t i = 0; i < usable.size(); ++i) {
    const calibration_step& s = *usable[i];
    if (progress) progress(i, usable.size());
    calibration_fit_options o = options;
    o.leave_out.push_back(s.index);
    json::object row{{"index", s.index},
                     {"label", s.label},
                     {"rate", s.rate},
                     {"repeat", s.repeat},
                     {"measured",
                      {{"achieved", achieved_rate(s)},
                       {"quantile", finite_or_null(measured_quantile(s, slo.quantile))}}}};
    try {
      calibration_fit fit = fit_calibration(steps, o);
      scenario sc = scenario_for_step(fit.model, s);
      sc.run.slo_quantile = slo.quantile;
      sc.run.slo_latency = slo.latency;
      prediction p = predict(sc);
      const live_run_estimate& l = p.live;
      const double q = measured_quantile(s, slo.quantile);
      row["predicted"] = {{"stable", p.stable},
                          {"p_stable", l.p_stable},
                          {"low", finite_or_null(l.low)},
                          {"median", finite_or_null(l.median)},
                          {"high", finite_or_null(l.high)},
                          {"p_slo", l.p_slo},
                          {"throughput", l.throughput_median}};
      row["inside"] = q >= l.low && q <= l.high;
    } catch (const std::exception& e) {
      row["predicted"] = nullptr;
      row["error"] = e.what();
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string knee_summary(const calibration_file& f, const latency_slo& slo) {
  if (!f.model) return "";
  const knee_comparison k = compare_knees(*f.model, f.steps, slo);
  if (!k.available) return "";
  std::ostringstream out;
  out << "Knee (the highest rate at which most " << k.step_length << " s runs meet " << slo.text()
      << "): measured " << (k.measured_is_lower_bound ? "at least " : "")
      << knee_rate_text(k.measured) << " req/s, predicted "
      << (k.predicted_is_lower_bound ? "over " : "") << knee_rate_text(k.predicted) << " req/s\n";
  if (k.disagrees) out << k.line << "\n";
  return out.str();
}

std::string calibration_summary(const calibration_file& f, const latency_slo& slo) {
  std::ostringstream out;
  out << "Steps (" << slo.name() << " of all requests, failed and unfinished included):\n";
  out << "  label                          rate  rep   achieved   " << slo.name()
      << " ms   failed  dials/s  CPU ms/req\n";
  for (const calibration_step& s : f.steps) {
    const double req = s.service ? s.service->requests : static_cast<double>(s.load.completed);
    const double cpu = s.cpu && req > 0 ? 1e3 * (s.cpu->service + s.cpu->database) / req : NAN;
    const double dials = s.service && s.window > 0 ? s.service->dials / s.window : NAN;
    char line[256];
    std::snprintf(line, sizeof line, "  %-28.28s %7g  %3d  %9.1f  %9s  %7llu  %7.1f  %10.3f%s\n",
                  s.label.c_str(), s.rate, s.repeat + 1, achieved_rate(s),
                  format_ms(measured_quantile(s, slo.quantile)).c_str(),
                  static_cast<unsigned long long>(s.load.failed()), dials, cpu,
                  s.stopped_early ? "  (stopped)" : "");
    out << line;
  }
  if (!f.model) {
    out << "No model: the fit failed.\n";
    return out.str();
  }
  const scenario& m = *f.model;
  out << "Fitted (seconds of CPU unless said):\n"
      << "  per request: service "
      << m.parse_cpu.mean() + m.query_service_cpu.mean() + m.respond_cpu.mean() << ", database "
      << m.query_db_cpu.mean() << ", generator " << m.generator_cpu.mean() << "\n"
      << "  per runnable task and request: service " << m.service_cpu_per_runnable << ", database "
      << m.database_cpu_per_runnable << " (up to " << m.service_max_runnable << " and "
      << m.database_max_runnable << " runnable tasks; 0 = no bound)\n"
      << "  per connection: fork " << m.dial_fork.mean() << ", backend start " << m.dial_cpu.mean()
      << ", cold first query " << m.query_cold_db_cpu.mean() << ", exit " << m.close_db_cpu.mean()
      << "\n"
      << "  delays: query " << m.query_delay.describe() << ", dial " << m.dial_delay.describe()
      << ", network " << m.network_rtt.describe() << "\n"
      << "  background utilization " << m.background_utilization << ", run-to-run speed sigma "
      << m.speed_sigma << " (CPU), " << m.delay_sigma << " (delays), cores " << m.cores << "\n"
      << "  stalls of the intake: " << fmt_stalls(m) << "\n"
      << "  wake-up of an idle host: " << fmt_wakeup(m) << "\n";
  auto list = [&](const char* key, const char* title) {
    auto it = f.fit.find(key);
    if (it == f.fit.end() || !it->value().is_array() || it->value().get_array().empty()) return;
    out << title << ":\n";
    for (const json::value& v : it->value().get_array())
      if (v.is_string()) out << "  - " << std::string(v.get_string()) << "\n";
  };
  list("not_fitted", "Not fitted");
  list("assumptions", "Assumed");
  if (!f.cross_validation.empty()) {
    out << "Cross-validation (each step predicted by a fit without it; " << slo.name()
        << ", interval for one run: 5-95 %):\n"
        << "  rate     measured ms   predicted ms [low - high]      P(SLO)  inside\n";
    int inside = 0, n = 0;
    for (const json::value& v : f.cross_validation) {
      const json::object& r = v.as_object();
      const json::object& meas = r.at("measured").as_object();
      char line[256];
      if (!r.at("predicted").is_object()) {
        std::snprintf(line, sizeof line, "  %-7g  %11s   (no prediction: %s)\n", number(r, "rate"),
                      format_ms(number(meas, "quantile")).c_str(),
                      r.contains("error") ? std::string(r.at("error").as_string()).c_str() : "");
        out << line;
        continue;
      }
      const json::object& p = r.at("predicted").as_object();
      const bool in = r.at("inside").as_bool();
      ++n;
      inside += in;
      const double lo = p.at("low").is_null() ? INFINITY : number(p, "low");
      const double med = p.at("median").is_null() ? INFINITY : number(p, "median");
      const double hi = p.at("high").is_null() ? INFINITY : number(p, "high");
      std::snprintf(line, sizeof line, "  %-7g  %11s   %9s [%s - %s]   %6.2f  %s\n",
                    number(r, "rate"), format_ms(number(meas, "quantile")).c_str(),
                    format_ms(med).c_str(), format_ms(lo).c_str(), format_ms(hi).c_str(),
                    number(p, "p_slo"), in ? "yes" : "no");
      out << line;
    }
    out << "  " << inside << " of " << n << " measured inside the predicted interval\n";
  }
  out << knee_summary(f, slo);
  return out.str();
}

}  // namespace headroom::calibrate
