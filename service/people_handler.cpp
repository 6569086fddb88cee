// POST / and /readyz: Age parsing, the prepared query through the real pool on the I/O
// thread's event loop, phase timing, and the mapping of failures to 400/500/503.
#include "people_handler.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <pqxx/except>

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

pool_change parse_pool_change(std::string_view body) {
  const char* example = R"(a JSON object like {"max_open": 8, "max_idle": 8})";
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec) throw bad_request(400, "body is not valid JSON: " + ec.message());
  if (!v.is_object()) throw bad_request(400, std::string("body must be ") + example);
  pool_change c;
  for (const auto& [key, value] : v.as_object()) {
    const bool open = key == "max_open";
    if (!open && key != "max_idle")
      throw bad_request(
          400, "unknown field \"" + std::string(key) + "\": PUT /pool takes max_open and max_idle");
    constexpr std::int64_t lo = std::numeric_limits<int>::min(),
                           hi = std::numeric_limits<int>::max();
    if (!value.is_int64() || value.as_int64() < (open ? 0 : lo) || value.as_int64() > hi)
      throw bad_request(
          400, "\"" + std::string(key) + "\" must be an integer" +
                   (open ? " from 0 (unlimited) to 2147483647" : " (0 or less keeps none)"));
    (open ? c.max_open : c.max_idle) = static_cast<int>(value.as_int64());
  }
  if (!c.max_open && !c.max_idle)
    throw bad_request(400, std::string("nothing to change: the body must be ") + example);
  return c;
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

std::unique_ptr<pg_connection> dial_postgres(const std::string& conninfo,
                                             query_watchdog* watchdog) {
  // libpq's connect_timeout (in `conninfo`) bounds the connection and its authentication.
  auto c = std::make_unique<pg_connection>(conninfo);
  const char* sql = "SELECT address, full_name, age FROM people WHERE age = $1";
  if (watchdog)
    watchdog->run(c->sock(), [&] { c->prepare(statement, sql); });
  else
    c->prepare(statement, sql);
  c->make_nonblocking();
  return c;
}

people_handler::people_handler(pg_pool& pool, double pool_wait_timeout, query_watchdog* watchdog,
                               double retry_after_seconds)
    : pool_(pool),
      wait_timeout_(pool_wait_timeout),
      watchdog_(watchdog),
      retry_after_(retry_after_seconds) {}

reply people_handler::unavailable(const std::string& why) const {
  reply r = error_reply(503, why);
  r.headers.emplace_back("Retry-After", std::to_string(static_cast<int>(std::ceil(retry_after_))));
  return r;
}

// One POST / or /readyz through Go's query loop (bad_conn_retry, in model/policy/pool_policy.hpp):
// a connection that turns out bad -- found expired by the pool, or dead when queried, as every
// idle one is after a database restart -- is tried again, twice from the pool, then once on a
// new connection. Each step is a member that handles its error first; the request keeps itself
// alive through the handlers it hands to the pool and to pg_statement.
class database_request : public std::enable_shared_from_this<database_request> {
 public:
  // `age` set: POST /'s query; unset: /readyz's `select 1`.
  database_request(people_handler& h, std::optional<std::int32_t> age,
                   const boost::asio::any_io_executor& io,
                   const boost::asio::any_io_executor& dialer, double queue,
                   people_handler::answer_fn done)
      : h_(h),
        age_(age),
        io_(io),
        dialer_(dialer),
        start_(std::chrono::steady_clock::now()),
        done_(std::move(done)) {
    phases_.queue = queue;
  }

  void do_acquire() {
    h_.pool_.async_acquire(
        io_, dialer_, h_.wait_timeout_, retry_.new_conn(),
        [self = shared_from_this()](pg_pool::acquired a) { self->on_acquired(std::move(a)); });
  }

 private:
  void on_acquired(pg_pool::acquired a) {
    phases_.wait += a.timing.wait;
    phases_.dial += a.timing.dial;
    if (a.error) {
      if (a.error->which() == pool_error::kind::bad_conn && retry_.again()) return do_acquire();
      return finish(h_.unavailable(prefix() + a.error->what()));
    }
    conn_ = std::move(a.conn);
    do_query();
  }

  void do_query() {
    query_start_ = std::chrono::steady_clock::now();
    pg_statement::send_fn send;
    if (age_) {
      send = [age = std::to_string(*age_)](PGconn* c) {
        const char* values[] = {age.c_str()};
        return PQsendQueryPrepared(c, statement, 1, values, nullptr, nullptr, 0);
      };
    } else {
      send = [](PGconn* c) { return PQsendQuery(c, "select 1"); };
    }
    const double limit = h_.watchdog_ ? h_.watchdog_->limit() : 0;
    pg_statement::start(io_, *conn_, limit, std::move(send),
                        [self = shared_from_this()](query_result r, std::exception_ptr error) {
                          self->on_answer(std::move(r), error);
                        });
  }

  void on_answer(query_result rows, std::exception_ptr error) {
    phases_.query += since(query_start_);
    if (!error) {
      // Released before the JSON is built, so the connection is not held while encoding.
      phases_.release += conn_.release();
      reply r;
      try {
        if (age_)
          r = people_reply(rows.get());
        else
          r.body = R"({"status":"ready"})";
      } catch (const std::exception& e) {
        // Thrown out of an I/O thread's handler, it would end the process.
        r = error_reply(500, std::string("internal error: ") + e.what());
      }
      return finish(std::move(r));
    }
    try {
      std::rethrow_exception(error);
    } catch (const database_timeout& e) {
      // A database that stops answering: retrying would only wait again (Go does not retry a
      // query its context ended either).
      phases_.release += conn_.release(e.connection_lost());
      return finish(h_.unavailable(prefix() + e.what()));
    } catch (const pqxx::broken_connection& e) {
      phases_.release += conn_.release(true);
      if (retry_.again()) return do_acquire();
      return finish(h_.unavailable((age_ ? "database connection lost: " : prefix()) + e.what()));
    } catch (const std::exception& e) {
      if (!age_) {
        conn_.release(true);
        return finish(h_.unavailable(prefix() + e.what()));
      }
      // A failed query may leave the connection unusable; only reuse it if it still says it is
      // open.
      phases_.release += conn_.release(!conn_->is_open());
      return finish(error_reply(500, std::string("query failed: ") + e.what()));
    }
  }

  static reply people_reply(const PGresult* rows) {
    const int n = PQntuples(rows);
    boost::json::array people;
    people.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      int age = 0;
      const char* a = PQgetvalue(rows, i, 2);
      std::from_chars(a, a + PQgetlength(rows, i, 2), age);
      people.push_back(boost::json::object{
          {"FullName", PQgetvalue(rows, i, 1)}, {"Address", PQgetvalue(rows, i, 0)}, {"Age", age}});
    }
    reply r;
    r.body = boost::json::serialize(boost::json::object{{"People", std::move(people)}});
    return r;
  }

  std::string prefix() const { return age_ ? "" : "database not ready: "; }

  void finish(reply r) {
    phases_.total = phases_.queue + since(start_);
    done_(std::move(r), phases_);
  }

  people_handler& h_;
  const std::optional<std::int32_t> age_;
  const boost::asio::any_io_executor io_;
  const boost::asio::any_io_executor dialer_;
  const std::chrono::steady_clock::time_point start_;
  people_handler::answer_fn done_;
  bad_conn_retry retry_;
  pg_pool::lease conn_;
  std::chrono::steady_clock::time_point query_start_;
  phase_times phases_;
};

void people_handler::find_people(std::string_view body, double queue,
                                 const boost::asio::any_io_executor& io,
                                 const boost::asio::any_io_executor& dialer, answer_fn done) {
  const auto start = std::chrono::steady_clock::now();
  std::int32_t age;
  try {
    age = parse_age(body);
  } catch (const bad_request& e) {
    phase_times phases;
    phases.queue = queue;
    phases.total = queue + since(start);
    return done(error_reply(e.status, e.what()), phases);
  }
  std::make_shared<database_request>(*this, age, io, dialer, queue, std::move(done))->do_acquire();
}

void people_handler::ready(const boost::asio::any_io_executor& io,
                           const boost::asio::any_io_executor& dialer, answer_fn done) {
  // Go's db.Ping goes through the same retry as a query.
  std::make_shared<database_request>(*this, std::nullopt, io, dialer, 0, std::move(done))
      ->do_acquire();
}

reply people_handler::pool_limits(bool change, std::string_view body) {
  try {
    if (change) {
      const pool_change c = parse_pool_change(body);
      pool_.set_limits(c.max_open, c.max_idle);
    }
  } catch (const bad_request& e) {
    return error_reply(e.status, e.what());
  }
  const pool_stats s = pool_.stats();
  reply r;
  r.body = boost::json::serialize(
      boost::json::object{{"max_open", s.max_open}, {"max_idle", s.max_idle}});
  return r;
}

}  // namespace headroom
