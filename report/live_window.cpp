// Reading the live window from Prometheus (live_window.hpp): one PromQL query per line of the
// study's dashboard, then the model run once at the setting and rate the window showed.
#include "live_window.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>

#include "prometheus_client.hpp"
#include "prometheus_text.hpp"
#include "report_data.hpp"

namespace headroom::report {

namespace {

using calibrate::prometheus_client;
using calibrate::prometheus_series;

// A PromQL string literal: the job name inside double quotes.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string seconds_text(double s) { return std::to_string(static_cast<long long>(s)) + "s"; }

// Asks Prometheus for one query over the window and names every series it returns by
// `name_of` (its labels); a series that never has a number is as good as none.
class window_reader {
 public:
  window_reader(const prometheus_client& client, const live_window& w) : client_(client), w_(w) {}

  std::vector<live_series> range(
      const std::string& promql,
      const std::function<std::string(const prometheus_series&)>& name_of) const {
    std::vector<live_series> out;
    for (const prometheus_series& s : client_.query_range(promql, w_.from, w_.to, w_.step)) {
      live_series l;
      l.name = name_of(s);
      bool any = false;
      for (const auto& [t, v] : s.points) {
        l.t.push_back(t);
        l.v.push_back(v);
        any = any || std::isfinite(v);
      }
      if (any) out.push_back(std::move(l));
    }
    return out;
  }

  // One line named `name`, or a "no data" entry for `metric` in the panel.
  void add(live_panel& p, const std::string& metric, const std::string& name,
           const std::string& promql) const {
    auto found = range(promql, [&](const prometheus_series&) { return name; });
    if (found.empty()) {
      if (std::find(p.missing.begin(), p.missing.end(), metric) == p.missing.end())
        p.missing.push_back(metric);
      return;
    }
    p.series.push_back(std::move(found.front()));
  }

  // The first value of an instant query at the window's end, or none.
  std::optional<prometheus_series> latest(const std::string& promql) const {
    auto found = client_.query(promql, w_.to);
    if (found.empty() || found.front().points.empty()) return std::nullopt;
    return found.front();
  }

 private:
  const prometheus_client& client_;
  const live_window& w_;
};

live_panel request_rate_panel(const window_reader& read, const std::string& sel,
                              const std::string& rw) {
  live_panel p{"Request rate by status", "requests per second (1/s)", 1, false, false, {}, {}, {}};
  p.series = read.range(
      "sum by (code) (rate(http_request_seconds_count{" + sel + ",path=\"/\"}[" + rw + "]))",
      [](const prometheus_series& s) {
        auto it = s.labels.find("code");
        return "code " + (it == s.labels.end() ? std::string("?") : it->second);
      });
  if (p.series.empty()) p.missing.push_back("http_request_seconds");
  std::sort(p.series.begin(), p.series.end(),
            [](const live_series& a, const live_series& b) { return a.name < b.name; });
  return p;
}

live_panel latency_panel(const window_reader& read, const std::string& sel, const std::string& rw) {
  live_panel p{"Latency", "latency (ms, log scale)", 1000, true, true, {}, {}, {}};
  for (const auto& [q, name] : {std::pair{"0.5", "p50"}, std::pair{"0.99", "p99"}})
    read.add(p, "http_request_seconds", name,
             std::string("histogram_quantile(") + q +
                 ", sum by (le) (rate(http_request_seconds_bucket{" + sel + ",path=\"/\"}[" + rw +
                 "])))");
  return p;
}

live_panel phases_panel(const window_reader& read, const std::string& sel, const std::string& rw) {
  live_panel p{"p99 of each phase", "latency (ms, log scale)", 1000, true, false, {}, {}, {}};
  auto found = read.range(
      "histogram_quantile(0.99, sum by (le, phase) (rate(headroom_phase_seconds_bucket{" + sel +
          ",phase!=\"total\"}[" + rw + "])))",
      [](const prometheus_series& s) {
        auto it = s.labels.find("phase");
        return it == s.labels.end() ? std::string("?") : it->second;
      });
  // In the order a request passes the phases, whatever order Prometheus answered in.
  for (const char* phase : step_phases)
    for (live_series& s : found)
      if (s.name == phase) p.series.push_back(std::move(s));
  if (p.series.empty()) p.missing.push_back("headroom_phase_seconds");
  return p;
}

live_panel pool_connections_panel(const window_reader& read, const std::string& sel) {
  live_panel p{"Pool connections", "connections (count)", 1, false, false, {}, {}, {}};
  for (const char* what : {"open", "in_use", "idle"}) {
    const std::string metric = std::string("headroom_pool_") + what;
    read.add(p, metric, what, "sum(" + metric + "{" + sel + "})");
  }
  return p;
}

live_panel pool_events_panel(const window_reader& read, const std::string& sel,
                             const std::string& rw) {
  live_panel p{"Pool events", "events per second (1/s)", 1, false, false, {}, {}, {}};
  const std::pair<const char*, const char*> counters[] = {
      {"headroom_pool_dials_total", "dials/s"},
      {"headroom_pool_wait_count_total", "waits/s"},
      {"headroom_pool_closed_max_idle_total", "closes (max_idle)/s"}};
  for (const auto& [metric, name] : counters)
    read.add(p, metric, name, std::string("sum(rate(") + metric + "{" + sel + "}[" + rw + "]))");
  return p;
}

live_panel cpu_panel(const window_reader& read, const std::string& sel, const std::string& node,
                     const std::string& rw) {
  live_panel p{"CPU", "CPU busy (cores)", 1, false, false, {}, {}, {}};
  read.add(p, "process_cpu_seconds_total", "service process",
           "sum(rate(process_cpu_seconds_total{" + sel + "}[" + rw + "]))");
  read.add(p, "node_cpu_seconds_total", "machine (node_exporter)",
           "sum(rate(node_cpu_seconds_total{" + node + ",mode!=\"idle\"}[" + rw + "]))");
  return p;
}

// The total request rate at each point, over all status codes.
live_series total_rate(const live_panel& rate_panel) {
  std::map<double, double> total;
  for (const live_series& s : rate_panel.series)
    for (std::size_t i = 0; i < s.t.size(); ++i)
      if (std::isfinite(s.v[i])) total[s.t[i]] += s.v[i];
  live_series out{"total", {}, {}};
  for (const auto& [t, v] : total) {
    out.t.push_back(t);
    out.v.push_back(v);
  }
  return out;
}

std::optional<double> utilization(const prediction& p, const std::string& name) {
  for (const auto& [n, e] : p.utilization)
    if (n == name) return e.value;
  return std::nullopt;
}

live_panel* panel(live_window& w, const std::string& title) {
  for (live_panel& p : w.panels)
    if (p.title == title) return &p;
  return nullptr;
}

}  // namespace

double busy_median(const live_series& s, const std::vector<double>& busy_times) {
  std::vector<double> values;
  for (std::size_t i = 0; i < s.t.size() && i < s.v.size(); ++i)
    if (std::isfinite(s.v[i]) && std::binary_search(busy_times.begin(), busy_times.end(), s.t[i]))
      values.push_back(s.v[i]);
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

double default_live_step(double from, double to) {
  return std::max(1.0, std::ceil((to - from) / 300));
}

live_window read_live_window(const live_request& r, const scenario& calibrated) {
  live_window w;
  w.prometheus = r.prometheus;
  w.job = r.job;
  w.node_job = r.node_job;
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  w.from = calibrate::parse_time_point(r.from, now);
  w.to = calibrate::parse_time_point(r.to, now);
  if (!(w.to > w.from))
    throw std::invalid_argument("--from " + r.from + " is not before --to " + r.to);
  w.step = r.step.value_or(default_live_step(w.from, w.to));
  if (!(w.step > 0)) throw std::invalid_argument("--step: must be > 0");
  // rate() needs two scrapes inside its look-back: four steps, and never under 4 s, covers a
  // scrape interval of up to twice the step (scripts/observe scrapes every second).
  w.rate_window = std::max(4.0, 4 * std::ceil(w.step));

  const prometheus_client client(r.prometheus);
  const window_reader read(client, w);
  const std::string sel = "job=" + quoted(r.job), rw = seconds_text(w.rate_window);
  w.panels.push_back(request_rate_panel(read, sel, rw));
  w.panels.push_back(latency_panel(read, sel, rw));
  w.panels.push_back(phases_panel(read, sel, rw));
  w.panels.push_back(pool_connections_panel(read, sel));
  w.panels.push_back(pool_events_panel(read, sel, rw));
  w.panels.push_back(cpu_panel(read, sel, "job=" + quoted(r.node_job), rw));
  const live_series total = total_rate(w.panels.front());
  for (std::size_t i = 0; i < total.t.size(); ++i)  // in time order (busy_median searches them)
    if (total.v[i] > 0) w.busy_times.push_back(total.t[i]);
  if (!w.busy_times.empty()) w.busy_rate = busy_median(total, w.busy_times);

  // The setting and instances the window saw: the last value any scrape in the window gave.
  const std::string whole = seconds_text(std::ceil(w.to - w.from));
  if (auto up = read.latest("count(count by (instance) (last_over_time(up{" + sel + "}[" + whole +
                            "])))"))
    w.instances = calibrate::metric_count(up->points.front().second, "instances");
  auto max_open =
      read.latest("max(last_over_time(headroom_pool_max_open{" + sel + "}[" + whole + "]))");
  auto max_idle =
      read.latest("max(last_over_time(headroom_pool_max_idle{" + sel + "}[" + whole + "]))");
  w.setting_from_service = max_open && max_idle;
  w.max_open = w.setting_from_service
                   ? calibrate::metric_count(max_open->points.front().second,
                                             "headroom_pool_max_open")
                   : calibrated.pool.max_open;
  w.max_idle = w.setting_from_service
                   ? calibrate::metric_count(max_idle->points.front().second,
                                             "headroom_pool_max_idle")
                   : calibrated.pool.max_idle;
  if (auto info = read.latest("last_over_time(headroom_pool_info{" + sel + "}[" + whole + "])"))
    if (auto it = info->labels.find("go_version"); it != info->labels.end())
      w.go_version = it->second;
  return w;
}

void add_model_levels(live_window& w, const scenario& base, int threads) {
  if (!(w.busy_rate > 0)) return;
  const double instances = std::max(1, w.instances);
  scenario s = base;
  s.pool.max_open = w.max_open;
  s.pool.max_idle = w.max_idle;
  if (!w.go_version.empty()) s.pool.go = parse_go_version(w.go_version);
  sweep_point at;
  at.rate = w.busy_rate / instances;
  at.max_open = w.max_open;
  at.max_idle = w.max_idle;
  at.cores = s.cores;
  w.model = run_sweep_point(s, at, threads);
  const prediction& p = w.model->p;
  const bool known = p.stable && p.replications > 0;
  if (!known) return;  // the page says the model found it unstable; no level to draw

  // The model describes one instance at its share of the rate; counts and rates add up over
  // the instances, latencies do not.
  if (live_panel* rp = panel(w, "Request rate by status"))
    rp->model.push_back({"model throughput", instances * p.throughput.value, "code 200"});
  if (live_panel* lp = panel(w, "Latency")) {
    lp->model.push_back({"model p50", p.all_requests.p50.value, "p50"});
    lp->model.push_back({"model p99", p.all_requests.p99.value, "p99"});
  }
  if (live_panel* pp = panel(w, "p99 of each phase"))
    for (int i = 0; i < step_phase_count; ++i)
      pp->model.push_back(
          {std::string("model ") + step_phases[i], p.phases[i].p99.value, step_phases[i]});
  if (p.has_pool) {
    if (live_panel* cp = panel(w, "Pool connections")) {
      cp->model.push_back({"model open (mean)", instances * p.pool.mean_open.value, "open"});
      cp->model.push_back({"model in_use (mean)", instances * p.pool.mean_in_use.value, "in_use"});
      cp->model.push_back({"model idle (mean)", instances * p.pool.mean_idle.value, "idle"});
    }
    if (live_panel* ep = panel(w, "Pool events")) {
      ep->model.push_back({"model dials/s", instances * p.pool.dials_per_s.value, "dials/s"});
      ep->model.push_back({"model waits/s", instances * p.pool.waits_per_s.value, "waits/s"});
      ep->model.push_back(
          {"model closes/s", instances * p.pool.closes_per_s.value, "closes (max_idle)/s"});
    }
  }
  if (live_panel* cp = panel(w, "CPU")) {
    // Co-located (as when calibrated on one machine): shares of scenario.cores; apart: the
    // service's share of its own host.
    if (colocated(s)) {
      if (auto u = utilization(p, "cpu_service"))
        cp->model.push_back({"model service", *u * s.cores, "service process"});
      if (auto u = utilization(p, "cpu"))
        cp->model.push_back({"model machine", *u * s.cores, "machine (node_exporter)"});
    } else if (auto u = utilization(p, "service_cpu")) {
      cp->model.push_back(
          {"model service", *u * s.deployment.service_cores * instances, "service process"});
    }
  }
}

}  // namespace headroom::report
