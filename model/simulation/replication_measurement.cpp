// One replication's measurement (replication_measurement.hpp): the window's snapshots, the
// phases' samples and their percentiles, Little's law, utilisations and the pool's statistics.
#include "replication_measurement.hpp"

#include <utility>

namespace headroom {

replication_measurement::replication_measurement(const scenario& s, std::uint64_t measured_requests,
                                                 deployment_resources& deployment)
    : scenario_(s),
      measured_requests_(measured_requests),
      deployment_(deployment),
      instances_(deployment.instances),
      pool_areas_(deployment.instances.size()),
      open_by_instance_(deployment.instances.size(), 0) {
  result_.pool.dials_by_instance.assign(deployment.instances.size(), 0);
  // A run stopped during warm-up is measured from time 0, when every figure was zero.
  const std::size_t hosts = deployment.hosts.size();
  window_start_.cpu_busy.assign(hosts, 0);
  window_start_.cpu_demand.assign(hosts, 0);
  window_start_.cpu_jobs.assign(hosts, 0);
  phase_recorded_[phase_queue] = s.workers > 0;
  phase_recorded_[phase_wait] = s.use_pool && s.pool.max_open > 0;
  phase_recorded_[phase_dial] = s.use_pool;
  phase_recorded_[phase_query] = true;
  phase_recorded_[phase_release] = !s.release_delay.is_zero() || !s.release_cpu.is_zero();
  phase_recorded_[phase_total] = true;
  for (int p = 0; p < phase_count; ++p)
    if (phase_recorded_[p]) samples_[p].reserve(measured_requests);
}

namespace {
// The counters of several pools added up (the snapshot's pool: what the window's figures need).
void add_pool_stats(pool_stats& sum, const pool_stats& x) {
  sum.dials += x.dials;
  sum.dial_failures += x.dial_failures;
  sum.wait_count += x.wait_count;
  sum.wait_timeouts += x.wait_timeouts;
  sum.closed_max_idle += x.closed_max_idle;
  sum.closed_max_idle_time += x.closed_max_idle_time;
  sum.closed_max_lifetime += x.closed_max_lifetime;
  sum.closed_other += x.closed_other;
  sum.waiting += x.waiting;
}
}  // namespace

replication_measurement::snapshot replication_measurement::take_snapshot(double now) {
  snapshot s;
  s.time = now;
  for (ps_cpu& cpu : deployment_.hosts) {
    s.cpu_busy.push_back(cpu.busy_integral(now));
    s.cpu_demand.push_back(cpu.demand_submitted());
    s.cpu_jobs.push_back(cpu.jobs_integral(now));
  }
  for (service_instance& in : deployment_.instances) {
    s.workers_busy += in.workers.busy_integral(now);
    add_pool_stats(s.pool, in.pool.stats());
  }
  s.postmaster_busy = deployment_.postmaster.busy_integral(now);
  return s;
}

void replication_measurement::open_window(double now) {
  window_open_ = true;
  window_start_ = take_snapshot(now);
  in_flight_integrated_to_ = now;
  for (pool_areas& a : pool_areas_) a.integrated_to = now;
  for (std::uint32_t i = 0; i < open_by_instance_.size(); ++i) open_count_changed(i);
}

void replication_measurement::begin_second_half(double now) {
  in_first_half_ = false;
  second_half_began_ = now;
}

void replication_measurement::close_window_if_open(double now) {
  if (!window_open_) return;
  for (std::uint32_t i = 0; i < pool_areas_.size(); ++i) accumulate_pool_averages(i, now);
  window_end_ = take_snapshot(now);
  window_open_ = false;
  window_closed_ = true;
}

void replication_measurement::measured_request_left(const double (&phase_seconds)[phase_count],
                                                    double sojourn, double latency, bool failed) {
  ++result_.measured;
  sojourn_sum_ += sojourn;
  if (failed) {
    ++result_.errors;
    failed_latencies_.push_back(latency);
    return;
  }
  ++result_.completed;
  for (int p = 0; p < phase_count; ++p)
    if (phase_recorded_[p]) samples_[p].push_back(phase_seconds[p]);
}

replication_result replication_measurement::finish(double now) {
  replication_result& r = result_;
  // Aborted during warm-up: measure what there is from the start.
  if (!window_closed_) window_end_ = take_snapshot(now);
  double w = window_end_.time - window_start_.time;
  r.window = w;
  r.postmaster_cpu = postmaster_cpu_;
  r.mean_runnable = w > 0 ? (window_end_.cpu_jobs[0] - window_start_.cpu_jobs[0]) / w : 0;
  for (int p = 0; p < phase_count; ++p) {
    r.pooled[p].add_all(samples_[p]);
    r.phases[p] = summarize(samples_[p], r.pooled[p]);
    if (!phase_recorded_[p]) {
      r.phases[p].count = r.completed;  // all zero
      r.pooled[p].add_zeros(r.completed);
    }
  }
  // All requests: the successes' totals and the failures. Without failures (the common
  // case) the two sets are the same samples and nothing is copied.
  r.pooled_all = r.pooled[phase_total];
  if (failed_latencies_.empty()) {
    r.all_requests = r.phases[phase_total];
  } else {
    std::vector<double>& all = samples_[phase_total];
    all.insert(all.end(), failed_latencies_.begin(), failed_latencies_.end());
    r.pooled_all.add_all(failed_latencies_);
    r.all_requests = summarize(all, r.pooled_all);
  }
  if (w > 0) {
    r.throughput = static_cast<double>(window_completions_) / w;
    r.arrival_rate = static_cast<double>(measured_requests_) / w;
    r.mean_in_system = (in_flight_area_first_half_ + in_flight_area_second_half_) / w;
    add_utilization(r, w);
    if (scenario_.use_pool) add_pool(r, w);
  }
  if (r.measured > 0) {
    r.error_rate = static_cast<double>(r.errors) / static_cast<double>(r.measured);
    r.mean_sojourn = sojourn_sum_ / static_cast<double>(r.measured);
  }
  return std::move(r);
}

void replication_measurement::add_utilization(replication_result& r, double w) const {
  const snapshot &start = window_start_, &end = window_end_;
  const double instances = static_cast<double>(deployment_.instances.size());
  static const char* owner_names[owner_count] = {"cpu_service", "cpu_database", "cpu_generator",
                                                 "cpu_background"};
  if (deployment_.split) {
    // Each host's busy share; the instances' is their mean (arrivals are split evenly).
    const double service_cores = scenario_.deployment.service_cores;
    const double database_cores = scenario_.deployment.database_cores;
    double service_busy = 0, all_cores = database_cores;
    for (std::size_t h = 1; h < end.cpu_busy.size(); ++h) {
      service_busy += end.cpu_busy[h] - start.cpu_busy[h];
      all_cores += service_cores;
    }
    r.utilization.push_back({"service_cpu", service_busy / (instances * service_cores * w)});
    r.utilization.push_back(
        {"database_cpu", (end.cpu_busy[0] - start.cpu_busy[0]) / (database_cores * w)});
    // Demand by owner, over the cores that serve it (the generator runs on no host here).
    const double cores_of[owner_count] = {instances * service_cores, database_cores, 0, all_cores};
    for (int o = 0; o < owner_count; ++o)
      if (o != owner_generator)
        r.utilization.push_back({owner_names[o], cpu_seconds_by_owner_[o] / (cores_of[o] * w)});
  } else {
    double cores = scenario_.cores;
    r.utilization.push_back({"cpu", (end.cpu_busy[0] - start.cpu_busy[0]) / (cores * w)});
    for (int o = 0; o < owner_count; ++o)
      r.utilization.push_back({owner_names[o], cpu_seconds_by_owner_[o] / (cores * w)});
  }
  if (scenario_.workers > 0)
    r.utilization.push_back(
        {"workers", (end.workers_busy - start.workers_busy) / (instances * scenario_.workers * w)});
  if (!scenario_.use_pool) return;
  r.utilization.push_back({"dial_server", (end.postmaster_busy - start.postmaster_busy) / w});
  double in_use = 0;
  for (const pool_areas& a : pool_areas_) in_use += a.in_use;
  if (scenario_.pool.max_open > 0)
    r.utilization.push_back({"pool", in_use / (instances * scenario_.pool.max_open * w)});
}

void replication_measurement::add_pool(replication_result& r, double w) const {
  const snapshot &start = window_start_, &end = window_end_;
  pool_window_stats& p = r.pool;
  p.policy_dials = end.pool.dials - start.pool.dials;
  auto closes = [](const pool_stats& s) {
    return s.closed_max_idle + s.closed_max_idle_time + s.closed_max_lifetime + s.closed_other;
  };
  p.policy_closes = closes(end.pool) - closes(start.pool);
  p.waits = end.pool.wait_count - start.pool.wait_count;
  p.dial_failures = end.pool.dial_failures - start.pool.dial_failures;
  p.wait_timeouts = end.pool.wait_timeouts - start.pool.wait_timeouts;
  p.closed_max_idle = end.pool.closed_max_idle - start.pool.closed_max_idle;
  p.closed_max_idle_time = end.pool.closed_max_idle_time - start.pool.closed_max_idle_time;
  p.closed_max_lifetime = end.pool.closed_max_lifetime - start.pool.closed_max_lifetime;
  // One instance's time averages: the instances' mean.
  double open = 0, idle = 0, in_use = 0;
  for (const pool_areas& a : pool_areas_) {
    open += a.open;
    idle += a.idle;
    in_use += a.in_use;
  }
  const double n = static_cast<double>(pool_areas_.size());
  p.mean_open = open / n / w;
  p.mean_idle = idle / n / w;
  p.mean_in_use = in_use / n / w;
}

in_flight_halves replication_measurement::in_flight_by_half() const {
  double first = second_half_began_ - window_start_.time;
  double second = window_end_.time - second_half_began_;
  in_flight_halves h;
  h.first = first > 0 ? in_flight_area_first_half_ / first : 0;
  h.second = second > 0 ? in_flight_area_second_half_ / second : 0;
  return h;
}

overload_evidence replication_measurement::evidence_of_overload(double now,
                                                                const replication_result& r) const {
  overload_evidence e;
  double t0 = window_closed_ ? window_start_.time : 0;
  double t1 = window_closed_ ? window_end_.time : now;
  // A run stopped at time 0 has no span to divide by: the demand itself is the rate.
  e.seconds = t1 > t0 ? t1 - t0 : 1;
  if (window_closed_) {
    for (double seconds : cpu_seconds_by_owner_) e.cpu_seconds += seconds;
    e.dials = r.pool.policy_dials;
  } else {
    e.cpu_seconds = 0;
    e.dials = 0;
    for (ps_cpu& cpu : deployment_.hosts) e.cpu_seconds += cpu.demand_submitted();
    for (const service_instance& in : deployment_.instances) e.dials += in.pool.stats().dials;
  }
  // Split, which host's CPU: the demand each host was given over the same span.
  for (std::size_t h = 0; h < deployment_.hosts.size(); ++h) {
    double d = window_closed_ ? window_end_.cpu_demand[h] - window_start_.cpu_demand[h]
                              : deployment_.hosts[h].demand_submitted();
    (h == 0 ? e.database_cpu_seconds : e.service_cpu_seconds) += d;
  }
  for (const service_instance& in : deployment_.instances) {
    if (!in.workers.unlimited()) e.worker_queue += in.workers.queued();
    e.connection_waiters += in.pool.stats().waiting;
  }
  return e;
}

}  // namespace headroom
