// The asynchronous query path against real PostgreSQL: pg_statement (libpq's asynchronous API
// on an Asio event loop) with its answers, errors and time limits, and the handler serving many
// requests from one I/O thread through the real pool. Only this test's own backend is ever
// stopped, so it may run beside others.
#include <signal.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <pqxx/except>
#include <string>
#include <vector>

#include "people_handler.hpp"
#include "pg_connection.hpp"
#include "pg_timeouts.hpp"
#include "service_process.hpp"

using namespace headroom;

namespace {

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// SIGSTOP for as long as it lives: a backend that cannot answer nor run its own timers.
struct stopped_backend {
  pid_t pid;
  explicit stopped_backend(pid_t p) : pid(p) { ::kill(pid, SIGSTOP); }
  ~stopped_backend() { ::kill(pid, SIGCONT); }
  stopped_backend(const stopped_backend&) = delete;
  stopped_backend& operator=(const stopped_backend&) = delete;
};

struct answer {
  query_result rows{nullptr, &PQclear};
  std::exception_ptr error;
  double took = 0;
};

// Runs one statement on a fresh loop to its end.
answer run_statement(pg_connection& c, double limit, pg_statement::send_fn send) {
  boost::asio::io_context io;
  answer a;
  const auto t0 = std::chrono::steady_clock::now();
  pg_statement::start(io.get_executor(), c, limit, std::move(send),
                      [&](query_result r, std::exception_ptr e) {
                        a.rows = std::move(r);
                        a.error = e;
                        a.took = since(t0);
                      });
  io.run();
  return a;
}

pg_statement::send_fn sql(const char* text) {
  return [text](PGconn* c) { return PQsendQuery(c, text); };
}

}  // namespace

TEST_CASE("a prepared statement on an event loop returns its rows and the connection is reused") {
  auto c = dial_postgres(pg_conninfo(test::pg_dsn(), {5, 10}));
  for (int round = 0; round < 3; ++round) {
    const answer a = run_statement(*c, 11, [](PGconn* pg) {
      const char* age[] = {"30"};
      return PQsendQueryPrepared(pg, "people_by_age", 1, age, nullptr, nullptr, 0);
    });
    REQUIRE_FALSE(a.error);
    REQUIRE(a.rows);
    // The fixture's 10,000 people have ages spread over 0..99 or so: some are 30.
    CHECK(PQntuples(a.rows.get()) > 0);
    for (int r = 0; r < PQntuples(a.rows.get()); ++r)
      CHECK(std::string(PQgetvalue(a.rows.get(), r, 2)) == "30");
  }
  CHECK(c->is_open());
}

TEST_CASE("an SQL error on an event loop is an sql_error and the connection stays usable") {
  auto c = dial_postgres(pg_conninfo(test::pg_dsn(), {5, 10}));
  const answer bad = run_statement(*c, 11, sql("select nonsense"));
  REQUIRE(bad.error);
  CHECK_THROWS_AS(std::rethrow_exception(bad.error), pqxx::sql_error);
  CHECK(c->is_open());
  const answer good = run_statement(*c, 11, sql("select 41 + 1"));
  REQUIRE_FALSE(good.error);
  CHECK(std::string(PQgetvalue(good.rows.get(), 0, 0)) == "42");
}

TEST_CASE(
    "PostgreSQL's statement_timeout ends a slow statement on an event loop and keeps the "
    "connection") {
  auto c = dial_postgres(pg_conninfo(test::pg_dsn(), {5, 0.5}));
  const answer a = run_statement(*c, 1.5, sql("select pg_sleep(5)"));
  REQUIRE(a.error);
  bool lost = true;
  try {
    std::rethrow_exception(a.error);
  } catch (const database_timeout& e) {
    lost = e.connection_lost();
    CHECK(std::string(e.what()).find("statement timeout") != std::string::npos);
  }
  // The server's timer at 0.5 s, before the client's at 1.5 s; 0.5 s allows for a busy machine.
  CHECK(a.took >= 0.5);
  CHECK(a.took < 1.0);
  CHECK_FALSE(lost);
  CHECK(run_statement(*c, 1.5, sql("select 1")).error == nullptr);
}

TEST_CASE("a stopped backend is cut off by the statement's timer while its loop keeps running") {
  auto c = dial_postgres(pg_conninfo(test::pg_dsn(), {5, 1}));
  const pid_t backend = PQbackendPID(c->raw());
  REQUIRE(backend > 0);
  boost::asio::io_context io;
  answer a;
  std::optional<double> other_work;  // when another handler on the same loop ran
  {
    stopped_backend stop(backend);
    const auto t0 = std::chrono::steady_clock::now();
    pg_statement::start(io.get_executor(), *c, 2, sql("select 1"),
                        [&](query_result r, std::exception_ptr e) {
                          a.rows = std::move(r);
                          a.error = e;
                          a.took = since(t0);
                          // Closed at once, as the pool closes a connection released broken:
                          // the statement's cancelled wait must not touch it afterwards.
                          c.reset();
                        });
    boost::asio::steady_timer other(io, std::chrono::milliseconds(100));
    other.async_wait([&](boost::system::error_code) { other_work = since(t0); });
    io.run();
  }
  std::string message;
  bool lost = false;
  try {
    std::rethrow_exception(a.error);
  } catch (const database_timeout& e) {
    lost = e.connection_lost();
    message = e.what();
  }
  CHECK(lost);
  CHECK(message == "PostgreSQL did not answer within 2s; the connection was closed");
  // The limit is 2 s; +0.5 s for a busy machine.
  CHECK(a.took >= 2.0);
  CHECK(a.took < 2.5);
  // The loop was never blocked: the 100 ms timer fired on time (+0.4 s for a busy machine).
  REQUIRE(other_work);
  CHECK(*other_work < 0.5);
}

TEST_CASE("one I/O thread serves 200 concurrent requests through a pool of 4 connections") {
  pool_config cfg;
  cfg.max_open = 4;
  cfg.max_idle = 4;
  const std::string conninfo =
      pg_conninfo(test::pg_dsn() + " application_name=async_query_test", {5, 10});
  query_watchdog watchdog(10);
  pg_pool pool(cfg, [&] { return dial_postgres(conninfo, &watchdog); });
  people_handler handler(pool, 10, &watchdog);
  boost::asio::io_context io(1);
  boost::asio::thread_pool dialer(4);
  constexpr int requests = 200;
  std::vector<reply> replies;
  std::vector<phase_times> phases;
  for (int i = 0; i < requests; ++i)
    handler.find_people(R"({"Age": 30})", 0, io.get_executor(), dialer.get_executor(),
                        [&](reply r, const phase_times& p) {
                          replies.push_back(std::move(r));
                          phases.push_back(p);
                        });
  {
    auto busy = boost::asio::make_work_guard(io);  // until the dials' completions come back
    while (static_cast<int>(replies.size()) < requests) io.run_one();
  }
  dialer.join();
  int ok = 0, phases_over_total = 0;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].status == 200 && replies[i].body.find(R"("Age":30)") != std::string::npos) ok++;
    const phase_times& p = phases[i];
    // The phases are disjoint parts of the request: their sum cannot exceed its total (1 us
    // for rounding of separately read clocks).
    if (p.queue + p.wait + p.dial + p.query + p.release > p.total + 1e-6) phases_over_total++;
  }
  CHECK(ok == requests);
  CHECK(phases_over_total == 0);
  const pool_stats s = pool.stats();
  CHECK(s.dials == 4);  // every request after the first four waited for one of them
  CHECK(s.open == 4);
  CHECK(s.idle == 4);
  CHECK(s.in_use == 0);
  CHECK(s.waiting == 0);
  CHECK(s.wait_count == static_cast<std::uint64_t>(requests - 4));
}

TEST_CASE("readiness on an event loop is a select 1 through the pool") {
  pool_config cfg;
  cfg.max_open = 1;
  const std::string conninfo = pg_conninfo(test::pg_dsn(), {5, 10});
  pg_pool pool(cfg, [&] { return dial_postgres(conninfo); });
  people_handler handler(pool, 10);
  boost::asio::io_context io(1);
  boost::asio::thread_pool dialer(1);
  std::optional<reply> got;
  handler.ready(io.get_executor(), dialer.get_executor(),
                [&](reply r, const phase_times&) { got = std::move(r); });
  {
    auto busy = boost::asio::make_work_guard(io);
    while (!got) io.run_one();
  }
  dialer.join();
  CHECK(got->status == 200);
  CHECK(got->body == R"({"status":"ready"})");
  CHECK(pool.stats().idle == 1);
}
