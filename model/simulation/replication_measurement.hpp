// What one replication measures over its window (the requests after warm-up): the phases'
// samples, Little's law's integrals, the pool's time averages and the resources' busy time.
// The simulation (request_path_model.cpp) calls it at named points; finish() turns it into
// the replication_result.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "deployment_resources.hpp"
#include "overload_diagnosis.hpp"
#include "pool_policy.hpp"
#include "request_path_model.hpp"
#include "resources.hpp"
#include "scenario.hpp"

namespace headroom {

// Who burns a CPU second (utilisation per owner).
enum cpu_owner : int {
  owner_service,
  owner_database,
  owner_generator,
  owner_background,
  owner_count
};

class replication_measurement {
 public:
  // `measured_requests`: the arrivals inside the window. The resources are read, and their
  // busy-time integrals brought up to date, when the window opens and closes.
  replication_measurement(const scenario& s, std::uint64_t measured_requests,
                          deployment_resources& deployment);

  // ---- the window: opened by the first measured arrival, split in halves by arrivals,
  // closed by the last arrival (or by an aborted run) ----
  void open_window(double now);
  void begin_second_half(double now);
  void close_window_if_open(double now);
  bool window_open() const { return window_open_; }

  // ---- called as the run goes (inline: several per event) ----
  // Before time moves to `t`: the requests in flight since the last event, integrated.
  void integrate_in_flight_to(double t, std::uint64_t in_flight) {
    if (!window_open_) return;
    double dt = t - in_flight_integrated_to_;
    // Through a signed integer: x86 converts that in one instruction, an unsigned 64-bit one
    // takes a branch and several (the value is the same).
    double area = static_cast<double>(static_cast<std::int64_t>(in_flight)) * dt;
    (in_first_half_ ? in_flight_area_first_half_ : in_flight_area_second_half_) += area;
    in_flight_integrated_to_ = t;
  }
  // Before every decision of instance i's pool: its open/idle/in-use counts since its last
  // one, integrated.
  void accumulate_pool_averages(std::uint32_t i, double now) {
    if (!window_open_) return;
    const pool_stats& st = instances_[i].pool.stats();
    pool_areas& a = pool_areas_[i];
    double dt = now - a.integrated_to;
    a.open += st.open * dt;
    a.idle += st.idle * dt;
    a.in_use += st.in_use * dt;
    a.integrated_to = now;
  }
  // After a decision of instance i's pool that opened or closed connections: the peaks of open
  // connections, that instance's and the database's (all instances' at once).
  void open_count_changed(std::uint32_t i) {
    if (!window_open_) return;
    const int open = instances_[i].pool.stats().open;
    open_now_ += open - open_by_instance_[i];
    open_by_instance_[i] = open;
    result_.pool.peak_open = std::max(result_.pool.peak_open, open);
    result_.pool.database_peak_open = std::max(result_.pool.database_peak_open, open_now_);
  }
  void count_cpu(cpu_owner who, double seconds) {
    if (window_open_) cpu_seconds_by_owner_[who] += seconds;
  }
  void count_postmaster_fork(double cpu_seconds) {
    if (window_open_) postmaster_cpu_ += cpu_seconds;
  }
  // Counted from the pool's decisions, to check against the policy's own statistics.
  void count_dial(std::uint32_t instance) {
    if (!window_open_) return;
    ++result_.pool.dials;
    ++result_.pool.dials_by_instance[instance];
  }
  void count_close() {
    if (window_open_) ++result_.pool.closes;
  }
  void count_broken() {
    if (window_open_) ++result_.pool.broken;
  }
  void count_late_send() { ++result_.late; }  // a measured request waited for the client

  // ---- per request ----
  // Every request that leaves: a success inside the window counts toward throughput.
  void request_left(bool failed) {
    if (window_open_ && !failed) ++window_completions_;
  }
  // A measured request that left: its phases (a success) or its latency (a failure).
  // `latency` is as the client sees it; `sojourn` is the time in the service (Little's law).
  void measured_request_left(const double (&phase_seconds)[phase_count], double sojourn,
                             double latency, bool failed);

  // ---- at the end ----
  // Every figure of the replication (stable; the caller judges overload and sets speed and
  // events). Reorders the samples: call once.
  replication_result finish(double now);
  // Mean requests in flight in each half of the window (the overload detector's input).
  in_flight_halves in_flight_by_half() const;
  // The demand offered over the window, or over the whole run if it stopped during warm-up;
  // `r` is what finish() returned.
  overload_evidence evidence_of_overload(double now, const replication_result& r) const;

 private:
  // The resources' cumulative figures at one moment; the window's figures are differences.
  // Host h's and all instances' (summed) figures.
  struct snapshot {
    double time = 0, workers_busy = 0, postmaster_busy = 0;
    std::vector<double> cpu_busy, cpu_demand;
    std::vector<double> cpu_jobs;  // integral of the jobs on the CPU (running or waiting)
    pool_stats pool;
  };
  snapshot take_snapshot(double now);
  void add_utilization(replication_result& r, double window) const;
  void add_pool(replication_result& r, double window) const;
  // One instance's pool figures integrated over time (accumulate_pool_averages).
  struct pool_areas {
    double integrated_to = 0, open = 0, idle = 0, in_use = 0;
  };

  const scenario& scenario_;
  const std::uint64_t measured_requests_;
  // Not const: reading a busy-time integral brings it up to date.
  deployment_resources& deployment_;
  std::span<const service_instance> instances_;  // deployment_'s, for the per-decision calls

  bool window_open_ = false, window_closed_ = false, in_first_half_ = true;
  snapshot window_start_, window_end_;
  double second_half_began_ = 0;

  // Phases this scenario can never spend time in are not stored (fewer writes per request).
  bool phase_recorded_[phase_count] = {};
  std::vector<double> samples_[phase_count];  // successful measured requests, by phase
  std::vector<double> failed_latencies_;      // measured requests that failed (wait deadline)
  double sojourn_sum_ = 0;                    // of measured requests: Little's law's W

  // Requests in flight integrated over time in the window's halves: Little's law's L and the
  // overload detector.
  double in_flight_integrated_to_ = 0;
  double in_flight_area_first_half_ = 0, in_flight_area_second_half_ = 0;
  std::vector<pool_areas> pool_areas_;  // by instance
  // Open connections as pool_decided last saw them: each instance's and their sum.
  std::vector<int> open_by_instance_;
  int open_now_ = 0;
  double cpu_seconds_by_owner_[owner_count] = {};
  double postmaster_cpu_ = 0;  // CPU of the forks in the window (part of the database's)
  std::uint64_t window_completions_ = 0;

  replication_result result_;  // the counts so far; finish() fills in the rest
};

}  // namespace headroom
