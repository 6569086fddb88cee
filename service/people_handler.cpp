// POST / and /readyz: Age parsing, the prepared query through the real pool,
// phase timing, and the mapping of failures to 400/500/503.
#include "people_handler.hpp"

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <pqxx/pqxx>

namespace headroom {

namespace {

constexpr const char* statement = "people_by_age";

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

std::int32_t parse_age(std::string_view body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec) throw bad_request(400, "body is not valid JSON: " + ec.message());
  if (!v.is_object()) throw bad_request(400, "body must be a JSON object like {\"Age\": 30}");
  const auto& o = v.as_object();
  const boost::json::value* age = o.if_contains("Age");
  if (!age) age = o.if_contains("age");
  if (!age) throw bad_request(400, "missing \"Age\" (an integer), as in {\"Age\": 30}");
  constexpr std::int64_t max = std::numeric_limits<std::int32_t>::max();
  std::int64_t n;
  if (age->is_int64()) {
    n = age->as_int64();
  } else if (age->is_uint64()) {
    throw bad_request(400, "\"Age\" is out of range: it must be between 0 and 2147483647");
  } else {
    throw bad_request(400, "\"Age\" must be an integer");
  }
  if (n < 0 || n > max)
    throw bad_request(400, "\"Age\" is out of range: it must be between 0 and 2147483647");
  return static_cast<std::int32_t>(n);
}

std::string json_error(std::string_view message) {
  return boost::json::serialize(boost::json::object{{"error", message}});
}

reply error_reply(int status, std::string_view message) {
  reply r;
  r.status = status;
  r.body = json_error(message);
  return r;
}

std::string server_timing(const phase_times& p) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "queue;dur=%.3f, wait;dur=%.3f, dial;dur=%.3f, query;dur=%.3f, release;dur=%.3f",
                p.queue * 1e3, p.wait * 1e3, p.dial * 1e3, p.query * 1e3, p.release * 1e3);
  return buf;
}

std::unique_ptr<pqxx::connection> dial_postgres(const std::string& conninfo,
                                                query_watchdog* watchdog) {
  // libpq's connect_timeout (in `conninfo`) bounds the connection and its authentication.
  auto c = std::make_unique<pqxx::connection>(conninfo);
  // libpqxx 6 would otherwise silently reconnect a broken connection inside
  // the next query, hiding the dial from the pool and its statistics.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  c->inhibit_reactivation(true);
#pragma GCC diagnostic pop
  c->prepare(statement, "SELECT address, full_name, age FROM people WHERE age = $1");
  if (watchdog)
    watchdog->run(*c, [&] { c->prepare_now(statement); });
  else
    c->prepare_now(statement);
  return c;
}

people_handler::people_handler(pg_pool& pool, double pool_wait_timeout, query_watchdog* watchdog,
                               double retry_after_seconds)
    : pool_(pool),
      wait_timeout_(pool_wait_timeout),
      watchdog_(watchdog),
      retry_after_(retry_after_seconds) {}

// Runs `statements` on `c` within the watchdog's bound, if there is one.
template <class F>
auto people_handler::bounded(pqxx::connection& c, F&& statements) {
  return watchdog_ ? watchdog_->run(c, std::forward<F>(statements)) : statements();
}

reply people_handler::unavailable(const std::string& why) const {
  reply r = error_reply(503, why);
  r.headers.emplace_back("Retry-After", std::to_string(static_cast<int>(std::ceil(retry_after_))));
  return r;
}

reply people_handler::find_people(std::string_view body, double queue, phase_times& phases) {
  const auto start = std::chrono::steady_clock::now();
  phases = phase_times{};
  phases.queue = queue;
  auto finish = [&](reply r) {
    phases.total = queue + since(start);
    return r;
  };
  std::int32_t age;
  try {
    age = parse_age(body);
  } catch (const bad_request& e) {
    return finish(error_reply(e.status, e.what()));
  }
  // Go's query loop (bad_conn_retry, in model/pool_policy.hpp): a connection that turns out
  // bad -- found expired by the pool, or dead when queried, as every idle one is after a
  // database restart -- is tried again, twice from the pool, then once on a new connection.
  bad_conn_retry retry;
  pqxx::result rows;
  for (;;) {
    acquire_timing at;
    pg_pool::lease conn;
    try {
      conn = pool_.acquire(wait_timeout_, &at, retry.new_conn());
    } catch (const pool_error& e) {
      phases.wait += at.wait;
      phases.dial += at.dial;
      if (e.which() == pool_error::kind::bad_conn && retry.again()) continue;
      return finish(unavailable(e.what()));
    }
    phases.wait += at.wait;
    phases.dial += at.dial;
    const auto q0 = std::chrono::steady_clock::now();
    try {
      // The transaction object must be gone before the connection goes
      // back to the pool: libpqxx allows one per connection at a time.
      rows = bounded(*conn, [&] {
        pqxx::nontransaction tx(*conn);
        return tx.exec_prepared(statement, age);
      });
      phases.query += since(q0);
      // Released before the JSON is built, so the connection is not held
      // while encoding.
      phases.release += conn.release();
      break;
    } catch (const database_timeout& e) {
      // A database that stops answering: retrying would only wait again (Go does not retry a
      // query its context ended either).
      phases.query += since(q0);
      phases.release += conn.release(e.connection_lost());
      return finish(unavailable(e.what()));
    } catch (const pqxx::broken_connection& e) {
      phases.query += since(q0);
      phases.release += conn.release(true);
      if (retry.again()) continue;
      return finish(unavailable(std::string("database connection lost: ") + e.what()));
    } catch (const std::exception& e) {
      phases.query += since(q0);
      // A failed query may leave the connection unusable; only reuse it if
      // it still says it is open.
      const bool broken = !conn->is_open();
      phases.release += conn.release(broken);
      return finish(error_reply(500, std::string("query failed: ") + e.what()));
    }
  }
  boost::json::array people;
  people.reserve(rows.size());
  for (const auto& row : rows)
    people.push_back(boost::json::object{
        {"FullName", row[1].c_str()}, {"Address", row[0].c_str()}, {"Age", row[2].as<int>()}});
  reply r;
  r.body = boost::json::serialize(boost::json::object{{"People", std::move(people)}});
  return finish(std::move(r));
}

reply people_handler::ready() {
  // Go's db.Ping goes through the same retry as a query.
  bad_conn_retry retry;
  for (;;) {
    pg_pool::lease conn;
    try {
      conn = pool_.acquire(wait_timeout_, nullptr, retry.new_conn());
    } catch (const pool_error& e) {
      if (e.which() == pool_error::kind::bad_conn && retry.again()) continue;
      return unavailable(std::string("database not ready: ") + e.what());
    }
    try {
      bounded(*conn, [&] {
        pqxx::nontransaction tx(*conn);
        tx.exec("select 1");
      });
    } catch (const database_timeout& e) {
      conn.release(e.connection_lost());
      return unavailable(std::string("database not ready: ") + e.what());
    } catch (const pqxx::broken_connection& e) {
      conn.release(true);
      if (retry.again()) continue;
      return unavailable(std::string("database not ready: ") + e.what());
    } catch (const std::exception& e) {
      conn.release(true);
      return unavailable(std::string("database not ready: ") + e.what());
    }
    reply r;
    r.body = R"({"status":"ready"})";
    return r;
  }
}

}  // namespace headroom
