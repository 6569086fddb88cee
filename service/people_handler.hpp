// What the service does for each route, without any HTTP machinery: parse the
// Age, query PostgreSQL through the real pool without blocking the I/O thread, time each
// phase, and map every failure to a status code and a JSON error body.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics.hpp"
#include "pg_connection.hpp"
#include "pg_timeouts.hpp"
#include "real_pool.hpp"

namespace headroom {

using pg_pool = real_pool<pg_connection>;

// A response, before it becomes HTTP.
struct reply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
  std::string content_type = "application/json";
};

// A client mistake, with its status (400, 413, ...). Thrown by parse_age.
struct bad_request : std::runtime_error {
  bad_request(int status, const std::string& what) : std::runtime_error(what), status(status) {}
  int status;
};

// The Age of a POST / body: {"Age": N} or {"age": N}, N an integer in
// [0, 2147483647] (PostgreSQL's integer; an age is never negative).
std::int32_t parse_age(std::string_view body);

// The body of PUT /pool: {"max_open": N, "max_idle": N}, either or both. max_open an integer
// >= 0 (0 = unlimited), max_idle an integer (<= 0 keeps none), as the service's flags take them.
// Throws bad_request (400) for anything else: not JSON, another field, nothing to change.
struct pool_change {
  std::optional<int> max_open, max_idle;
};
pool_change parse_pool_change(std::string_view body);

// {"error": "..."}
std::string json_error(std::string_view message);
reply error_reply(int status, std::string_view message);

// "queue;dur=0.012, wait;dur=0, dial;dur=31.2, query;dur=0.91, release;dur=0.05" (ms).
std::string server_timing(const phase_times& p);

// Opens a connection, as the study's driver did: the host name is resolved on
// every dial (libpq calls getaddrinfo on each connect), and the query is
// prepared on the new connection, so the `dial` phase includes that round trip.
// `conninfo` comes from pg_conninfo (connect and statement timeouts); `watchdog`, if given,
// bounds the PREPARE, so that a dial never waits on a server that stopped answering. Blocking:
// run it on a dial thread.
std::unique_ptr<pg_connection> dial_postgres(const std::string& conninfo,
                                             query_watchdog* watchdog = nullptr);

class people_handler {
 public:
  // `watchdog`'s limit bounds each query (see query_watchdog); null: no client-side bound.
  people_handler(pg_pool& pool, double pool_wait_timeout, query_watchdog* watchdog = nullptr,
                 double retry_after_seconds = 1);

  using answer_fn = std::function<void(reply, const phase_times&)>;

  // POST /: the people of that age. Nothing blocks the calling thread, the I/O thread `io`
  // runs: the pool's wait and the query run on its event loop, a dial on `dialer` (threads
  // that may block). `done` gets the reply and its phases (`queue`, the seconds the request
  // waited before this call, included in `total`), on io's thread, possibly before this
  // returns.
  void find_people(std::string_view body, double queue, const boost::asio::any_io_executor& io,
                   const boost::asio::any_io_executor& dialer, answer_fn done);
  // GET /readyz: a pooled connection answers `select 1`. As find_people (the phases are empty).
  void ready(const boost::asio::any_io_executor& io, const boost::asio::any_io_executor& dialer,
             answer_fn done);
  // GET /pool: the limits the pool applies now, {"max_open": N, "max_idle": N} (the idle limit
  // after Go's clamping). PUT /pool (`body` a pool_change): sets them first, as Go's
  // SetMaxOpenConns then SetMaxIdleConns would on a running pool. Answered at once.
  reply pool_limits(bool change, std::string_view body);

 private:
  friend class database_request;
  reply unavailable(const std::string& why) const;
  pg_pool& pool_;
  double wait_timeout_;
  query_watchdog* watchdog_;
  double retry_after_;
};

}  // namespace headroom
