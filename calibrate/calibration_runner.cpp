// One calibration step against a live target (calibration_runner.hpp).
#include "calibration_runner.hpp"

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <optional>
#include <thread>

#include "cpu_set.hpp"
#include "host_cpu.hpp"
#include "metrics_scrape.hpp"
#include "proc_cpu.hpp"
#include "prometheus_text.hpp"

namespace headroom::calibrate {
namespace {

using clock_type = std::chrono::steady_clock;

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// Everything read at one instant around the measured part.
struct snapshot {
  clock_type::time_point at;
  std::string metrics;  // "" when there is no metrics URL
  std::optional<process_cpu_snapshot> service, database;
  std::optional<task_schedstat> postmaster;
  host_cpu_times host;
  std::optional<run_queue_totals> run_queue;
  std::optional<cpu_pressure> pressure;
};

snapshot take(const calibration_target& t) {
  snapshot s;
  if (!t.metrics_url.empty()) s.metrics = fetch_metrics_text(t.metrics_url);
  if (t.service_pid > 0) s.service = process_cpu_snapshot::of_tree(t.service_pid);
  if (t.postmaster_pid > 0) s.database = process_cpu_snapshot::of_tree(t.postmaster_pid);
  s.host = read_host_cpu_times(t.target_cpus);
  s.run_queue = read_run_queue_totals(t.target_cpus);
  s.pressure = read_cpu_pressure();
  if (t.postmaster_pid > 0) {
    try {
      s.postmaster = read_task_schedstat(t.postmaster_pid);
    } catch (const proc_error&) {  // no schedstat in this kernel, or the postmaster is gone
    }
  }
  s.at = clock_type::now();
  return s;
}

// The setting as the service reports it: gauges and headroom_pool_info's labels.
std::optional<pool_setting> pool_setting_of(const metrics_snapshot& m) {
  auto open = m.value("headroom_pool_max_open");
  if (!open) return std::nullopt;
  pool_setting p;
  p.max_open = metric_count(*open, "/metrics: headroom_pool_max_open");
  if (auto idle = m.value("headroom_pool_max_idle"))
    p.max_idle = metric_count(*idle, "/metrics: headroom_pool_max_idle");
  for (const metric_sample* s : m.series("headroom_pool_info")) {
    if (auto it = s->labels.find("go_version"); it != s->labels.end()) p.go_version = it->second;
    if (auto it = s->labels.find("waiter_order"); it != s->labels.end())
      p.waiter_order = it->second;
  }
  return p;
}

}  // namespace

metrics_reading read_service_metrics(const std::string& before_text,
                                     const std::string& after_text) {
  metrics_snapshot before = metrics_snapshot::parse(before_text);
  metrics_snapshot after = metrics_snapshot::parse(after_text);
  metrics_reading r;
  r.pool = pool_setting_of(after);
  metrics_delta d(std::move(before), std::move(after));
  service_counters& c = r.counters;
  c.requests = d.counter_sum("http_request_seconds_count", {{"path", "/"}});
  c.dials = d.counter_sum("headroom_pool_dials_total");
  c.dial_failures = d.counter_sum("headroom_pool_dial_failures_total");
  c.closed_max_idle = d.counter_sum("headroom_pool_closed_max_idle_total");
  c.closes = c.closed_max_idle + d.counter_sum("headroom_pool_closed_max_idle_time_total") +
             d.counter_sum("headroom_pool_closed_max_lifetime_total") +
             d.counter_sum("headroom_pool_closed_other_total");
  c.waits = d.counter_sum("headroom_pool_wait_count_total");
  c.wait_seconds = d.counter_sum("headroom_pool_wait_seconds_total");
  c.wait_timeouts = d.counter_sum("headroom_pool_wait_timeouts_total");
  c.cpu_seconds = d.counter_sum("process_cpu_seconds_total");
  return r;
}

std::optional<pool_setting> current_pool_setting(const std::string& metrics_url) {
  return pool_setting_of(scrape_metrics(metrics_url));
}

calibration_step calibration_runner::run(
    const planned_step& step, const std::string& label,
    const std::function<std::string(const step_progress&)>& stop_check) {
  calibration_step out;
  out.index = step.index;
  out.label = label;
  out.rate = step.rate;
  out.repeat = step.repeat;
  out.started_at = utc_now();

  load_options o = t_.load;
  o.schedule = load_schedule::constant(step.rate, t_.step_duration).with_warmup(t_.warmup);
  o.handle_signals = false;  // the calibration's own handler stops the step
  open_loop_generator generator(o);
  generator.check_reachable();

  // The "before" snapshot is taken when the warm-up ends, by a thread that sleeps until then,
  // so the window covers the measured part only (the generator reports it alone too).
  std::optional<snapshot> before;
  std::exception_ptr before_error;
  std::mutex mu;
  std::condition_variable cv;
  bool run_over = false;
  double runnable_sum = 0;
  int runnable_samples = 0;
  const auto start = clock_type::now();
  std::thread snapper([&] {
    std::unique_lock<std::mutex> lock(mu);
    // A run stopped during its warm-up measured nothing: no snapshot then.
    if (cv.wait_until(lock, start + std::chrono::duration<double>(t_.warmup),
                      [&] { return run_over; }))
      return;
    try {
      before = take(t_);
    } catch (...) {
      before_error = std::current_exception();
      return;
    }
    // Runnable tasks through the measured part, for a kernel without /proc/schedstat: /proc/stat's
    // procs_running ten times a second (less this thread, which is running as it reads); the
    // whole host's even when the target has CPUs of its own (a gauge kept for all CPUs only).
    if (before->run_queue) return;  // schedstat's totals give the mean exactly
    while (!cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return run_over; })) {
      try {
        runnable_sum += std::max(0, read_host_cpu_times().procs_running - 1);
        ++runnable_samples;
      } catch (const std::exception&) {
        // /proc/stat unreadable now: that sample is skipped
      }
    }
  });
  // Whatever run() does, even throw, the snapshot thread is told the run is over and joined.
  struct end_of_run {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& over;
    std::thread& thread;
    calibration_runner& runner;
    void now() {
      if (!thread.joinable()) return;
      runner.set_running(nullptr);
      {
        std::lock_guard<std::mutex> lock(mu);
        over = true;
      }
      cv.notify_all();
      thread.join();
    }
    ~end_of_run() { now(); }
  } ending{mu, cv, run_over, snapper, *this};
  std::string stop_reason;
  set_running(&generator);
  load_result r = generator.run([&](const load_progress& p) {
    step_progress sp;
    sp.elapsed = p.elapsed;
    sp.p99 = p.p99;
    sp.failed_fraction =
        p.sent > 0 ? static_cast<double>(p.failed) / static_cast<double>(p.sent) : 0;
    if (!stop_reason.empty() || p.elapsed < 1) return;  // the first whole second
    std::string why = stop_check ? stop_check(sp) : "";
    if (!why.empty()) {
      stop_reason = why;
      generator.request_stop();
    }
  });
  ending.now();
  if (before_error) std::rethrow_exception(before_error);
  if (stop_ && stop_reason.empty()) stop_reason = "interrupted";
  out.stopped_early = !stop_reason.empty() || r.interrupted;
  out.stop_reason = stop_reason;
  out.load = std::move(r);
  if (!before) {  // stopped during the warm-up: nothing measured
    out.window = 0;
    if (out.stop_reason.empty()) out.stop_reason = "stopped during the warm-up";
    out.stopped_early = true;
    return out;
  }
  snapshot after = take(t_);
  out.window = std::chrono::duration<double>(after.at - before->at).count();
  if (!t_.metrics_url.empty()) {
    metrics_reading m = read_service_metrics(before->metrics, after.metrics);
    out.pool = m.pool;
    out.service = m.counters;
  }
  if (before->service || before->database) {
    local_cpu c;
    if (before->service && after.service)
      c.service = (*after.service - *before->service).total_seconds;
    if (before->database && after.database) {
      process_cpu_delta d = *after.database - *before->database;
      c.database = d.total_seconds;
      c.postmaster = d.root_seconds;
      c.connections_cpu = d.exited_seconds;
      c.connections_ended = d.ended;
    }
    const host_cpu_times h = after.host - before->host;
    c.host_busy = h.busy_seconds();
    c.cores = after.host.cpus;
    c.target_cpus = cpu_list_text(t_.target_cpus);
    if (before->run_queue && after.run_queue && out.window > 0)
      c.runnable = (*after.run_queue - *before->run_queue).mean_runnable(out.window);
    else if (runnable_samples > 0)
      c.runnable = runnable_sum / runnable_samples;
    if (out.window > 0) {
      if (before->pressure && after.pressure)
        c.cpu_pressure = (*after.pressure - *before->pressure).some_seconds / out.window;
      if (before->run_queue && after.run_queue)
        c.waiting = (*after.run_queue - *before->run_queue).wait_seconds / out.window;
    }
    if (before->postmaster && after.postmaster)
      c.postmaster_wait = (*after.postmaster - *before->postmaster).wait_seconds;
    out.cpu = c;
  }
  return out;
}

void calibration_runner::set_running(open_loop_generator* g) {
  std::lock_guard<std::mutex> lock(running_mu_);
  running_ = g;
  if (g && stop_) g->request_stop();
}

void calibration_runner::request_stop() {
  std::lock_guard<std::mutex> lock(running_mu_);
  stop_ = true;
  if (running_) running_->request_stop();
}

}  // namespace headroom::calibrate
