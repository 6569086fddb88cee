// Time limits on PostgreSQL, so that a database that stops answering cannot hang the service:
// libpq's connect_timeout on every dial, PostgreSQL's statement_timeout on every connection, and
// query_watchdog, the client-side bound for when the server cannot enforce its own.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <pqxx/connection>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>

namespace headroom {

struct pg_timeouts {
  double connect = 5;     // seconds to open a connection; 0 = no limit
  double statement = 10;  // seconds a statement may run; 0 = no limit
};

// libpq counts connect_timeout in whole seconds (rounded up here) and treats 1 as 2; a smaller
// non-zero value is refused instead of silently lengthened. Throws std::invalid_argument.
int libpq_connect_timeout(double seconds);

// The DSN (key=value or postgresql:// URI) as a key=value string with connect_timeout set and
// `-c statement_timeout=...` added to its `options`, so both win over what the DSN says.
// Throws std::invalid_argument with libpq's message if the DSN does not parse.
std::string pg_conninfo(const std::string& dsn, const pg_timeouts& t);

// A statement ended by a time limit: PostgreSQL's statement_timeout (the connection is still
// sound) or query_watchdog (it closed the connection).
class database_timeout : public std::runtime_error {
 public:
  database_timeout(const std::string& what, bool connection_lost)
      : std::runtime_error(what), connection_lost_(connection_lost) {}
  bool connection_lost() const { return connection_lost_; }

 private:
  bool connection_lost_;
};

// The error for a round trip that outlived the client-side `limit` (seconds): its connection
// is closed.
database_timeout unanswered(double limit);
// Throws database_timeout if `e` is PostgreSQL's statement_timeout (SQLSTATE 57014); returns
// otherwise.
void throw_if_statement_timeout(const std::exception& e);

// Bounds every round trip to PostgreSQL from the client side. statement_timeout is enforced by
// the backend, so a backend that is stopped (SIGSTOP, a frozen VM) or a server too overloaded to
// run its timers never answers, and libpq waits in poll() with no limit. TCP-level limits do not
// help: the peer's kernel still acknowledges data and keepalive probes while the process is
// stopped, so tcp_user_timeout and keepalives never fire, and SO_RCVTIMEO does not apply to
// poll(). PQcancel needs the postmaster, which may be stopped too, and blocks. What always works
// is shutdown(2) on the connection's socket from another thread: the blocked poll() wakes, libpq
// reads end-of-file and reports the connection lost, and the pool closes it as broken.
//
// The limit is statement_timeout plus one second, so that when PostgreSQL is working its own
// timeout ends the statement first (keeping the connection) and the watchdog acts only when it
// cannot.
class query_watchdog {
 public:
  // `statement_timeout` in seconds; 0 = no limit (no thread is started).
  explicit query_watchdog(double statement_timeout);
  ~query_watchdog();
  query_watchdog(const query_watchdog&) = delete;
  query_watchdog& operator=(const query_watchdog&) = delete;

  // Seconds after which a round trip's socket is shut down; 0 = never.
  double limit() const { return limit_; }

  // Runs `statements` (which use `c`, or the connection whose socket is `fd`) within the limit.
  // Throws database_timeout when the limit or PostgreSQL's statement_timeout ended them; other
  // errors pass through unchanged.
  template <class F>
  auto run(pqxx::connection_base& c, F&& statements) {
    return run(c.sock(), std::forward<F>(statements));
  }
  template <class F>
  auto run(int fd, F&& statements) {
    guard g(*this, fd);
    try {
      return statements();
    } catch (const std::exception& e) {
      g.disarm();
      translate(g, e);
      throw;
    }
  }

 private:
  class guard {
   public:
    guard(query_watchdog& w, int fd);
    ~guard() { disarm(); }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    // Unregisters; after this the socket is never shut down by the watchdog.
    void disarm();
    bool fired() const { return fired_; }

   private:
    friend class query_watchdog;
    query_watchdog& w_;
    int fd_;
    std::chrono::steady_clock::time_point deadline_;
    bool armed_ = false;
    bool fired_ = false;  // written under w_.mu_, read after disarm()
  };

  // Throws database_timeout if `e` was caused by a time limit; returns otherwise.
  void translate(const guard& g, const std::exception& e) const;
  void loop();

  const double limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_set<guard*> watched_;
  // When the thread wakes next (max: only when notified); a guard due earlier notifies it.
  std::chrono::steady_clock::time_point next_wake_ = std::chrono::steady_clock::time_point::max();
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace headroom
