// The stop rule and the statistics of independent replications (QUEUEING.md "Estimating a
// percentile honestly": replications, not one long correlated run).
#include "prediction.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <sstream>
#include <thread>

namespace headroom {

namespace {
void field_check(bool ok, const std::string& field, const std::string& what) {
  if (!ok) throw scenario_error(field + ": " + what);
}

std::string format_ratio(const char* what, double ratio, const std::string& of) {
  std::ostringstream os;
  os.precision(3);
  os << "overloaded: " << what << " " << ratio << " x capacity (" << of << ")";
  return os.str();
}

// Mean and t-interval of one figure across replications.
estimate interval(const std::vector<double>& x, double confidence) {
  estimate e;
  if (x.empty()) return e;
  double n = static_cast<double>(x.size()), sum = 0;
  for (double v : x) sum += v;
  e.value = sum / n;
  if (x.size() < 2) return e;
  double ss = 0;
  for (double v : x) ss += (v - e.value) * (v - e.value);
  double sd = std::sqrt(ss / (n - 1));
  double h = student_t_quantile(0.5 + confidence / 2, n - 1) * sd / std::sqrt(n);
  e.ci_low = e.value - h;
  e.ci_high = e.value + h;
  e.has_ci = true;
  return e;
}
}  // namespace

void validate(const scenario& s) {
  const auto& a = s.arrivals;
  if (a.process == arrival_process::trace) {
    field_check(!a.times.empty(), "arrivals.times", "a trace needs at least one arrival time");
    for (std::size_t i = 0; i < a.times.size(); ++i) {
      field_check(std::isfinite(a.times[i]) && a.times[i] >= 0, "arrivals.times",
                  "times must be >= 0");
      if (i) field_check(a.times[i] >= a.times[i - 1], "arrivals.times", "times must not decrease");
    }
  } else {
    field_check(std::isfinite(a.rate) && a.rate > 0, "arrivals.rate", "must be > 0");
  }
  field_check(std::isfinite(s.cores) && s.cores > 0, "cpu.cores", "must be > 0");
  field_check(s.background_utilization >= 0 && s.background_utilization < 1,
              "cpu.background.utilization", "must be in [0, 1)");
  if (s.background_utilization > 0)
    field_check(s.background_job.mean() > 0, "cpu.background.job_cpu", "must have a mean > 0");
  field_check(s.workers >= 0, "workers", "must be >= 0 (0 = unlimited)");
  field_check(s.pool.max_open >= 0, "pool.max_open", "must be >= 0 (0 = unlimited)");
  field_check(s.pool.max_lifetime >= 0, "pool.max_lifetime", "must be >= 0");
  field_check(s.pool.max_idle_time >= 0, "pool.max_idle_time", "must be >= 0");
  field_check(!(s.use_pool && s.pool.max_idle_time > 0 && s.pool.go == go_version::go1_10),
              "pool.max_idle_time", "needs pool.go_version 1.15 or later (SetConnMaxIdleTime)");
  field_check(std::isfinite(s.wait_timeout) && s.wait_timeout >= 0, "pool.wait_timeout",
              "must be >= 0");
  field_check(s.run.requests >= 1, "run.requests", "must be >= 1");
  // Every measured request's phase times are kept until its replication ends (~40 bytes each).
  field_check(s.run.requests <= 5'000'000, "run.requests",
              "at most 5,000,000 per replication (memory); the stop rule adds replications");
  field_check(s.run.confidence > 0 && s.run.confidence < 1, "run.confidence", "must be in (0, 1)");
  field_check(s.run.target_half_width > 0, "run.target_half_width", "must be > 0");
  field_check(s.run.min_replications >= 2, "run.min_replications",
              "must be >= 2 (an interval needs two)");
  field_check(s.run.max_replications >= s.run.min_replications, "run.max_replications",
              "must be >= run.min_replications");
  field_check(s.run.threads >= 0, "run.threads", "must be >= 0 (0 = all cores)");
  field_check(std::isfinite(s.speed_sigma) && s.speed_sigma >= 0 && s.speed_sigma < 2,
              "variability.speed_sigma", "must be in [0, 2)");
  field_check(std::isfinite(s.delay_sigma) && s.delay_sigma >= 0 && s.delay_sigma < 2,
              "variability.delay_sigma", "must be in [0, 2)");
  field_check(s.speed_sigma_dof >= 0 && s.speed_sigma_dof <= 10000, "variability.speed_sigma_dof",
              "must be a whole number in [0, 10000] (0 = known)");
  field_check(s.delay_sigma_dof >= 0 && s.delay_sigma_dof <= 10000, "variability.delay_sigma_dof",
              "must be a whole number in [0, 10000] (0 = known)");
  field_check(std::isfinite(s.speed_factor) && s.speed_factor > 0 && s.speed_factor <= 10,
              "variability.speed_factor", "must be in (0, 10]");
  field_check(std::isfinite(s.stall_rate) && s.stall_rate >= 0, "stalls.rate",
              "must be >= 0 per second (0 = no stalls)");
  field_check(
      std::isfinite(s.stall_per_request) && s.stall_per_request >= 0 && s.stall_per_request <= 1,
      "stalls.per_request", "must be in [0, 1] (stalls per request offered)");
  if (s.stall_rate > 0 || s.stall_per_request > 0)
    field_check(s.stall_length.mean() > 0, "stalls.length",
                "must have a mean > 0 when stalls.rate or stalls.per_request > 0");
  field_check(std::isfinite(s.wakeup_delay.mean()) && s.wakeup_delay.mean() >= 0 &&
                  s.wakeup_delay.mean() <= 1,
              "wakeup.delay", "must have a mean in [0, 1] seconds (0 = none)");
  field_check(std::isfinite(s.wakeup_idle) && s.wakeup_idle >= 0 && s.wakeup_idle <= 60,
              "wakeup.idle", "must be in [0, 60] seconds");
  if (!s.wakeup_delay.is_zero())
    field_check(s.wakeup_idle > 0, "wakeup.idle", "must be > 0 when wakeup.delay > 0");
  field_check(s.service_cpu_per_runnable >= 0, "cpu.per_runnable.service", "must be >= 0");
  field_check(s.database_cpu_per_runnable >= 0, "cpu.per_runnable.database", "must be >= 0");
  field_check(s.service_max_runnable >= 0, "cpu.per_runnable.max_runnable.service",
              "must be >= 0 (0 = no bound)");
  field_check(s.database_max_runnable >= 0, "cpu.per_runnable.max_runnable.database",
              "must be >= 0 (0 = no bound)");
  field_check(s.client_connections >= 0, "client.max_connections", "must be >= 0 (0 = no client)");
  const deployment_spec& d = s.deployment;
  field_check(d.instances >= 1, "deployment.instances", "must be >= 1");
  // Each instance holds its own requests and pool: a bound keeps a typo from exhausting memory.
  field_check(d.instances <= 10000, "deployment.instances", "at most 10,000");
  field_check(std::isfinite(d.service_cores) && d.service_cores >= 0, "deployment.service_cores",
              "must be >= 0 (0 = co-located: everything shares cpu.cores)");
  field_check(std::isfinite(d.database_cores) && d.database_cores >= 0, "deployment.database_cores",
              "must be > 0 in a split deployment");
  if (colocated(s)) {
    // Co-located these would be ignored: say so rather than predict something else.
    field_check(d.database_cores == 0, "deployment.database_cores",
                "needs deployment.service_cores > 0 (a split deployment); co-located, the "
                "database shares cpu.cores");
    field_check(d.database_rtt.is_zero(), "deployment.database_rtt",
                "needs deployment.service_cores > 0 (a split deployment); co-located, the "
                "database is on the same machine");
  } else {
    field_check(d.database_cores > 0, "deployment.database_cores",
                "must be > 0 in a split deployment (deployment.service_cores > 0)");
  }
  field_check(d.database_max_connections >= 1, "deployment.database_max_connections",
              "must be >= 1");
  // Below 1: with every reused connection dead, no request that finds an idle one would pass
  // its third try only by luck of a fresh dial; 1 is a database that never answers twice.
  field_check(d.broken_connection_share >= 0 && d.broken_connection_share < 1,
              "deployment.broken_connection_share", "must be in [0, 1)");
  field_check(std::isfinite(s.run.live_length) && s.run.live_length >= 0, "run.live_length",
              "must be >= 0 seconds (0 = no interval for one live run)");
  field_check(std::isfinite(s.run.live_warmup) && s.run.live_warmup >= 0, "run.live_warmup",
              "must be >= 0 seconds");
  field_check(s.run.slo_quantile > 0 && s.run.slo_quantile < 1, "run.slo.quantile",
              "must be in (0, 1)");
  field_check(std::isfinite(s.run.slo_latency) && s.run.slo_latency >= 0, "run.slo.latency",
              "must be >= 0 seconds (0 = no SLO)");
  // A live run's requests are kept as a replication's are.
  field_check(offered_rate(s) * s.run.live_length <= 5'000'000, "run.live_length",
              "at most 5,000,000 requests per live run (memory)");
}

std::string overload_check(const scenario& s) {
  double rate = offered_rate(s);
  if (rate <= 0) return "";
  std::string worst;
  double worst_ratio = 1.0;  // report only ratios >= 1
  auto consider = [&](double ratio, const std::string& message) {
    if (ratio >= worst_ratio) {
      worst_ratio = ratio;
      worst = message;
    }
  };
  // CPU: every request's own demand, the generator's and the background's. Dials and
  // closes are left out: how many there will be is what the simulation finds out. A fixed
  // machine speed (speed_factor) multiplies every CPU demand, as in the simulation.
  const double f = s.speed_factor;
  double query_cpu = s.query_db_cpu.mean() + s.query_service_cpu.mean();
  const deployment_spec& d = s.deployment;
  if (colocated(s)) {
    double cpu = f * (s.parse_cpu.mean() + query_cpu + s.release_cpu.mean() + s.respond_cpu.mean() +
                      s.generator_cpu.mean());
    std::ostringstream cores;
    cores << s.cores << " cores";
    double cpu_ratio = (rate * cpu) / s.cores + s.background_utilization;
    consider(cpu_ratio, format_ratio("CPU demand", cpu_ratio, cores.str()));
  } else {
    // Each instance's host gets rate / instances; the database's gets every query.
    double service = f * (s.parse_cpu.mean() + s.query_service_cpu.mean() + s.release_cpu.mean() +
                          s.respond_cpu.mean());
    std::ostringstream service_cores, database_cores;
    service_cores << d.service_cores << " cores per instance";
    database_cores << d.database_cores << " cores, shared by " << d.instances << " instances";
    double service_ratio =
        (rate / d.instances * service) / d.service_cores + s.background_utilization;
    consider(service_ratio, format_ratio("service CPU demand", service_ratio, service_cores.str()));
    double database_ratio =
        (rate * f * s.query_db_cpu.mean()) / d.database_cores + s.background_utilization;
    consider(database_ratio,
             format_ratio("database CPU demand", database_ratio, database_cores.str()));
  }
  // A worker or a connection is held at least for the query and the release (the network's
  // round trips included when split); each instance has its own.
  double held = s.query_delay.mean() + f * query_cpu + s.release_delay.mean() +
                f * s.release_cpu.mean() + 2 * d.database_rtt.mean();
  const double instance_rate = rate / d.instances;
  const std::string each = d.instances > 1 ? " per instance" : "";
  if (s.workers > 0) {
    double r = instance_rate * (held + f * s.respond_cpu.mean()) / s.workers;
    consider(r, format_ratio("worker demand", r, std::to_string(s.workers) + " workers" + each));
  }
  if (s.use_pool && s.pool.max_open > 0 && s.wait_timeout == 0) {
    double r = instance_rate * held / s.pool.max_open;
    consider(r, format_ratio("connection demand", r,
                             "max_open " + std::to_string(s.pool.max_open) + each));
  }
  // With no idle connections kept, every request dials through the serial postmaster.
  if (s.use_pool && s.pool.max_idle <= 0) {
    double r = rate * f * s.dial_fork.mean();
    consider(r, format_ratio("dial demand", r, "one fork at a time, max_idle 0"));
  }
  return worst;
}

std::string database_connections_warning(const scenario& s, const prediction& p) {
  const int limit = s.deployment.database_max_connections;
  if (!p.has_pool || p.replications == 0 || p.database_peak_connections <= limit) return "";
  std::ostringstream os;
  char refused[32];
  std::snprintf(refused, sizeof refused, "%.1f",
                p.pool.failed_dials_per_s.value * s.deployment.instances);
  os << "the database's connections peaked at " << p.database_peak_connections
     << " (all instances, dials in progress counted), above its max_connections " << limit
     << ": PostgreSQL refuses the excess, modelled as failed dials (" << refused
     << "/s in all), each a failed request";
  return os.str();
}

double normal_quantile(double p) {
  // Acklam's rational approximation (relative error < 1.2e-9).
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double plow = 0.02425;
  if (p < plow) {
    double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - plow) return -normal_quantile(1 - p);
  double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

double student_t_quantile(double p, double dof) {
  if (dof <= 1) return std::tan(3.141592653589793 * (p - 0.5));
  if (dof <= 2) return (2 * p - 1) / std::sqrt(2 * p * (1 - p));
  // Cornish-Fisher expansion in 1/dof (Abramowitz & Stegun 26.7.5): within 0.1 % for
  // dof >= 5 at the 99.5 % point, more than close enough for an interval's width.
  double z = normal_quantile(p), z2 = z * z, v = dof;
  double g1 = (z2 + 1) * z / 4;
  double g2 = ((5 * z2 + 16) * z2 + 3) * z / 96;
  double g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384;
  double g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160;
  return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
}

namespace {
// One latency set across replications: the pooled quantiles, centred, with the sectioning
// half-width of the per-replication ones (see combine in prediction.hpp).
// `of` picks the set from a replication.
template <class Of>
latency_estimate combine_latency(const std::vector<replication_result>& reps,
                                 const quantile_histogram& pooled, double conf, Of of) {
  latency_estimate l;
  for (const auto& r : reps) {
    l.count += of(r).count;
    l.max = std::max(l.max, of(r).max);
  }
  auto over = [&](double latency_summary::*field) {
    std::vector<double> v;
    v.reserve(reps.size());
    for (const auto& r : reps) v.push_back(of(r).*field);
    return interval(v, conf);
  };
  l.mean = over(&latency_summary::mean);
  auto quantile = [&](double q, double latency_summary::*field) {
    estimate e = over(field);
    if (pooled.empty()) return e;
    double centre = pooled.quantile(q), h = e.half_width();
    e.value = centre;
    if (e.has_ci) {
      e.ci_low = centre - h;
      e.ci_high = centre + h;
    }
    return e;
  };
  l.p50 = quantile(0.50, &latency_summary::p50);
  l.p90 = quantile(0.90, &latency_summary::p90);
  l.p95 = quantile(0.95, &latency_summary::p95);
  l.p99 = quantile(0.99, &latency_summary::p99);
  l.p999 = quantile(0.999, &latency_summary::p999);
  return l;
}
}  // namespace

prediction combine(const scenario& s, const std::vector<replication_result>& reps,
                   const quantile_histogram* pooled, const quantile_histogram* pooled_all) {
  quantile_histogram own[phase_count], own_all;
  if (!pooled) {
    for (const auto& r : reps)
      for (int p = 0; p < phase_count; ++p) own[p].merge(r.pooled[p]);
    pooled = own;
  }
  if (!pooled_all) {
    for (const auto& r : reps) own_all.merge(r.pooled_all);
    pooled_all = &own_all;
  }
  prediction out;
  out.confidence = s.run.confidence;
  out.replications = static_cast<int>(reps.size());
  out.requests_per_replication = s.run.requests;
  out.has_pool = s.use_pool;
  const double conf = s.run.confidence;
  for (const auto& r : reps) {
    out.events += r.events;
    out.simulated_seconds += r.window;
    if (!r.stable && out.stable) {
      out.stable = false;
      out.reason = r.unstable_reason;
    }
  }
  auto over = [&](auto get) {
    std::vector<double> v;
    v.reserve(reps.size());
    for (const auto& r : reps) v.push_back(get(r));
    return interval(v, conf);
  };
  for (int p = 0; p < phase_count; ++p)
    out.phases[p] = combine_latency(reps, pooled[p], conf,
                                    [p](const replication_result& r) { return r.phases[p]; });
  out.latency_histogram = pooled[phase_total];
  out.all_requests = combine_latency(reps, *pooled_all, conf,
                                     [](const replication_result& r) { return r.all_requests; });
  out.throughput = over([](const replication_result& r) { return r.throughput; });
  out.error_rate = over([](const replication_result& r) { return r.error_rate; });
  out.mean_in_system = over([](const replication_result& r) { return r.mean_in_system; });
  out.arrival_rate = over([](const replication_result& r) { return r.arrival_rate; });
  out.mean_sojourn = over([](const replication_result& r) { return r.mean_sojourn; });
  if (!reps.empty()) {
    for (std::size_t i = 0; i < reps.front().utilization.size(); ++i) {
      out.utilization.push_back(
          {reps.front().utilization[i].first, over([i](const replication_result& r) {
             return i < r.utilization.size() ? r.utilization[i].second : 0.0;
           })});
    }
  }
  auto per_s = [](std::uint64_t n, double w) { return w > 0 ? static_cast<double>(n) / w : 0.0; };
  // The counts are all instances'; the pool's figures are one instance's (their mean).
  const double instances = s.deployment.instances;
  auto per_instance_s = [&](std::uint64_t n, double w) { return per_s(n, w) / instances; };
  pool_estimate& p = out.pool;
  p.dials_per_s =
      over([&](const replication_result& r) { return per_instance_s(r.pool.dials, r.window); });
  p.closes_per_s =
      over([&](const replication_result& r) { return per_instance_s(r.pool.closes, r.window); });
  p.waits_per_s =
      over([&](const replication_result& r) { return per_instance_s(r.pool.waits, r.window); });
  p.wait_timeouts_per_s = over(
      [&](const replication_result& r) { return per_instance_s(r.pool.wait_timeouts, r.window); });
  p.failed_dials_per_s = over(
      [&](const replication_result& r) { return per_instance_s(r.pool.dial_failures, r.window); });
  p.broken_per_s =
      over([&](const replication_result& r) { return per_instance_s(r.pool.broken, r.window); });
  p.mean_open = over([](const replication_result& r) { return r.pool.mean_open; });
  p.mean_idle = over([](const replication_result& r) { return r.pool.mean_idle; });
  p.mean_in_use = over([](const replication_result& r) { return r.pool.mean_in_use; });
  out.database_dials_per_s =
      over([&](const replication_result& r) { return per_s(r.pool.dials, r.window); });
  for (const auto& r : reps) {
    p.peak_open = std::max(p.peak_open, static_cast<double>(r.pool.peak_open));
    out.database_peak_connections =
        std::max(out.database_peak_connections, static_cast<double>(r.pool.database_peak_open));
    p.dials += r.pool.dials;
    p.closes += r.pool.closes;
    p.policy_dials += r.pool.policy_dials;
    p.policy_closes += r.pool.policy_closes;
  }
  return out;
}

std::vector<replication_result> run_replications(const scenario& s, std::uint64_t first,
                                                 std::uint64_t last, int threads) {
  std::vector<replication_result> out(last - first);
  std::atomic<std::uint64_t> next{first};
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto work = [&] {
    for (;;) {
      std::uint64_t i = next.fetch_add(1);
      if (i >= last || failed) return;
      try {
        out[i - first] = simulate_replication(s, i);
      } catch (...) {
        if (!failed.exchange(true)) error = std::current_exception();
        return;
      }
    }
  };
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  int n = std::max(1, std::min<int>(threads, static_cast<int>(last - first)));
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return out;
}

precision_goal default_goal(const scenario& s) {
  precision_goal g;
  g.figures.push_back(
      {"p99 of total", [](const prediction& p) { return p.phases[phase_total].p99; }});
  g.relative_half_width = s.run.target_half_width;
  g.max_replications = s.run.max_replications;
  g.on_cap = precision_goal::at_cap::flag;
  return g;
}

scenario at_mean_speed(scenario s) {
  s.speed_sigma = 0;
  s.delay_sigma = 0;
  return s;
}

prediction run_to_precision(const scenario& at_any_speed, const precision_goal& goal) {
  if (goal.figures.empty()) throw std::invalid_argument("run_to_precision: no figure to watch");
  const scenario s = at_mean_speed(at_any_speed);
  int threads =
      s.run.threads > 0 ? s.run.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(threads, 1);
  const auto cap = static_cast<std::uint64_t>(std::max(goal.max_replications, 2));
  std::uint64_t target = static_cast<std::uint64_t>(std::max(s.run.min_replications, threads));
  target = std::min(target, cap);
  std::vector<replication_result> reps;
  quantile_histogram pooled[phase_count], pooled_all;
  prediction p;
  for (;;) {
    auto batch = run_replications(s, reps.size(), target, threads);
    for (auto& r : batch) {
      // Pool each replication's samples once and free its histograms: hundreds of
      // replications would otherwise hold them all.
      for (int ph = 0; ph < phase_count; ++ph) {
        pooled[ph].merge(r.pooled[ph]);
        r.pooled[ph].clear();
      }
      pooled_all.merge(r.pooled_all);
      r.pooled_all.clear();
      reps.push_back(std::move(r));
    }
    p = combine(s, reps, pooled, &pooled_all);
    if (!p.stable) return p;
    // The widest figure decides; one without an interval is not yet known at all.
    double worst = 0;
    const precision_goal::figure* worst_figure = &goal.figures.front();
    for (const auto& f : goal.figures) {
      estimate e = f.of(p);
      double h = e.has_ci ? e.relative_half_width() : std::numeric_limits<double>::infinity();
      if (!(h <= worst)) {
        worst = h;
        worst_figure = &f;
      }
    }
    if (worst <= goal.relative_half_width) {
      p.target_reached = true;
      return p;
    }
    if (reps.size() >= cap) {
      if (goal.on_cap == precision_goal::at_cap::throw_error) {
        std::ostringstream os;
        os << "precision not reached: " << worst_figure->name << " is known to +-" << worst * 100
           << " % after " << reps.size() << " replications (the cap), not +-"
           << goal.relative_half_width * 100 << " %";
        throw precision_not_reached(os.str());
      }
      return p;
    }
    // The half-width shrinks as 1/sqrt(R): aim for the R that should meet the target, but
    // at most double R per step (a few replications estimate the spread poorly, and an
    // overshoot costs wall time), and always add at least one replication per thread.
    double ratio = std::isfinite(worst) ? worst / goal.relative_half_width : 2;
    auto need =
        static_cast<std::uint64_t>(std::ceil(static_cast<double>(reps.size()) * ratio * ratio));
    need = std::min<std::uint64_t>(need, 2 * reps.size());
    target = std::min(cap, std::max(need, reps.size() + static_cast<std::uint64_t>(threads)));
  }
}

scenario one_live_run(scenario s) {
  if (s.arrivals.process == arrival_process::trace) return s;
  const double rate = offered_rate(s);
  s.run.requests = std::max<std::uint64_t>(1, std::llround(rate * s.run.live_length));
  s.run.warmup_requests = std::max<std::uint64_t>(1, std::llround(rate * s.run.live_warmup));
  return s;
}

live_run_estimate predict_live_runs(const scenario& s, int runs) {
  live_run_estimate out;
  out.computed = true;
  out.length = s.run.live_length;
  out.warmup = s.run.live_warmup;
  out.quantile = s.run.slo_quantile;
  const scenario r = one_live_run(s);
  // Numbered after any replication the long-run estimate could use, so the two are independent.
  constexpr std::uint64_t first = 1u << 30;
  auto reps = run_replications(r, first, first + static_cast<std::uint64_t>(runs), r.run.threads);
  std::vector<double> q, tput;
  int stable = 0, met = 0;
  double late = 0;
  for (const replication_result& x : reps) {
    double v = std::numeric_limits<double>::infinity();
    if (x.stable) {
      ++stable;
      v = x.pooled_all.empty() ? 0 : x.pooled_all.quantile(out.quantile);
    }
    if (s.run.slo_latency > 0 && v <= s.run.slo_latency) ++met;
    q.push_back(v);
    tput.push_back(x.throughput);
    // Late among the requests the run meant to measure (some never finished in a run that fell
    // over).
    late += static_cast<double>(x.late) / static_cast<double>(r.run.requests);
  }
  out.runs = static_cast<int>(reps.size());
  if (reps.empty()) return out;
  // Empirical percentiles over runs (type 7 between order statistics; inf stays inf).
  auto at = [](std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const double h = p * static_cast<double>(v.size() - 1);
    const std::size_t i = static_cast<std::size_t>(h);
    const double frac = h - static_cast<double>(i);
    if (i + 1 >= v.size() || frac == 0) return v[i];
    if (!std::isfinite(v[i + 1])) return v[i + 1];  // between a run and one that fell over
    return v[i] + frac * (v[i + 1] - v[i]);
  };
  out.low = at(q, 0.05);
  out.median = at(q, 0.50);
  out.high = at(q, 0.95);
  out.throughput_low = at(tput, 0.05);
  out.throughput_median = at(tput, 0.50);
  out.throughput_high = at(tput, 0.95);
  const double n = static_cast<double>(reps.size());
  out.p_stable = stable / n;
  out.p_slo = s.run.slo_latency > 0 ? met / n : -1;
  out.late_fraction = late / n;
  return out;
}

prediction predict(const scenario& s) {
  auto start = std::chrono::steady_clock::now();
  validate(s);
  std::string overload = overload_check(s);
  prediction p;
  if (!overload.empty()) {
    p.stable = false;
    p.reason = overload;
    p.confidence = s.run.confidence;
    p.requests_per_replication = s.run.requests;
    p.has_pool = s.use_pool;
  } else {
    p = run_to_precision(s, default_goal(s));
  }
  // One live run's spread: enough runs for the 5th and 95th percentiles to rest on a few runs
  // each (40 runs: the 2nd and 39th order statistics bracket them).
  if (s.run.live_length > 0) p.live = predict_live_runs(s, std::max(40, s.run.min_replications));
  p.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return p;
}

}  // namespace headroom
