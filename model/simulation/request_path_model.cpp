// The request-path simulation: one event loop over three sources of "what happens next" (the
// event calendar, the hosts' PS CPUs' next completion, the FIFO of wait deadlines) and one step
// per stage of a request. What it measures is in replication_measurement, percentiles in
// latency_summary, the diagnosis of an overload in overload_diagnosis.
#include "request_path_model.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>

#include "deployment_resources.hpp"
#include "event_calendar.hpp"
#include "overload_diagnosis.hpp"
#include "pool_policy.hpp"
#include "random_stream.hpp"
#include "replication_measurement.hpp"
#include "resources.hpp"

namespace headroom {

const char* phase_name(int p) {
  static const char* names[phase_count] = {"queue", "wait", "dial", "query", "release", "total"};
  return names[p];
}

namespace {

constexpr double never = std::numeric_limits<double>::infinity();

// Job and event ids: a request's slot, or one of three tags for work that belongs to no
// request. The tags sit above every slot number (new_slot refuses to reach tag_waiter_dial).
// A waiter dial's tags carry its instance in the low bits (each pool has one opener).
constexpr std::uint32_t tag_waiter_dial = 0x80000000u;  // + instance: a dial Go starts for waiters
constexpr std::uint32_t tag_waiter_fork = 0xA0000000u;  // + instance: that dial's fork, on the CPU
constexpr std::uint32_t tag_off_path = 0xC0000000u;     // CPU work off the request path
constexpr std::uint32_t tag_instance_mask = 0x1FFFFFFFu;
bool is_waiter_dial(std::uint32_t id) { return id >= tag_waiter_dial && id < tag_waiter_fork; }
bool is_waiter_fork(std::uint32_t id) { return id >= tag_waiter_fork && id < tag_off_path; }

enum event_kind : std::uint32_t {
  ev_arrival,
  ev_delay_done,  // a query's or a release's delay (the request's stage says which)
  ev_dial_delay_done,
  ev_background,
  ev_cleaner,
  ev_intake  // a stall or a wake-up ends: the request due then enters
};

// Where a request is; on_cpu_done and ev_delay_done read it to take the next step.
enum class stage : std::uint8_t {
  stalled,  // due while the intake is paused (scenario.stall_rate) or the host wakes up
  client,   // waiting for one of the load generator's connections (a "late" send)
  parse,
  queue,
  dial_fork,  // the postmaster forks its backend (CPU)
  dial,       // the backend starts (CPU), then the handshake (delay)
  waiting,
  query_delay,
  query_cpu,          // co-located: database and service work; split: the database's part
  query_service_cpu,  // split: the service's part, on its own host
  release_delay,
  release_cpu,
  respond
};

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
  st_speed,
  st_delay_speed,
  st_instance,  // which instance an arrival goes to (more than one instance)
  st_database_rtt,
  st_stall,
  st_broken,  // whether a reused connection is found dead (deployment.broken_connection_share)
  st_wakeup   // the wake-up's draw (scenario.wakeup_delay)
};

struct random_streams {
  random_streams(std::uint64_t seed, std::uint64_t replication)
      : arrivals(seed, replication, st_arrivals),
        parse(seed, replication, st_parse),
        respond(seed, replication, st_respond),
        fork(seed, replication, st_fork),
        dial_cpu(seed, replication, st_dial_cpu),
        dial_delay(seed, replication, st_dial_delay),
        query_delay(seed, replication, st_query_delay),
        query_db(seed, replication, st_query_db),
        query_service(seed, replication, st_query_service),
        query_cold(seed, replication, st_query_cold),
        release_delay(seed, replication, st_release_delay),
        release_cpu(seed, replication, st_release_cpu),
        close(seed, replication, st_close),
        generator(seed, replication, st_generator),
        background_arrivals(seed, replication, st_background_arrivals),
        background_job(seed, replication, st_background_job),
        rtt(seed, replication, st_rtt),
        instance(seed, replication, st_instance),
        database_rtt(seed, replication, st_database_rtt),
        stall(seed, replication, st_stall),
        broken(seed, replication, st_broken),
        wakeup(seed, replication, st_wakeup) {}
  random_stream arrivals, parse, respond, fork, dial_cpu, dial_delay, query_delay, query_db,
      query_service, query_cold, release_delay, release_cpu, close, generator, background_arrivals,
      background_job, rtt, instance, database_rtt, stall, broken, wakeup;
};

struct request {
  double arrival = 0;
  double phase_began = 0;           // when the current phase started
  double phases[phase_count] = {};  // seconds spent in each phase
  waiter_id waiter = 0;
  conn_id conn = 0;
  bad_conn_retry retry;        // which try of Go's query loop this is
  std::uint32_t instance = 0;  // the service instance serving it
  stage at = stage::parse;
  bool measured = false;  // arrived after warm-up
};

struct deadline {
  double time;
  waiter_id waiter;  // numbered by the instance's pool
  std::uint32_t slot, instance;
};

// The model's side of one instance's pool: which request each waiter is, and which backends
// have not run a query yet. The pool numbers its waiters in the order they start waiting, so
// waiters are a deque by id - first_waiter, not a hash map (no node allocated per wait); a
// served or timed-out waiter leaves a hole until it reaches the front.
struct pool_bookkeeping {
  std::deque<std::uint32_t> waiter_slots;
  waiter_id first_waiter = 0;
  std::vector<std::uint8_t> cold_backend;  // by conn_id: dialed, not yet queried
};

// How many requests arrive, how many of the first are warm-up, and which arrival begins the
// measured window's second half (the overload detector compares the halves).
struct run_length {
  std::uint64_t warmup = 0, total = 0, middle = 0;
};

class request_path_sim {
 public:
  request_path_sim(const scenario& s, std::uint64_t replication)
      : scenario_(s),
        length_(length_of_run(s)),
        deployment_(s, pool_configs_for(s, replication)),
        hosts_(deployment_.hosts),
        instances_(deployment_.instances),
        pools_(deployment_.instances.size()),
        client_connections_(s.client_connections),
        random_(s.run.seed, replication),
        measurement_(s, length_.total - length_.warmup, deployment_),
        max_in_flight_(in_flight_limit(s)),
        time_limit_(time_limit(s, length_)),
        speed_(s.speed_factor *
               factor(s.speed_sigma, s.speed_sigma_dof, s.run.seed, replication, st_speed)),
        delay_factor_(
            factor(s.delay_sigma, s.delay_sigma_dof, s.run.seed, replication, st_delay_speed)) {
    // A first size for the pending events (about one per request in flight); it grows if needed.
    calendar_.reserve(1024);
  }

  replication_result run() {
    if (length_.total == 0) return replication_result{};
    start();
    for (;;) {
      if (arrivals_done_ && in_flight_ == 0) break;
      // What happens next; on a tie an event goes first, then a CPU completion (the lowest
      // host first), then a deadline.
      double next_event = calendar_.empty() ? never : calendar_.top().time;
      double next_cpu_completion = hosts_[0].next_completion();
      std::size_t next_host = 0;
      for (std::size_t h = 1; h < hosts_.size(); ++h) {
        if (hosts_[h].next_completion() < next_cpu_completion) {
          next_cpu_completion = hosts_[h].next_completion();
          next_host = h;
        }
      }
      double next_deadline = deadlines_.empty() ? never : deadlines_.front().time;
      double t = std::min(next_event, std::min(next_cpu_completion, next_deadline));
      if (t == never)
        throw std::logic_error("request-path model: requests in flight but nothing scheduled");
      measurement_.integrate_in_flight_to(t, in_flight_);
      now_ = t;
      ++events_;
      if (next_event <= next_cpu_completion && next_event <= next_deadline) {
        on_event(calendar_.pop());
      } else if (next_cpu_completion <= next_deadline) {
        on_cpu_done(hosts_[next_host].pop(now_));
      } else {
        deadline d = deadlines_.front();
        deadlines_.pop_front();
        on_deadline(d);
      }
      if (in_flight_ > max_in_flight_)
        return finish_run("more than " + std::to_string(max_in_flight_) + " requests in flight");
      if (now_ > time_limit_)
        return finish_run(std::to_string(in_flight_) +
                          " requests still in flight long after the last arrival (at " +
                          std::to_string(static_cast<long>(now_)) + " s)");
    }
    return finish_run("");
  }

 private:
  // The pools' warm start and the first events.
  void start() {
    if (scenario_.use_pool && scenario_.pool_warm_start)
      for (std::uint32_t i = 0; i < instances_.size(); ++i) warm_start_pool(i);
    calendar_.push(first_arrival_time(), ev_arrival, 0);
    if (stall_rate_ > 0) next_stall_ = random_.stall.exponential(1 / stall_rate_);
    if (scenario_.background_utilization > 0)
      for (std::uint32_t h = 0; h < hosts_.size(); ++h)
        calendar_.push(next_background_gap(h), ev_background, h);
    if (scenario_.use_pool)
      for (std::uint32_t i = 0; i < instances_.size(); ++i)
        if (instances_[i].pool.cleaner_interval() > 0)
          calendar_.push(instances_[i].pool.cleaner_interval(), ev_cleaner, i);
  }

  // ---- dispatch ---------------------------------------------------------------------------
  void on_event(const event& e) {
    switch (e.kind) {
      case ev_arrival:
        on_arrival();
        break;
      case ev_delay_done:
        if (requests_[e.id].at == stage::query_delay) {
          query_cpu(e.id);
        } else {
          release_cpu(e.id);
        }
        break;
      case ev_dial_delay_done:
        dial_done(e.id);
        break;
      case ev_intake:
        enter(e.id);
        break;
      case ev_background:  // the event's id is the host
        cpu_off_path(scenario_.background_job.sample(random_.background_job), owner_background,
                     e.id);
        if (!arrivals_done_ || in_flight_ > 0)
          calendar_.push(now_ + next_background_gap(e.id), ev_background, e.id);
        break;
      case ev_cleaner: {  // the event's id is the instance
        measurement_.accumulate_pool_averages(e.id, now_);
        auto c = instances_[e.id].pool.expire_idle(now_);
        carry_out(e.id, c.effects);
        if (c.next_run > 0 && (!arrivals_done_ || in_flight_ > 0))
          calendar_.push(now_ + c.next_run, ev_cleaner, e.id);
        break;
      }
    }
  }

  void on_cpu_done(std::uint32_t id) {
    if (id == tag_off_path) return;
    if (is_waiter_dial(id)) return dial_delay_step(id);
    if (is_waiter_fork(id)) return on_fork_done(tag_waiter_dial + (id & tag_instance_mask));
    switch (requests_[id].at) {
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
        if (deployment_.split) {
          query_service_cpu(id);
        } else {
          query_done(id);
        }
        break;
      case stage::query_service_cpu:
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

  void on_deadline(const deadline& d) {
    request& r = requests_[d.slot];
    // Served before its deadline (or the slot is someone else's now): nothing to do.
    if (r.at != stage::waiting || r.waiter != d.waiter || r.instance != d.instance) return;
    measurement_.accumulate_pool_averages(d.instance, now_);
    if (!instances_[d.instance].pool.cancel_wait(d.waiter, now_))
      throw std::logic_error("a waiter past its deadline was not waiting");
    take_waiter(d.instance, d.waiter);
    finish(d.slot, true);
  }

  // ---- a request's steps, in the order it takes them ------------------------------------
  void on_arrival() {
    std::uint64_t index = arrived_++;
    if (index == length_.warmup) measurement_.open_window(now_);
    if (index == length_.middle) measurement_.begin_second_half(now_);
    std::uint32_t id = new_slot();
    request& r = requests_[id];
    r = request{};
    r.arrival = now_;
    r.measured = index >= length_.warmup;
    // Poisson splitting: each instance sees a Poisson stream of rate / instances.
    if (instances_.size() > 1) r.instance = pick_instance();
    ++in_flight_;
    if (arrived_ < length_.total) {
      calendar_.push(next_arrival_time(), ev_arrival, 0);
    } else {
      arrivals_done_ = true;
    }
    const double opens = std::max(intake_opens(now_), now_ + wakeup(service_host(id)));
    if (opens > now_) {
      r.at = stage::stalled;
      calendar_.push(opens, ev_intake, id);
    } else {
      enter(id);
    }
    if (arrivals_done_) measurement_.close_window_if_open(now_);
  }
  // When the intake takes a request due at t: at t, or at the end of the stall t falls in.
  // Stalls begin at Poisson times (stalls_per_second) counted from the end of the last one, so they
  // never overlap; drawn lazily as arrivals pass them.
  double intake_opens(double t) {
    while (next_stall_ <= t) {
      stall_begins_ = next_stall_;
      stall_ends_ = stall_begins_ + scenario_.stall_length.sample(random_.stall);
      next_stall_ = stall_ends_ + random_.stall.exponential(1 / stall_rate_);
    }
    return t >= stall_begins_ && t < stall_ends_ ? stall_ends_ : t;
  }
  // The wake-up of an idle host (scenario.wakeup_delay, a draw per request): its cost grows with
  // the gap since the host's previous arrival, up to wakeup_idle, and varies with the run as
  // every delay does.
  double wakeup(std::size_t host) {
    if (scenario_.wakeup_delay.is_zero()) return 0;
    const double gap = now_ - last_arrival_[host];
    last_arrival_[host] = now_;
    return scenario_.wakeup_delay.sample(random_.wakeup) *
           std::min(1.0, gap / scenario_.wakeup_idle) * delay_factor_;
  }
  // The request is sent: the generator's CPU, then one of its connections.
  void enter(std::uint32_t id) {
    request& r = requests_[id];
    // The generator runs on the machine it loads only in a calibration; split, it is nowhere.
    if (!scenario_.generator_cpu.is_zero() && !deployment_.split)
      cpu_off_path(scenario_.generator_cpu.sample(random_.generator), owner_generator, 0);
    // Every generator connection busy: the request waits in the client, its latency running
    // from its intended send time (its arrival), as headroom load measures it.
    if (client_connections_.acquire(now_, id)) {
      send(id);
    } else {
      r.at = stage::client;
      if (r.measured) measurement_.count_late_send();
    }
  }
  void send(std::uint32_t id) {
    requests_[id].at = stage::parse;
    if (!cpu_step(id, scenario_.parse_cpu, random_.parse, owner_service, service_host(id)))
      enter_queue(id);
  }

  void enter_queue(std::uint32_t id) {
    request& r = requests_[id];
    r.at = stage::queue;
    r.phase_began = now_;
    if (instances_[r.instance].workers.acquire(now_, id)) got_worker(id);
  }

  void got_worker(std::uint32_t id) {
    request& r = requests_[id];
    r.phases[phase_queue] = now_ - r.phase_began;
    r.phase_began = now_;
    if (!scenario_.use_pool) return start_query(id);
    acquire_conn(id);
  }
  // The tries of Go's query loop: an idle connection, a dial, or a wait. An idle connection
  // found expired uses up a try (bad_conn_retry), and the next try follows at once.
  void acquire_conn(std::uint32_t id) {
    request& r = requests_[id];
    const std::uint32_t i = r.instance;
    for (;;) {
      measurement_.accumulate_pool_averages(i, now_);
      auto d = instances_[i].pool.acquire(now_, r.retry.new_conn());
      carry_out(i, d.effects);
      switch (d.what) {
        case pool_policy::acquire_decision::action::reuse:
          r.conn = d.conn;
          return start_query(id);
        case pool_policy::acquire_decision::action::dial:
          measurement_.count_dial(i);
          measurement_.open_count_changed(i);  // Go counts a connection open from its dial
          r.at = stage::dial;
          return start_dial(id);
        case pool_policy::acquire_decision::action::wait:
          r.at = stage::waiting;
          r.waiter = d.waiter;
          add_waiter(i, d.waiter, id);
          if (scenario_.wait_timeout > 0)
            deadlines_.push_back({now_ + scenario_.wait_timeout, d.waiter, id, i});
          return;
        case pool_policy::acquire_decision::action::bad_conn:
          if (r.retry.again()) continue;
          return finish(id, true);  // the third try dials, so never reached today
      }
    }
  }

  // Dials go through the database's postmaster, one fork at a time for every instance. The fork
  // is CPU work of that one process on the database's CPU: on a crowded CPU it gets its share
  // like any runnable task, so forks slow down exactly when dials pile up (the throttle
  // DESIGN.md measured: ~37 ms of run-queue wait per fork at 600 req/s). Then the backend
  // starts (CPU), then the handshake's round trips (delay, plus the network's when split).
  void start_dial(std::uint32_t id) {
    if (scenario_.dial_fork.is_zero()) return dial_cpu_step(id);
    if (deployment_.postmaster.acquire(now_, id)) fork_cpu(id);
  }
  void fork_cpu(std::uint32_t id) {
    if (!is_waiter_dial(id)) requests_[id].at = stage::dial_fork;
    const double x = scenario_.dial_fork.sample(random_.fork);
    measurement_.count_postmaster_fork(x * speed_);
    const std::uint32_t job = is_waiter_dial(id) ? tag_waiter_fork + (id & tag_instance_mask) : id;
    submit_cpu(x, job, owner_database, database_host);
  }
  void on_fork_done(std::uint32_t id) {
    std::uint32_t next;
    if (deployment_.postmaster.release(now_, next)) fork_cpu(next);
    if (!is_waiter_dial(id)) requests_[id].at = stage::dial;
    dial_cpu_step(id);
  }
  // The forked backend takes one of PostgreSQL's max_connections slots before it answers the
  // handshake; with none free it says "sorry, too many clients already" and exits: the dial
  // fails (one database for every instance).
  void dial_cpu_step(std::uint32_t id) {
    if (backends_ >= scenario_.deployment.database_max_connections) return dial_refused(id);
    ++backends_;
    if (!cpu_step(id, scenario_.dial_cpu, random_.dial_cpu, owner_database, database_host))
      dial_delay_step(id);
  }
  // Go's rules for a failed dial (pool_policy): a request's own dial is that request's error
  // (the service answers 503, no retry: it is not ErrBadConn); the opener's dial for waiters
  // hands its error to one waiter and may ask for the next dial.
  void dial_refused(std::uint32_t id) {
    const std::uint32_t i = instance_of(id);
    pool_policy& pool = instances_[i].pool;
    measurement_.accumulate_pool_averages(i, now_);
    if (is_waiter_dial(id)) {
      auto d = pool.waiter_dial_failed(now_);
      carry_out(i, d.effects);
      measurement_.open_count_changed(i);
      if (d.failed_waiter) {
        const std::uint32_t w = take_waiter(i, d.failed_waiter);
        request& r = requests_[w];
        r.phases[phase_wait] += now_ - r.phase_began;
        r.waiter = 0;  // no longer waiting: its deadline finds nothing to cancel
        finish(w, true);
      }
      return;
    }
    carry_out(i, pool.dial_failed());
    measurement_.open_count_changed(i);
    request& r = requests_[id];
    r.phases[phase_dial] = now_ - r.phase_began;
    finish(id, true);
  }
  void dial_delay_step(std::uint32_t id) {
    if (!database_delay_step(id, scenario_.dial_delay, random_.dial_delay, ev_dial_delay_done))
      dial_done(id);
  }
  void dial_done(std::uint32_t id) {
    const std::uint32_t i = instance_of(id);
    pool_policy& pool = instances_[i].pool;
    measurement_.accumulate_pool_averages(i, now_);
    if (is_waiter_dial(id)) {
      auto d = pool.waiter_dial_succeeded(now_);
      mark_cold_backend(i, d.conn);
      carry_out(i, d);  // also starts the opener's next dial, if any is queued
      return;
    }
    request& r = requests_[id];
    r.conn = pool.dial_succeeded(now_);
    mark_cold_backend(i, r.conn);
    r.phases[phase_dial] = now_ - r.phase_began;
    start_query(id);
  }

  void start_query(std::uint32_t id) {
    request& r = requests_[id];
    if (scenario_.deployment.broken_connection_share > 0 && scenario_.use_pool && found_broken(id))
      return;
    r.at = stage::query_delay;
    r.phase_began = now_;
    if (!database_delay_step(id, scenario_.query_delay, random_.query_delay, ev_delay_done))
      query_cpu(id);
  }
  // Co-located, the database's and the service's work of a query run one after the other on
  // the one CPU: under PS a single job of the summed demand takes the same time and costs one
  // event instead of two. Split, the database's part runs on its host, then the service's on
  // the instance's (query_service_cpu).
  void query_cpu(std::uint32_t id) {
    request& r = requests_[id];
    r.at = stage::query_cpu;
    const scenario& s = scenario_;
    double db = 0;
    if (!s.query_db_cpu.is_zero()) db += s.query_db_cpu.sample(random_.query_db);
    // A new backend's caches are cold: its first query costs more (DESIGN.md).
    std::vector<std::uint8_t>& cold = pools_[r.instance].cold_backend;
    if (s.use_pool && r.conn < cold.size() && cold[r.conn]) {
      cold[r.conn] = 0;
      if (!s.query_cold_db_cpu.is_zero()) db += s.query_cold_db_cpu.sample(random_.query_cold);
    }
    // The more tasks share a CPU, the more each request costs (context switches, caches):
    // calibration fits the cost per runnable task, counted as the jobs on the CPU doing the work,
    // up to the most runnable tasks it measured (beyond that the cost is not known to grow).
    db += s.database_cpu_per_runnable *
          crowding(hosts_[database_host].jobs(), s.database_max_runnable);
    db *= speed_;
    measurement_.count_cpu(owner_database, db);
    const double demand = deployment_.split ? db : db + query_service_demand(database_host);
    if (demand > 0) return hosts_[database_host].add(now_, demand, id);
    if (deployment_.split) return query_service_cpu(id);
    query_done(id);
  }
  void query_service_cpu(std::uint32_t id) {
    requests_[id].at = stage::query_service_cpu;
    const std::size_t host = service_host(id);
    const double service = query_service_demand(host);
    if (service > 0) {
      hosts_[host].add(now_, service, id);
    } else {
      query_done(id);
    }
  }
  // The service's CPU for a query's rows, counted; `host` is where it runs.
  double query_service_demand(std::size_t host) {
    const scenario& s = scenario_;
    double service = 0;
    if (!s.query_service_cpu.is_zero())
      service += s.query_service_cpu.sample(random_.query_service);
    service += s.service_cpu_per_runnable * crowding(hosts_[host].jobs(), s.service_max_runnable);
    service *= speed_;
    measurement_.count_cpu(owner_service, service);
    return service;
  }

  // A connection that has served a query before is found dead when this one is sent, with
  // probability deployment.broken_connection_share (a fresh backend never is): as in the
  // service's handler, the pool closes it as broken and Go's query loop tries again
  // (bad_conn_retry: twice from the pool, then on a new connection), else the request fails.
  [[gnu::noinline]] bool found_broken(std::uint32_t id) {
    request& r = requests_[id];
    const std::vector<std::uint8_t>& cold = pools_[r.instance].cold_backend;
    if (r.conn < cold.size() && cold[r.conn]) return false;
    if (random_.broken.uniform01() >= scenario_.deployment.broken_connection_share) return false;
    const std::uint32_t i = r.instance;
    measurement_.count_broken();
    measurement_.accumulate_pool_averages(i, now_);
    carry_out(i, instances_[i].pool.release(r.conn, now_, true));
    r.conn = 0;
    if (r.retry.again()) {
      acquire_conn(id);
    } else {
      finish(id, true);
    }
    return true;
  }

  // The runnable tasks that the per-runnable cost counts: the jobs on the CPU, at most
  // `max_runnable` (0 = no bound).
  static double crowding(std::size_t jobs, double max_runnable) {
    const double n = static_cast<double>(jobs);
    return max_runnable > 0 ? std::min(n, max_runnable) : n;
  }

  void query_done(std::uint32_t id) {
    request& r = requests_[id];
    r.phases[phase_query] = now_ - r.phase_began;
    r.phase_began = now_;
    r.at = stage::release_delay;
    if (!database_delay_step(id, scenario_.release_delay, random_.release_delay, ev_delay_done))
      release_cpu(id);
  }
  void release_cpu(std::uint32_t id) {
    requests_[id].at = stage::release_cpu;
    if (!cpu_step(id, scenario_.release_cpu, random_.release_cpu, owner_service, service_host(id)))
      release_conn(id);
  }
  void release_conn(std::uint32_t id) {
    request& r = requests_[id];
    r.phases[phase_release] = now_ - r.phase_began;
    if (scenario_.use_pool) {
      const std::uint32_t i = r.instance;
      measurement_.accumulate_pool_averages(i, now_);
      carry_out(i, instances_[i].pool.release(r.conn, now_));
    }
    r.at = stage::respond;
    if (!cpu_step(id, scenario_.respond_cpu, random_.respond, owner_service, service_host(id)))
      finish(id, false);
  }

  void finish(std::uint32_t id, bool failed) {
    request& r = requests_[id];
    double sojourn = now_ - r.arrival;
    measurement_.request_left(failed);
    if (r.measured) {
      // As a client measures it: from arrival until the response is back, a failed wait's
      // 503 crossing the same network as a success.
      double latency = sojourn + (scenario_.network_rtt.is_zero()
                                      ? 0.0
                                      : scenario_.network_rtt.sample(random_.rtt) * delay_factor_);
      if (!failed) r.phases[phase_total] = latency;
      measurement_.measured_request_left(r.phases, sojourn, latency, failed);
    }
    --in_flight_;
    free_slots_.push_back(id);
    std::uint32_t next;
    fcfs_station& workers = instances_[r.instance].workers;
    if (!workers.unlimited() && workers.release(now_, next)) got_worker(next);
    if (!client_connections_.unlimited() && client_connections_.release(now_, next)) send(next);
  }

  // ---- the pool's decisions, carried out ------------------------------------------------
  // Where a released or newly dialed connection of instance `i` went.
  void carry_out(std::uint32_t i, const pool_policy::release_decision& d) {
    carry_out(i, d.effects);
    switch (d.what) {
      case pool_policy::release_decision::action::to_waiter: {
        std::uint32_t w = take_waiter(i, d.waiter);
        request& r = requests_[w];
        r.conn = d.conn;
        r.phases[phase_wait] += now_ - r.phase_began;
        start_query(w);
        break;
      }
      case pool_policy::release_decision::action::waiter_bad_conn: {
        // Go 1.10-1.14: the waiter was handed an expired connection; that try failed.
        std::uint32_t w = take_waiter(i, d.waiter);
        request& r = requests_[w];
        r.phases[phase_wait] += now_ - r.phase_began;
        r.phase_began = now_;
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
  // What every pool decision asks besides its answer: count the closes and pay for them (the
  // backend's exit, on the database's CPU), and start the opener's dial for waiters (the policy
  // starts one at a time). Every close and waiter dial passes here; a request's own dial is
  // counted in acquire_conn.
  void carry_out(std::uint32_t i, const pool_effects& e) {
    backends_ -= static_cast<int>(e.close.size());
    for (std::size_t c = 0; c < e.close.size(); ++c) {
      measurement_.count_close();
      if (!scenario_.close_db_cpu.is_zero())
        cpu_off_path(scenario_.close_db_cpu.sample(random_.close), owner_database, database_host);
    }
    if (e.start_waiter_dial) {
      measurement_.count_dial(i);
      start_dial(tag_waiter_dial + i);
    }
    if (!e.close.empty() || e.start_waiter_dial) measurement_.open_count_changed(i);
  }
  void add_waiter(std::uint32_t i, waiter_id w, std::uint32_t slot) {
    pool_bookkeeping& b = pools_[i];
    if (b.waiter_slots.empty()) b.first_waiter = w;
    if (w < b.first_waiter + b.waiter_slots.size())
      throw std::logic_error("pool reused a waiter id");
    while (b.first_waiter + b.waiter_slots.size() < w) b.waiter_slots.push_back(not_waiting);
    b.waiter_slots.push_back(slot);
  }
  // The slot of instance i's waiter `w`, who stops waiting.
  std::uint32_t take_waiter(std::uint32_t i, waiter_id w) {
    pool_bookkeeping& b = pools_[i];
    std::uint32_t slot = not_waiting;
    if (w >= b.first_waiter && w - b.first_waiter < b.waiter_slots.size())
      std::swap(slot, b.waiter_slots[w - b.first_waiter]);
    if (slot == not_waiting)
      throw std::logic_error("the pool named a waiter the model does not know");
    while (!b.waiter_slots.empty() && b.waiter_slots.front() == not_waiting) {
      b.waiter_slots.pop_front();
      ++b.first_waiter;
    }
    return slot;
  }
  void mark_cold_backend(std::uint32_t i, conn_id c) {
    std::vector<std::uint8_t>& cold = pools_[i].cold_backend;
    if (c >= cold.size()) cold.resize(c + 1, 0);
    cold[c] = 1;
  }

  // ---- the building blocks of a step ----------------------------------------------------
  // Submits a CPU demand for request `id` on `host`; false if the demand is zero (step skipped).
  bool cpu_step(std::uint32_t id, const distribution& d, random_stream& rng, cpu_owner who,
                std::size_t host) {
    if (d.is_zero()) return false;
    double x = d.sample(rng);
    if (x <= 0) return false;
    submit_cpu(x, id, who, host);
    return true;
  }
  // Every CPU demand goes through here: this run's machine speed scales it (speed_sigma).
  void submit_cpu(double x, std::uint32_t id, cpu_owner who, std::size_t host) {
    x *= speed_;
    measurement_.count_cpu(who, x);
    hosts_[host].add(now_, x, id);
  }
  // Schedules the end of a delay for request `id`; false if the delay is zero (step skipped).
  bool delay_step(std::uint32_t id, const distribution& d, random_stream& rng, event_kind k) {
    if (d.is_zero()) return false;
    double x = d.sample(rng) * delay_factor_;
    if (x <= 0) return false;
    calendar_.push(now_ + x, k, id);
    return true;
  }
  // A delay of a talk with the database (query, dial handshake, release): split, it also
  // crosses the network, deployment.database_rtt (none co-located).
  bool database_delay_step(std::uint32_t id, const distribution& d, random_stream& rng,
                           event_kind k) {
    if (scenario_.deployment.database_rtt.is_zero()) return delay_step(id, d, rng, k);
    return delay_across_network(id, d, rng, k);
  }
  // Split only. Out of line so that the co-located path above stays small enough for GCC to
  // inline into every step (measured: ~2 % more instructions per request otherwise).
  [[gnu::noinline]] bool delay_across_network(std::uint32_t id, const distribution& d,
                                              random_stream& rng, event_kind k) {
    double x = ((d.is_zero() ? 0.0 : d.sample(rng)) +
                scenario_.deployment.database_rtt.sample(random_.database_rtt)) *
               delay_factor_;
    if (x <= 0) return false;
    calendar_.push(now_ + x, k, id);
    return true;
  }
  void cpu_off_path(double x, cpu_owner who, std::size_t host) {
    if (x <= 0) return;
    submit_cpu(x, tag_off_path, who, host);
  }
  std::uint32_t new_slot() {
    if (!free_slots_.empty()) {
      std::uint32_t id = free_slots_.back();
      free_slots_.pop_back();
      return id;
    }
    if (requests_.size() >= tag_waiter_dial) throw std::length_error("too many requests in flight");
    requests_.emplace_back();
    return static_cast<std::uint32_t>(requests_.size() - 1);
  }
  // The instance of a request, or of a waiter dial (or its fork) from its tag.
  std::uint32_t instance_of(std::uint32_t id) const {
    return id < tag_waiter_dial ? requests_[id].instance : id & tag_instance_mask;
  }
  // The host running request `id`'s service-side work.
  std::size_t service_host(std::uint32_t id) const {
    return deployment_.service_host(requests_[id].instance);
  }

  // ---- arrivals ---------------------------------------------------------------------------
  double first_arrival_time() {
    if (scenario_.arrivals.process == arrival_process::trace) return scenario_.arrivals.times[0];
    return interarrival_gap();
  }
  double interarrival_gap() {
    if (scenario_.arrivals.process == arrival_process::constant)
      return 1.0 / scenario_.arrivals.rate;
    return random_.arrivals.exponential(1.0 / scenario_.arrivals.rate);
  }
  double next_arrival_time() {
    if (scenario_.arrivals.process == arrival_process::trace)
      return scenario_.arrivals.times[arrived_];
    return now_ + interarrival_gap();
  }
  // Uniformly at random (a load balancer's random choice): each instance gets rate / instances.
  std::uint32_t pick_instance() {
    const auto n = static_cast<std::uint32_t>(instances_.size());
    const auto i = static_cast<std::uint32_t>(random_.instance.uniform01() * n);
    return std::min(i, n - 1);
  }
  // Background jobs arrive as a Poisson process sized to keep that share of the host's cores
  // busy (every host's own, when split).
  double next_background_gap(std::size_t host) {
    double rate =
        scenario_.background_utilization * hosts_[host].cores() / scenario_.background_job.mean();
    return random_.background_arrivals.exponential(1.0 / rate);
  }

  // ---- set-up -----------------------------------------------------------------------------
  // When a run that has not drained is declared overloaded: twice the time its arrivals span,
  // plus drain_allowance. A stable run ends a few service times after its last arrival; one
  // still busy that long has a backlog it cannot clear (with a backlog whose work keeps growing,
  // such as a storm of dials on a crowded CPU, it would otherwise run, and grow, for ever).
  static constexpr double drain_allowance = 10;  // seconds: headroom load's default --timeout
  static double time_limit(const scenario& s, const run_length& n) {
    double span = 0;
    if (s.arrivals.process == arrival_process::trace) {
      if (n.total > 0) span = s.arrivals.times[n.total - 1];
    } else {
      span = static_cast<double>(n.total) / s.arrivals.rate;
    }
    return 2 * span + drain_allowance;
  }
  static run_length length_of_run(const scenario& s) {
    run_length n;
    // 0 warm-up requests means the default: one for every ten measured (SCENARIO.md).
    n.warmup = s.run.warmup_requests ? s.run.warmup_requests : s.run.requests / 10;
    n.total = n.warmup + s.run.requests;
    if (s.arrivals.process == arrival_process::trace) {
      // A trace is replayed once per replication: its length bounds the run.
      // A shorter trace keeps the default warm-up's share: one warm-up request for every ten
      // measured ones (requests / 10 before requests), i.e. 1/11 of the trace.
      const std::uint64_t trace_length = s.arrivals.times.size();
      if (!s.run.warmup_requests)
        n.warmup = std::min<std::uint64_t>(trace_length, n.warmup + s.run.requests) / 11;
      n.total = std::min<std::uint64_t>(trace_length, n.warmup + s.run.requests);
      // A trace no longer than the warm-up asked for: keep a tenth of it as warm-up instead.
      if (n.warmup >= n.total) n.warmup = n.total / 10;
    }
    n.middle = n.warmup + (n.total - n.warmup) / 2;
    return n;
  }
  // A run's factor (speed_sigma for CPU, delay_sigma for delays): lognormal with mean 1,
  // ln f ~ Normal(-sigma^2 / 2, sigma^2). Each its own stream, so a scenario without
  // variability draws exactly what it drew before. With `dof` degrees of freedom behind sigma
  // the normal becomes Student's t (the same normal over the root of a chi-square's mean, drawn
  // after it: with dof 0 the draws are as before); the median stays exp(-sigma^2 / 2). Beyond
  // 100 degrees of freedom t is the normal to within 1 %; t is cut at +-6 (a normal's 1e-9
  // tail), or one run in thousands with few repeats would be slowed without bound.
  static double factor(double sigma, int dof, std::uint64_t seed, std::uint64_t replication,
                       stream_id id) {
    if (!(sigma > 0)) return 1;
    random_stream r(seed, replication, id);
    double z = r.normal();
    if (dof > 0 && dof <= 100) {
      double chi2 = 0;
      for (int k = 0; k < dof; ++k) {
        const double g = r.normal();
        chi2 += g * g;
      }
      z = std::clamp(z / std::sqrt(chi2 / dof), -6.0, 6.0);
    }
    return std::exp(sigma * z - 0.5 * sigma * sigma);
  }
  // The scenario's pool for each instance, with the seed of its random waiter order drawn for
  // this replication (instance 0 draws first, so one instance draws what it always drew).
  static std::vector<pool_config> pool_configs_for(const scenario& s, std::uint64_t replication) {
    std::vector<pool_config> out;
    random_stream r(s.run.seed, replication, st_pool);
    for (int i = 0; i < s.deployment.instances; ++i) {
      pool_config c = s.pool;
      c.seed = r.next_u64();
      out.push_back(c);
    }
    return out;
  }
  // Opens max_idle connections of instance i's pool at time 0 through the policy itself (dial,
  // then release), so the pool's state is one its own rules can reach: no more than the
  // database's max_connections lets all instances open. They count as used (warm caches).
  void warm_start_pool(std::uint32_t i) {
    pool_policy& pool = instances_[i].pool;
    std::vector<conn_id> opened;
    for (int k = 0; k < pool.effective_max_idle() &&
                    backends_ < scenario_.deployment.database_max_connections;
         ++k) {
      auto d = pool.acquire(0);
      if (d.what != pool_policy::acquire_decision::action::dial) break;
      opened.push_back(pool.dial_succeeded(0));
      ++backends_;
    }
    for (conn_id c : opened) carry_out(i, pool.release(c, 0));
  }

  // ---- the end ----------------------------------------------------------------------------
  // The replication's figures. An overloaded run (stopped early, with a reason, or one whose
  // backlog grew through the window) says which resource could not keep up.
  replication_result finish_run(const std::string& stopped_because) {
    measurement_.close_window_if_open(now_);  // a run stopped early: its window ends now
    replication_result r = measurement_.finish(now_);
    r.speed = speed_;
    r.delay_factor = delay_factor_;
    r.events = events_;
    if (!stopped_because.empty()) {
      r.stable = false;
      r.unstable_reason = stopped_because;
    } else if (r.window > 0) {
      if (auto why = growing_backlog(measurement_.in_flight_by_half(), r.utilization)) {
        r.stable = false;
        r.unstable_reason = *why;
      }
    }
    if (!r.stable) {
      overload_evidence e = measurement_.evidence_of_overload(now_, r);
      r.unstable_reason =
          "overloaded: " + name_overloaded_resource(scenario_, e) + "; " + r.unstable_reason;
    }
    return r;
  }

  static constexpr std::size_t database_host = 0;  // deployment_resources' host 0

  const scenario& scenario_;
  const run_length length_;
  event_calendar calendar_;
  deployment_resources deployment_;  // hosts, instances (workers, pool), the postmaster
  // deployment_'s, seen through spans: the hot paths load one pointer, not a vector's.
  std::span<ps_cpu> hosts_;
  std::span<service_instance> instances_;
  std::vector<pool_bookkeeping> pools_;  // by instance
  fcfs_station client_connections_;      // the load generator's connections (unlimited: no client)
  random_streams random_;
  replication_measurement measurement_;

  std::vector<request> requests_;  // by slot; a finished request's slot is reused
  std::vector<std::uint32_t> free_slots_;
  static constexpr std::uint32_t not_waiting = 0xFFFFFFFFu;  // a hole: no slot has this number
  std::deque<deadline> deadlines_;  // FIFO: every wait has the same timeout

  double now_ = 0;
  std::uint64_t arrived_ = 0, in_flight_ = 0;
  int backends_ = 0;  // the database's connections, all instances': dialed and not yet closed
  // The intake's current or last stall, and when the next begins (never, without stalls).
  double stall_begins_ = 0, stall_ends_ = 0;
  double next_stall_ = std::numeric_limits<double>::infinity();
  // Each host's latest arrival, for its wake-up (the first request finds the host asleep).
  std::vector<double> last_arrival_ =
      std::vector<double>(hosts_.size(), -std::numeric_limits<double>::infinity());
  const double stall_rate_ = stalls_per_second(scenario_);
  std::uint64_t events_ = 0;  // processed, warm-up included
  bool arrivals_done_ = false;
  std::uint64_t max_in_flight_;  // s.run's, read on every event (a member stays in a register)
  double time_limit_;            // simulated seconds; past it the run is overloaded
  double speed_;                 // this run's machine speed: every CPU demand is multiplied by it
  double delay_factor_;          // and every delay (network, query, dial, release) by this
};

}  // namespace

replication_result simulate_replication(const scenario& s, std::uint64_t replication) {
  request_path_sim sim(s, replication);
  return sim.run();
}

}  // namespace headroom
