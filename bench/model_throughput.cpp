// Model speed: simulated requests per second per core for the full request-path model (pool
// with dials, PS CPU, serial fork, background load) at CPU utilisation 0.7, and in the same run
// the events per second of a minimal M/M/1 loop on std::priority_queue (the baseline).
// Then the wall time of predict() to a +-2 % p99 interval at utilisation 0.8 on all cores.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <queue>
#include <vector>

#include "prediction.hpp"
#include "random_stream.hpp"

using namespace headroom;

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The baseline: the smallest M/M/1 simulation there is. Events are (time, kind) on a
// std::priority_queue; no statistics beyond a sum of response times.
double mm1_baseline_events_per_second(std::uint64_t customers) {
  struct ev {
    double t;
    int kind;  // 0 arrival, 1 departure
    bool operator<(const ev& o) const { return t > o.t; }
  };
  std::priority_queue<ev> q;
  random_stream rng(1, 0, 0);
  std::deque<double> fifo;  // arrival times of the customers present, first in service
  double sum = 0;
  std::uint64_t events = 0, arrived = 0;
  auto t0 = std::chrono::steady_clock::now();
  q.push({rng.exponential(1 / 0.7), 0});
  while (!q.empty()) {
    ev e = q.top();
    q.pop();
    ++events;
    if (e.kind == 0) {
      fifo.push_back(e.t);
      if (fifo.size() == 1) q.push({e.t + rng.exponential(1.0), 1});
      if (++arrived < customers) q.push({e.t + rng.exponential(1 / 0.7), 0});
    } else {
      sum += e.t - fifo.front();
      fifo.pop_front();
      if (!fifo.empty()) q.push({e.t + rng.exponential(1.0), 1});
    }
  }
  double s = seconds_since(t0);
  if (sum < 0) std::printf("impossible\n");
  return static_cast<double>(events) / s;
}

// The study's service with a pool that keeps fewer idle connections (8) than it may open (16), so
// dials, closes, waits and cold queries all happen; demands from DESIGN.md.
scenario full_model(double rate, int max_open = 16, int max_idle = 8) {
  scenario s;
  s.arrivals.rate = rate;
  s.cores = 2;
  s.background_utilization = 0.02;
  s.pool.max_open = max_open;
  s.pool.max_idle = max_idle;
  s.wait_timeout = 1.0;
  s.workers = 0;  // a Go service: one goroutine per request (the default is headroom-service's 64)
  s.network_rtt = distribution::deterministic(0.0001);
  s.parse_cpu = distribution::exponential(0.00005);
  s.dial_fork = distribution::lognormal_mean_cv(0.004, 0.3);
  s.dial_cpu = distribution::gamma_mean_cv(0.030, 0.3);
  s.dial_delay = distribution::deterministic(0.001);
  s.query_delay = distribution::deterministic(0.0001);
  s.query_db_cpu = distribution::lognormal_mean_cv(0.0005, 0.5);
  s.query_service_cpu = distribution::exponential(0.0001);
  s.query_cold_db_cpu = distribution::deterministic(0.0055);
  s.release_cpu = distribution::deterministic(0.00001);
  s.respond_cpu = distribution::exponential(0.00005);
  s.close_db_cpu = distribution::deterministic(0.004);
  s.generator_cpu = distribution::exponential(0.00005);
  return s;
}

double cpu_utilization(const replication_result& r) {
  for (const auto& [name, v] : r.utilization)
    if (name == "cpu") return v;
  return 0;
}

// The offered rate at which the full model's CPU is `target` busy (dials included): CPU use
// rises with the rate, so bisect on short runs.
double rate_for_cpu(double target, int max_open, int max_idle) {
  double lo = 100, hi = 4000;
  for (int i = 0; i < 12; ++i) {
    double mid = 0.5 * (lo + hi);
    scenario s = full_model(mid, max_open, max_idle);
    s.run.requests = 200000;
    s.run.max_in_flight = 20000;
    replication_result r = simulate_replication(s, 100);
    (r.stable && cpu_utilization(r) < target ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}
void time_predict(const char* what, double target_cpu, int max_open, int max_idle, int cap) {
  double rate = rate_for_cpu(target_cpu, max_open, max_idle);
  scenario s = full_model(rate, max_open, max_idle);
  s.run.max_replications = cap;
  for (int i = 0; i < 3; ++i) {
    prediction p = predict(s);
    const estimate& p99 = p.phases[phase_total].p99;
    double cpu = 0;
    for (const auto& [name, e] : p.utilization)
      if (name == "cpu") cpu = e.value;
    std::printf(
        "  %s, %.0f req/s (CPU %.3f): p99 %.3f ms [%.3f, %.3f] (+-%.2f %%), %d x %llu requests, "
        "target %s, wall %.3f s\n",
        what, rate, cpu, p99.value * 1e3, p99.ci_low * 1e3, p99.ci_high * 1e3,
        100 * p99.relative_half_width(), p.replications,
        static_cast<unsigned long long>(p.requests_per_replication),
        p.target_reached ? "reached" : "NOT reached (cap)", p.wall_seconds);
  }
}
}  // namespace

int main() {
  std::printf("== model throughput (one core) ==\n");
  double rate = rate_for_cpu(0.7, 16, 8);
  scenario s = full_model(rate);
  s.run.requests = 250'000;
  // The machine is shared and noisy: alternate model and baseline, keep each one's best round.
  double best_req = 0, best_ev = 0, best_base = 0;
  replication_result r;
  for (int round = 0; round < 15; ++round) {
    auto t0 = std::chrono::steady_clock::now();
    r = simulate_replication(s, 1);
    double wall = seconds_since(t0);
    double simulated = static_cast<double>(s.run.requests + s.run.requests / 10);
    best_req = std::max(best_req, simulated / wall);
    best_ev = std::max(best_ev, static_cast<double>(r.events) / wall);
    best_base = std::max(best_base, mm1_baseline_events_per_second(2'500'000));
  }
  double per_request = best_ev / best_req;
  std::printf(
      "full request-path model (max_open 16, max_idle 8) at %.0f req/s: CPU %.3f busy, dials "
      "%.1f/s, "
      "closes %.1f/s, waits %.1f/s\n",
      rate, cpu_utilization(r), r.pool.dials / r.window, r.pool.closes / r.window,
      r.pool.waits / r.window);
  std::printf("  simulated requests/s per core: %.2f M   (target >= 3 M; best of 15 rounds)\n",
              best_req / 1e6);
  std::printf("  events/s: %.2f M, %.2f events per request\n", best_ev / 1e6, per_request);
  std::printf("M/M/1 baseline on std::priority_queue: %.2f M events/s (best of 15 rounds)\n",
              best_base / 1e6);
  std::printf("  model events/s / baseline events/s = %.2f   (target >= 0.50)\n",
              best_ev / best_base);

  std::printf("== predict() to +-2 %% p99 at CPU utilisation 0.8, all cores (target < 1 s) ==\n");
  time_predict("tuned pool (max_open 8 = max_idle 8)", 0.8, 8, 8, 400);
  time_predict("dialing pool (max_open 16, max_idle 8)", 0.8, 16, 8, 100);
}
