// From a scenario to a prediction: checks the scenario, refuses obvious overload up front,
// runs independent replications in parallel until the p99 interval is tight enough, and
// combines them into estimates with confidence intervals. Reporting lives elsewhere.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "request_path_model.hpp"
#include "scenario.hpp"

namespace headroom {

void validate(const scenario& s);  // throws scenario_error

// "" if not obviously overloaded; else "overloaded: CPU demand 1.3 x capacity (2 cores)".
// Only lower bounds of demand are used, so a scenario it passes may still prove unstable
// in simulation (dials, waits), which the replications detect.
std::string overload_check(const scenario& s);

struct estimate {
  double value = 0;
  double ci_low = 0, ci_high = 0;  // meaningful when has_ci
  bool has_ci = false;
  double half_width() const { return has_ci ? 0.5 * (ci_high - ci_low) : 0; }
  double relative_half_width() const { return value != 0 ? half_width() / value : 0; }
};

struct latency_estimate {
  std::uint64_t count = 0;  // requests measured, all replications
  estimate mean, p50, p90, p95, p99, p999;
  double max = 0;  // largest observed: no interval
};

// One instance's pool (with several instances, the mean over them).
struct pool_estimate {
  estimate dials_per_s, closes_per_s, waits_per_s, wait_timeouts_per_s, mean_open, mean_idle,
      mean_in_use;
  // Dials PostgreSQL refused (max_connections) and connections found dead when queried
  // (deployment.broken_connection_share), per second.
  estimate failed_dials_per_s, broken_per_s;
  double peak_open = 0;  // most connections one instance had open at once, over replications
  // Totals over the measured windows and all instances, the model's count and the policy's own.
  std::uint64_t dials = 0, closes = 0, policy_dials = 0, policy_closes = 0;
};

// What one live run of run.live_length seconds (a load test's step) would show: replications
// that are each such a run, at the offered rate and with their own machine speed
// (speed_sigma), so their spread is the spread of live runs, not the simulation's uncertainty.
struct live_run_estimate {
  bool computed = false;
  double length = 0, warmup = 0;  // seconds of one run, and of its warm-up
  int runs = 0;                   // replications behind the figures
  double quantile = 0.99;         // the SLO's percentile (run.slo_quantile)
  // That percentile of one run's latency, all requests: the 5th, 50th and 95th percentile over
  // runs (a 90 % prediction interval and its median). A run that fell over counts as +inf.
  double low = 0, median = 0, high = 0;
  double p_stable = 1;  // share of runs that kept up with the offered rate
  double p_slo = -1;    // share of runs within run.slo_latency (-1: no SLO given)
  double throughput_low = 0, throughput_median = 0, throughput_high = 0;  // successes per second
  double late_fraction = 0;  // mean share of requests that waited for a client connection
};

struct prediction {
  bool stable = true;
  std::string reason;    // why not stable
  int replications = 0;  // 0: refused by overload_check, nothing simulated
  std::uint64_t requests_per_replication = 0;
  double confidence = 0.95;
  // Successful requests: phases[phase_total] is their end-to-end latency (headroom load's
  // "latency"). Percentiles of an unstable run describe only how long it ran: reporters
  // must not print them (prediction_report.hpp writes null).
  latency_estimate phases[phase_count];
  // Every measured request (headroom load's "latency_all"): successes as above, and requests
  // that failed at their wait deadline at the time they failed (arrival to the 503) plus
  // network.rtt, as successes count it.
  latency_estimate all_requests;
  // The successful requests' end-to-end latencies of every replication's measured window,
  // pooled (what the percentiles above are read from); empty when refused.
  quantile_histogram latency_histogram;
  estimate throughput, error_rate;
  std::vector<std::pair<std::string, estimate>> utilization;
  bool has_pool = false;
  pool_estimate pool;  // per instance
  // The shared database: the most connections open at once over all instances (max over
  // replications; set against deployment.database_max_connections), and the dials per second
  // of all instances, which its postmaster must sustain.
  double database_peak_connections = 0;
  estimate database_dials_per_s;
  // Little's law, averaged over replications: L against lambda x W.
  estimate mean_in_system, arrival_rate, mean_sojourn;
  double simulated_seconds = 0;
  std::uint64_t events = 0;
  bool target_reached = false;  // the stop rule's precision was met (else it stopped at its cap)
  live_run_estimate live;       // computed when run.live_length > 0
  double wall_seconds = 0;
};

// "" when the database's connections fit; else a sentence saying that the peak of open
// connections exceeds deployment.database_max_connections and how many dials PostgreSQL refused
// in the simulation.
std::string database_connections_warning(const scenario& s, const prediction& p);

// Student t quantile (p in (0,1), dof >= 1) and the standard normal one.
double normal_quantile(double p);
double student_t_quantile(double p, double dof);

// Combines finished replications (any stable = false makes the prediction unstable).
// Quantiles are those of all replications' samples pooled (`pooled`, per phase; built from
// the replications' own histograms when null), with the half-width of the t-interval of the
// per-replication quantiles around them ("sectioning", Asmussen & Glynn 2007, III.5).
// `pooled_all` likewise for all_requests.
prediction combine(const scenario& s, const std::vector<replication_result>& reps,
                   const quantile_histogram* pooled = nullptr,
                   const quantile_histogram* pooled_all = nullptr);

// Runs replications [first, last) of s on `threads` threads (0 = all cores); results by
// replication number.
std::vector<replication_result> run_replications(const scenario& s, std::uint64_t first,
                                                 std::uint64_t last, int threads);

// The stop rule: which figures must be how precise, and how many replications it may use.
struct precision_goal {
  struct figure {
    std::string name;  // for messages: "p99 of total"
    std::function<estimate(const prediction&)> of;
  };
  std::vector<figure> figures;
  double relative_half_width = 0.02;  // every figure's interval within +-this of its value
  int max_replications = 400;
  // What the cap means to the caller: a prediction flagged target_reached = false (a planner
  // still wants the answer, marked), or precision_not_reached thrown (a caller that relies
  // on the precision, e.g. a test against an exact result).
  enum class at_cap { flag, throw_error } on_cap = at_cap::flag;
};

// Thrown by run_to_precision with at_cap::throw_error: what() names the figure, the half-width
// it reached and the cap.
struct precision_not_reached : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The long run is the machine at its mean speed: `s` with both variability sigmas 0. A run's
// speed and delay factors say how one live run of minutes differs from the next; a long run
// (production, for days) lives through many of them, and a replication that drew a slow machine
// and fell over would otherwise call the whole setting unstable. How often one window falls over
// is what predict_live_runs answers, with the factors drawn.
scenario at_mean_speed(scenario s);

// Adds replications (first batch: max(run.min_replications, threads)) until every figure of
// `goal` is precise enough, the cap is reached, or a replication is unstable. The replications
// run at_mean_speed(s).
prediction run_to_precision(const scenario& s, const precision_goal& goal);

// The p99 of total at run.target_half_width within run.max_replications, flagged at the cap.
precision_goal default_goal(const scenario& s);

// `s` with each replication one live run: run.live_warmup then run.live_length seconds of
// requests at the offered rate (a trace is left as it is).
scenario one_live_run(scenario s);

// Runs `runs` replications that are each one live run (live_run_estimate); any stability.
live_run_estimate predict_live_runs(const scenario& s, int runs);

// The whole prediction: validate, overload_check, run_to_precision(s, default_goal(s)).
// Throws scenario_error for a bad scenario.
prediction predict(const scenario& s);

}  // namespace headroom
