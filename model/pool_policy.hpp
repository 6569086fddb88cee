// The connection pool's decision logic, with Go's database/sql rules (DESIGN.md).
// Pure code: no sockets, no clock, no locks. The real pool (service/) and the
// simulated pool (model/) both drive it, so the model cannot drift from the service.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace headroom {

using conn_id = std::uint32_t;    // a slot; reused after the connection is closed
using waiter_id = std::uint64_t;  // unique for the life of the pool

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
  double max_idle_time = 0;  // seconds since last release; 0 = forever
  go_version go = go_version::go1_10;  // whose rules (service_defaults: the study's)
  // Which waiter gets a released connection: unset = the Go version's rule; set for pools that
  // are not Go's (fifo: HikariCP, pgx, Go <= 1.8).
  std::optional<waiter_order> order;
  std::uint64_t seed = 1;  // for waiter_order::random
};

// Why a connection was closed (each has its DBStats counter).
enum class close_reason { max_idle, max_idle_time, max_lifetime, over_max_open, broken, shutdown };

// The waiter order the pool follows: the override, else the Go version's (every profile from
// 1.9 on picks a waiter at random: map iteration order until 1.22, uniformly from 1.23).
waiter_order effective_waiter_order(const pool_config& cfg);

struct pool_stats {
  int max_open = 0;
  int open = 0;    // dialed or being dialed, not yet closed (Go's numOpen)
  int in_use = 0;  // handed to a caller and not yet released
  int idle = 0;
  int waiting = 0;               // callers waiting right now
  std::uint64_t wait_count = 0;  // callers that had to wait
  double wait_seconds = 0;       // total time waited, by callers that got a connection or gave up
  std::uint64_t dials = 0;       // dials started
  std::uint64_t dial_failures = 0;
  std::uint64_t wait_timeouts = 0;
  std::uint64_t closed_max_idle = 0;
  std::uint64_t closed_max_idle_time = 0;
  std::uint64_t closed_max_lifetime = 0;
  std::uint64_t closed_other = 0;  // broken, over max_open, shutdown
};

class pool_policy {
 public:
  explicit pool_policy(const pool_config& cfg);

  // What the caller of acquire() must do next.
  struct acquire_decision {
    enum class action { reuse, dial, wait } what;
    conn_id conn = 0;      // reuse: the connection to use
    waiter_id waiter = 0;  // wait: the ticket to wait on
  };
  // Takes the most recently released idle connection (closing expired ones on
  // the way: see closed_by_last_call()), else dials if under max_open, else waits.
  // After `dial`, the caller dials and reports with dial_succeeded/dial_failed.
  // `new_conn`: skip the idle list (Go's alwaysNewConn, the last try after
  // dead pooled connections), still within max_open.
  acquire_decision acquire(double now, bool new_conn = false);

  // A dial started by acquire() worked: returns the new connection, in use.
  conn_id dial_succeeded(double now);
  // A dial failed: the slot it held is given up. Returns how many dials the
  // caller should start for waiters (see dial_for_waiters).
  int dial_failed();

  // What happened to a released connection.
  struct release_decision {
    enum class action { to_waiter, to_idle, close } what;
    waiter_id waiter = 0;  // to_waiter: who gets it (the caller wakes it)
    close_reason reason = close_reason::max_idle;
    int dials_for_waiters = 0;  // close: dials the caller should start for waiters
    // The connection decided about. After waiter_dial_succeeded this is the
    // only way the caller learns which slot the new connection took.
    conn_id conn = 0;
  };
  // `broken`: the caller saw the connection fail; it is closed.
  release_decision release(conn_id c, double now, bool broken = false);

  // A dial started for waiters (after a close or failed dial, as Go's
  // connectionOpener does) finished. On success the new connection goes
  // where a released one would: to a waiter, else idle, else closed.
  release_decision waiter_dial_succeeded(double now);
  int waiter_dial_failed() { return dial_failed(); }

  // A waiter gives up (deadline). Returns false if it was not waiting any more
  // (already handed a connection: the caller must then release that one).
  // `timed_out` false: the caller fails the waiter for another reason
  // (shutdown, a failed dial), which is not counted in wait_timeouts.
  bool cancel_wait(waiter_id w, double now, bool timed_out = true);

  // Periodic cleaner (Go's connectionCleaner): closes idle connections past
  // max_lifetime or max_idle_time. Closed ones: closed_by_last_call().
  // Returns the number of dials the caller should start for waiters (none
  // are waiting while idle connections exist, so normally 0).
  int expire_idle(double now);
  // How often to run expire_idle: 0 when nothing expires.
  double cleaner_interval() const;

  // Shutdown: all idle connections are closed (see closed_by_last_call()); new
  // acquires throw; in-use connections are closed when released.
  void close();
  bool closed() const { return closed_; }

  // The connections the last call (acquire, release, waiter_dial_succeeded,
  // expire_idle, close) closed, for the caller to really close.
  const std::vector<conn_id>& closed_by_last_call() const { return closed_list_; }

  const pool_stats& stats() const { return stats_; }
  const pool_config& config() const { return cfg_; }
  int effective_max_idle() const { return max_idle_; }
  // The waiters in hand-off order (for tests and introspection).
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
  void free_conn(conn_id c, close_reason why);
  bool expired(const conn_info& ci, double now, close_reason& why) const;
  int dials_for_waiters();
  waiter pop_waiter();
  release_decision put(conn_id c, double now);

  pool_config cfg_;
  int max_idle_;
  bool closed_ = false;
  std::vector<conn_info> conns_;  // by conn_id
  std::vector<conn_id> free_slots_;
  std::vector<conn_id> idle_;  // most recently released at the back
  std::deque<waiter> waiters_;
  std::vector<conn_id> closed_list_;
  waiter_id next_waiter_ = 1;
  std::mt19937_64 rng_;
  pool_stats stats_;
};

}  // namespace headroom
