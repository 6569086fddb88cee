// GET /debug/pprof/profile?seconds=N (with --pprof): a CPU profile of the whole service by
// gperftools' profiler, for google-pprof; one at a time, as the profiler is process-wide.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "people_handler.hpp"

namespace headroom {

inline constexpr int default_profile_seconds = 30;  // Go's net/http/pprof default
inline constexpr int max_profile_seconds = 60;      // a bound on how long the profiler runs

// The profile's length from a /debug/pprof/profile target's `seconds` parameter: whole seconds
// from 1 to 60, 30 when absent (Go's default). Throws bad_request (400) with one line otherwise.
int profile_seconds(std::string_view target);

// Takes CPU profiles. gperftools samples with the process's ITIMER_PROF: every thread's CPU time
// counts and SIGPROF lands on the thread that used it, so the I/O threads, the workers and the
// pool's opener all appear in a profile without registering.
class cpu_profiler {
 public:
  cpu_profiler() = default;
  ~cpu_profiler();
  cpu_profiler(const cpu_profiler&) = delete;
  cpu_profiler& operator=(const cpu_profiler&) = delete;

  // Profiles for `seconds`, then calls `done` on `ex` with the profile (200,
  // application/octet-stream). Nothing blocks meanwhile: a timer on `ex` ends the profile. With
  // a profile already running, `done` is called at once with a 409 saying when that one ends.
  void take(const boost::asio::any_io_executor& ex, int seconds, std::function<void(reply)> done);

  // Ends a running profile now (at shutdown): its client gets the samples taken so far.
  void finish_now();

 private:
  void finish();

  std::mutex mu_;
  std::shared_ptr<boost::asio::steady_timer> timer_;  // set while a profile runs
  std::string file_;                                  // where gperftools writes it
  std::function<void(reply)> done_;
  std::chrono::steady_clock::time_point ends_;
};

}  // namespace headroom
