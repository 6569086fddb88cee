// The time limits on PostgreSQL (service/pg_timeouts.hpp): the DSN rewritten with
// connect_timeout and statement_timeout, and the watchdog against a real backend that is slow
// or stopped. Only this test's own backend is ever stopped, so it may run beside others.
#include <libpq-fe.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <map>
#include <pqxx/pqxx>
#include <thread>

#include "pg_timeouts.hpp"
#include "service_process.hpp"

using namespace headroom;

namespace {

// The DSN's keywords and values, as libpq reads them.
std::map<std::string, std::string> parse(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* o = PQconninfoParse(conninfo.c_str(), &error);
  if (!o) {
    const std::string why = error ? error : "?";
    PQfreemem(error);
    FAIL("libpq cannot parse '" << conninfo << "': " << why);
  }
  std::map<std::string, std::string> out;
  for (PQconninfoOption* p = o; p->keyword; ++p)
    if (p->val) out[p->keyword] = p->val;
  PQconninfoFree(o);
  return out;
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Stops one backend with SIGSTOP and always resumes it.
struct stopped_backend {
  pid_t pid;
  explicit stopped_backend(pid_t p) : pid(p) { ::kill(pid, SIGSTOP); }
  ~stopped_backend() { ::kill(pid, SIGCONT); }
};

}  // namespace

TEST_CASE("the DSN gets the connect timeout and statement_timeout whatever it said before") {
  const pg_timeouts t{5, 10};
  const auto kv = parse(
      pg_conninfo("host=127.0.0.1 port=5433 dbname=people user=headroom connect_timeout=30", t));
  CHECK(kv.at("host") == "127.0.0.1");
  CHECK(kv.at("port") == "5433");
  CHECK(kv.at("dbname") == "people");
  CHECK(kv.at("connect_timeout") == "5");
  CHECK(kv.at("options") == "-c statement_timeout=10000");

  // A URI with options of its own and a value that needs quoting keeps them, ours last (the
  // last -c wins in PostgreSQL).
  const auto uri =
      parse(pg_conninfo("postgresql://headroom@127.0.0.1:5433/people?options=-c%20work_mem%3D4MB&"
                        "application_name=it%27s%20me",
                        {2.5, 0.25}));
  CHECK(uri.at("user") == "headroom");
  CHECK(uri.at("application_name") == "it's me");
  CHECK(uri.at("options") == "-c work_mem=4MB -c statement_timeout=250");
  CHECK(uri.at("connect_timeout") == "3");

  // 0 turns both off, as the flags' 0 does.
  const auto off = parse(pg_conninfo("host=127.0.0.1", {0, 0}));
  CHECK(off.at("connect_timeout") == "0");
  CHECK(off.at("options") == "-c statement_timeout=0");
}

TEST_CASE("connect timeouts are whole seconds rounded up and under 2 s are refused") {
  CHECK(libpq_connect_timeout(0) == 0);
  CHECK(libpq_connect_timeout(2) == 2);
  CHECK(libpq_connect_timeout(2.001) == 3);
  CHECK(libpq_connect_timeout(5) == 5);
  CHECK_THROWS_WITH(libpq_connect_timeout(1.5), Catch::Contains("at least 2s"));
  CHECK_THROWS_AS(libpq_connect_timeout(0.25), std::invalid_argument);
  CHECK_THROWS_WITH(pg_conninfo("host=127.0.0.1 nonsense=1", {}), Catch::Contains("nonsense"));
}

TEST_CASE("PostgreSQL's statement_timeout ends a slow statement and keeps the connection") {
  query_watchdog watchdog(0.5);
  CHECK(watchdog.limit() == Approx(1.5));
  pqxx::connection c(pg_conninfo(test::pg_dsn(), {5, 0.5}));
  const auto t0 = std::chrono::steady_clock::now();
  bool lost = true;
  try {
    watchdog.run(c, [&] { return pqxx::nontransaction(c).exec("select pg_sleep(5)"); });
    FAIL("pg_sleep(5) was not cut off");
  } catch (const database_timeout& e) {
    lost = e.connection_lost();
    CHECK(std::string(e.what()).find("statement timeout") != std::string::npos);
  }
  const double took = since(t0);
  // The server's timer at 0.5 s, before the watchdog's at 1.5 s; 0.5 s allows for a busy machine.
  CHECK(took >= 0.5);
  CHECK(took < 1.0);
  CHECK_FALSE(lost);
  CHECK(pqxx::nontransaction(c).exec("select 1")[0][0].as<int>() == 1);
}

TEST_CASE("a stopped backend is cut off by the watchdog at statement_timeout plus one second") {
  query_watchdog watchdog(1);
  pqxx::connection c(pg_conninfo(test::pg_dsn(), {5, 1}));
  const pid_t backend = c.backendpid();
  REQUIRE(backend > 0);
  double took = 0;
  bool lost = false;
  std::string message;
  {
    stopped_backend stop(backend);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      watchdog.run(c, [&] { return pqxx::nontransaction(c).exec("select 1"); });
    } catch (const database_timeout& e) {
      lost = e.connection_lost();
      message = e.what();
    }
    took = since(t0);
  }
  CHECK(lost);
  CHECK(message == "PostgreSQL did not answer within 2s; the connection was closed");
  // The watchdog's limit is 2 s; its thread wakes on time, +0.5 s for a busy machine.
  CHECK(took >= 2.0);
  CHECK(took < 2.5);
  CHECK_FALSE(c.is_open());
}

// The watchdog's thread is woken only for a deadline sooner than its next wake-up; a later one
// (every query under load) is picked up when it wakes for the earlier, finished query.
TEST_CASE("a stopped backend is cut off on time while the watchdog sleeps for an earlier query") {
  query_watchdog watchdog(1);
  pqxx::connection fast(pg_conninfo(test::pg_dsn(), {5, 1}));
  pqxx::connection slow(pg_conninfo(test::pg_dsn(), {5, 1}));
  // Sets the watchdog's next wake-up 2 s from now, then leaves it nothing to watch.
  watchdog.run(fast, [&] { return pqxx::nontransaction(fast).exec("select 1"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  double took = 0;
  bool lost = false;
  {
    stopped_backend stop(slow.backendpid());
    const auto t0 = std::chrono::steady_clock::now();
    try {
      watchdog.run(slow, [&] { return pqxx::nontransaction(slow).exec("select 1"); });
    } catch (const database_timeout& e) {
      lost = e.connection_lost();
    }
    took = since(t0);
  }
  CHECK(lost);
  // Its own 2 s limit, not the earlier query's 1.5 s nor a missed wake-up; +0.5 s for a busy
  // machine, as above.
  CHECK(took >= 2.0);
  CHECK(took < 2.5);
  CHECK_FALSE(slow.is_open());
}

TEST_CASE("errors that are not time limits pass through the watchdog unchanged") {
  query_watchdog watchdog(10);
  pqxx::connection c(pg_conninfo(test::pg_dsn(), {5, 10}));
  CHECK_THROWS_AS(watchdog.run(c, [&] { return pqxx::nontransaction(c).exec("select nonsense"); }),
                  pqxx::sql_error);
  // And a statement that answers in time returns its result.
  const auto r = watchdog.run(c, [&] { return pqxx::nontransaction(c).exec("select 41 + 1"); });
  CHECK(r[0][0].as<int>() == 42);
}
