// Steps of a passive calibration read from Prometheus (passive_calibration.hpp). Every figure of
// a period is the increase of a counter (or of histogram buckets) over exactly that period,
// evaluated at its end: Prometheus handles counter resets and extrapolates to the period's edges.
#include "passive_calibration.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <stdexcept>

#include "prometheus_text.hpp"

namespace headroom::calibrate {
namespace {

// A PromQL string literal's content: backslashes and double quotes escaped.
std::string quoted(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

// A range selector's duration, in whole milliseconds (PromQL takes no fractions).
std::string range(double seconds) { return std::to_string(std::llround(seconds * 1000)) + "ms"; }

std::string utc(double t) {
  const std::time_t s = static_cast<std::time_t>(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&s));
  return buf;
}

std::string fmt(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

// The value of a query that yields at most one series; NaN when it yields none.
double scalar(const prometheus_client& p, const std::string& promql, double at) {
  auto r = p.query(promql, at);
  return r.empty() || r[0].points.empty() ? std::nan("") : r[0].points[0].second;
}

double or_zero(double x) { return std::isfinite(x) ? x : 0; }

// Reads one period; the queries name the job through `svc` ({job="..."}) and the node through
// `node`.
struct period_reader {
  const prometheus_client& p;
  std::string svc_job, node_job;
  double at = 0, length = 0;

  std::string sel(const std::string& job, const std::string& extra = "") const {
    return "{job=\"" + quoted(job) + "\"" + extra + "}";
  }
  std::string increase(const std::string& metric, const std::string& extra = "") const {
    return "increase(" + metric + sel(svc_job, extra) + "[" + range(length) + "])";
  }
  double counter(const std::string& metric, const std::string& extra = "") const {
    return scalar(p, "sum(" + increase(metric, extra) + ")", at);
  }
  // Cumulative bucket counts by the value of `by` (phase, or code), each sorted by le.
  std::map<std::string, std::vector<std::pair<double, double>>> buckets(
      const std::string& metric, const std::string& by, const std::string& extra) const {
    std::map<std::string, std::vector<std::pair<double, double>>> out;
    for (const prometheus_series& s :
         p.query("sum by (" + by + ", le) (" + increase(metric + "_bucket", extra) + ")", at)) {
      auto le = s.labels.find("le");
      if (le == s.labels.end() || s.points.empty()) continue;
      const double bound = le->second == "+Inf" ? HUGE_VAL : std::stod(le->second);
      out[s.labels.count(by) ? s.labels.at(by) : ""].emplace_back(bound, s.points[0].second);
    }
    return out;
  }
  std::map<std::string, double> sums(const std::string& metric, const std::string& by,
                                     const std::string& extra) const {
    std::map<std::string, double> out;
    for (const prometheus_series& s :
         p.query("sum by (" + by + ") (" + increase(metric + "_sum", extra) + ")", at))
      if (!s.points.empty()) out[s.labels.count(by) ? s.labels.at(by) : ""] = s.points[0].second;
    return out;
  }
  // A gauge's lowest and highest value over the period (they differ if it changed).
  std::pair<double, double> gauge_range(const std::string& metric) const {
    const std::string r = "[" + range(length) + "]";
    return {scalar(p, "min(min_over_time(" + metric + sel(svc_job) + r + "))", at),
            scalar(p, "max(max_over_time(" + metric + sel(svc_job) + r + "))", at)};
  }
};

// Requests whose status is below 400 (successes, as the generator's `latency` set).
bool success_code(const std::string& code) {
  try {
    return std::stoi(code) < 400;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

latency_histogram histogram_from_buckets(std::vector<std::pair<double, double>> cumulative,
                                         bool zero_first, double exact_sum) {
  std::sort(cumulative.begin(), cumulative.end());
  latency_histogram h;
  double lower = 0, last_finite = 0;
  long long below = 0;  // whole requests counted in the buckets before this one
  bool first = true;
  for (const auto& [le, count] : cumulative) {
    // Cumulative counts rounded once each, so the buckets' counts sum to the rounded total.
    const long long upto = std::max(below, std::llround(count));
    const long long n = upto - below;
    below = upto;
    if (n > 0) {
      if (!std::isfinite(le)) {
        h.record(last_finite, static_cast<std::uint64_t>(n));  // beyond the last bound: unknown
      } else if (first && zero_first) {
        h.record(0, static_cast<std::uint64_t>(n));
      } else {
        // Evenly spread: at most 20 points per bucket, the requests shared among them.
        const long long points = std::min<long long>(n, 20);
        for (long long j = 0; j < points; ++j) {
          const double v =
              lower + (le - lower) * (static_cast<double>(j) + 0.5) / static_cast<double>(points);
          const long long share = n / points + (j < n % points ? 1 : 0);
          h.record(v, static_cast<std::uint64_t>(share));
        }
      }
    }
    if (std::isfinite(le)) lower = last_finite = le;
    first = false;
  }
  if (exact_sum > 0 && h.total_count() > 0)
    h.restore(h.nonzero_counts(), h.min(), h.max(), exact_sum, h.sum_of_squares(),
              h.clamped_count());
  return h;
}

passive_reading read_passive_steps(const prometheus_client& p, const passive_options& o) {
  if (!(o.step > 0)) throw std::invalid_argument("--step must be > 0");
  if (!(o.to > o.from))
    throw std::invalid_argument("--to (" + utc(o.to) + ") must be after --from (" + utc(o.from) +
                                ")");
  const double min_period = o.min_period > 0 ? o.min_period : 3 * o.step;
  const double window = o.to - o.from;
  if (window < min_period)
    throw std::invalid_argument("window too short: " + fmt(window) + " s from --from to --to; a " +
                                "steady period needs at least " + fmt(min_period) +
                                " s (--min-period, default 3 x --step)");
  // Prometheus refuses more than 11,000 points per series.
  if (window / o.step > 11000)
    throw std::invalid_argument("--step " + fmt(o.step) + " s is too fine for a window of " +
                                fmt(window) + " s (at most 11000 steps; give a larger --step)");

  passive_reading out;
  const std::string job = quoted(o.job);
  const std::string svc = "{job=\"" + job + "\"}";
  const std::string whole = "[" + range(window) + "]";
  out.instances = metric_count(
      or_zero(scalar(p, "count(count_over_time(up" + svc + whole + "))", o.to)), "instances");
  if (out.instances == 0)
    throw std::invalid_argument("Prometheus at " + p.base_url() + " has no series of job '" +
                                o.job + "' between " + utc(o.from) + " and " + utc(o.to) +
                                " (is it scraped, and under that name?)");

  // The rate over each interval (t - step, t], t on the grid from + k x step.
  const std::string path = "{job=\"" + job + "\",path=\"/\"}";
  auto rates =
      p.query_range("sum(rate(http_request_seconds_count" + path + "[" + range(o.step) + "]))",
                    o.from + o.step, o.to, o.step);
  if (rates.empty() || rates[0].points.empty())
    throw std::invalid_argument(
        "job '" + o.job + "' has no http_request_seconds_count{path=\"/\"} " + "between " +
        utc(o.from) + " and " + utc(o.to) + " (not a headroom-service, or it served nothing)");
  std::vector<rate_interval> intervals;
  for (const auto& [t, r] : rates[0].points) intervals.push_back({t - o.step, t, r});
  steady_period_options po;
  po.tolerance = o.tolerance;
  po.min_length = min_period;
  out.periods = find_steady_periods(intervals, po);
  if (out.periods.empty())
    throw std::invalid_argument("no steady period between " + utc(o.from) + " and " + utc(o.to) +
                                ": the request rate never stayed within " + fmt(100 * o.tolerance) +
                                " % for " + fmt(min_period) +
                                " s (try a longer window, --tolerance or --min-period)");

  // What the Prometheus series cannot say, whatever the periods.
  bool any_phases = false, any_node = false, pool_changed = false;
  for (const steady_period& period : out.periods) {
    period_reader r{p, o.job, o.node_job, period.end, period.end - period.start};
    calibration_step s;
    s.index = out.steps.size();
    s.source = "prometheus";
    s.started_at = utc(period.start);
    s.window = r.length;

    // The pool setting; a period across a change (a restart with other flags) is dropped.
    auto open = r.gauge_range("headroom_pool_max_open");
    auto idle = r.gauge_range("headroom_pool_max_idle");
    if (std::isfinite(open.second)) {
      if (open.first != open.second || idle.first != idle.second) {
        pool_changed = true;
        continue;
      }
      pool_setting ps;
      ps.max_open = metric_count(open.second, "headroom_pool_max_open");
      if (std::isfinite(idle.second))
        ps.max_idle = metric_count(idle.second, "headroom_pool_max_idle");
      auto info = p.query("max by (go_version, waiter_order) (last_over_time(headroom_pool_info" +
                              svc + "[" + range(r.length) + "]))",
                          r.at);
      if (info.size() > 1) {
        pool_changed = true;
        continue;
      }
      if (info.size() == 1) {
        if (info[0].labels.count("go_version")) ps.go_version = info[0].labels.at("go_version");
        if (info[0].labels.count("waiter_order"))
          ps.waiter_order = info[0].labels.at("waiter_order");
      }
      s.pool = ps;
    }
    s.label = s.pool ? "max_open " + std::to_string(s.pool->max_open) + ", max_idle " +
                           std::to_string(s.pool->max_idle)
                     : "prometheus";

    // The service's counters.
    service_counters c;
    c.requests = or_zero(r.counter("http_request_seconds_count", ",path=\"/\""));
    c.dials = or_zero(r.counter("headroom_pool_dials_total"));
    c.dial_failures = or_zero(r.counter("headroom_pool_dial_failures_total"));
    c.closed_max_idle = or_zero(r.counter("headroom_pool_closed_max_idle_total"));
    c.closes = c.closed_max_idle + or_zero(r.counter("headroom_pool_closed_max_idle_time_total")) +
               or_zero(r.counter("headroom_pool_closed_max_lifetime_total")) +
               or_zero(r.counter("headroom_pool_closed_other_total"));
    c.waits = or_zero(r.counter("headroom_pool_wait_count_total"));
    c.wait_seconds = or_zero(r.counter("headroom_pool_wait_seconds_total"));
    c.wait_timeouts = or_zero(r.counter("headroom_pool_wait_timeouts_total"));
    c.cpu_seconds = or_zero(r.counter("process_cpu_seconds_total"));
    s.service = c;
    s.rate = c.requests / r.length;

    // The node's CPU: busy as /proc/stat counts it (everything but idle and iowait).
    const std::string node = "{job=\"" + quoted(o.node_job) + "\"";
    const double busy = scalar(p,
                               "sum(increase(node_cpu_seconds_total" + node +
                                   ",mode!~\"idle|iowait\"}[" + range(r.length) + "]))",
                               r.at);
    if (std::isfinite(busy)) {
      any_node = true;
      local_cpu cpu;
      cpu.host_busy = busy;
      cpu.service = c.cpu_seconds;
      cpu.database = std::max(0.0, busy - c.cpu_seconds);
      cpu.runnable = or_zero(scalar(
          p, "avg(avg_over_time(node_procs_running" + node + "}[" + range(r.length) + "]))", r.at));
      cpu.cores = metric_count(
          or_zero(scalar(p, "count(node_cpu_seconds_total" + node + ",mode=\"idle\"})", r.at)),
          "node_cpu_seconds_total's cores");
      s.cpu = cpu;
    }

    // Latency: the service's phases (total and each), else http_request_seconds.
    load_result& l = s.load;
    l.schedule = "passive: Prometheus job " + o.job + ", " + fmt(r.length) + " s at " +
                 fmt(s.rate) + " req/s";
    l.arrivals = "poisson";  // what independent users send; the traffic's process is not scraped
    l.offered_rate = s.rate;
    l.duration = r.length;
    l.elapsed = r.length;
    auto phase_buckets = r.buckets("headroom_phase_seconds", "phase", "");
    auto phase_sums = r.sums("headroom_phase_seconds", "phase", "");
    for (auto& [phase, b] : phase_buckets) {
      const bool zero_first = phase == "wait" || phase == "dial";
      latency_histogram h = histogram_from_buckets(b, zero_first, or_zero(phase_sums[phase]));
      if (phase == "total") {
        l.server_timing_responses = h.total_count();
        l.latency = h;
      } else {
        l.phases[phase] = std::move(h);
      }
    }
    if (!l.phases.empty()) any_phases = true;
    auto http = r.buckets("http_request_seconds", "code", ",path=\"/\"");
    auto http_sums = r.sums("http_request_seconds", "code", ",path=\"/\"");
    for (auto& [code, b] : http) {
      latency_histogram h = histogram_from_buckets(b, false, or_zero(http_sums[code]));
      if (success_code(code) && l.phases.empty()) l.latency.merge(h);
      l.latency_all.merge(h);
      try {
        l.status_counts[std::stoi(code)] += h.total_count();
      } catch (const std::exception&) {
        // a code label that is not a number: counted in latency_all only
      }
    }
    l.completed = l.sent = l.scheduled = l.latency_all.total_count();
    out.steps.push_back(std::move(s));
  }
  if (out.steps.empty())
    throw std::invalid_argument("every steady period between " + utc(o.from) + " and " + utc(o.to) +
                                " spans a change of the pool setting");

  auto& nm = out.not_measured;
  nm.push_back(
      "client-side latency and the network: Prometheus has the service's own histograms, which "
      "start once a request was read; latency is the service's");
  nm.push_back(
      "latency_all: requests that got no response (timeouts, refused connections) are in no "
      "server-side histogram; it holds every answered request");
  nm.push_back(
      "exact tails: quantiles come from histogram buckets (10 per decade, 40 between 10 and "
      "100 ms), requests spread evenly inside a bucket; above 10 s only a lower bound");
  nm.push_back(
      "the load generator's CPU and connections: a passive calibration sends nothing (the fit "
      "plans for production, without a generator)");
  if (any_node) {
    nm.push_back(
        "PostgreSQL's CPU: Prometheus has no per-process CPU for it; the node's busy CPU minus "
        "the service's is taken as the database's (anything else on the node counts too)");
    nm.push_back(
        "the postmaster's fork and a connection's whole life: not in Prometheus (no per-process "
        "CPU); a connection's CPU comes from the least squares on dials, none of it as the serial "
        "fork");
  } else {
    nm.push_back("host CPU: no node_cpu_seconds_total of job '" + o.node_job +
                 "' (node_exporter); CPU only from the service's process_cpu_seconds_total");
  }
  if (!any_phases)
    nm.push_back("phases: job '" + o.job +
                 "' has no headroom_phase_seconds histograms; latency from http_request_seconds "
                 "only, the whole of it as the query's");
  if (pool_changed) nm.push_back("periods that span a change of the pool setting: dropped");
  if (out.instances > 1)
    nm.push_back("one instance: job '" + o.job + "' has " + std::to_string(out.instances) +
                 " instances, their figures are summed (calibrate from one: a --job per instance)");
  nm.push_back(
      "repeats: steady periods are never at exactly the same rate, so run-to-run variability is "
      "not measured from history");
  return out;
}

}  // namespace headroom::calibrate
