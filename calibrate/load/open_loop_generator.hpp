// The open-loop HTTP load generator behind `headroom load`: sends on a fixed schedule whatever
// the target does, and measures latency from each request's intended send time (wrk2 style), so
// a stalled server shows its full delay instead of silently slowing the generator down
// (coordinated omission).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "load_report.hpp"
#include "load_schedule.hpp"
#include "target_url.hpp"

namespace headroom::calibrate {

class load_worker;

struct load_options {
  std::vector<std::string> targets;  // round-robin, one request each in turn
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  load_schedule schedule = load_schedule::constant(1, 1);
  arrival_process arrivals = arrival_process::uniform;
  int threads = 1;
  int max_connections = 100;    // over all threads
  double timeout = 10;          // seconds, per request (connect, write and read together)
  std::uint64_t seed = 1;       // Poisson arrivals
  bool handle_signals = false;  // SIGINT/SIGTERM stop the run (the report is still produced)
  double progress_interval = 1.0;
  // Shortest time between two wake-ups of a thread's schedule timer (seconds). Below 1 / rate it
  // changes nothing; above, requests due together are sent together, at most this late.
  double min_tick = 250e-6;
};

struct load_progress {
  double elapsed;  // seconds since the measured part began (negative during warmup)
  double rate;     // responses per second over the last whole second
  double p99;      // latency p99 over the last whole second, seconds
  std::uint64_t sent;
  std::uint64_t completed;
  std::uint64_t failed;
};

class open_loop_generator {
 public:
  // Validates the options and resolves the targets; throws load_input_error.
  explicit open_loop_generator(load_options options);
  ~open_loop_generator();

  // Opens and closes one connection per target; throws load_input_error when one cannot be reached.
  void check_reachable() const;
  // Runs the whole schedule (or until request_stop) and returns what was measured.
  load_result run(const std::function<void(const load_progress&)>& on_progress = {});
  // Thread-safe: ends the run early; run() still returns everything measured so far.
  void request_stop();

 private:
  load_options options_;
  std::vector<http_target> targets_;
  std::mutex workers_mu_;  // request_stop() may run on another thread than run()
  std::vector<std::unique_ptr<load_worker>> workers_;  // one per thread
  std::atomic<bool> stop_requested_{false};
  std::atomic<std::int64_t> stopped_at_{
      0};  // steady_clock ticks when request_stop was first called
};

}  // namespace headroom::calibrate
