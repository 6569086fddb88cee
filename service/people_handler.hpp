// What the service does for each route, without any HTTP machinery: parse the
// Age, query PostgreSQL through the real pool, time each phase, and map every
// failure to a status code and a JSON error body.
#pragma once

#include <cstdint>
#include <memory>
#include <pqxx/connection>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics.hpp"
#include "pg_timeouts.hpp"
#include "real_pool.hpp"

namespace headroom {

using pg_pool = real_pool<pqxx::connection>;

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

// {"error": "..."}
std::string json_error(std::string_view message);
reply error_reply(int status, std::string_view message);

// "queue;dur=0.012, wait;dur=0, dial;dur=31.2, query;dur=0.91, release;dur=0.05" (ms).
std::string server_timing(const phase_times& p);

// Opens a connection, as the study's driver did: the host name is resolved on
// every dial (libpq calls getaddrinfo on each connect), and the query is
// prepared on the new connection, so the `dial` phase includes that round trip.
// `conninfo` comes from pg_conninfo (connect and statement timeouts); `watchdog`, if given,
// bounds the PREPARE, so that a dial never waits on a server that stopped answering.
std::unique_ptr<pqxx::connection> dial_postgres(const std::string& conninfo,
                                                query_watchdog* watchdog = nullptr);

class people_handler {
 public:
  // `watchdog` bounds each query (see query_watchdog); null: no client-side bound.
  people_handler(pg_pool& pool, double pool_wait_timeout, query_watchdog* watchdog = nullptr,
                 double retry_after_seconds = 1);

  // POST /: the people of that age. `queue` is the seconds the request waited
  // for this worker; the reply's phases (and total) are filled in `phases`.
  reply find_people(std::string_view body, double queue, phase_times& phases);
  // GET /readyz: a pooled connection answers `select 1`.
  reply ready();

 private:
  reply unavailable(const std::string& why) const;
  template <class F>
  auto bounded(pqxx::connection& c, F&& statements);
  pg_pool& pool_;
  double wait_timeout_;
  query_watchdog* watchdog_;
  double retry_after_;
};

}  // namespace headroom
