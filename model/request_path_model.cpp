// The request-path simulation: an event loop over three sources of "what happens next"
// (the event calendar, the PS CPU's next completion, the FIFO of wait deadlines) and one
// continuation per step of a request.
#include "request_path_model.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "event_calendar.hpp"
#include "pool_policy.hpp"
#include "random_stream.hpp"
#include "resources.hpp"

namespace headroom {

const char* phase_name(int p) {
  static const char* names[phase_count] = {"queue", "wait", "dial", "query", "release", "total"};
  return names[p];
}

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// The overload detector (finish_result): the window's second half holds more than
// growth_ratio x the first half's mean number in flight, plus growth_floor, while the busiest
// resource is more than `saturated` busy.
// - growth_ratio: a backlog that grows at g requests/s from the start of a run whose warm-up
//   lasts f x the window T has means g(f + 1/4)T and g(f + 3/4)T over the two halves: a ratio
//   of (f + 3/4) / (f + 1/4) = 2.4 with the default warm-up (f = 1/10), still 1.75 at
//   f = 1/2. 1.5 sits below both; a stable run's halves differ by chance only.
// - growth_floor: with a few requests in flight, one burst can make a half 1.5 x the other
//   by chance; 20 requests on average is far above such a burst at light load. In an
//   overload it costs little: l2 - 1.5 l1 = (3/8 - f/2) gT = 0.325 gT at f = 1/10, so any
//   overload whose backlog grows by more than ~62 requests over the window is still caught
//   (and a faster one trips run.max_in_flight first).
// - saturated: a backlog grows without bound only behind a resource that never idles, so the
//   bottleneck's busy share over the window is ~1; a stable run near 0.9 whose halves differ
//   by a burst is not called overloaded. 0.97 leaves room for the idle moments of a window
//   that began before the backlog did.
constexpr double growth_ratio = 1.5, growth_floor = 20, saturated = 0.97;

// Job and event ids: a request slot, or one of two anonymous tags.
constexpr std::uint32_t tag_waiter_dial = 0x80000000u;  // a dial Go starts for waiters
constexpr std::uint32_t tag_waiter_fork = 0xA0000000u;  // that dial's fork, on the CPU
constexpr std::uint32_t tag_other = 0xC0000000u;        // CPU work off the request path

enum event_kind : std::uint32_t {
  ev_arrival,
  ev_delay_done,
  ev_dial_delay_done,
  ev_background,
  ev_cleaner
};

enum class stage : std::uint8_t {
  client,  // waiting for one of the load generator's connections (a "late" send)
  parse,
  queue,
  dial_fork,  // the postmaster forks its backend (CPU)
  dial,       // the backend starts (CPU), then the handshake (delay)
  waiting,
  query_delay,
  query_cpu,
  release_delay,
  release_cpu,
  respond
};

// Who burns a CPU second (for utilisation per owner).
enum owner : int { own_service, own_database, own_generator, own_background, owner_count };

// One stream per purpose: changing one part of a scenario leaves the others' draws alone.
enum stream_id : std::uint64_t {
  st_arrivals = 1,
  st_parse,
  st_respond,
  st_fork,
  st_dial_cpu,
  st_dial_delay,
  st_query_delay,
  st_query_db,
  st_query_service,
  st_query_cold,
  st_release_delay,
  st_release_cpu,
  st_close,
  st_generator,
  st_background_arrivals,
  st_background_job,
  st_rtt,
  st_pool,
  st_speed
};

struct request {
  double arrival = 0, stamp = 0;
  double t[phase_count] = {};
  waiter_id waiter = 0;
  conn_id conn = 0;
  bad_conn_retry retry;  // which try of Go's query loop this is
  stage at = stage::parse;
  bool measured = false;
};

struct deadline {
  double time;
  waiter_id waiter;
  std::uint32_t slot;
};

class request_path_sim {
 public:
  request_path_sim(const scenario& s, std::uint64_t rep)
      : s_(s),
        cpu_(s.cores),
        workers_(s.workers),
        fork_(1),
        client_(s.client_connections),
        pool_(pool_cfg(s, rep)),
        r_arrivals_(s.run.seed, rep, st_arrivals),
        r_parse_(s.run.seed, rep, st_parse),
        r_respond_(s.run.seed, rep, st_respond),
        r_fork_(s.run.seed, rep, st_fork),
        r_dial_cpu_(s.run.seed, rep, st_dial_cpu),
        r_dial_delay_(s.run.seed, rep, st_dial_delay),
        r_query_delay_(s.run.seed, rep, st_query_delay),
        r_query_db_(s.run.seed, rep, st_query_db),
        r_query_service_(s.run.seed, rep, st_query_service),
        r_query_cold_(s.run.seed, rep, st_query_cold),
        r_release_delay_(s.run.seed, rep, st_release_delay),
        r_release_cpu_(s.run.seed, rep, st_release_cpu),
        r_close_(s.run.seed, rep, st_close),
        r_generator_(s.run.seed, rep, st_generator),
        r_bg_arrivals_(s.run.seed, rep, st_background_arrivals),
        r_bg_job_(s.run.seed, rep, st_background_job),
        r_rtt_(s.run.seed, rep, st_rtt),
        max_in_flight_(in_flight_limit(s)),
        speed_(speed_factor(s, rep)) {
    warmup_ = s.run.warmup_requests ? s.run.warmup_requests : s.run.requests / 10;
    total_ = warmup_ + s.run.requests;
    if (s.arrivals.process == arrival_process::trace) {
      // A trace is replayed once per replication: its length bounds the run.
      // A shorter trace keeps the default warm-up's share: one warm-up request for every ten
      // measured ones (requests / 10 before requests), i.e. 1/11 of the trace.
      const std::uint64_t n = s.arrivals.times.size();
      if (!s.run.warmup_requests)
        warmup_ = std::min<std::uint64_t>(n, warmup_ + s.run.requests) / 11;
      total_ = std::min<std::uint64_t>(n, warmup_ + s.run.requests);
      if (warmup_ >= total_) warmup_ = total_ / 10;
    }
    window_middle_ = warmup_ + (total_ - warmup_) / 2;
    // Phases this scenario can never spend time in are not stored (fewer writes per request).
    record_[phase_queue] = s.workers > 0;
    record_[phase_wait] = s.use_pool && s.pool.max_open > 0;
    record_[phase_dial] = s.use_pool;
    record_[phase_query] = true;
    record_[phase_release] = !s.release_delay.is_zero() || !s.release_cpu.is_zero();
    record_[phase_total] = true;
    for (int p = 0; p < phase_count; ++p)
      if (record_[p]) samples_[p].reserve(total_ - warmup_);
    cal_.reserve(1024);
  }

  replication_result run() {
    if (total_ == 0) return res_;
    if (s_.use_pool && s_.pool_warm_start) warm_start_pool();
    cal_.push(first_arrival_time(), ev_arrival, 0);
    if (s_.background_utilization > 0) cal_.push(next_background_gap(), ev_background, 0);
    if (s_.use_pool && pool_.cleaner_interval() > 0)
      cal_.push(pool_.cleaner_interval(), ev_cleaner, 0);

    for (;;) {
      if (arrivals_done_ && in_flight_ == 0) break;
      double tc = cal_.empty() ? inf : cal_.top().time;
      double tp = cpu_.next_completion();
      double td = deadlines_.empty() ? inf : deadlines_.front().time;
      double t = std::min(tc, std::min(tp, td));
      if (t == inf)
        throw std::logic_error("request-path model: requests in flight but nothing scheduled");
      integrate(t);
      now_ = t;
      ++res_.events;
      if (tc <= tp && tc <= td) {
        event e = cal_.pop();
        on_event(e);
      } else if (tp <= td) {
        on_cpu_done(cpu_.pop(now_));
      } else {
        deadline d = deadlines_.front();
        deadlines_.pop_front();
        on_deadline(d);
      }
      if (in_flight_ > max_in_flight_) {
        close_window_if_open();
        declare_overloaded("more than " + std::to_string(max_in_flight_) + " requests in flight");
        return finish_result();
      }
    }
    return finish_result();
  }

 private:
  // Lognormal with mean 1: ln f ~ Normal(-sigma^2 / 2, sigma^2). Its own stream, so a
  // scenario without variability draws exactly what it drew before.
  static double speed_factor(const scenario& s, std::uint64_t rep) {
    if (!(s.speed_sigma > 0)) return 1;
    random_stream r(s.run.seed, rep, st_speed);
    return std::exp(s.speed_sigma * r.normal() - 0.5 * s.speed_sigma * s.speed_sigma);
  }
  static pool_config pool_cfg(const scenario& s, std::uint64_t rep) {
    pool_config c = s.pool;
    random_stream r(s.run.seed, rep, st_pool);
    c.seed = r.next_u64();
    return c;
  }

  // Opens max_idle connections at time 0 through the policy itself (dial, then release), so
  // the pool's state is one its own rules can reach. They count as used (warm caches).
  void warm_start_pool() {
    std::vector<conn_id> opened;
    for (int i = 0; i < pool_.effective_max_idle(); ++i) {
      auto d = pool_.acquire(0);
      if (d.what != pool_policy::acquire_decision::action::dial) break;
      opened.push_back(pool_.dial_succeeded(0));
    }
    for (conn_id c : opened) carry_out(pool_.release(c, 0));
  }

  // ---- arrivals -------------------------------------------------------------------------
  double first_arrival_time() {
    if (s_.arrivals.process == arrival_process::trace) return s_.arrivals.times[0];
    return gap();
  }
  double gap() {
    if (s_.arrivals.process == arrival_process::constant) return 1.0 / s_.arrivals.rate;
    return r_arrivals_.exponential(1.0 / s_.arrivals.rate);
  }
  double next_arrival_time() {
    if (s_.arrivals.process == arrival_process::trace) return s_.arrivals.times[arrived_];
    return now_ + gap();
  }
  double next_background_gap() {
    double rate = s_.background_utilization * s_.cores / s_.background_job.mean();
    return r_bg_arrivals_.exponential(1.0 / rate);
  }

  void on_arrival() {
    std::uint64_t index = arrived_++;
    if (index == warmup_) open_window();
    if (index == window_middle_) {
      first_half_ = false;
      window_middle_time_ = now_;
    }
    std::uint32_t id = new_slot();
    request& r = reqs_[id];
    r = request{};
    r.arrival = now_;
    r.measured = index >= warmup_;
    ++in_flight_;
    if (arrived_ < total_) {
      cal_.push(next_arrival_time(), ev_arrival, 0);
    } else {
      arrivals_done_ = true;
    }
    if (!s_.generator_cpu.is_zero())
      cpu_off_path(s_.generator_cpu.sample(r_generator_), own_generator);
    // Every generator connection busy: the request waits in the client, its latency running
    // from its intended send time (now), as headroom load measures it.
    if (client_.acquire(now_, id)) {
      send(id);
    } else {
      r.at = stage::client;
      if (r.measured) ++res_.late;
    }
    if (arrivals_done_) close_window_if_open();
  }
  void send(std::uint32_t id) {
    reqs_[id].at = stage::parse;
    if (!cpu_step(id, s_.parse_cpu, r_parse_, own_service)) enter_queue(id);
  }

  // ---- steps ----------------------------------------------------------------------------
  // Submits a CPU demand for request `id`; false if the demand is zero (step skipped).
  bool cpu_step(std::uint32_t id, const distribution& d, random_stream& rng, owner who) {
    if (d.is_zero()) return false;
    double x = d.sample(rng);
    if (x <= 0) return false;
    submit_cpu(x, id, who);
    return true;
  }
  // Every CPU demand goes through here: this run's machine speed scales it (speed_sigma).
  void submit_cpu(double x, std::uint32_t id, owner who) {
    x *= speed_;
    account(who, x);
    cpu_.add(now_, x, id);
  }
  bool delay_step(std::uint32_t id, const distribution& d, random_stream& rng, event_kind k) {
    if (d.is_zero()) return false;
    double x = d.sample(rng);
    if (x <= 0) return false;
    cal_.push(now_ + x, k, id);
    return true;
  }
  void cpu_off_path(double x, owner who) {
    if (x <= 0) return;
    submit_cpu(x, tag_other, who);
  }

  void enter_queue(std::uint32_t id) {
    request& r = reqs_[id];
    r.at = stage::queue;
    r.stamp = now_;
    if (workers_.acquire(now_, id)) got_worker(id);
  }

  void got_worker(std::uint32_t id) {
    request& r = reqs_[id];
    r.t[phase_queue] = now_ - r.stamp;
    r.stamp = now_;
    if (!s_.use_pool) return start_query(id);
    acquire_conn(id);
  }
  // The tries of Go's query loop: an idle connection, a dial, or a wait. An idle connection
  // found expired uses up a try (bad_conn_retry), and the next try follows at once.
  void acquire_conn(std::uint32_t id) {
    request& r = reqs_[id];
    for (;;) {
      pool_touch();
      auto d = pool_.acquire(now_, r.retry.new_conn());
      carry_out(d.effects);
      switch (d.what) {
        case pool_policy::acquire_decision::action::reuse:
          r.conn = d.conn;
          return start_query(id);
        case pool_policy::acquire_decision::action::dial:
          if (window_open_) ++res_.pool.dials;
          r.at = stage::dial;
          return start_dial(id);
        case pool_policy::acquire_decision::action::wait:
          r.at = stage::waiting;
          r.waiter = d.waiter;
          add_waiting(d.waiter, id);
          if (s_.wait_timeout > 0) deadlines_.push_back({now_ + s_.wait_timeout, d.waiter, id});
          return;
        case pool_policy::acquire_decision::action::bad_conn:
          if (r.retry.again()) continue;
          return finish(id, true);  // the third try dials, so never reached today
      }
    }
  }

  // Dials go through the postmaster, one fork at a time. The fork is CPU work of that one
  // process on the shared CPU: on a crowded CPU it gets its share like any runnable task, so
  // forks slow down exactly when dials pile up (the throttle DESIGN.md measured: ~37 ms of
  // run-queue wait per fork at 600 req/s). Then the backend starts (CPU), then the handshake's
  // round trips (delay).
  void start_dial(std::uint32_t id) {
    if (s_.dial_fork.is_zero()) return dial_cpu_step(id);
    if (fork_.acquire(now_, id)) fork_cpu(id);
  }
  void fork_cpu(std::uint32_t id) {
    if (id != tag_waiter_dial) reqs_[id].at = stage::dial_fork;
    const double x = s_.dial_fork.sample(r_fork_);
    if (window_open_) postmaster_demand_ += x * speed_;
    submit_cpu(x, id == tag_waiter_dial ? tag_waiter_fork : id, own_database);
  }
  void on_fork_done(std::uint32_t id) {
    std::uint32_t next;
    if (fork_.release(now_, next)) fork_cpu(next);
    if (id != tag_waiter_dial) reqs_[id].at = stage::dial;
    dial_cpu_step(id);
  }
  void dial_cpu_step(std::uint32_t id) {
    if (!cpu_step(id, s_.dial_cpu, r_dial_cpu_, own_database)) dial_delay_step(id);
  }
  void dial_delay_step(std::uint32_t id) {
    if (!delay_step(id, s_.dial_delay, r_dial_delay_, ev_dial_delay_done)) dial_done(id);
  }
  void dial_done(std::uint32_t id) {
    pool_touch();
    if (id == tag_waiter_dial) {
      auto d = pool_.waiter_dial_succeeded(now_);
      mark_fresh(d.conn);
      carry_out(d);  // also starts the opener's next dial, if any is queued
      return;
    }
    request& r = reqs_[id];
    r.conn = pool_.dial_succeeded(now_);
    mark_fresh(r.conn);
    r.t[phase_dial] = now_ - r.stamp;
    start_query(id);
  }

  void start_query(std::uint32_t id) {
    request& r = reqs_[id];
    r.at = stage::query_delay;
    r.stamp = now_;
    if (!delay_step(id, s_.query_delay, r_query_delay_, ev_delay_done)) query_cpu(id);
  }
  void query_cpu(std::uint32_t id) {
    request& r = reqs_[id];
    r.at = stage::query_cpu;
    double db = 0, service = 0;
    if (!s_.query_db_cpu.is_zero()) db += s_.query_db_cpu.sample(r_query_db_);
    if (!s_.query_service_cpu.is_zero()) service += s_.query_service_cpu.sample(r_query_service_);
    // A new backend's caches are cold: its first query costs more (DESIGN.md).
    if (s_.use_pool && r.conn < fresh_.size() && fresh_[r.conn]) {
      fresh_[r.conn] = 0;
      if (!s_.query_cold_db_cpu.is_zero()) db += s_.query_cold_db_cpu.sample(r_query_cold_);
    }
    // The more tasks share the CPU, the more each request costs (context switches, caches):
    // calibration fits the cost per runnable task, counted here as the jobs on the CPU.
    const double runnable = static_cast<double>(cpu_.jobs());
    db += s_.database_cpu_per_runnable * runnable;
    service += s_.service_cpu_per_runnable * runnable;
    db *= speed_;
    service *= speed_;
    account(own_database, db);
    account(own_service, service);
    // Service and database work run one after the other; under PS a single job of the
    // summed demand takes the same time and costs one event instead of two.
    if (db + service > 0) {
      cpu_.add(now_, db + service, id);
    } else {
      query_done(id);
    }
  }

  void query_done(std::uint32_t id) {
    request& r = reqs_[id];
    r.t[phase_query] = now_ - r.stamp;
    r.stamp = now_;
    r.at = stage::release_delay;
    if (!delay_step(id, s_.release_delay, r_release_delay_, ev_delay_done)) release_cpu(id);
  }
  void release_cpu(std::uint32_t id) {
    reqs_[id].at = stage::release_cpu;
    if (!cpu_step(id, s_.release_cpu, r_release_cpu_, own_service)) release_conn(id);
  }
  void release_conn(std::uint32_t id) {
    request& r = reqs_[id];
    r.t[phase_release] = now_ - r.stamp;
    if (s_.use_pool) {
      pool_touch();
      carry_out(pool_.release(r.conn, now_));
    }
    r.at = stage::respond;
    if (!cpu_step(id, s_.respond_cpu, r_respond_, own_service)) finish(id, false);
  }

  // Where a released or newly dialed connection went.
  void carry_out(const pool_policy::release_decision& d) {
    carry_out(d.effects);
    switch (d.what) {
      case pool_policy::release_decision::action::to_waiter: {
        std::uint32_t w = take_waiting(d.waiter);
        request& r = reqs_[w];
        r.conn = d.conn;
        r.t[phase_wait] += now_ - r.stamp;
        start_query(w);
        break;
      }
      case pool_policy::release_decision::action::waiter_bad_conn: {
        // Go 1.10-1.14: the waiter was handed an expired connection; that try failed.
        std::uint32_t w = take_waiting(d.waiter);
        request& r = reqs_[w];
        r.t[phase_wait] += now_ - r.stamp;
        r.stamp = now_;
        if (r.retry.again()) {
          acquire_conn(w);
        } else {
          r.waiter = 0;  // no longer waiting: its deadline finds nothing to cancel
          finish(w, true);
        }
        break;
      }
      case pool_policy::release_decision::action::to_idle:
      case pool_policy::release_decision::action::close:
        break;
    }
  }
  // What every pool decision asks besides its answer: count the closes and pay for them, and
  // start the opener's dial for waiters (the policy starts one at a time).
  void carry_out(const pool_effects& e) {
    for (std::size_t i = 0; i < e.close.size(); ++i) {
      if (window_open_) ++res_.pool.closes;
      if (!s_.close_db_cpu.is_zero()) cpu_off_path(s_.close_db_cpu.sample(r_close_), own_database);
    }
    if (e.start_waiter_dial) {
      if (window_open_) ++res_.pool.dials;
      start_dial(tag_waiter_dial);
    }
  }
  void add_waiting(waiter_id w, std::uint32_t slot) {
    if (waiting_.empty()) waiting_first_ = w;
    if (w < waiting_first_ + waiting_.size()) throw std::logic_error("pool reused a waiter id");
    while (waiting_first_ + waiting_.size() < w) waiting_.push_back(not_waiting);
    waiting_.push_back(slot);
  }
  std::uint32_t take_waiting(waiter_id w) {
    std::uint32_t slot = not_waiting;
    if (w >= waiting_first_ && w - waiting_first_ < waiting_.size())
      std::swap(slot, waiting_[w - waiting_first_]);
    if (slot == not_waiting)
      throw std::logic_error("the pool named a waiter the model does not know");
    while (!waiting_.empty() && waiting_.front() == not_waiting) {
      waiting_.pop_front();
      ++waiting_first_;
    }
    return slot;
  }
  void mark_fresh(conn_id c) {
    if (c >= fresh_.size()) fresh_.resize(c + 1, 0);
    fresh_[c] = 1;
  }

  void on_deadline(const deadline& d) {
    request& r = reqs_[d.slot];
    // Served before its deadline (or the slot is someone else's now): nothing to do.
    if (r.at != stage::waiting || r.waiter != d.waiter) return;
    pool_touch();
    if (!pool_.cancel_wait(d.waiter, now_))
      throw std::logic_error("a waiter past its deadline was not waiting");
    take_waiting(d.waiter);
    finish(d.slot, true);
  }

  void finish(std::uint32_t id, bool failed) {
    request& r = reqs_[id];
    double sojourn = now_ - r.arrival;
    if (window_open_ && !failed) ++window_completions_;
    if (r.measured) {
      ++res_.measured;
      sojourn_sum_ += sojourn;
      // As a client measures it: from arrival until the response is back, a failed wait's
      // 503 crossing the same network as a success.
      double latency = sojourn + (s_.network_rtt.is_zero() ? 0.0 : s_.network_rtt.sample(r_rtt_));
      if (failed) {
        ++res_.errors;
        failed_latencies_.push_back(latency);
      } else {
        ++res_.completed;
        r.t[phase_total] = latency;
        for (int p = 0; p < phase_count; ++p)
          if (record_[p]) samples_[p].push_back(r.t[p]);
      }
    }
    --in_flight_;
    free_.push_back(id);
    std::uint32_t next;
    if (!workers_.unlimited() && workers_.release(now_, next)) got_worker(next);
    if (!client_.unlimited() && client_.release(now_, next)) send(next);
  }

  // ---- dispatch -------------------------------------------------------------------------
  void on_event(const event& e) {
    switch (e.kind) {
      case ev_arrival:
        on_arrival();
        break;
      case ev_delay_done:
        if (reqs_[e.id].at == stage::query_delay) {
          query_cpu(e.id);
        } else {
          release_cpu(e.id);
        }
        break;
      case ev_dial_delay_done:
        dial_done(e.id);
        break;
      case ev_background:
        cpu_off_path(s_.background_job.sample(r_bg_job_), own_background);
        if (!arrivals_done_ || in_flight_ > 0)
          cal_.push(now_ + next_background_gap(), ev_background, 0);
        break;
      case ev_cleaner: {
        pool_touch();
        auto c = pool_.expire_idle(now_);
        carry_out(c.effects);
        if (c.next_run > 0 && (!arrivals_done_ || in_flight_ > 0))
          cal_.push(now_ + c.next_run, ev_cleaner, 0);
        break;
      }
    }
  }

  void on_cpu_done(std::uint32_t id) {
    if (id == tag_other) return;
    if (id == tag_waiter_dial) return dial_delay_step(id);
    if (id == tag_waiter_fork) return on_fork_done(tag_waiter_dial);
    switch (reqs_[id].at) {
      case stage::parse:
        enter_queue(id);
        break;
      case stage::dial_fork:
        on_fork_done(id);
        break;
      case stage::dial:
        dial_delay_step(id);
        break;
      case stage::query_cpu:
        query_done(id);
        break;
      case stage::release_cpu:
        release_conn(id);
        break;
      case stage::respond:
        finish(id, false);
        break;
      default:
        throw std::logic_error("CPU finished work for a request not on the CPU");
    }
  }

  // ---- measurement ----------------------------------------------------------------------
  void account(owner who, double x) {
    if (window_open_) owner_demand_[who] += x;
  }
  void integrate(double t) {
    if (!window_open_) return;
    double dt = t - last_;
    // Through a signed integer: x86 converts that in one instruction, an unsigned 64-bit one
    // takes a branch and several (the value is the same).
    double n = static_cast<double>(static_cast<std::int64_t>(in_flight_)) * dt;
    (first_half_ ? in_flight_area_first_half_ : in_flight_area_second_half_) += n;
    last_ = t;
  }
  // Time averages of the pool's open/idle/in-use counts over the window.
  void pool_touch() {
    if (!window_open_) return;
    const pool_stats& st = pool_.stats();
    double dt = now_ - pool_last_;
    pool_open_ += st.open * dt;
    pool_idle_ += st.idle * dt;
    pool_in_use_ += st.in_use * dt;
    pool_last_ = now_;
  }
  struct snapshot {
    double t = 0, cpu = 0, workers = 0, fork = 0, cpu_demand = 0, jobs = 0;
    pool_stats pool;
  };
  snapshot take_snapshot() {
    snapshot s;
    s.t = now_;
    s.cpu = cpu_.busy_integral(now_);
    s.workers = workers_.busy_integral(now_);
    s.fork = fork_.busy_integral(now_);
    s.cpu_demand = cpu_.demand_submitted();
    s.jobs = cpu_.jobs_integral(now_);
    s.pool = pool_.stats();
    return s;
  }
  void open_window() {
    window_open_ = true;
    start_ = take_snapshot();
    last_ = pool_last_ = now_;
  }
  void close_window_if_open() {
    if (!window_open_) return;
    pool_touch();
    end_ = take_snapshot();
    window_open_ = false;
    window_closed_ = true;
  }

  void declare_overloaded(const std::string& why) {
    res_.stable = false;
    res_.unstable_reason = why;
  }

  replication_result finish_result() {
    replication_result& r = res_;
    if (!window_closed_) {
      // Aborted during warm-up: measure what there is from the start.
      end_ = take_snapshot();
    }
    double w = end_.t - start_.t;
    r.window = w;
    r.speed = speed_;
    r.postmaster_cpu = postmaster_demand_;
    r.mean_runnable = w > 0 ? (end_.jobs - start_.jobs) / w : 0;
    for (int p = 0; p < phase_count; ++p) {
      r.pooled[p].add_all(samples_[p]);
      r.phases[p] = summarize(samples_[p], r.pooled[p]);
      if (!record_[p]) {
        r.phases[p].count = r.completed;  // all zero
        r.pooled[p].add_zeros(r.completed);
      }
    }
    // All requests: the successes' totals and the failures. Without failures (the common
    // case) the two sets are the same samples and nothing is copied.
    r.pooled_all = r.pooled[phase_total];
    if (failed_latencies_.empty()) {
      r.all_requests = r.phases[phase_total];
    } else {
      std::vector<double>& all = samples_[phase_total];
      all.insert(all.end(), failed_latencies_.begin(), failed_latencies_.end());
      r.pooled_all.add_all(failed_latencies_);
      r.all_requests = summarize(all, r.pooled_all);
    }
    if (w > 0) {
      r.throughput = static_cast<double>(window_completions_) / w;
      r.arrival_rate = static_cast<double>(total_ - warmup_) / w;
      r.mean_in_system = (in_flight_area_first_half_ + in_flight_area_second_half_) / w;
      double cores = s_.cores;
      r.utilization.push_back({"cpu", (end_.cpu - start_.cpu) / (cores * w)});
      static const char* names[owner_count] = {"cpu_service", "cpu_database", "cpu_generator",
                                               "cpu_background"};
      for (int o = 0; o < owner_count; ++o)
        r.utilization.push_back({names[o], owner_demand_[o] / (cores * w)});
      if (!workers_.unlimited())
        r.utilization.push_back({"workers", (end_.workers - start_.workers) / (s_.workers * w)});
      if (s_.use_pool) {
        r.utilization.push_back({"dial_server", (end_.fork - start_.fork) / w});
        if (s_.pool.max_open > 0)
          r.utilization.push_back({"pool", pool_in_use_ / (s_.pool.max_open * w)});
        auto& p = r.pool;
        p.policy_dials = end_.pool.dials - start_.pool.dials;
        auto closes = [](const pool_stats& s) {
          return s.closed_max_idle + s.closed_max_idle_time + s.closed_max_lifetime +
                 s.closed_other;
        };
        p.policy_closes = closes(end_.pool) - closes(start_.pool);
        p.waits = end_.pool.wait_count - start_.pool.wait_count;
        p.wait_timeouts = end_.pool.wait_timeouts - start_.pool.wait_timeouts;
        p.closed_max_idle = end_.pool.closed_max_idle - start_.pool.closed_max_idle;
        p.closed_max_idle_time = end_.pool.closed_max_idle_time - start_.pool.closed_max_idle_time;
        p.closed_max_lifetime = end_.pool.closed_max_lifetime - start_.pool.closed_max_lifetime;
        p.mean_open = pool_open_ / w;
        p.mean_idle = pool_idle_ / w;
        p.mean_in_use = pool_in_use_ / w;
      }
      // Overload shows as a backlog that grows through the window: the second half holds
      // clearly more requests in flight than the first, while some resource is saturated.
      double first = window_middle_time_ - start_.t, second = end_.t - window_middle_time_;
      double l1 = first > 0 ? in_flight_area_first_half_ / first : 0;
      double l2 = second > 0 ? in_flight_area_second_half_ / second : 0;
      if (r.stable && l2 > growth_ratio * l1 + growth_floor && busiest_utilization() > saturated) {
        std::ostringstream os;
        os.precision(3);
        os << "requests in flight grew from " << l1 << " to " << l2
           << " on average through the run";
        declare_overloaded(os.str());
      }
    }
    if (r.measured > 0) {
      r.error_rate = static_cast<double>(r.errors) / static_cast<double>(r.measured);
      r.mean_sojourn = sojourn_sum_ / static_cast<double>(r.measured);
    }
    if (!r.stable) r.unstable_reason = "overloaded: " + diagnose() + "; " + r.unstable_reason;
    return r;
  }

  double busiest_utilization() const {
    double u = 0;
    for (auto& [name, v] : res_.utilization)
      if (name == "cpu" || name == "workers" || name == "dial_server" || name == "pool")
        u = std::max(u, v);
    return u;
  }

  // The resource whose offered demand is furthest above its capacity, as a sentence, from
  // the measured window (or the whole run when it stopped during warm-up).
  std::string diagnose() {
    double t0 = window_closed_ ? start_.t : 0, t1 = window_closed_ ? end_.t : now_;
    double w = t1 > t0 ? t1 - t0 : 1;
    double cpu_work = 0;
    if (window_closed_) {
      for (double d : owner_demand_) cpu_work += d;
    } else {
      cpu_work = cpu_.demand_submitted();
    }
    std::uint64_t dials = window_closed_ ? res_.pool.policy_dials : pool_.stats().dials;
    double cpu = cpu_work / (s_.cores * w);
    double fork = s_.dial_fork.mean() * static_cast<double>(dials) / w;
    std::ostringstream os;
    os.precision(3);
    if (s_.use_pool && fork > cpu && fork >= 1) {
      os << "dial demand " << fork << " x capacity (the postmaster forks one backend at a time; "
         << static_cast<double>(dials) / w << " dials/s)";
    } else if (cpu >= 1) {
      os << "CPU demand " << cpu << " x capacity (" << s_.cores << " cores)";
    } else if (!workers_.unlimited() && workers_.queued() > 0) {
      os << "all " << s_.workers << " workers busy, " << workers_.queued() << " requests queued";
    } else if (s_.use_pool && s_.pool.max_open > 0 && pool_.stats().waiting > 0) {
      os << "all " << s_.pool.max_open << " connections busy, " << pool_.stats().waiting
         << " requests waiting";
    } else {
      os << "CPU demand " << cpu << " x capacity, dial demand " << fork << " x capacity";
    }
    return os.str();
  }

  std::uint32_t new_slot() {
    if (!free_.empty()) {
      std::uint32_t id = free_.back();
      free_.pop_back();
      return id;
    }
    if (reqs_.size() >= tag_waiter_dial) throw std::length_error("too many requests in flight");
    reqs_.emplace_back();
    return static_cast<std::uint32_t>(reqs_.size() - 1);
  }

  const scenario& s_;
  event_calendar cal_;
  ps_cpu cpu_;
  fcfs_station workers_, fork_;
  fcfs_station client_;  // the load generator's connections (unlimited: no client)
  pool_policy pool_;
  random_stream r_arrivals_, r_parse_, r_respond_, r_fork_, r_dial_cpu_, r_dial_delay_,
      r_query_delay_, r_query_db_, r_query_service_, r_query_cold_, r_release_delay_,
      r_release_cpu_, r_close_, r_generator_, r_bg_arrivals_, r_bg_job_, r_rtt_;

  std::vector<request> reqs_;
  std::vector<std::uint32_t> free_;
  // Requests waiting for a connection, by waiter id - waiting_first_. The pool numbers its
  // waiters in the order they start waiting, so this is a deque, not a hash map (no node
  // allocated per wait); a served or timed-out waiter leaves a hole until it reaches the front.
  static constexpr std::uint32_t not_waiting = 0xFFFFFFFFu;
  std::deque<std::uint32_t> waiting_;
  waiter_id waiting_first_ = 0;
  std::deque<deadline> deadlines_;   // FIFO: every wait has the same timeout
  std::vector<std::uint8_t> fresh_;  // by conn_id: not yet queried

  double now_ = 0;
  std::uint64_t warmup_ = 0, total_ = 0, window_middle_ = 0, arrived_ = 0, in_flight_ = 0;
  std::uint64_t max_in_flight_;  // s_.run's, read on every event (a member stays in a register)
  double speed_;  // this run's machine speed: every CPU demand is multiplied by it
  bool arrivals_done_ = false, window_open_ = false, window_closed_ = false, first_half_ = true;

  std::vector<double> samples_[phase_count];
  bool record_[phase_count] = {};
  std::vector<double> failed_latencies_;  // measured requests failed at their wait deadline
  double last_ = 0, sojourn_sum_ = 0;
  // Requests in flight integrated over time, in the window's first and second half (by
  // arrivals), and when the second half began: Little's law and the overload detector.
  double in_flight_area_first_half_ = 0, in_flight_area_second_half_ = 0;
  double window_middle_time_ = 0;
  double pool_last_ = 0, pool_open_ = 0, pool_idle_ = 0, pool_in_use_ = 0;
  double owner_demand_[owner_count] = {};
  double postmaster_demand_ = 0;  // CPU of the forks in the window (part of the database's)
  std::uint64_t window_completions_ = 0;
  snapshot start_, end_;
  replication_result res_;
};

}  // namespace

replication_result simulate_replication(const scenario& s, std::uint64_t replication) {
  request_path_sim sim(s, replication);
  return sim.run();
}

}  // namespace headroom
