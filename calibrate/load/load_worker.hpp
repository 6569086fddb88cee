// One thread of the open-loop generator: an io_context running its share of the schedule (a
// timer), its share of the keep-alive connections, a FIFO of requests that found every
// connection busy, and what it measured.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "load_connection.hpp"
#include "load_report.hpp"
#include "load_schedule.hpp"

namespace headroom::calibrate {

inline load_clock::duration to_duration(double seconds) {
  return std::chrono::duration_cast<load_clock::duration>(std::chrono::duration<double>(seconds));
}
inline double to_seconds(load_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// What every worker of one run reads (never writes) while it runs.
struct run_plan {
  std::vector<std::string> request_bytes;  // per target, serialized once
  std::vector<boost::asio::ip::tcp::resolver::results_type> endpoints;
  load_clock::time_point start;           // t = 0 of the schedule
  load_clock::time_point measured_start;  // after the warmup
  double warmup = 0;
  double total_duration = 0;
  load_clock::duration timeout{};
  load_clock::duration min_tick{};  // shortest time between two wake-ups of the schedule timer
  std::size_t max_seconds = 0;      // per-second rows beyond this are not kept
  arrival_process arrivals = arrival_process::uniform;
  std::uint64_t seed = 1;
};

class load_worker final : load_connection::events {
 public:
  // Worker `index` of `count` takes every count-th request of `schedule`, and up to
  // `max_connections` connections.
  load_worker(const run_plan& plan, const load_schedule& schedule, int index, int count,
              int max_connections);

  void run();   // on the worker's own thread, until its share of the schedule is done
  void stop();  // from any thread: ends the run now

  // From the controller's thread: adds second `second`'s latencies and counts, and the totals.
  void snapshot(std::size_t second, latency_histogram& into, std::uint64_t& completed_in_second,
                std::uint64_t& sent, std::uint64_t& completed, std::uint64_t& failed);

  load_result& result() { return result_; }  // after run() returned
  load_clock::time_point last_completion() const { return last_completion_; }

 private:
  // The schedule.
  void arm_schedule();
  void on_schedule_timer(boost::system::error_code ec);
  void on_schedule_done();
  void arm_sweep();

  // Sending.
  void dispatch(const scheduled_request& r);
  void open_connection(const scheduled_request& r);
  void send(load_connection* c, const scheduled_request& r);
  void start_clock(load_connection* c, const scheduled_request& r);
  void count_sent(const load_connection& c);
  void on_connected(load_connection& c) override;
  void on_response(load_connection& c, load_clock::time_point at) override;
  void on_failure(load_connection& c, boost::system::error_code ec) override;

  // The connections.
  void release(load_connection* c);
  void close(load_connection* c);
  void close_one_idle_connection();
  void close_idle_connections();
  void after_close();
  void maybe_finish();
  void end_run();

  // Recording.
  second_stats* second_at(load_clock::time_point t);  // caller holds mutex_
  void record_response(const load_connection& c, load_clock::time_point now);
  void record_timeout(const scheduled_request& r);
  void record_transport_error(const scheduled_request& r, const std::string& kind,
                              load_clock::time_point now);
  void record_cut_off(const scheduled_request& r, std::uint64_t& count);

  const run_plan& plan_;
  boost::asio::io_context io_{1};
  arrival_sequence arrivals_;
  std::optional<double> next_;  // intended time of the next request, seconds from plan_.start
  boost::asio::steady_timer schedule_timer_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer sweep_timer_;
  load_clock::time_point last_wake_{};
  load_clock::duration sweep_interval_;
  int max_connections_;
  int target_count_;
  std::uint64_t next_target_;
  std::uint64_t target_step_;
  std::vector<std::deque<scheduled_request>> backlog_;  // per target, oldest first
  std::size_t backlog_size_ = 0;
  std::vector<std::vector<load_connection*>> idle_;  // per target, most recently used last
  std::list<std::unique_ptr<load_connection>> connections_;
  int open_ = 0;
  std::size_t in_flight_ = 0;
  bool schedule_done_ = false;
  bool stopping_ = false;
  load_clock::time_point ended_at_ = load_clock::time_point::max();  // when end_run cut the run

  std::mutex mutex_;  // guards result_ against the progress reader
  load_result result_;
  load_clock::time_point last_completion_{};
};

}  // namespace headroom::calibrate
