// Black-box tests that disturb the shared PostgreSQL or stop the service:
// the database stopped and restarted, or frozen with SIGSTOP, under a running
// service, and SIGTERM with requests in flight. CTest runs this file's tests
// alone (RUN_SERIAL).
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>

#include "service_process.hpp"

using namespace headroom::test;

namespace {

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

bool is_json_error(const std::string& body) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  return !ec && v.is_object() && v.as_object().contains("error");
}

// Restarts PostgreSQL if a test fails while it is stopped, so that later
// tests (and the fixture's cleanup) find it running.
struct pg_restarter {
  int port;
  bool stopped = false;
  ~pg_restarter() {
    if (stopped) try {
        pg_start(port);
      } catch (...) {
      }
  }
};

// Stops PostgreSQL and starts it again on the same port; if that start throws,
// pg_restarter tries once more, so later tests find it running.
void restart_postgres(int port) {
  pg_restarter restarter{port};
  pg_stop();
  restarter.stopped = true;
  pg_start(port);
  restarter.stopped = false;
}

}  // namespace

TEST_CASE(
    "while PostgreSQL is down the service answers 503 with Retry-After and recovers by itself") {
  const int pg_port = dsn_port(pg_dsn());
  service_process svc({"--wait-timeout", "2", "--max-open", "2"});
  http_client c(svc.port());
  REQUIRE(c.request("POST", "/", R"({"Age": 30})").status == 200);
  REQUIRE(c.request("GET", "/readyz").status == 200);

  pg_restarter restarter{pg_port};
  pg_stop();
  restarter.stopped = true;
  // Sequential requests, then a concurrent burst bigger than --max-open so
  // that some wait for a connection whose dial fails.
  for (int i = 0; i < 5; ++i) {
    const auto r = c.request("POST", "/", R"({"Age": 30})");
    INFO("request " << i << ": " << r.body);
    CHECK(r.status == 503);
    CHECK(r.header("Retry-After") == "1");
    CHECK(is_json_error(r.body));
    // Refused connections fail fast; 2 s is the pool wait limit, +1 s slack.
    CHECK(r.seconds < 3);
  }
  std::atomic<int> unavailable{0}, other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      http_client k(svc.port());
      const auto r = k.request("POST", "/", R"({"Age": 300})");
      (r.status == 503 && !r.header("Retry-After").empty() ? unavailable : other)++;
    });
  for (auto& t : ts) t.join();
  CHECK(unavailable == 8);
  CHECK(other == 0);
  CHECK(c.request("GET", "/readyz").status == 503);
  CHECK(c.request("GET", "/healthz").status == 200);

  pg_start(pg_port);
  restarter.stopped = false;
  // Idle connections from before the outage are broken: each may cost one
  // 503 (at most --max-open of them) before a fresh dial succeeds.
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0, attempts = 0;
  while (since(t0) < 20) {
    attempts++;
    status = c.request("POST", "/", R"({"Age": 30})").status;
    if (status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(status == 200);
  CHECK(attempts <= 3);
  for (int i = 0; i < 5; ++i) CHECK(c.request("POST", "/", R"({"Age": 30})").status == 200);
  CHECK(c.request("GET", "/readyz").status == 200);
  const auto m = c.request("GET", "/metrics");
  CHECK(metric_value(m.body, "headroom_pool_dial_failures_total").value_or(0) > 0);
  CHECK(metric_value(m.body, "headroom_pool_open").value_or(99) <= 2);
}

TEST_CASE(
    "SIGTERM with requests in flight answers every one of them and closes idle connections and "
    "exits "
    "0") {
  const std::string dsn = pg_dsn();
  service_process svc({"--drain-timeout", "30"});
  http_client idle(svc.port());
  REQUIRE(idle.request("GET", "/healthz").status == 200);

  // Hold a lock that every query (and every new connection's PREPARE) waits
  // for, so the requests stay in flight until we let them go.
  pqxx::connection locker(dsn);
  auto lock = std::make_unique<pqxx::work>(locker);
  lock->exec("lock table people in access exclusive mode");

  constexpr int n = 8;
  std::vector<int> status(n, -1);
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&, i] {
      http_client c(svc.port());
      status[i] = c.request("POST", "/", R"({"Age": 30})").status;
    });
  // Wait until the service reports all n (plus the scrape itself) in flight.
  http_client probe(svc.port());
  double in_flight = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (since(t0) < 10) {
    in_flight =
        metric_value(probe.request("GET", "/metrics").body, "headroom_http_in_flight").value_or(0);
    if (in_flight >= n + 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(in_flight >= n + 1);
  probe.close();

  svc.signal(SIGTERM);
  // The idle keep-alive connection is closed at once (2 s allows for a busy machine).
  const auto closed = idle.wait_for_close(2);
  CHECK(closed.has_value());
  // Still draining: the process waits for the blocked requests.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(svc.wait_exit(0).has_value());
  // New connections are refused once draining started.
  CHECK_THROWS(http_client(svc.port(), 2));

  lock->commit();
  lock.reset();
  for (auto& t : ts) t.join();
  for (int i = 0; i < n; ++i) CHECK(status[i] == 200);
  const auto code = svc.wait_exit(10);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
}

TEST_CASE("idle connections broken by a database restart are replaced without failing a request") {
  const int pg_port = dsn_port(pg_dsn());
  service_process svc({"--max-idle", "2"});
  http_client c(svc.port());
  REQUIRE(c.request("POST", "/", R"({"Age": 300})").status == 200);
  REQUIRE(metric_value(c.request("GET", "/metrics").body, "headroom_pool_idle") == 1);
  restart_postgres(pg_port);
  // The idle connection is dead; like Go's database/sql, the service retries
  // on a new connection instead of failing the request.
  const auto r = c.request("POST", "/", R"({"Age": 300})");
  CHECK(r.status == 200);
  CHECK(r.body == R"({"People":[]})");
  const auto m = c.request("GET", "/metrics").body;
  CHECK(metric_value(m, "headroom_pool_closed_other_total") == 1);  // the broken one
  CHECK(metric_value(m, "headroom_pool_dials_total") == 2);
}

TEST_CASE("with more idle connections than retries, a database restart still fails no request") {
  // Four idle connections, all dead after the restart: two tries from the pool, then Go's
  // last try on a new connection (alwaysNewConn) must answer.
  const int pg_port = dsn_port(pg_dsn());
  service_process svc({"--max-open", "4", "--max-idle", "4"});
  {
    // Four requests held by a table lock make the pool open four connections.
    pqxx::connection locker(pg_dsn());
    auto lock = std::make_unique<pqxx::work>(locker);
    lock->exec("lock table people in access exclusive mode");
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
      ts.emplace_back([&] { http_client(svc.port()).request("POST", "/", R"({"Age": 300})"); });
    http_client probe(svc.port());
    const auto t0 = std::chrono::steady_clock::now();
    while (metric_value(probe.request("GET", "/metrics").body, "headroom_pool_open") < 4 &&
           since(t0) < 10)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    lock->commit();
    for (auto& t : ts) t.join();
  }
  http_client c(svc.port());
  REQUIRE(metric_value(c.request("GET", "/metrics").body, "headroom_pool_idle") == 4);
  restart_postgres(pg_port);
  const auto r = c.request("POST", "/", R"({"Age": 300})");
  CHECK(r.status == 200);
  CHECK(r.body == R"({"People":[]})");
  const auto m = c.request("GET", "/metrics").body;
  CHECK(metric_value(m, "headroom_pool_closed_other_total") == 2);  // the two dead ones tried
}

TEST_CASE("a request that waits longer than --wait-timeout gets 503 with Retry-After") {
  const std::string dsn = pg_dsn();
  service_process svc({"--max-open", "1", "--wait-timeout", "300ms"});
  {
    http_client warm(svc.port());
    REQUIRE(warm.request("POST", "/", R"({"Age": 300})").status == 200);
  }
  // The lock keeps the first request on the only connection.
  pqxx::connection locker(dsn);
  auto lock = std::make_unique<pqxx::work>(locker);
  lock->exec("lock table people in access exclusive mode");
  int first = -1;
  std::thread holder([&] {
    http_client c(svc.port());
    first = c.request("POST", "/", R"({"Age": 300})").status;
  });
  http_client probe(svc.port());
  const auto t0 = std::chrono::steady_clock::now();
  while (metric_value(probe.request("GET", "/metrics").body, "headroom_pool_in_use").value_or(0) <
             1 &&
         since(t0) < 10)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));

  http_client c(svc.port());
  const auto r = c.request("POST", "/", R"({"Age": 30})");
  lock->commit();
  lock.reset();
  holder.join();
  CHECK(first == 200);
  CHECK(r.status == 503);
  CHECK(r.header("Retry-After") == "1");
  CHECK(is_json_error(r.body));
  // It waited the limit (0.3 s), and not much longer (1 s allows for a busy machine).
  CHECK(r.seconds >= 0.3);
  CHECK(r.seconds < 1.3);
  const auto m = probe.request("GET", "/metrics").body;
  CHECK(metric_value(m, "headroom_pool_wait_timeouts_total") == 1);
  CHECK(metric_value(m, "headroom_pool_wait_count_total") == 1);
}

TEST_CASE("a query that fails gets a 500 with the database's message and never an empty list") {
  const std::string dsn = pg_dsn();
  service_process svc({"--max-idle", "1"});
  http_client c(svc.port());
  REQUIRE(c.request("POST", "/", R"({"Age": 30})").status == 200);
  // Changing the column's type makes PostgreSQL refuse the statement the
  // pooled connection prepared ("cached plan must not change result type").
  pqxx::connection admin(dsn);
  struct restore_type {
    pqxx::connection& db;
    ~restore_type() {
      try {
        pqxx::nontransaction(db).exec("alter table people alter column age type integer");
      } catch (...) {
      }
    }
  } restore{admin};
  pqxx::nontransaction(admin).exec("alter table people alter column age type bigint");
  const auto r = c.request("POST", "/", R"({"Age": 30})");
  CHECK(r.status == 500);
  CHECK(is_json_error(r.body));
  CHECK(r.body.find("People") == std::string::npos);
  CHECK(r.body.find("cached plan must not change result type") != std::string::npos);
  pqxx::nontransaction(admin).exec("alter table people alter column age type integer");
  // The connection was still sound, so it went back to the pool and works again.
  const auto again = c.request("POST", "/", R"({"Age": 30})");
  CHECK(again.status == 200);
  CHECK(metric_value(c.request("GET", "/metrics").body, "headroom_pool_dials_total") == 1);
}

TEST_CASE("SIGTERM while a request's body is still arriving answers that request before exiting") {
  service_process svc({"--drain-timeout", "10"});
  http_client c(svc.port());
  const std::string body = R"({"Age": 300})";
  c.raw_send_only(
      "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 5));
  // 300 ms lets the service read the headers even on a busy machine.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  svc.signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(svc.wait_exit(0).has_value());  // still draining: it waits for this request
  const auto reply = c.raw(body.substr(5));
  CHECK(reply.status == 200);
  CHECK(reply.body == R"({"People":[]})");
  const auto code = svc.wait_exit(10);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
}

TEST_CASE(
    "when PostgreSQL stops answering, requests get 503 within the time limits and the service "
    "recovers when it resumes, with no request left stuck") {
  // Short limits keep the test short: statements 1 s (so the watchdog closes a silent
  // connection at 2 s), dials 2 s (libpq's smallest), pool waits 1 s.
  service_process svc({"--statement-timeout", "1s", "--connect-timeout", "2s", "--wait-timeout",
                       "1s", "--max-open", "4", "--max-idle", "4", "--workers", "8"});
  // A request makes at most one wait or one dial, then one query: max(1 s, 2 s) + 2 s.
  constexpr double bound = 4.0;
  // Added to the bound for a shared 2-core machine; libpq's timer only ever ends early.
  constexpr double tolerance = 1.0;
  constexpr int clients = 6;

  struct outcome {
    int status;
    double seconds;
    bool sent_while_frozen;
    std::string body;
  };
  std::mutex mu;
  std::vector<outcome> outcomes;
  std::atomic<bool> frozen{false}, stop{false};
  auto client_loop = [&] {
    http_client c(svc.port());
    while (!stop) {
      const bool during = frozen;
      const auto r = c.request("POST", "/", R"({"Age": 30})");
      std::lock_guard lk(mu);
      outcomes.push_back({r.status, r.seconds, during, r.body});
    }
  };
  {
    http_client warm(svc.port());
    REQUIRE(warm.request("POST", "/", R"({"Age": 30})").status == 200);
  }
  std::vector<std::thread> ts;
  for (int i = 0; i < clients; ++i) ts.emplace_back(client_loop);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  {
    pg_freezer freeze;
    frozen = true;
    REQUIRE(freeze.processes() >= 2);  // the postmaster and at least the service's backends
    // Long enough for every client to go through a query timeout, then a dial timeout.
    std::this_thread::sleep_for(std::chrono::seconds(6));
    stop = true;
    // Every request in flight ends within the bound, PostgreSQL still stopped.
    for (auto& t : ts) t.join();
  }

  int ok_before = 0, unavailable = 0, other = 0, watchdog = 0, dial_timeouts = 0;
  double longest = 0;
  for (const auto& o : outcomes) {
    INFO("status " << o.status << " after " << o.seconds << " s: " << o.body);
    CHECK(o.seconds <= bound + tolerance);
    longest = std::max(longest, o.seconds);
    if (o.status == 200 && !o.sent_while_frozen)
      ok_before++;
    else if (o.status == 503)
      unavailable++;
    else
      other++;
    if (o.body.find("did not answer within 2s") != std::string::npos) watchdog++;
    if (o.body.find("cannot connect to the database") != std::string::npos) dial_timeouts++;
  }
  CHECK(ok_before > 0);
  CHECK(other == 0);
  // Six clients for six seconds, each request at most about 2 s.
  CHECK(unavailable >= 2 * clients);
  // Requests on pooled connections were ended by the watchdog (at its 2 s), later ones by
  // the dial limit.
  CHECK(watchdog >= 1);
  CHECK(dial_timeouts >= 1);
  CHECK(longest >= 2.0);

  // Resumed: the service recovers by itself.
  http_client c(svc.port());
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  while (since(t0) < 10) {
    status = c.request("POST", "/", R"({"Age": 30})").status;
    if (status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(status == 200);
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> after;
  for (int i = 0; i < clients; ++i)
    after.emplace_back([&] {
      http_client k(svc.port());
      for (int j = 0; j < 20; ++j)
        (k.request("POST", "/", R"({"Age": 30})").status == 200 ? ok : failed)++;
    });
  for (auto& t : after) t.join();
  CHECK(ok == clients * 20);
  CHECK(failed == 0);
  // Nothing still holds a connection or a worker: only this scrape is in flight.
  const auto m = c.request("GET", "/metrics").body;
  CHECK(metric_value(m, "headroom_pool_in_use") == 0);
  CHECK(metric_value(m, "headroom_pool_waiting") == 0);
  CHECK(metric_value(m, "headroom_http_in_flight") == 1);
  CHECK(metric_value(m, "headroom_pool_open").value_or(99) <= 4);
}
