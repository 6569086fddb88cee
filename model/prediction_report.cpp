// Predictions written for people and programs: the JSON of `headroom predict --json` and the
// text table (SCENARIO.md "The prediction"). Reading scenarios lives in scenario_json.hpp.
#include "prediction_report.hpp"

#include <boost/json.hpp>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "duration.hpp"

namespace headroom {

namespace json = boost::json;

namespace {
json::value estimate_json(const estimate& e) {
  json::object o{{"value", e.value}};
  if (e.has_ci) {
    o["ci_low"] = e.ci_low;
    o["ci_high"] = e.ci_high;
  }
  return o;
}
json::value latency_json(const latency_estimate& l) {
  return json::object{{"count", l.count},
                      {"mean", estimate_json(l.mean)},
                      {"p50", estimate_json(l.p50)},
                      {"p90", estimate_json(l.p90)},
                      {"p95", estimate_json(l.p95)},
                      {"p99", estimate_json(l.p99)},
                      {"p999", estimate_json(l.p999)},
                      {"max", json::object{{"value", l.max}}}};
}
json::value deployment_json(const scenario& s) {
  const deployment_spec& d = s.deployment;
  return json::object{
      {"colocated", colocated(s)},
      {"instances", d.instances},
      {"service_cores", colocated(s) ? json::value(nullptr) : json::value(d.service_cores)},
      {"database_cores", colocated(s) ? json::value(nullptr) : json::value(d.database_cores)},
      {"database_rtt", d.database_rtt.mean()},
      {"database_max_connections", d.database_max_connections}};
}
json::value run_json(const scenario& s, const prediction& p) {
  return json::object{
      {"replications", p.replications},
      {"requests_per_replication", p.requests_per_replication},
      {"confidence", p.confidence},
      {"p99_target_half_width", s.run.target_half_width},
      {"p99_half_width", p.stable && p.replications > 0
                             ? json::value(p.phases[phase_total].p99.relative_half_width())
                             : json::value(nullptr)},
      {"target_reached", p.target_reached},
      {"simulated_seconds", p.simulated_seconds},
      {"events", p.events},
      {"wall_seconds", p.wall_seconds}};
}
}  // namespace

json::value prediction_to_json(const scenario& s, const prediction& p) {
  json::object o;
  o["stable"] = p.stable;
  if (!p.stable) o["unstable_reason"] = p.reason;
  o["scenario"] = json::object{{"name", s.name},
                               {"rate", offered_rate(s)},
                               {"cores", s.cores},
                               {"workers", s.workers},
                               {"max_open", s.pool.max_open},
                               {"max_idle", s.pool.max_idle},
                               {"wait_timeout", s.wait_timeout},
                               {"go_version", to_string(s.pool.go)},
                               {"waiter_order", to_string(effective_waiter_order(s.pool))},
                               {"waiter_order_overridden", s.pool.order.has_value()},
                               {"deployment", deployment_json(s)}};
  o["run"] = run_json(s, p);
  // Refused up front: nothing was simulated, so no figure exists.
  const bool simulated = p.replications > 0;
  // Percentiles of a run whose backlog keeps growing describe only how long it ran.
  const bool latency_known = p.stable && simulated;
  o["latency"] = latency_known ? latency_json(p.phases[phase_total]) : json::value(nullptr);
  o["latency_all"] = latency_known ? latency_json(p.all_requests) : json::value(nullptr);
  if (latency_known) {
    json::object phases;
    for (int i = 0; i < phase_count; ++i) phases[phase_name(i)] = latency_json(p.phases[i]);
    o["phases"] = std::move(phases);
  } else {
    o["phases"] = nullptr;
  }
  // One live run's spread: simulated even when the long run was refused up front.
  if (p.live.computed) {
    const live_run_estimate& l = p.live;
    auto finite = [](double x) { return std::isfinite(x) ? json::value(x) : json::value(nullptr); };
    o["live_run"] = json::object{
        {"length", l.length},
        {"warmup", l.warmup},
        {"runs", l.runs},
        {"quantile", l.quantile},
        {"low", finite(l.low)},
        {"median", finite(l.median)},
        {"high", finite(l.high)},
        {"p_stable", l.p_stable},
        {"p_slo", l.p_slo >= 0 ? json::value(l.p_slo) : nullptr},
        {"slo_latency", s.run.slo_latency > 0 ? json::value(s.run.slo_latency) : nullptr},
        {"throughput_low", l.throughput_low},
        {"throughput_median", l.throughput_median},
        {"throughput_high", l.throughput_high},
        {"late_fraction", l.late_fraction}};
  } else {
    o["live_run"] = nullptr;
  }
  if (!simulated) {
    for (const char* k :
         {"throughput_rps", "error_rate", "utilization", "pool", "database", "littles_law"})
      o[k] = nullptr;
    return o;
  }
  // What the window saw (also when unstable: how far the throughput got, what was busy).
  o["throughput_rps"] = estimate_json(p.throughput);
  o["error_rate"] = estimate_json(p.error_rate);
  json::object u;
  for (const auto& [name, e] : p.utilization) u[name] = estimate_json(e);
  o["utilization"] = std::move(u);
  if (p.has_pool) {
    o["pool"] = json::object{{"dials_per_s", estimate_json(p.pool.dials_per_s)},
                             {"closes_per_s", estimate_json(p.pool.closes_per_s)},
                             {"waits_per_s", estimate_json(p.pool.waits_per_s)},
                             {"wait_timeouts_per_s", estimate_json(p.pool.wait_timeouts_per_s)},
                             {"failed_dials_per_s", estimate_json(p.pool.failed_dials_per_s)},
                             {"broken_per_s", estimate_json(p.pool.broken_per_s)},
                             {"mean_open", estimate_json(p.pool.mean_open)},
                             {"mean_idle", estimate_json(p.pool.mean_idle)},
                             {"mean_in_use", estimate_json(p.pool.mean_in_use)},
                             {"peak_open", p.pool.peak_open}};
    // The shared database: every instance's connections and dials.
    const int limit = s.deployment.database_max_connections;
    o["database"] = json::object{{"peak_connections", p.database_peak_connections},
                                 {"max_connections", limit},
                                 {"over_max_connections", p.database_peak_connections > limit},
                                 {"dials_per_s", estimate_json(p.database_dials_per_s)}};
  }
  // An invariant of stable runs only.
  o["littles_law"] =
      p.stable ? json::value(json::object{
                     {"mean_in_system", p.mean_in_system.value},
                     {"arrival_rate_x_mean_time", p.arrival_rate.value * p.mean_sojourn.value}})
               : json::value(nullptr);
  return o;
}

namespace {

double ms_or_inf(double seconds) { return seconds * 1000; }

// One live run's spread (live_run_estimate): what a single load test of that length would show.
std::string live_run_lines(const scenario& s, const prediction& p) {
  const live_run_estimate& l = p.live;
  if (!l.computed) return "";
  std::ostringstream os;
  os << std::fixed << std::setprecision(1);
  std::ostringstream qn;  // (a stream: g++ 12 warns falsely about "p" + std::string)
  qn << "p" << l.quantile * 100;
  const std::string q = qn.str();
  os << "one live run of " << format_duration(l.length) << " (after " << format_duration(l.warmup)
     << " warm-up), over " << l.runs << " simulated runs"
     << (s.speed_sigma > 0 ? " with their own machine speed" : "") << ":\n";
  auto v = [](double x) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(x < 0.01 ? 2 : 1);
    if (std::isfinite(x))
      o << ms_or_inf(x) << " ms";
    else
      o << "fell over";
    return o.str();
  };
  os << "  " << q << " (all requests) " << v(l.median) << "; 90 % of runs within [" << v(l.low)
     << ", " << v(l.high) << "]";
  if (l.p_slo >= 0)
    os << "; P(" << q << " < " << format_duration(s.run.slo_latency)
       << ") = " << std::setprecision(2) << l.p_slo;
  os << std::setprecision(2) << "; runs that kept up: " << l.p_stable * 100 << " %\n";
  os << std::setprecision(1) << "  throughput " << l.throughput_median << " req/s ["
     << l.throughput_low << ", " << l.throughput_high << "]";
  if (s.client_connections > 0)
    os << std::setprecision(2) << ", late in the client " << l.late_fraction * 100 << " %";
  os << "\n";
  return os.str();
}

std::string long_run_table(const scenario& s, const prediction& p);

}  // namespace

std::string prediction_table(const scenario& s, const prediction& p) {
  return long_run_table(s, p) + live_run_lines(s, p);
}

namespace {

std::string long_run_table(const scenario& s, const prediction& p) {
  std::ostringstream os;
  os << std::fixed;
  os << "scenario " << (s.name.empty() ? "(unnamed)" : s.name) << ": " << std::setprecision(1)
     << offered_rate(s) << " req/s offered, ";
  const deployment_spec& d = s.deployment;
  if (d.instances > 1) os << d.instances << " instances, ";
  if (colocated(s)) {
    os << s.cores << " cores" << (d.instances > 1 ? " shared by all" : "");
  } else {
    os << d.service_cores << " cores per instance, database " << d.database_cores
       << " cores, database round trip " << format_duration(d.database_rtt.mean());
  }
  if (s.use_pool) {
    os << ", Go " << to_string(s.pool.go) << " pool: max_open " << s.pool.max_open
       << (s.pool.max_open == 0 ? " (unlimited)" : "") << ", max_idle " << s.pool.max_idle
       << ", waiters " << to_string(effective_waiter_order(s.pool))
       << (s.pool.order ? " (override)" : "") << ", wait_timeout "
       << (s.wait_timeout > 0 ? format_duration(s.wait_timeout) : "none");
  }
  os << "\n";
  if (!p.stable) {
    // Percentiles of a run whose backlog keeps growing describe only how long it ran.
    os << "UNSTABLE: " << p.reason << "\n";
    if (p.replications == 0) {
      os << "no latency figures: refused before simulating (the demand above exceeds capacity)\n";
      return os.str();
    }
    os << "no latency figures: the backlog kept growing, so percentiles would only measure how "
          "long the run lasted\n";
    // The per-owner cpu_* figures are CPU demand submitted in the window (over cores x
    // window); overloaded, that is more than the cores served, so say demand, not use.
    os << std::setprecision(1) << "throughput reached " << p.throughput.value
       << " req/s; utilization:";
    for (const auto& [name, e] : p.utilization)
      if (name == "cpu" || name.rfind("cpu_", 0) != 0)
        os << " " << name << " " << e.value * 100 << " %";
    os << "; CPU demand offered (x capacity):";
    for (const auto& [name, e] : p.utilization)
      if (name.rfind("cpu_", 0) == 0)
        os << " " << name.substr(4) << " " << std::setprecision(2) << e.value;
    os << "\n";
    return os.str();
  }
  int pct = static_cast<int>(std::lround(p.confidence * 100));
  os << "ms; latency: successful requests, latency_all: all requests (a failed wait at its "
        "deadline), phases: successful requests; "
     << p.replications << " replications of " << p.requests_per_replication << " requests, [" << pct
     << " % interval]\n";
  os << std::left << std::setw(12) << "" << std::right;
  for (const char* h : {"mean", "p50", "p90", "p95", "p99", "p99.9", "max"})
    os << std::setw(10) << h;
  os << "\n";
  auto ms = [](double x) { return x * 1000; };
  auto row = [&](const char* name, const latency_estimate& l) {
    os << std::left << std::setw(12) << name << std::right << std::setprecision(3);
    for (const estimate* e : {&l.mean, &l.p50, &l.p90, &l.p95, &l.p99, &l.p999})
      os << std::setw(10) << ms(e->value);
    os << std::setw(10) << ms(l.max) << "\n";
  };
  // "latency" is the successes' total; "latency_all" adds requests failed at their wait deadline,
  // counted at the time they failed (as headroom load's latency_all).
  row("latency", p.phases[phase_total]);
  row("latency_all", p.all_requests);
  for (int ph = 0; ph < phase_total; ++ph) row(phase_name(ph), p.phases[ph]);
  const estimate& p99 = p.phases[phase_total].p99;
  os << std::setprecision(3) << "p99 " << ms(p99.value) << " ms";
  if (p99.has_ci) os << " [" << ms(p99.ci_low) << ", " << ms(p99.ci_high) << "]";
  os << (p.target_reached ? "" : "  (NOT the requested precision: stopped at run.max_replications)")
     << "\n";
  os << std::setprecision(1) << "throughput " << p.throughput.value << " req/s";
  if (p.throughput.has_ci) os << " [" << p.throughput.ci_low << ", " << p.throughput.ci_high << "]";
  os << std::setprecision(3) << ", errors " << p.error_rate.value * 100 << " %\n";
  os << "utilization:";
  for (const auto& [name, e] : p.utilization)
    os << " " << name << " " << std::setprecision(1) << e.value * 100 << " %";
  os << "\n";
  if (p.has_pool) {
    os << std::setprecision(1) << "pool" << (s.deployment.instances > 1 ? " (per instance)" : "")
       << ": dials " << p.pool.dials_per_s.value << "/s, closes " << p.pool.closes_per_s.value
       << "/s, waits " << p.pool.waits_per_s.value << "/s, timeouts "
       << p.pool.wait_timeouts_per_s.value << "/s, mean open " << std::setprecision(2)
       << p.pool.mean_open.value << ", idle " << p.pool.mean_idle.value << ", in use "
       << p.pool.mean_in_use.value << ", peak open " << std::setprecision(0) << p.pool.peak_open;
    // Only when they happened: refused dials (max_connections) and broken connections.
    if (p.pool.failed_dials_per_s.value > 0)
      os << std::setprecision(1) << ", failed dials " << p.pool.failed_dials_per_s.value << "/s";
    if (p.pool.broken_per_s.value > 0)
      os << std::setprecision(1) << ", broken " << p.pool.broken_per_s.value << "/s";
    os << "\n";
    os << "database: peak connections " << p.database_peak_connections << " (max_connections "
       << s.deployment.database_max_connections << "), dials " << std::setprecision(1)
       << p.database_dials_per_s.value << "/s"
       << (s.deployment.instances > 1 ? " (all instances)" : "") << "\n";
    if (std::string w = database_connections_warning(s, p); !w.empty())
      os << "WARNING: " << w << "\n";
  }
  os << (p.stable ? "stable" : "not stable") << std::setprecision(2) << "; simulated "
     << p.simulated_seconds << " s in " << p.wall_seconds << " s wall\n";
  return os.str();
}

}  // namespace

}  // namespace headroom
