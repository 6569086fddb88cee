// The capacity plan (DESIGN.md "The capacity plan"): per-instance capacity under an SLO judged
// over one window, instances = ceil(target / capacity) + k with zone rounding, what each instance
// sees at the target load, and optionally the pool setting that gives the most capacity.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "prediction.hpp"
#include "scenario.hpp"
#include "slo.hpp"

namespace headroom {

struct plan_request {
  double target_rps = 0;  // the whole service's expected load, req/s
  latency_slo slo;
  double confidence = 0.9;         // P(one window meets the SLO) the capacity must keep
  int redundancy = 0;              // k spare instances
  int zones = 1;                   // instances spread evenly over this many zones
  bool survive_zone_loss = false;  // enough instances that losing one zone still carries target
  // The SLO is judged over one window, as a dashboard shows p99 per minute: each simulated
  // window is a run of `window` seconds after `window_warmup` seconds not measured.
  double window = 60, window_warmup = 5;
  int runs = 0;  // windows simulated per rate; 0 = default_runs(confidence)
  // The search stops when its bracket [lo, hi] has hi <= lo x (1 + precision).
  double precision = 0.02;
  bool optimize_pool = false;
  // Production has no load generator on the instance: drop its CPU and its connection cap.
  bool exclude_generator = false;
  int database_max_connections = 100;  // PostgreSQL's max_connections (its default)
  // A split deployment (scenario.deployment): each instance on its own host of service_cores,
  // all of them sharing one database host of database_cores, database_rtt away. Unset: the
  // scenario's own deployment (co-located when calibrated on one machine). database_cores
  // defaults to the scenario's cores (the calibration machine), database_rtt to
  // default_database_rtt.
  std::optional<double> service_cores, database_cores, database_rtt;
  // One line per simulated rate, for a progress display (may be empty).
  std::function<void(const std::string&)> progress;
};

// The service-database round trip a split plan assumes unless told: a network hop inside one
// data centre (0.5 ms).
inline constexpr double default_database_rtt = 0.0005;

// The database's CPU a plan aims to stay under at the target (cores_needed): PostgreSQL's
// queries and backends then rarely queue for a core.
inline constexpr double database_cpu_ceiling = 0.7;

// Enough windows that a probability near `confidence` is not decided by one or two of them:
// about 4 windows expected to miss, at least 40 (40 for 0.9, 80 for 0.95, 400 for 0.99).
int default_runs(double confidence);

// The arithmetic of N+k and zones, exact and pure.
struct instance_count {
  int needed = 0;                       // ceil(target / capacity)
  int with_redundancy = 0;              // needed + k
  int instances = 0;                    // after zone rounding (and zone loss)
  int per_zone = 0;                     // instances / zones
  std::vector<std::string> arithmetic;  // the lines that show it ("instances = ceil(...) + 1 = 5")
};
// Throws std::invalid_argument for a capacity <= 0, zones < 1, redundancy < 0, or zone loss
// with one zone.
instance_count count_instances(double target_rps, double capacity_rps, int redundancy, int zones,
                               bool survive_zone_loss);

// What the simulation says about one offered rate: `runs` windows at it, each with its own
// machine speed, the same seeds at every rate (common random numbers: P(SLO met) falls with
// the rate run by run, not only on average).
struct rate_evaluation {
  double rate = 0;
  int runs = 0, met = 0;  // windows simulated, and those within the SLO
  bool refused = false;   // overload_check refused it: overloaded without simulating
  std::string reason;     // why refused
  live_run_estimate live;
  double p() const { return runs > 0 ? static_cast<double>(met) / runs : 0; }
};

// Wilson score interval of a binomial proportion (met of n) at two-sided `level`.
struct proportion_interval {
  double low = 0, high = 1;
};
proportion_interval wilson_interval(int met, int n, double level);

// Per-instance capacity: the largest rate whose estimated P(window meets SLO) >= confidence
// (the low end of the search's final bracket: a rate seen to meet it). low / high: the rates
// between which the N windows cannot tell (90 % Wilson interval of P) whether P is above or
// below the confidence: low the largest rate sure to meet it, high the largest that may; each
// to max(precision, 5 %).
struct capacity_estimate {
  bool found = false;
  double rps = 0, low = 0, high = 0;
  bool low_known = true;  // false: too few windows to be sure of any rate (low is 0)
  std::string reason;     // when not found: plain words
  std::string note;       // a limit of the search the reader must know ("at least ...")
  std::vector<rate_evaluation> evaluations;  // every rate simulated, by rate
};

// The scenario as the plan simulates it: windows of r.window judged against r.slo, without the
// load generator when r.exclude_generator. Throws scenario_error (a trace, a bad field).
scenario plan_scenario(scenario s, const plan_request& r);

// Searches one scenario setting (its pool, cores, ...) for its capacity; evaluations are cached
// by rate. `with_interval` false skips the two searches for low and high (screening).
// `start` (optional) is a first guess of the capacity (another setting's); `known` are
// evaluations of this same setting made before (a screening's), reused as cached.
// `s` as plan_scenario returns it.
capacity_estimate find_capacity(const scenario& s, const plan_request& r, bool with_interval,
                                std::optional<double> start = std::nullopt,
                                const std::vector<rate_evaluation>& known = {});

// One pool setting's plan figures.
struct pool_setting {
  int max_open = 0, max_idle = 0;
};
struct setting_plan {
  pool_setting pool;
  capacity_estimate capacity;
  std::optional<instance_count> count;  // when capacity was found
};

// The grid --optimize-pool searches (documented in README "Planning"): max_open in
// {0 (unlimited), 8, 16, 32} x max_idle in {2, 8, 16, 32}, max_idle <= max_open when max_open
// is bounded (Go clamps it, so a larger one is the same setting).
std::vector<pool_setting> pool_grid();

struct plan {
  plan_request request;
  std::string scenario_name;
  bool use_pool = true;  // false: the scenario has no connection pool (textbook queues)
  bool feasible = false;
  std::string reason;   // when not feasible: plain words
  setting_plan chosen;  // the scenario's own setting
  // What each instance sees at target / instances (all instances up): the long-run prediction
  // with one window's interval (live).
  std::optional<prediction> at_target;
  double rps_per_instance = 0;
  bool split = false;  // a split deployment: instances and the database on their own hosts
  // The database at the target. Split: the whole deployment simulated (n instances sharing
  // one database). Co-located (the study's deployment: each instance with its own PostgreSQL
  // on its host, sharing that host's cores): one instance and its database simulated, so the
  // connections are one database's.
  struct database_check {
    std::optional<double> cores;          // the database host's cores (unknown co-located)
    std::optional<double> cpu_at_target;  // fraction of its cores (co-located: of the shared ones)
    // The most connections one database held at once (split: all instances'; co-located: its
    // instance's), from the simulation, where PostgreSQL refuses dials past max_connections.
    std::optional<double> connections_peak;
    int max_connections = 100;
    std::optional<double> dials_per_s;  // all instances: what the postmaster(s) must sustain
    // All instances: dials PostgreSQL refused at the target (max_connections), each a failed
    // request; above 0 the plan is refused.
    std::optional<double> refused_dials_per_s;
    bool bottleneck = false;
    std::optional<double> cores_needed;
  } database;
  std::optional<setting_plan> recommendation;  // --optimize-pool: the best setting, if better
  // How much the answer depends on the run-to-run spread of machine speed (speed_sigma > 0):
  // the chosen setting's capacity and count with every window at one fixed speed, the median
  // of one run's speed factor and its slow end (the 95th percentile: every CPU demand that much
  // larger). Empty when the scenario has no speed spread or no capacity was found.
  struct speed_case {
    std::string name;   // "median", "slow end"
    double factor = 1;  // on every CPU demand (scenario.speed_factor)
    capacity_estimate capacity;
    std::optional<instance_count> count;
  };
  std::vector<speed_case> speed_spread;
  std::vector<std::string> summary;  // the text lines the CLI prints
  double wall_seconds = 0;
};

// The whole plan. Throws scenario_error for a bad scenario or request (naming the field/flag).
plan make_plan(scenario s, const plan_request& r);

}  // namespace headroom
