// The connection pool's decision logic, with Go's database/sql rules by Go version (DESIGN.md
// "Pool semantics"). Pure code: no sockets, no clock, no locks. The real pool (service/) and the
// simulated pool (model/) both drive it, so the model cannot drift from the service. Every
// decision returns all of its effects (connections to close, a dial to start for waiters).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace headroom {

using conn_id = std::uint32_t;    // a slot; reused after the connection is closed
using waiter_id = std::uint64_t;  // unique for the life of the pool; 0 is never one

enum class waiter_order { fifo, random };
waiter_order parse_waiter_order(const std::string& s);  // "fifo" | "random", else throws
const char* to_string(waiter_order o);

// Go's database/sql rules changed between releases (DESIGN.md "Pool semantics"); a profile
// names the release whose rules the pool follows. The study's service ran Go 1.10.
enum class go_version { go1_10, go1_15, go1_18, go1_23 };
// "1.10".."1.14" -> go1_10, "1.15".."1.17" -> go1_15, "1.18".."1.22" -> go1_18, "1.23" and
// later -> go1_23 (the profile whose rules that release has). Throws std::invalid_argument.
go_version parse_go_version(const std::string& s);
const char* to_string(go_version v);  // the profile's name: "1.10", "1.15", "1.18", "1.23"

struct pool_config {
  int max_open = 0;          // 0 = unlimited
  int max_idle = 2;          // Go's default; negative means 0; clamped to max_open
  double max_lifetime = 0;   // seconds since dial; 0 = forever
  double max_idle_time = 0;  // seconds since last release; 0 = forever; Go 1.15 and later only
  go_version go = go_version::go1_10;  // whose rules (service_defaults: the study's)
  // Which waiter gets a released connection: unset = the Go version's rule; set for pools that
  // are not Go's (fifo: HikariCP, pgx, Go <= 1.8).
  std::optional<waiter_order> order;
  std::uint64_t seed = 1;  // for waiter_order::random
};

// Throws std::invalid_argument naming the setting when `cfg` is not a pool Go could run: a
// negative limit, or max_idle_time under the 1.10 profile (SetConnMaxIdleTime came in Go 1.15).
void validate(const pool_config& cfg);

// Why a connection was closed (each has its DBStats counter).
// The idle limit Go applies: negative means keep none, and never more than max_open allows.
int effective_max_idle(const pool_config& cfg);

enum class close_reason { max_idle, max_idle_time, max_lifetime, over_max_open, broken, shutdown };

// The waiter order the pool follows: the override, else the Go version's (every profile from
// 1.9 on picks a waiter at random: map iteration order until 1.22, uniformly from 1.23).
waiter_order effective_waiter_order(const pool_config& cfg);

// Go's ErrBadConn retry (sql.go, maxBadConnRetries = 2 since Go 1.5): a query whose connection
// turns out to be bad is tried twice from the pool, then once on a forced new connection
// (alwaysNewConn); a third bad connection is the caller's error. A connection found expired
// when taken from the pool counts as bad (pool_policy: acquire_decision::bad_conn,
// release_decision::waiter_bad_conn). The service's handler and the model both follow it.
class bad_conn_retry {
 public:
  // Whether the next try must dial a new connection instead of taking an idle one.
  bool new_conn() const { return bad_ >= pooled_tries; }
  // The try just made got a bad connection: whether to try again.
  bool again() { return ++bad_ <= pooled_tries; }

 private:
  static constexpr int pooled_tries = 2;
  std::uint8_t bad_ = 0;  // small: the model keeps one per request
};

struct pool_stats {
  int max_open = 0;
  int max_idle = 0;  // the idle limit applied (effective_max_idle)
  int open = 0;    // dialed, being dialed or promised to waiters, not yet closed (Go's numOpen)
  int in_use = 0;  // handed to a caller and not yet released
  int idle = 0;
  int waiting = 0;               // callers waiting right now
  int dials_queued = 0;          // dials promised to waiters, not started yet (counted in open)
  std::uint64_t wait_count = 0;  // callers that had to wait
  double wait_seconds = 0;       // total time waited, by callers that got a connection or gave up
  std::uint64_t dials = 0;       // dials started
  std::uint64_t dial_failures = 0;
  std::uint64_t wait_timeouts = 0;
  std::uint64_t closed_max_idle = 0;
  std::uint64_t closed_max_idle_time = 0;
  std::uint64_t closed_max_lifetime = 0;
  std::uint64_t closed_other = 0;  // broken, over max open, shutdown
};

// What a decision asks of its caller besides its answer. Every decision returns one.
struct pool_effects {
  // Connections the policy closed: the caller closes them for real (outside any lock).
  std::vector<conn_id> close;
  // Go's connectionOpener has a dial for waiters to make and none in progress: start one now
  // and report it with waiter_dial_succeeded or waiter_dial_failed.
  bool start_waiter_dial = false;
};

class pool_policy {
 public:
  explicit pool_policy(const pool_config& cfg);  // validate(cfg) first

  struct acquire_decision {
    enum class action {
      reuse,    // use `conn`
      dial,     // dial a connection, then dial_succeeded or dial_failed
      wait,     // wait on `waiter` (a release or a dial for waiters will hand it over)
      bad_conn  // `conn` was found expired and closed: this try failed as ErrBadConn
    } what;
    conn_id conn = 0;
    waiter_id waiter = 0;
    pool_effects effects;
  };
  // Takes an idle connection (the oldest returned up to Go 1.17, the most recently returned
  // from 1.18), else dials if under max_open, else waits. `new_conn`: skip the idle list (Go's
  // alwaysNewConn, bad_conn_retry's last try), still within max_open.
  acquire_decision acquire(double now, bool new_conn = false);

  // A dial started by acquire() worked: returns the new connection, in use.
  conn_id dial_succeeded(double now);
  // A dial started by acquire() failed: its error is that caller's, and the slot it held may
  // let the opener dial for waiters (Go's maybeOpenNewConnections).
  pool_effects dial_failed();

  // What happened to a released (or newly dialed for waiters) connection `conn`.
  struct release_decision {
    enum class action {
      to_waiter,        // `waiter` gets `conn` (the caller wakes it)
      to_idle,          // kept idle
      close,            // closed for `reason` (also in effects.close)
      waiter_bad_conn,  // Go 1.10-1.14: handed to `waiter` expired; closed, and that waiter's
                        // try fails as ErrBadConn (bad_conn_retry decides what it does next)
    } what;
    waiter_id waiter = 0;
    close_reason reason = close_reason::max_idle;
    // After waiter_dial_succeeded this is the only way the caller learns which slot the new
    // connection took.
    conn_id conn = 0;
    pool_effects effects;
  };
  // `broken`: the caller saw the connection fail (ErrBadConn); it is closed.
  release_decision release(conn_id c, double now, bool broken = false);

  // The opener's dial for waiters (effects.start_waiter_dial) finished. On success the new
  // connection goes where a released one would: to a waiter, else idle, else closed.
  release_decision waiter_dial_succeeded(double now);
  // On failure Go hands the dial's error to one waiter (picked as a connection would be), so a
  // dead database fails waiters promptly, then asks dials for the rest.
  struct dial_failure_decision {
    waiter_id failed_waiter = 0;  // 0: nobody was waiting
    pool_effects effects;
  };
  dial_failure_decision waiter_dial_failed(double now);

  // A waiter gives up (deadline). Returns false if it was not waiting any more (already handed
  // a connection: the caller must then release that one). `timed_out` false: the caller fails
  // the waiter for another reason, which is not counted in wait_timeouts. No other effect: as in
  // Go, dials already promised for waiters stay promised.
  bool cancel_wait(waiter_id w, double now, bool timed_out = true);

  // Go's connectionCleaner: closes idle connections past max_lifetime or max_idle_time.
  struct cleaner_decision {
    double next_run = 0;  // seconds until the cleaner should run again; 0 = never
    pool_effects effects;
  };
  cleaner_decision expire_idle(double now);
  // Seconds from the pool's start to the cleaner's first run: 0 when nothing expires.
  double cleaner_interval() const;

  // Shutdown: idle connections are closed, waiters fail, dials not yet started for them are
  // dropped, new acquires throw; in-use connections are closed when released.
  struct close_decision {
    std::vector<waiter_id> failed_waiters;
    pool_effects effects;
  };
  close_decision close(double now);
  bool closed() const { return closed_; }

  // Go's SetMaxOpenConns on a running pool: a negative `n` is 0 (unlimited); an idle limit above
  // the new maximum is lowered to it (SetMaxIdleConns(n)), closing the idle connections over
  // it. In-use connections over a lower maximum are closed when released; waiters get no new
  // dial from a higher one (Go asks for dials only when a connection closes or a dial fails).
  pool_effects set_max_open(int n);
  // Go's SetMaxIdleConns: `n` <= 0 keeps none; clamped to max_open; the idle connections over
  // the limit are closed (the most recently returned: Go keeps freeConn[:maxIdle]), counted as
  // closed for max idle.
  pool_effects set_max_idle(int n);

  const pool_stats& stats() const { return stats_; }
  const pool_config& config() const { return cfg_; }
  int effective_max_idle() const { return max_idle_; }
  // The waiters in the order they started waiting (for tests and introspection).
  std::vector<waiter_id> waiters() const;

 private:
  struct conn_info {
    double created = 0;
    double released = 0;
    bool in_use = false;
    bool live = false;
  };
  struct waiter {
    waiter_id id;
    double since;
  };

  conn_id new_conn(double now);
  void free_conn(conn_id c, close_reason why, pool_effects& e);
  bool past_lifetime(const conn_info& ci, double now) const;
  bool past_idle_time(const conn_info& ci, double now) const;
  void open_for_waiters(pool_effects& e);
  void start_waiter_dial_if_free(pool_effects& e);
  waiter pop_waiter();
  release_decision put(conn_id c, double now);
  double shortest_limit() const;

  pool_config cfg_;
  int max_idle_;
  bool closed_ = false;
  bool waiter_dial_running_ = false;  // the opener makes one dial at a time
  std::vector<conn_info> conns_;      // by conn_id
  std::vector<conn_id> free_slots_;
  std::vector<conn_id> idle_;  // in the order returned: the most recently returned at the back
  std::deque<waiter> waiters_;
  waiter_id next_waiter_ = 1;
  std::mt19937_64 rng_;
  pool_stats stats_;
};

}  // namespace headroom
