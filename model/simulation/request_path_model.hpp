// One replication of the request-path model (DESIGN.md "The request path"): arrivals,
// workers, the Go pool (pool_policy, the service's own code), serial dials, PS CPU.
// It simulates and returns raw per-replication figures; prediction.hpp combines replications.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "latency_summary.hpp"  // latency_summary, summarize: part of this API
#include "quantile_histogram.hpp"
#include "scenario.hpp"

namespace headroom {

// Fixed phase names (DESIGN.md), in reporting order.
enum phase : int { phase_queue, phase_wait, phase_dial, phase_query, phase_release, phase_total };
inline constexpr int phase_count = 6;
const char* phase_name(int p);

// The counts are all instances' (the database sees their sum); the means are one instance's.
struct pool_window_stats {
  // Counted by the model from the decisions pool_policy returned...
  std::uint64_t dials = 0, closes = 0;
  // ...and the policy's own DBStats over the same window (they must agree).
  std::uint64_t policy_dials = 0, policy_closes = 0;
  std::uint64_t waits = 0, wait_timeouts = 0;
  // Dials that failed (PostgreSQL refused them: max_connections), by the policy's count, and
  // connections found dead when queried (deployment.broken_connection_share), by the model's.
  std::uint64_t dial_failures = 0, broken = 0;
  std::uint64_t closed_max_idle = 0, closed_max_idle_time = 0, closed_max_lifetime = 0;
  double mean_open = 0, mean_idle = 0, mean_in_use = 0;  // per instance, time averages
  std::vector<std::uint64_t> dials_by_instance;          // the model's count, by instance
  // Most connections open at once in the window: in any one instance, and in all together
  // (what PostgreSQL's max_connections must hold).
  int peak_open = 0, database_peak_open = 0;
};

struct replication_result {
  bool stable = true;
  std::string unstable_reason;
  double window = 0;  // seconds of simulated time measured (after warm-up)
  std::uint64_t measured = 0, completed = 0, errors = 0;
  std::uint64_t late = 0;     // measured requests that waited for a client connection
  double speed = 1;           // this run's machine-speed factor (scenario.speed_sigma)
  double delay_factor = 1;    // this run's factor on every delay (scenario.delay_sigma)
  double postmaster_cpu = 0;  // CPU seconds of the postmaster's forks in the window
  // Time-average jobs on the database's CPU (co-located: the one CPU), running or waiting.
  double mean_runnable = 0;
  latency_summary phases[phase_count];  // successful requests
  // Every measured request, failed ones at the time they failed, plus network.rtt.
  latency_summary all_requests;
  // The same samples bucketed, to pool across replications (prediction.hpp).
  quantile_histogram pooled[phase_count], pooled_all;
  double throughput = 0;  // successful responses per second in the window
  double error_rate = 0;  // failed / measured
  // Little's law: time-average number in the service vs arrival rate x mean time in it.
  double mean_in_system = 0, arrival_rate = 0, mean_sojourn = 0;
  std::vector<std::pair<std::string, double>> utilization;
  pool_window_stats pool;
  std::uint64_t events = 0;  // events processed (whole run, warm-up included)
};

// Runs replication `replication` of `s` (its random streams depend only on s.run.seed and
// the replication number, so results are bit-identical on any thread).
replication_result simulate_replication(const scenario& s, std::uint64_t replication);

}  // namespace headroom
