// The real connection pool: pool_policy's Go database/sql decisions carried out
// with real connections, one mutex, one background thread (Go's connectionOpener +
// connectionCleaner), and a waiter that is either a blocked thread (acquire) or a handler on an
// event loop (async_acquire).
//
// Every rule lives in pool_policy (including when the opener dials for waiters and which waiter
// a failed dial fails); this file only carries out each decision's effects: dial, hand a
// connection to a waiter or fail it, close, time out. Connections are kept in a vector indexed
// by pool_policy's conn_id. `Conn` is any type a dial function can make: pqxx::connection in
// the service, something cheap in tests.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pool_policy.hpp"

namespace headroom {

// Why acquire() gave no connection. All become a 503 at the HTTP edge; bad_conn (the connection
// the pool took had expired: Go's ErrBadConn) is first a reason to try again (bad_conn_retry).
class pool_error : public std::runtime_error {
 public:
  enum class kind { wait_timeout, dial_failed, closed, bad_conn };
  pool_error(kind k, const std::string& what) : std::runtime_error(what), kind_(k) {}
  kind which() const { return kind_; }

 private:
  kind kind_;
};

// Where acquire() spent its time, in seconds (the `wait` and `dial` phases).
struct acquire_timing {
  double wait = 0;
  double dial = 0;
};

template <class Conn>
class real_pool {
 public:
  // Opens a new connection; throws on failure. Called without the lock held.
  using dial_fn = std::function<std::unique_ptr<Conn>()>;

  // A connection on loan. Move-only; goes back to the pool when released or
  // destroyed. Release with broken=true when the connection failed, so the
  // pool closes it instead of handing it out again.
  class lease {
   public:
    lease() = default;
    lease(lease&& o) noexcept { *this = std::move(o); }
    lease& operator=(lease&& o) noexcept {
      if (this != &o) {
        if (pool_) release();
        pool_ = std::exchange(o.pool_, nullptr);
        conn_ = std::exchange(o.conn_, nullptr);
        id_ = o.id_;
      }
      return *this;
    }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() {
      if (pool_) release();
    }

    Conn& operator*() const { return *conn_; }
    Conn* operator->() const { return conn_; }
    conn_id id() const { return id_; }
    explicit operator bool() const { return pool_ != nullptr; }

    // Gives the connection back; returns the seconds it took (the `release`
    // phase, which includes closing it when the policy says so).
    double release(bool broken = false) {
      real_pool* p = std::exchange(pool_, nullptr);
      if (!p) return 0;
      return p->give_back(id_, broken);
    }

   private:
    friend class real_pool;
    lease(real_pool* p, conn_id id, Conn* c) : pool_(p), conn_(c), id_(id) {}
    real_pool* pool_ = nullptr;
    Conn* conn_ = nullptr;
    conn_id id_ = 0;
  };

  // What async_acquire hands its handler: a lease, or the error acquire() would have thrown.
  struct acquired {
    lease conn;
    std::optional<pool_error> error;
    acquire_timing timing;
  };
  using acquire_handler = std::function<void(acquired)>;

  real_pool(const pool_config& cfg, dial_fn dial)
      : policy_(cfg), dial_(std::move(dial)), start_(clock::now()) {
    background_ = std::thread([this] { background_loop(); });
  }
  ~real_pool() {
    close();
    if (background_.joinable()) background_.join();
  }
  real_pool(const real_pool&) = delete;
  real_pool& operator=(const real_pool&) = delete;

  // Takes an idle connection, dials one on this thread, or waits up to
  // `wait_timeout` seconds (0 = forever) for one. Throws pool_error.
  // `new_conn`: never an idle connection (see pool_policy::acquire). One try of Go's query
  // loop: a caller follows bad_conn_retry when it gets pool_error::kind::bad_conn.
  lease acquire(double wait_timeout, acquire_timing* timing = nullptr, bool new_conn = false) {
    const double t0 = now();
    // Declared before the lock so that closed connections are destroyed
    // (which may talk to the server) after it is released.
    std::vector<std::unique_ptr<Conn>> doomed;
    std::unique_lock lk(mu_);
    if (policy_.closed()) throw pool_error(pool_error::kind::closed, "connection pool is closed");
    const auto d = policy_.acquire(t0, new_conn);
    doomed = carry_out(d.effects);
    switch (d.what) {
      case pool_policy::acquire_decision::action::reuse:
        return lease(this, d.conn, conns_[d.conn].get());
      case pool_policy::acquire_decision::action::dial:
        lk.unlock();
        doomed.clear();
        return dial_for_caller(timing);
      case pool_policy::acquire_decision::action::bad_conn:
        lk.unlock();
        doomed.clear();
        throw pool_error(pool_error::kind::bad_conn, expired_message);
      case pool_policy::acquire_decision::action::wait:
        break;
    }
    // Still under the lock: the waiter must be registered before any release
    // can pick it.
    return wait_for(d.waiter, t0, wait_timeout, lk, timing);
  }

  // acquire() for a caller on an event loop, with the same decisions, without blocking `io`'s
  // thread: an idle connection, or an error known at once, is handed to `done` before this
  // returns; a dial runs on `dialer` (a thread pool: Go dials on the requesting goroutine, and
  // a dial blocks); a waiter is `done` itself, posted to `io` by whoever hands it a connection,
  // and its deadline a timer on `io`. `done` runs on io's thread; the wait and dial timings end
  // when it runs.
  void async_acquire(const boost::asio::any_io_executor& io,
                     const boost::asio::any_io_executor& dialer, double wait_timeout, bool new_conn,
                     acquire_handler done) {
    namespace net = boost::asio;
    const double t0 = now();
    std::vector<std::unique_ptr<Conn>> doomed;
    std::unique_lock lk(mu_);
    acquired now_or_error;
    if (policy_.closed()) {
      lk.unlock();
      now_or_error.error.emplace(pool_error::kind::closed, "connection pool is closed");
      return done(std::move(now_or_error));
    }
    const auto d = policy_.acquire(t0, new_conn);
    doomed = carry_out(d.effects);
    switch (d.what) {
      case pool_policy::acquire_decision::action::reuse:
        now_or_error.conn = lease(this, d.conn, conns_[d.conn].get());
        break;
      case pool_policy::acquire_decision::action::bad_conn:
        now_or_error.error.emplace(pool_error::kind::bad_conn, expired_message);
        break;
      case pool_policy::acquire_decision::action::dial:
        net::post(dialer, [this, io, t0, done = std::move(done)]() mutable {
          acquired a = dial_for_handler();
          net::post(io, [this, t0, a = std::move(a), done = std::move(done)]() mutable {
            a.timing.dial = now() - t0;
            done(std::move(a));
          });
        });
        return;
      case pool_policy::acquire_decision::action::wait:
        // Still under the lock: the waiter must be registered before any release can pick it.
        return wait_async(d.waiter, t0, wait_timeout, io, std::move(done));
    }
    lk.unlock();
    doomed.clear();
    done(std::move(now_or_error));
  }

  // Shutdown: idle connections close now, in-use ones when released, waiters
  // fail, later acquires throw. Safe to call more than once.
  void close() {
    std::vector<std::unique_ptr<Conn>> doomed;
    {
      std::lock_guard lk(mu_);
      if (!policy_.closed()) {
        const auto d = policy_.close(now());
        doomed = carry_out(d.effects);
        for (waiter_id w : d.failed_waiters)
          wake(fail_waiter(w, pool_error::kind::closed, "connection pool is closed"));
      }
      stopping_ = true;
    }
    background_cv_.notify_all();
  }

  // Go's SetMaxOpenConns then SetMaxIdleConns on the running pool (pool_policy's rules); either
  // may be left out. Idle connections over the new limits are closed before this returns.
  void set_limits(std::optional<int> max_open, std::optional<int> max_idle) {
    std::vector<std::unique_ptr<Conn>> doomed;
    {
      std::lock_guard lk(mu_);
      if (max_open) doomed = carry_out(policy_.set_max_open(*max_open));
      if (max_idle)
        for (auto& c : carry_out(policy_.set_max_idle(*max_idle))) doomed.push_back(std::move(c));
    }
    doomed.clear();  // closes them, outside the lock
  }

  pool_stats stats() const {
    std::lock_guard lk(mu_);
    return policy_.stats();
  }
  // A copy: set_limits may change it.
  pool_config config() const {
    std::lock_guard lk(mu_);
    return policy_.config();
  }
  int effective_max_idle() const {
    std::lock_guard lk(mu_);
    return policy_.effective_max_idle();
  }

 private:
  using clock = std::chrono::steady_clock;
  static constexpr const char* expired_message =
      "the pooled connection had passed its max lifetime (Go's ErrBadConn)";

  // A caller waiting for a connection: blocked in acquire() on `cv`, or (async_acquire) a
  // handler that `post_completion` posts to its event loop. Shared, so that a release can wake
  // it after dropping the lock (a thread woken under the lock would only block again on it)
  // even if it has left by then.
  struct waiter_slot {
    std::condition_variable cv;
    std::function<void(std::shared_ptr<waiter_slot>)> post_completion;
    bool done = false;
    conn_id conn = 0;
    Conn* raw = nullptr;
    std::string error;  // set instead of conn when the waiter is failed
    pool_error::kind error_kind = pool_error::kind::dial_failed;
  };

  // Wakes a waiter that hand_to_waiter or fail_waiter settled.
  static void wake(const std::shared_ptr<waiter_slot>& s) {
    if (s->post_completion)
      std::exchange(s->post_completion, nullptr)(s);
    else
      s->cv.notify_one();
  }

  double now() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

  // Carries out what every decision asks besides its answer, under the lock: wakes the
  // background thread when the opener must dial for waiters, and moves out the connections the
  // policy closed, so the caller destroys them (which may talk to the server) after dropping
  // the lock.
  std::vector<std::unique_ptr<Conn>> carry_out(const pool_effects& e) {
    std::vector<std::unique_ptr<Conn>> doomed;
    for (conn_id c : e.close)
      if (c < conns_.size() && conns_[c]) doomed.push_back(std::move(conns_[c]));
    if (e.start_waiter_dial) {
      waiter_dial_asked_ = true;
      background_cv_.notify_all();
    }
    return doomed;
  }

  void store(conn_id id, std::unique_ptr<Conn> c) {
    if (conns_.size() <= id) conns_.resize(id + 1);
    conns_[id] = std::move(c);
  }

  // Dials without the lock. Null with `error` set on any failure: the slot the
  // policy counted must always be given back, and nothing may escape the
  // background thread.
  std::unique_ptr<Conn> try_dial(std::string& error) {
    try {
      return dial_();
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown error";
    }
    return nullptr;
  }

  lease dial_for_caller(acquire_timing* timing) {
    const double t = now();
    std::string error;
    std::unique_ptr<Conn> c = try_dial(error);
    const double done = now();
    if (timing) timing->dial = done - t;
    std::lock_guard lk(mu_);
    if (!c) {
      carry_out(policy_.dial_failed());  // closes nothing; may start the opener
      throw pool_error(pool_error::kind::dial_failed, "cannot connect to the database: " + error);
    }
    const conn_id id = policy_.dial_succeeded(done);
    Conn* raw = c.get();
    store(id, std::move(c));
    return lease(this, id, raw);
  }

  // dial_for_caller for async_acquire, on a dial thread: the error is handed over, not thrown.
  acquired dial_for_handler() {
    acquired a;
    try {
      a.conn = dial_for_caller(nullptr);
    } catch (const pool_error& e) {
      a.error = e;
    }
    return a;
  }

  // Registers an async_acquire waiter, under the lock. Its completion (a connection, a failure,
  // or the deadline) is always posted to `io`, where it also cancels the deadline's timer.
  void wait_async(waiter_id w, double t0, double wait_timeout,
                  const boost::asio::any_io_executor& io, acquire_handler done) {
    namespace net = boost::asio;
    const auto slot = std::make_shared<waiter_slot>();
    std::shared_ptr<net::steady_timer> timer;
    if (wait_timeout > 0) timer = std::make_shared<net::steady_timer>(io);
    slot->post_completion = [this, io, t0, timer,
                             done = std::move(done)](std::shared_ptr<waiter_slot> s) mutable {
      net::post(io, [this, t0, timer, s = std::move(s), done = std::move(done)] {
        if (timer) timer->cancel();
        acquired a;
        a.timing.wait = now() - t0;
        if (!s->error.empty())
          a.error.emplace(s->error_kind, s->error);
        else
          a.conn = lease(this, s->conn, s->raw);
        done(std::move(a));
      });
    };
    waiters_[w] = slot;
    if (!timer) return;
    timer->expires_after(
        std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(wait_timeout)));
    timer->async_wait([this, w, slot](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: the waiter was served first
      std::unique_lock lk(mu_);
      // cancel_wait is false only when a connection was handed over meanwhile, which sets
      // done too: its completion is on its way.
      if (slot->done || !policy_.cancel_wait(w, now())) return;
      waiters_.erase(w);
      slot->error = "timed out waiting for a database connection";
      slot->error_kind = pool_error::kind::wait_timeout;
      slot->done = true;
      lk.unlock();
      wake(slot);
    });
  }

  lease wait_for(waiter_id w, double t0, double wait_timeout, std::unique_lock<std::mutex>& lk,
                 acquire_timing* timing) {
    const auto shared = std::make_shared<waiter_slot>();
    waiter_slot& slot = *shared;
    waiters_[w] = shared;
    const auto deadline =
        start_ + std::chrono::duration_cast<clock::duration>(
                     std::chrono::duration<double>(t0 + (wait_timeout > 0 ? wait_timeout : 0)));
    while (!slot.done) {
      if (wait_timeout <= 0) {
        slot.cv.wait(lk);
      } else if (slot.cv.wait_until(lk, deadline) == std::cv_status::timeout && !slot.done) {
        // Not handed anything yet: give up. cancel_wait is false only when a
        // connection was handed to us meanwhile, which sets slot.done too.
        if (policy_.cancel_wait(w, now())) {
          waiters_.erase(w);
          if (timing) timing->wait = now() - t0;
          throw pool_error(pool_error::kind::wait_timeout,
                           "timed out waiting for a database connection");
        }
      }
    }
    waiters_.erase(w);
    if (timing) timing->wait = now() - t0;
    if (!slot.error.empty()) throw pool_error(slot.error_kind, slot.error);
    return lease(this, slot.conn, conns_[slot.conn].get());
  }

  // Called with the lock held. Both settle the waiter, which leaves the pool's list, and return
  // it to wake; wake it after the lock if the caller can.
  std::shared_ptr<waiter_slot> hand_to_waiter(waiter_id w, conn_id c) {
    auto s = waiters_.at(w);
    waiters_.erase(w);
    s->conn = c;
    s->raw = conns_[c].get();
    s->done = true;
    return s;
  }
  std::shared_ptr<waiter_slot> fail_waiter(waiter_id w, pool_error::kind k,
                                           const std::string& why) {
    auto s = waiters_.at(w);
    waiters_.erase(w);
    s->error = why;
    s->error_kind = k;
    s->done = true;
    return s;
  }
  // Carries out a release decision (from release or waiter_dial_succeeded). The waiter it
  // serves, if any, is left in `woken` for the caller to wake.
  std::vector<std::unique_ptr<Conn>> carry_out(const pool_policy::release_decision& d,
                                               std::shared_ptr<waiter_slot>& woken) {
    using action = pool_policy::release_decision::action;
    auto doomed = carry_out(d.effects);
    if (d.what == action::to_waiter) woken = hand_to_waiter(d.waiter, d.conn);
    if (d.what == action::waiter_bad_conn)
      woken = fail_waiter(d.waiter, pool_error::kind::bad_conn, expired_message);
    return doomed;
  }

  double give_back(conn_id c, bool broken) {
    const double t = now();
    std::vector<std::unique_ptr<Conn>> doomed;
    std::shared_ptr<waiter_slot> woken;
    {
      std::lock_guard lk(mu_);
      doomed = carry_out(policy_.release(c, t, broken), woken);
    }
    if (woken) wake(woken);
    doomed.clear();  // closes them, outside the lock
    return now() - t;
  }

  // Makes the dials for waiters the policy asks for (it asks for one at a time, as Go's
  // connectionOpener makes them) and runs the cleaner when the policy says.
  void background_loop() {
    std::unique_lock lk(mu_);
    double next_clean = policy_.cleaner_interval();  // seconds since start_; 0 = never
    while (!stopping_) {
      if (waiter_dial_asked_) {
        waiter_dial_asked_ = false;
        lk.unlock();
        std::string error;
        std::unique_ptr<Conn> c = try_dial(error);
        std::vector<std::unique_ptr<Conn>> doomed;
        lk.lock();
        if (c) {
          const auto d = policy_.waiter_dial_succeeded(now());
          store(d.conn, std::move(c));
          std::shared_ptr<waiter_slot> woken;
          doomed = carry_out(d, woken);
          if (woken) wake(woken);
        } else {
          const auto f = policy_.waiter_dial_failed(now());
          if (f.failed_waiter)
            wake(fail_waiter(f.failed_waiter, pool_error::kind::dial_failed,
                             "cannot connect to the database: " + error));
          doomed = carry_out(f.effects);
        }
        lk.unlock();
        doomed.clear();
        lk.lock();
        continue;
      }
      if (next_clean <= 0) {
        background_cv_.wait(lk);
        continue;
      }
      const double t = now();
      if (t >= next_clean) {
        const auto c = policy_.expire_idle(t);
        auto doomed = carry_out(c.effects);
        next_clean = c.next_run > 0 ? t + c.next_run : 0;
        lk.unlock();
        doomed.clear();
        lk.lock();
        continue;
      }
      background_cv_.wait_for(lk, std::chrono::duration<double>(next_clean - t));
    }
    // A dial the policy asked for but that never started: give its slot back.
    if (waiter_dial_asked_) {
      waiter_dial_asked_ = false;
      policy_.waiter_dial_failed(now());
    }
  }

  mutable std::mutex mu_;
  pool_policy policy_;
  dial_fn dial_;
  const clock::time_point start_;
  std::vector<std::unique_ptr<Conn>> conns_;  // by conn_id; null when closed
  std::unordered_map<waiter_id, std::shared_ptr<waiter_slot>> waiters_;
  std::condition_variable background_cv_;
  bool waiter_dial_asked_ = false;  // the policy asked the opener for a dial not yet started
  bool stopping_ = false;
  std::thread background_;
};

}  // namespace headroom
