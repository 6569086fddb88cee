// Runs one calibration step against a live target: the open-loop generator at one rate, and
// around its measured part snapshots of the service's /metrics and, for a local target, /proc
// (the service, PostgreSQL's postmaster tree, the host). What a step measured is a
// calibration_step; what the plan does next is step_plan's business.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "calibration_step.hpp"
#include "open_loop_generator.hpp"
#include "step_plan.hpp"

namespace headroom::calibrate {

struct calibration_target {
  load_options load;         // targets, method, headers, body, connections, timeout
  std::string metrics_url;   // the service's /metrics ("" = none)
  pid_t service_pid = 0;     // 0 = not on this machine, or not found
  pid_t postmaster_pid = 0;  // 0 = not on this machine, or not found
  double step_duration = 20, warmup = 5;  // seconds
  // The CPUs the service and PostgreSQL are pinned to, apart from the generator's (the caller
  // pins them: cpu_set.hpp); empty = not split. The host's CPU is then read over these alone.
  std::vector<int> target_cpus;
};

// Progress of the step in flight, once a second.
struct step_progress {
  double elapsed = 0;  // seconds into the measured part (negative during warm-up)
  double p99 = 0;      // of the last whole second, seconds
  double failed_fraction = 0;
};

class calibration_runner {
 public:
  explicit calibration_runner(calibration_target t) : t_(std::move(t)) {}

  // Runs `step`. `stop_check` sees the progress each second and returns why the step must stop
  // now ("" = go on). Throws load_input_error (unreachable target) or metrics_scrape_error.
  calibration_step run(const planned_step& step, const std::string& label,
                       const std::function<std::string(const step_progress&)>& stop_check);
  // Thread-safe (a signal handler's thread): ends the step in flight early.
  void request_stop();

  const calibration_target& target() const { return t_; }

 private:
  calibration_target t_;
  void set_running(open_loop_generator* g);
  std::mutex running_mu_;  // request_stop() may come from another thread
  open_loop_generator* running_ = nullptr;
  std::atomic<bool> stop_{false};
};

// Reads the pool setting and counters a calibration needs from two /metrics snapshots (text).
// Exposed for tests; run() uses it.
struct metrics_reading {
  std::optional<pool_setting> pool;
  service_counters counters;
};
metrics_reading read_service_metrics(const std::string& before_text, const std::string& after_text);
// The pool setting the service reports now (nothing if its /metrics has none).
std::optional<pool_setting> current_pool_setting(const std::string& metrics_url);

}  // namespace headroom::calibrate
