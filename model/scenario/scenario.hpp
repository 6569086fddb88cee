// A scenario: everything the request-path model needs, as plain data (SCENARIO.md gives the
// JSON form). A calibration file is a scenario whose distributions were fitted.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "distribution.hpp"
#include "pool_policy.hpp"
#include "service_defaults.hpp"

namespace headroom {

// A bad scenario: what() names the field ("arrivals.rate: must be > 0").
struct scenario_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

enum class arrival_process { poisson, constant, trace };

struct arrival_spec {
  arrival_process process = arrival_process::poisson;
  double rate = 0;            // requests per second (poisson, constant)
  std::vector<double> times;  // trace: arrival instants in seconds, non-decreasing
};

// How long a run is and when to stop replicating.
struct run_spec {
  std::uint64_t requests = 20000;     // measured requests per replication
  std::uint64_t warmup_requests = 0;  // discarded first; 0 = requests / 10
  std::uint64_t seed = 1;
  int min_replications = 8;         // the first batch (raised to the thread count)
  int max_replications = 400;       // cap of the stop rule
  double target_half_width = 0.02;  // stop when the p99 interval is within +-2 %
  double confidence = 0.95;         // of every interval reported
  int threads = 0;                  // 0 = all cores
  // A replication past this many requests in flight stops and is declared overloaded;
  // 0 = derived from the offered rate (in_flight_limit below).
  std::uint64_t max_in_flight = 0;
  // One live run (a load test's step) that the prediction interval describes: each replication
  // is a run of this many seconds at the offered rate, after `live_warmup` seconds (0: the
  // interval is not computed). Replications then vary as live runs do (speed_sigma).
  double live_length = 0, live_warmup = 0;
  // The SLO whose probability of being met by one such run is reported (latency 0: none).
  double slo_quantile = 0.99, slo_latency = 0;
};

// The service's pool left at its defaults (service_defaults.hpp): Go 1.10's rules, the waiter
// order left to the Go version.
inline pool_config service_default_pool() {
  pool_config c;
  c.max_open = service_defaults::max_open;
  c.max_idle = service_defaults::max_idle;
  c.go = go_version::go1_10;  // the study's release, the service's default profile
  c.order.reset();
  return c;
}

// Where the service's instances and PostgreSQL run (DESIGN.md "The model": hosts). Co-located
// (service_cores 0, as when calibrating on one machine): every instance and the database share
// scenario.cores. Split: each instance has its own host of service_cores, and every instance
// shares one database host of database_cores, reached over database_rtt.
struct deployment_spec {
  int instances = 1;          // service instances sharing the one database; arrivals split
                              // uniformly at random (each instance sees rate/instances, Poisson)
  double service_cores = 0;   // per instance; 0 = co-located: everything shares scenario.cores
  double database_cores = 0;  // the database host (used only when service_cores > 0)
  distribution database_rtt;  // service<->database round trip (none when co-located)
  // PostgreSQL's max_connections: a backend started when every slot is taken refuses the
  // connection, and the dial fails (pool_policy's dial-failure rules).
  int database_max_connections = 100;
  // The share of queries on a reused connection that find it dead (a database restart, a
  // network reset): the pool closes it as broken and the query is tried again, Go's
  // bad_conn_retry. 0 = connections never break.
  double broken_connection_share = 0;
};

// The request path of DESIGN.md. Each step has a pure delay (I/O, network, locks: time that
// uses no CPU here) and/or a CPU demand served by the processor-sharing CPU. A step whose
// distributions are `none` costs nothing and schedules no event.
// Left at its defaults, a scenario describes headroom-service run without flags
// (service_defaults.hpp); the textbook tests set what they need explicitly.
struct scenario {
  std::string name;
  arrival_spec arrivals;

  // CPU shared by service, database, generator, background (co-located; see deployment)
  double cores = 2;
  double background_utilization = 0;  // fraction of the cores busy with other work (Poisson jobs)
  distribution background_job = distribution::exponential(0.001);

  // CPU per request that grows with the number of tasks sharing the CPU (context switches,
  // cache refills): seconds per request per runnable task, added to the query's CPU work
  // (runnable tasks = jobs on the PS CPU when the query starts). Fitted by calibration.
  double service_cpu_per_runnable = 0, database_cpu_per_runnable = 0;
  // The runnable count beyond which that cost stops growing (0 = no bound): calibration sets
  // the largest count its steps measured. Unbounded, the cost feeds back on itself in a long
  // run (more runnable, slower requests, more in flight, more runnable) far past any measured
  // crowding, and a busy machine's fit called modest loads unstable.
  double service_max_runnable = 0, database_max_runnable = 0;
  // Pauses of the machine's intake (the generator's sends, the service's reads): at Poisson
  // times, `stall_rate` per second, the intake stops for a `stall_length`; every request due
  // meanwhile enters when the pause ends, together, its latency running from when it was due.
  // They bunch requests, and bunched requests need more connections than the pool keeps idle:
  // the trigger of Go's default pool's dial storms. 0 = none; calibration fits them
  // (CALIBRATION.md, "Stalls").
  // Plus `stall_per_request` stalls per request offered: pauses that come with the load (a busy
  // CPU deschedules those threads more often). The rate at a given load: stalls_per_second.
  double stall_rate = 0, stall_per_request = 0;
  distribution stall_length = distribution::none();
  // Wake-up of an idle machine: a request that arrives `gap` seconds after the one before it on
  // the same host (its service's host) runs late by a draw of wakeup_delay times
  // min(1, gap / wakeup_idle), a pure delay before it enters. At low load the CPUs sleep between
  // requests and each one pays their wake-up (measured here: p50 1.3 ms at 50 req/s, 0.55 ms from
  // 800 req/s up), and it is uneven: the p99 sat 1-3 ms above the p50 at 50 req/s, 0.3-0.6 ms
  // above it from 600 req/s up. The cost grows with the idle gap up to wakeup_idle, then stays.
  // none = no wake-up; a bare number in the file is a constant one; calibration fits its p50
  // from the steps' p50 and its spread from theirs (CALIBRATION.md, "Wake-up").
  distribution wakeup_delay = distribution::none();
  double wakeup_idle = 0;
  // How much one whole run's speed differs from the next on the same machine: each replication
  // draws a factor f (lognormal, mean 1, this sigma of ln f) that multiplies every CPU demand.
  // Calibration fits it from repeated steps; it is what makes a prediction interval for one
  // live run wider than the simulation's own interval.
  double speed_sigma = 0;
  // A fixed factor on every CPU demand, on top of each run's draw: 1 = the calibrated machine;
  // the plan sets it to a given speed (the median, the slow end) with speed_sigma 0.
  double speed_factor = 1;
  // The same for every pure delay (network, query, dial, release): how much one run's tail
  // differs from the next at low load, where the CPU is idle (the machine's scheduling hiccups
  // and the database's caches). Calibration fits it from repeated low-load steps' p99.
  double delay_sigma = 0;
  // How well the repeats pinned each sigma down: the degrees of freedom of its fit (0 = known
  // exactly). With nu of them a new run's ln f is sigma times Student's t with nu degrees of
  // freedom, not a normal: the predictive law once sigma itself is an estimate, so a prediction
  // interval widens when repeats are few (nu = 5: the 95th percentile x 1.23).
  int speed_sigma_dof = 0, delay_sigma_dof = 0;
  // The load generator's keep-alive connections (headroom load --max-connections): a request
  // that finds all of them busy waits in the client, and its latency (from its intended send
  // time) includes that wait, as `headroom load` measures it. 0 = no client (production).
  int client_connections = 0;

  // Requests served at once (the service's threads for blocking calls); 0 = unlimited.
  int workers = service_defaults::workers;

  bool use_pool = true;                       // false: no connection (textbook queue tests)
  pool_config pool = service_default_pool();  // Go database/sql rules (pool_policy)
  // Seconds a request waits for a connection before it fails (503); 0 = forever.
  double wait_timeout = service_defaults::wait_timeout;
  // Start with the pool's idle list full (max_idle warm connections), as a pool that has been
  // serving looks, instead of empty as a just-started Go process: the cold start's burst of
  // dials is a transient that otherwise leaks past the warm-up into the measured p99.
  bool pool_warm_start = true;

  distribution network_rtt;  // client <-> service round trip, added to each response

  // Service side, before the worker queue (accept + parse) and after (encode + write).
  distribution parse_cpu, respond_cpu;
  // dial: the postmaster forks backends one at a time (fork), then the backend starts
  // (CPU), then authentication round trips (delay).
  distribution dial_fork, dial_cpu, dial_delay;
  // query: delay plus CPU on both sides; a fresh connection's first query pays cold_db_cpu more.
  distribution query_delay, query_db_cpu, query_service_cpu, query_cold_db_cpu;
  distribution release_delay, release_cpu;
  distribution close_db_cpu;   // backend exit after a close (off the request's path)
  distribution generator_cpu;  // the co-located load generator's CPU per request (off path)

  deployment_spec deployment;  // hosts; absent from a file: co-located, one instance

  run_spec run;
};

// Everything on one machine (scenario.cores), as a calibration runs.
inline bool colocated(const scenario& s) { return s.deployment.service_cores <= 0; }

// Offered requests per second: the rate, or a trace's mean rate (0 for a trace too short).
double offered_rate(const scenario& s);

// Stalls of the intake per second at the scenario's offered rate.
inline double stalls_per_second(const scenario& s) {
  return s.stall_rate + s.stall_per_request * offered_rate(s);
}

// The run.max_in_flight a replication enforces: the scenario's, or when 0, the requests that
// arrive in in_flight_time_bound seconds at the offered rate (at least 1,000, at most
// 200,000: memory). By Little's law a stable run holding that many has a mean time in the
// system of in_flight_time_bound or more, past any latency this tool is asked about.
inline constexpr double in_flight_time_bound = 10;  // seconds: twice the default wait deadline
std::uint64_t in_flight_limit(const scenario& s);

}  // namespace headroom
