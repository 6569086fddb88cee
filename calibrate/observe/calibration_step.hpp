// One measured step of a calibration: what the generator saw, and around it what the service's
// /metrics and /proc said over the same measured window. Plain figures in seconds, kept whole in
// the calibration file so a later fit (another label, a better model) can use them again.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>

#include "load_report.hpp"

namespace headroom::calibrate {

// The pool setting the service reported in its /metrics (headroom_pool_info and gauges).
struct pool_setting {
  int max_open = 0;  // 0 = unlimited
  int max_idle = 2;
  std::string go_version = "1.10";
  std::string waiter_order = "random";
  std::string text() const;  // "max_open 0, max_idle 2, Go 1.10"
};

// Deltas of the service's own counters over the measured window (its /metrics).
struct service_counters {
  double requests = 0;  // answered POST / (any status)
  double dials = 0, dial_failures = 0;
  double closes = 0;  // every reason
  double closed_max_idle = 0;
  double waits = 0, wait_seconds = 0, wait_timeouts = 0;
  double cpu_seconds = 0;  // process_cpu_seconds_total
};

// CPU from /proc over the measured window, when the target runs on this machine.
struct local_cpu {
  double service = 0;     // the service process
  double database = 0;    // the postmaster's tree: postmaster, backends, exited backends
  double postmaster = 0;  // the postmaster alone (its forks)
  // Backends that ended in the window: their CPU in it, and how many. A connection opened and
  // closed within a step shows its whole life here (start, queries, exit).
  double connections_cpu = 0;
  int connections_ended = 0;
  double host_busy = 0;  // every CPU-second not idle on the host (/proc/stat)
  double runnable = 0;   // mean tasks running or waiting for a CPU (/proc/schedstat)
  int cores = 0;
  // The CPUs the service and PostgreSQL were pinned to, apart from the generator's
  // (--target-cpus, cpu_set.hpp): host_busy, runnable, waiting and cores are then those CPUs'
  // alone, and the generator's CPU is on none of them. "" = not split: the whole host.
  std::string target_cpus;
  bool generator_apart() const { return !target_cpus.empty(); }
  // CPU contention as the kernel reports it, each absent where the kernel does not keep it:
  // the share of the window in which some runnable task waited for a CPU (/proc/pressure/cpu,
  // "some"); the mean number of tasks waiting for a CPU (/proc/schedstat's run-queue wait over
  // the window); the seconds the postmaster itself waited for a CPU (/proc/<pid>/schedstat:
  // it forks every new connection, so this over the dials is a fork's wait).
  std::optional<double> cpu_pressure, waiting, postmaster_wait;
};

struct calibration_step {
  std::size_t index = 0;
  std::string label;  // the run this step belongs to (`--label`, one per pool setting)
  // "generator": measured by calibration_runner; "prometheus": a steady period of history
  // (passive_calibration.hpp), whose `load` holds the service's histograms, not a client's.
  std::string source = "generator";
  double rate = 0;  // offered, requests/s
  int repeat = 0;
  std::string started_at;  // UTC, ISO 8601
  double window = 0;       // seconds between the snapshots around the measured part
  bool stopped_early = false;
  std::string stop_reason;
  std::optional<pool_setting> pool;  // nothing when the service has no /metrics
  std::optional<service_counters> service;
  std::optional<local_cpu> cpu;
  load_result load;  // the generator's report of the measured part (warm-up excluded)
};

boost::json::object to_json(const calibration_step& s);
calibration_step calibration_step_from_json(const boost::json::value& v);  // invalid_argument

}  // namespace headroom::calibrate
