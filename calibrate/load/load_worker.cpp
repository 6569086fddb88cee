// One thread of the open-loop generator (load_worker.hpp): the schedule, the connections, the
// backlog, and the recording of what came back.
#include "load_worker.hpp"

#include <algorithm>

#include "server_timing.hpp"

namespace headroom::calibrate {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;

namespace {
constexpr std::size_t max_phase_names = 32;  // bounds memory if a target invents names
}

load_worker::load_worker(const run_plan& plan, const load_schedule& schedule, int index, int count,
                         int max_connections)
    : plan_(plan),
      arrivals_(schedule, plan.arrivals, index, count, plan.seed),
      schedule_timer_(io_),
      drain_timer_(io_),
      sweep_timer_(io_),
      sweep_interval_(std::min(plan.timeout / 10, std::chrono::duration_cast<load_clock::duration>(
                                                      std::chrono::milliseconds(50)))),
      max_connections_(max_connections),
      target_count_(static_cast<int>(plan.request_bytes.size())),
      next_target_(static_cast<std::uint64_t>(index)),
      target_step_(static_cast<std::uint64_t>(count)),
      backlog_(plan.request_bytes.size()),
      idle_(plan.request_bytes.size()) {}

void load_worker::run() {
  next_ = arrivals_.next();
  arm_schedule();
  arm_sweep();
  io_.run();
}

void load_worker::stop() {
  asio::post(io_, [this] {
    if (!stopping_) end_run();
  });
}

void load_worker::snapshot(std::size_t second, latency_histogram& into,
                           std::uint64_t& completed_in_second, std::uint64_t& sent,
                           std::uint64_t& completed, std::uint64_t& failed) {
  std::lock_guard lock(mutex_);
  if (second < result_.per_second.size()) {
    into.merge(result_.per_second[second].latency);
    completed_in_second += result_.per_second[second].completed;
  }
  sent += result_.sent;
  completed += result_.completed;
  failed += result_.failed();
}

// --- the schedule ---------------------------------------------------------------------------

void load_worker::arm_schedule() {
  if (!next_) {
    on_schedule_done();
    return;
  }
  // One wake-up per request costs more than the request above ~10,000 rps, so wake-ups are at
  // least min_tick apart; requests due in between go out together, at most min_tick late (it
  // shows in send delay and in latency from the intended time, as it should).
  auto due = plan_.start + to_duration(*next_);
  schedule_timer_.expires_at(std::max(due, last_wake_ + plan_.min_tick));
  schedule_timer_.async_wait([this](error_code ec) { on_schedule_timer(ec); });
}

void load_worker::on_schedule_timer(error_code ec) {
  if (ec || stopping_) return;
  // Everything due is dispatched now, even if the timer fired late: the rate is never lowered.
  auto now = load_clock::now();
  last_wake_ = now;
  while (next_ && plan_.start + to_duration(*next_) <= now) {
    scheduled_request r{plan_.start + to_duration(*next_),
                        static_cast<int>(next_target_ % static_cast<std::uint64_t>(target_count_)),
                        *next_ >= plan_.warmup};
    next_target_ += target_step_;
    next_ = arrivals_.next();
    dispatch(r);
  }
  arm_schedule();
}

void load_worker::on_schedule_done() {
  schedule_done_ = true;
  // Requests still waiting or in flight get one timeout past the schedule's end, no more.
  drain_timer_.expires_at(plan_.start + to_duration(plan_.total_duration) + plan_.timeout);
  drain_timer_.async_wait([this](error_code ec) {
    if (!ec && !stopping_) end_run();
  });
  maybe_finish();
}

// Closes connections past their deadline; their pending step then fails as a timeout.
void load_worker::arm_sweep() {
  sweep_timer_.expires_after(sweep_interval_);
  sweep_timer_.async_wait([this](error_code ec) {
    if (ec || stopping_) return;
    auto now = load_clock::now();
    for (auto& c : connections_)
      if (c->deadline <= now && !c->timed_out) c->expire();
    arm_sweep();
  });
}

// --- sending --------------------------------------------------------------------------------

void load_worker::dispatch(const scheduled_request& r) {
  if (r.measured) {
    std::lock_guard lock(mutex_);
    ++result_.scheduled;
  }
  while (!idle_[r.target].empty()) {
    load_connection* c = idle_[r.target].back();  // most recently used: its socket is warm
    idle_[r.target].pop_back();
    if (c->closed_by_peer()) {  // the server closed it while idle: not an error, just gone
      close(c);
      continue;
    }
    send(c, r);
    return;
  }
  if (open_ >= max_connections_) close_one_idle_connection();
  if (open_ < max_connections_) {
    open_connection(r);
    return;
  }
  // Every connection is busy: the request waits, and its latency still counts from `intended`.
  if (r.measured) {
    std::lock_guard lock(mutex_);
    ++result_.late;
  }
  backlog_[r.target].push_back(r);
  ++backlog_size_;
}

void load_worker::open_connection(const scheduled_request& r) {
  load_connection::events& owner = *this;
  connections_.push_front(std::make_unique<load_connection>(io_, owner, r.target));
  load_connection* c = connections_.front().get();
  c->self = connections_.begin();
  ++open_;
  ++in_flight_;
  start_clock(c, r);
  c->connect(plan_.endpoints[r.target]);
}

void load_worker::on_connected(load_connection& c) {
  {
    std::lock_guard lock(mutex_);
    ++result_.connections_opened;
  }
  c.send(plan_.request_bytes[c.target()]);  // within the deadline set before the connect
  count_sent(c);
}

void load_worker::send(load_connection* c, const scheduled_request& r) {
  ++in_flight_;
  start_clock(c, r);
  c->send(plan_.request_bytes[c->target()]);
  count_sent(*c);
}

// The request's one deadline starts when it is first handed to a connection, so connect, write
// and read together take at most --timeout; a resend keeps the deadline it had.
void load_worker::start_clock(load_connection* c, const scheduled_request& r) {
  c->request = r;
  if (c->request.deadline == load_clock::time_point::max())
    c->request.deadline = load_clock::now() + plan_.timeout;
  c->deadline = c->request.deadline;
}

void load_worker::count_sent(const load_connection& c) {
  if (!c.request.measured || c.request.retried) return;  // a resend is not a second request
  std::lock_guard lock(mutex_);
  ++result_.sent;
  result_.send_delay.record(to_seconds(c.sent_at - c.request.intended));
  if (auto* s = second_at(c.sent_at)) ++s->sent;
}

void load_worker::on_response(load_connection& c, load_clock::time_point at) {
  --in_flight_;
  // A response after the deadline (before the sweep noticed) is a timeout all the same: the
  // deadline is exact, the sweep is only how the generator stops waiting.
  if (at > c.request.deadline)
    record_timeout(c.request);
  else
    record_response(c, at);
  if (!c.response_keeps_alive() || stopping_ || c.timed_out) {  // a timed-out socket is closed
    close(&c);
    after_close();
    return;
  }
  release(&c);
}

void load_worker::on_failure(load_connection& c, error_code ec) {
  --in_flight_;
  // A reused keep-alive connection the server closed just as we sent on it: nothing was
  // answered, so resend once on a fresh connection (as HTTP clients do); the latency still
  // counts from the first intended send time, and the deadline from the first send.
  bool stale = c.responses > 0 && !c.request.retried && !stopping_ && !c.timed_out &&
               (ec == http::error::end_of_stream || ec == asio::error::eof ||
                ec == asio::error::connection_reset || ec == asio::error::broken_pipe) &&
               !c.got_part_of_response();
  if (stale) {
    scheduled_request r = c.request;
    r.retried = true;
    if (r.measured) {
      std::lock_guard lock(mutex_);
      ++result_.retries;
    }
    close(&c);
    open_connection(r);
    return;
  }
  auto now = load_clock::now();
  if (c.timed_out || now >= c.request.deadline) {
    record_timeout(c.request);
  } else if (stopping_) {
    std::lock_guard lock(mutex_);
    record_cut_off(c.request, result_.unfinished);  // by the end of the run, not the target
  } else {
    record_transport_error(c.request, error_kind(ec), now);
  }
  close(&c);
  after_close();
}

// --- the connections ------------------------------------------------------------------------

void load_worker::release(load_connection* c) {
  if (auto& queue = backlog_[c->target()]; !queue.empty()) {
    scheduled_request r = queue.front();
    queue.pop_front();
    --backlog_size_;
    send(c, r);
    return;
  }
  if (backlog_size_ > 0) {  // only other targets wait: trade this connection for one of theirs
    close(c);
    after_close();
    return;
  }
  c->deadline = load_clock::time_point::max();
  idle_[c->target()].push_back(c);
  maybe_finish();
}

void load_worker::close(load_connection* c) {
  c->close();
  --open_;
  connections_.erase(c->self);
}

void load_worker::close_one_idle_connection() {
  for (auto& list : idle_) {
    if (!list.empty()) {
      load_connection* c = list.front();  // least recently used
      list.erase(list.begin());
      close(c);
      return;
    }
  }
}

void load_worker::close_idle_connections() {
  for (auto& list : idle_) {
    for (load_connection* c : list) close(c);
    list.clear();
  }
}

// A connection went away: waiting requests may now get a new one.
void load_worker::after_close() {
  while (!stopping_ && backlog_size_ > 0 && open_ < max_connections_) {
    int oldest = -1;
    for (int t = 0; t < target_count_; ++t)
      if (!backlog_[t].empty() &&
          (oldest < 0 || backlog_[t].front().intended < backlog_[oldest].front().intended))
        oldest = t;
    scheduled_request r = backlog_[oldest].front();
    backlog_[oldest].pop_front();
    --backlog_size_;
    open_connection(r);
  }
  maybe_finish();
}

void load_worker::maybe_finish() {
  if (!schedule_done_ || in_flight_ > 0 || backlog_size_ > 0 || stopping_) return;
  stopping_ = true;
  drain_timer_.cancel();
  sweep_timer_.cancel();
  close_idle_connections();
}

// Stop now: waiting requests are unsent, in-flight ones unfinished (their handlers count them).
void load_worker::end_run() {
  stopping_ = true;
  ended_at_ = load_clock::now();
  schedule_timer_.cancel();
  drain_timer_.cancel();
  sweep_timer_.cancel();
  {
    std::lock_guard lock(mutex_);
    for (auto& queue : backlog_)
      for (const auto& r : queue) record_cut_off(r, result_.unsent);
  }
  for (auto& queue : backlog_) queue.clear();
  backlog_size_ = 0;
  close_idle_connections();
  for (auto& c : connections_) c->abort();
}

// --- recording ------------------------------------------------------------------------------

second_stats* load_worker::second_at(load_clock::time_point t) {
  if (t < plan_.measured_start) return nullptr;
  auto i = static_cast<std::size_t>(to_seconds(t - plan_.measured_start));
  if (i >= plan_.max_seconds) return nullptr;
  if (i >= result_.per_second.size()) result_.per_second.resize(i + 1);
  return &result_.per_second[i];
}

void load_worker::record_response(const load_connection& c, load_clock::time_point now) {
  if (!c.request.measured) return;
  const auto& res = c.response();
  int status = res.result_int();
  std::vector<server_timing_entry> phases;
  bool had_timing = false;
  bool malformed = false;
  for (auto range = res.equal_range("Server-Timing"); range.first != range.second; ++range.first) {
    had_timing = true;
    auto parsed = parse_server_timing(range.first->value());
    malformed = malformed || parsed.malformed;
    for (auto& e : parsed.entries) phases.push_back(std::move(e));
  }
  double latency = to_seconds(now - c.request.intended);
  bool success = status < 400;
  std::lock_guard lock(mutex_);
  ++result_.completed;
  result_.latency_all.record(latency);
  if (success) result_.latency.record(latency);
  result_.service_time.record(to_seconds(now - c.sent_at));
  ++result_.status_counts[status];
  if (had_timing) ++result_.server_timing_responses;
  if (malformed) ++result_.server_timing_malformed;
  for (const auto& e : phases) {
    auto it = result_.phases.find(e.name);
    if (it == result_.phases.end()) {
      if (result_.phases.size() >= max_phase_names) continue;
      it = result_.phases.emplace(e.name, latency_histogram{}).first;
    }
    it->second.record(e.seconds);
  }
  if (auto* s = second_at(now)) {
    ++s->completed;
    if (success)
      s->latency.record(latency);
    else
      ++s->errors;
  }
  if (now > last_completion_) last_completion_ = now;
}

// Requests that got no response enter latency_all at the time they had waited: a lower bound on
// their latency (censored), so a stall longer than the timeout still shows in its percentiles.

void load_worker::record_timeout(const scheduled_request& r) {
  if (!r.measured) return;
  std::lock_guard lock(mutex_);
  ++result_.transport_errors;
  ++result_.error_counts["timeout"];
  result_.latency_all.record(to_seconds(r.deadline - r.intended));  // it failed at its deadline
  ++result_.censored;
  if (auto* s = second_at(r.deadline)) ++s->errors;
}

void load_worker::record_transport_error(const scheduled_request& r, const std::string& kind,
                                         load_clock::time_point now) {
  if (!r.measured) return;
  std::lock_guard lock(mutex_);
  ++result_.transport_errors;
  ++result_.error_counts[kind];
  result_.latency_all.record(to_seconds(now - r.intended));
  ++result_.censored;
  if (auto* s = second_at(now)) ++s->errors;
}

// Unsent or unfinished when the run was cut; caller holds mutex_.
void load_worker::record_cut_off(const scheduled_request& r, std::uint64_t& count) {
  if (!r.measured) return;
  ++count;
  result_.latency_all.record(to_seconds(ended_at_ - r.intended));
  ++result_.censored;
}

}  // namespace headroom::calibrate
