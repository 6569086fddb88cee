// Tests of the real pool (service/real_pool.hpp): concurrency invariants under
// stress with cheap in-process connections and with real PostgreSQL
// connections, hand-off, deadlines, failed dials, the cleaner and shutdown, and
// pool_policy's version, opener, retry and failed-dial rules carried out with threads; and the
// same pool driven from event loops (async_acquire).
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "people_handler.hpp"
#include "real_pool.hpp"
#include "service_process.hpp"

using namespace headroom;

namespace {

// A real-but-cheap connection: counts how many exist, and flags whether a
// caller holds it, so a double hand-out is caught.
struct fake_conn {
  static inline std::atomic<int> alive{0};
  std::atomic<bool> held{false};
  fake_conn() { alive++; }
  ~fake_conn() { alive--; }
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::uint64_t closed_total(const pool_stats& s) {
  return s.closed_max_idle + s.closed_max_idle_time + s.closed_max_lifetime + s.closed_other;
}

struct stress_result {
  int acquired = 0;
  int failed = 0;
  int double_holds = 0;
  int over_max_open = 0;
};

// Many threads acquire, hold briefly and release; some connections are
// reported broken and some dials fail, to exercise every path of the pool.
stress_result stress(real_pool<fake_conn>& pool, int threads, int rounds, int max_open) {
  std::atomic<int> acquired{0}, failed{0}, double_holds{0}, over{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) + 7);
      std::uniform_int_distribution<int> hold_us(0, 50), pct(0, 99);
      for (int i = 0; i < rounds; ++i) {
        try {
          auto lease = pool.acquire(5);
          acquired++;
          if (lease->held.exchange(true)) double_holds++;
          if (max_open > 0 && pool.stats().open > max_open) over++;
          std::this_thread::sleep_for(std::chrono::microseconds(hold_us(rng)));
          lease->held = false;
          lease.release(pct(rng) == 0);
        } catch (const pool_error&) {
          failed++;
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  return {acquired.load(), failed.load(), double_holds.load(), over.load()};
}

// After every thread has released: nothing in use or waiting, the open
// connections are exactly the idle ones (and exactly the live objects), and
// every successful dial was either closed or is still open.
void check_quiet_pool(const real_pool<fake_conn>& pool) {
  const pool_stats s = pool.stats();
  CHECK(s.in_use == 0);
  CHECK(s.waiting == 0);
  CHECK(s.open == s.idle);
  CHECK(s.idle <= pool.effective_max_idle());
  CHECK(fake_conn::alive.load() == s.open);
  CHECK(s.dials - s.dial_failures == closed_total(s) + static_cast<std::uint64_t>(s.open));
}

}  // namespace

TEST_CASE("many threads sharing a bounded pool never exceed max_open nor share a connection") {
  pool_config cfg;
  cfg.max_open = 4;
  cfg.max_idle = 2;
  std::atomic<int> dials{0};
  {
    real_pool<fake_conn> pool(cfg, [&] {
      dials++;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      return std::make_unique<fake_conn>();
    });
    const auto r = stress(pool, 32, 300, cfg.max_open);
    CHECK(r.double_holds == 0);
    CHECK(r.over_max_open == 0);
    CHECK(r.failed == 0);
    CHECK(r.acquired == 32 * 300);
    check_quiet_pool(pool);
    const pool_stats s = pool.stats();
    CHECK(s.dials == static_cast<std::uint64_t>(dials.load()));
    // 32 threads on 4 connections: most acquires had to wait.
    CHECK(s.wait_count > 0);
  }
  CHECK(fake_conn::alive.load() == 0);
}

TEST_CASE(
    "the pool keeps its books straight under random hand-off with short lifetimes and failing "
    "dials, in every Go profile") {
  const go_version go =
      GENERATE(go_version::go1_10, go_version::go1_15, go_version::go1_18, go_version::go1_23);
  INFO("profile " << to_string(go));
  pool_config cfg;
  cfg.go = go;
  cfg.max_open = 3;
  cfg.max_idle = 3;
  cfg.max_lifetime = 0.002;
  cfg.order = waiter_order::random;
  std::atomic<int> attempt{0};
  {
    real_pool<fake_conn> pool(cfg, [&] {
      // One dial in ten fails, as a flaky network would.
      if (++attempt % 10 == 0) throw std::runtime_error("injected dial failure");
      return std::make_unique<fake_conn>();
    });
    const auto r = stress(pool, 16, 300, cfg.max_open);
    CHECK(r.double_holds == 0);
    CHECK(r.over_max_open == 0);
    CHECK(r.acquired + r.failed == 16 * 300);
    CHECK(r.failed > 0);
    check_quiet_pool(pool);
    const pool_stats s = pool.stats();
    CHECK(s.closed_max_lifetime > 0);
    CHECK(s.dial_failures > 0);
  }
  CHECK(fake_conn::alive.load() == 0);
}

TEST_CASE("with unlimited max_open and max_idle 0 every acquire dials and every release closes") {
  pool_config cfg;
  cfg.max_open = 0;
  cfg.max_idle = 0;
  real_pool<fake_conn> pool(cfg, [] { return std::make_unique<fake_conn>(); });
  const auto r = stress(pool, 8, 100, 0);
  CHECK(r.double_holds == 0);
  const pool_stats s = pool.stats();
  CHECK(s.dials == static_cast<std::uint64_t>(r.acquired));
  CHECK(s.open == 0);
  CHECK(s.wait_count == 0);
  check_quiet_pool(pool);
}

TEST_CASE("a released connection goes straight to the thread waiting for it") {
  pool_config cfg;
  cfg.max_open = 1;
  real_pool<fake_conn> pool(cfg, [] { return std::make_unique<fake_conn>(); });
  auto first = pool.acquire(5);
  const conn_id id = first.id();
  std::atomic<bool> got{false};
  conn_id waiter_got = 99;
  acquire_timing timing;
  std::thread waiter([&] {
    auto l = pool.acquire(5, &timing);
    waiter_got = l.id();
    got = true;
  });
  // Give the waiter time to block; the assertion below holds either way.
  while (pool.stats().waiting == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK_FALSE(got.load());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  first.release();
  waiter.join();
  CHECK(waiter_got == id);
  // It waited at least the 20 ms we held the connection after it queued.
  CHECK(timing.wait >= 0.019);
  const pool_stats s = pool.stats();
  CHECK(s.wait_count == 1);
  CHECK(s.dials == 1);
}

TEST_CASE("a waiter past its deadline gets a wait timeout and no connection") {
  pool_config cfg;
  cfg.max_open = 1;
  real_pool<fake_conn> pool(cfg, [] { return std::make_unique<fake_conn>(); });
  auto held = pool.acquire(5);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    pool.acquire(0.1);
    FAIL("acquire should have timed out");
  } catch (const pool_error& e) {
    CHECK(e.which() == pool_error::kind::wait_timeout);
  }
  // At least the deadline; at most a second more, for a loaded 2-core machine.
  const double waited = seconds_since(t0);
  CHECK(waited >= 0.1);
  CHECK(waited < 1.1);
  CHECK(pool.stats().wait_timeouts == 1);
  CHECK(pool.stats().waiting == 0);
}

TEST_CASE("a waiter learns promptly that the dial made for it failed") {
  pool_config cfg;
  cfg.max_open = 1;
  std::atomic<bool> fail{false};
  real_pool<fake_conn> pool(cfg, [&] {
    if (fail) throw std::runtime_error("database is down");
    return std::make_unique<fake_conn>();
  });
  auto held = pool.acquire(5);
  std::optional<pool_error::kind> error;
  double waited = 0;
  std::thread waiter([&] {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      pool.acquire(10);
    } catch (const pool_error& e) {
      error = e.which();
    }
    waited = seconds_since(t0);
  });
  while (pool.stats().waiting == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  fail = true;
  held.release(true);  // broken: closed, and a dial is started for the waiter
  waiter.join();
  REQUIRE(error.has_value());
  CHECK(*error == pool_error::kind::dial_failed);
  // Far sooner than its 10 s deadline (2 s allows for a loaded machine).
  CHECK(waited < 2);
  const pool_stats s = pool.stats();
  CHECK(s.open == 0);
  CHECK(s.dial_failures == 1);
}

TEST_CASE("the cleaner closes connections idle longer than max_idle_time") {
  pool_config cfg;
  cfg.go = go_version::go1_15;  // SetConnMaxIdleTime came in Go 1.15
  cfg.max_idle_time = 0.05;     // the cleaner still runs at most once a second, as Go's
  real_pool<fake_conn> pool(cfg, [] { return std::make_unique<fake_conn>(); });
  pool.acquire(5).release();
  REQUIRE(pool.stats().idle == 1);
  // One cleaner interval (1 s) plus slack for scheduling.
  const auto t0 = std::chrono::steady_clock::now();
  while (pool.stats().idle > 0 && seconds_since(t0) < 3)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const pool_stats s = pool.stats();
  CHECK(s.idle == 0);
  CHECK(s.open == 0);
  CHECK(s.closed_max_idle_time == 1);
}

TEST_CASE(
    "closing the pool fails waiters and refuses acquires and closes connections as they return") {
  pool_config cfg;
  cfg.max_open = 1;
  real_pool<fake_conn> pool(cfg, [] { return std::make_unique<fake_conn>(); });
  auto held = pool.acquire(5);
  std::optional<pool_error::kind> error;
  std::thread waiter([&] {
    try {
      pool.acquire(10);
    } catch (const pool_error& e) {
      error = e.which();
    }
  });
  while (pool.stats().waiting == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  pool.close();
  waiter.join();
  REQUIRE(error.has_value());
  CHECK(*error == pool_error::kind::closed);
  CHECK_THROWS_AS(pool.acquire(1), pool_error);
  held.release();
  CHECK(pool.stats().open == 0);
  CHECK(fake_conn::alive.load() == 0);
}

TEST_CASE("a dial made for a waiter tells the caller which connection slot it took") {
  // The fix to pool_policy that the real pool needs: without the slot, the
  // new connection could not be stored where the policy expects it.
  pool_config cfg;
  cfg.max_open = 2;
  pool_policy p(cfg);
  REQUIRE(p.acquire(0).what == pool_policy::acquire_decision::action::dial);
  const conn_id a = p.dial_succeeded(0);
  REQUIRE(p.acquire(0).what == pool_policy::acquire_decision::action::dial);
  const conn_id b = p.dial_succeeded(0);
  const auto w = p.acquire(0);
  REQUIRE(w.what == pool_policy::acquire_decision::action::wait);
  const auto closed = p.release(b, 1, /*broken=*/true);
  REQUIRE(closed.effects.start_waiter_dial);
  const auto d = p.waiter_dial_succeeded(2);
  CHECK(d.what == pool_policy::release_decision::action::to_waiter);
  CHECK(d.waiter == w.waiter);
  CHECK(d.conn == b);  // the freed slot is reused
  CHECK(d.conn != a);
  CHECK_NOTHROW(p.release(d.conn, 3));
}

TEST_CASE(
    "real PostgreSQL connections shared by many threads are never held twice and the server agrees "
    "on the count") {
  // A distinct application_name lets the server-side count below ignore
  // other tests' connections to the same database.
  const std::string dsn = test::pg_dsn() + " application_name=real_pool_test";
  pool_config cfg;
  cfg.max_open = 4;
  cfg.max_idle = 2;
  real_pool<pg_connection> pool(cfg, [&] { return dial_postgres(dsn); });
  std::vector<std::atomic<bool>> held(64);
  std::atomic<int> double_holds{0}, over{0}, wrong_rows{0}, errors{0};
  std::mutex first_error_mu;
  std::string first_error;
  std::vector<std::thread> ts;
  for (int t = 0; t < 12; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 40; ++i) {
        try {
          auto lease = pool.acquire(10);
          if (lease.id() >= held.size() || held[lease.id()].exchange(true)) double_holds++;
          if (pool.stats().open > cfg.max_open) over++;
          // A blocking query (PQexecPrepared blocks even on a non-blocking connection).
          const char* age[] = {"30"};
          const query_result rows(
              PQexecPrepared(lease->raw(), "people_by_age", 1, age, nullptr, nullptr, 0), &PQclear);
          check_result(*lease, rows.get(), "people_by_age");
          for (int r = 0; r < PQntuples(rows.get()); ++r)
            if (std::string(PQgetvalue(rows.get(), r, 2)) != "30") wrong_rows++;
          if (PQntuples(rows.get()) == 0) wrong_rows++;
          held[lease.id()] = false;
          lease.release();
        } catch (const std::exception& e) {
          if (errors++ == 0) {
            std::lock_guard lk(first_error_mu);
            first_error = e.what();
          }
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK(double_holds == 0);
  CHECK(over == 0);
  CHECK(wrong_rows == 0);
  INFO("first error: " << first_error);
  CHECK(errors == 0);
  const pool_stats s = pool.stats();
  CHECK(s.in_use == 0);
  CHECK(s.open == s.idle);
  CHECK(s.open <= 2);
  CHECK(s.dials == closed_total(s) + static_cast<std::uint64_t>(s.open));
  // PostgreSQL's own view: our open connections plus the one asking. Closed
  // backends exit asynchronously, so poll for up to 5 s before judging.
  pqxx::connection monitor(dsn);
  long backends = -1;
  const auto t0 = std::chrono::steady_clock::now();
  do {
    pqxx::nontransaction tx(monitor);
    backends = tx.exec1(
                     "select count(*) from pg_stat_activity where datname = 'people' and "
                     "application_name = 'real_pool_test' and pid <> pg_backend_pid()")[0]
                   .as<long>();
    if (backends == s.open) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (seconds_since(t0) < 5);
  CHECK(backends == s.open);
}

TEST_CASE("with fifo order waiters get the connection in the order they asked") {
  pool_config cfg;
  cfg.max_open = 1;
  cfg.order = waiter_order::fifo;
  real_pool<fake_conn> pool(cfg, [] { return std::make_unique<fake_conn>(); });
  auto held = pool.acquire(5);
  std::mutex mu;
  std::vector<int> served;
  std::vector<std::thread> ts;
  for (int i = 0; i < 5; ++i) {
    ts.emplace_back([&, i] {
      auto l = pool.acquire(10);
      {
        std::lock_guard lk(mu);
        served.push_back(i);
      }
      l.release();
    });
    // Queue them one at a time so that the order of asking is known.
    while (pool.stats().waiting < i + 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  held.release();
  for (auto& t : ts) t.join();
  CHECK(served == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(pool.stats().wait_count == 5);
  CHECK(pool.stats().dials == 1);
}

namespace {

// Go's query loop around acquire(): what each try ended in, until a connection or an error.
std::vector<std::string> acquire_with_retry(real_pool<fake_conn>& pool, double wait_timeout,
                                            real_pool<fake_conn>::lease& out) {
  std::vector<std::string> tries;
  bad_conn_retry retry;
  for (;;) {
    acquire_timing at;
    try {
      out = pool.acquire(wait_timeout, &at, retry.new_conn());
      tries.push_back(at.dial > 0 ? "dialed" : "reused");
      return tries;
    } catch (const pool_error& e) {
      tries.push_back(e.which() == pool_error::kind::bad_conn ? "bad_conn" : "error");
      if (e.which() != pool_error::kind::bad_conn || !retry.again()) return tries;
    }
  }
}

}  // namespace

TEST_CASE(
    "Go 1.10 real pool: expired idle connections use up the pooled tries and the third dials") {
  pool_config cfg;
  cfg.go = go_version::go1_10;
  cfg.max_idle = 3;
  cfg.max_lifetime = 0.05;  // the cleaner's first run is 1 s away: it stays out of this test
  real_pool<fake_conn> pool(cfg, [] {
    // Takes time, so that the dial phase is measurably above zero.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return std::make_unique<fake_conn>();
  });
  { auto a = pool.acquire(5), b = pool.acquire(5), c = pool.acquire(5); }
  REQUIRE(pool.stats().idle == 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // all three past 50 ms
  real_pool<fake_conn>::lease l;
  CHECK(acquire_with_retry(pool, 5, l) ==
        std::vector<std::string>{"bad_conn", "bad_conn", "dialed"});
  CHECK(l);
  const pool_stats s = pool.stats();
  CHECK(s.closed_max_lifetime == 2);
  CHECK(s.idle == 1);  // the third expired one, left for the cleaner or a later try
  CHECK(s.dials == 4);
  CHECK(fake_conn::alive.load() == 2);
}

TEST_CASE("Go 1.10 real pool: a waiter handed an expired connection gets bad_conn and retries") {
  pool_config cfg;
  cfg.go = go_version::go1_10;
  cfg.max_open = 1;
  cfg.max_lifetime = 0.05;
  real_pool<fake_conn> pool(cfg, [] { return std::make_unique<fake_conn>(); });
  auto held = pool.acquire(5);
  std::vector<std::string> tries;
  std::thread waiter([&] {
    real_pool<fake_conn>::lease l;
    tries = acquire_with_retry(pool, 5, l);
  });
  while (pool.stats().waiting == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  held.release();  // expired: Go 1.10 still hands it over, and the waiter finds it expired
  waiter.join();
  CHECK(tries == std::vector<std::string>{"bad_conn", "dialed"});
  const pool_stats s = pool.stats();
  CHECK(s.closed_max_lifetime == 1);
  CHECK(s.dials == 2);
  CHECK(s.wait_count == 1);
}

TEST_CASE("Go 1.15 real pool: an expired connection is closed when returned and the opener dials") {
  pool_config cfg;
  cfg.go = go_version::go1_15;
  cfg.max_open = 1;
  cfg.max_lifetime = 0.05;
  std::atomic<int> dials{0};
  real_pool<fake_conn> pool(cfg, [&] {
    dials++;
    return std::make_unique<fake_conn>();
  });
  auto held = pool.acquire(5);
  std::vector<std::string> tries;
  std::thread waiter([&] {
    real_pool<fake_conn>::lease l;
    tries = acquire_with_retry(pool, 5, l);
  });
  while (pool.stats().waiting == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  held.release();
  waiter.join();
  // The waiter was handed the opener's new connection, not the expired one: no bad try.
  CHECK(tries == std::vector<std::string>{"reused"});
  CHECK(dials.load() == 2);
  const pool_stats s = pool.stats();
  CHECK(s.closed_max_lifetime == 1);
  CHECK(s.dials == 2);
}

TEST_CASE("the real pool's opener dials for waiters one at a time, at most max_open - open") {
  pool_config cfg;
  cfg.max_open = 3;
  cfg.max_idle = 3;
  std::atomic<int> dialing{0}, most_at_once{0}, dials{0};
  std::atomic<bool> opener_phase{false};
  real_pool<fake_conn> pool(cfg, [&] {
    dials++;
    const int now = ++dialing;
    if (opener_phase) {
      int seen = most_at_once.load();
      while (now > seen && !most_at_once.compare_exchange_weak(seen, now)) {
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    --dialing;
    return std::make_unique<fake_conn>();
  });
  std::vector<real_pool<fake_conn>::lease> held;
  for (int i = 0; i < 3; ++i) held.push_back(pool.acquire(5));
  std::atomic<int> served{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 5; ++i)
    ts.emplace_back([&] {
      auto l = pool.acquire(10);
      served++;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      l.release();
    });
  while (pool.stats().waiting < 5) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  opener_phase = true;
  // Three broken connections: three slots for five waiters, dialed by the opener.
  for (auto& l : held) l.release(true);
  for (auto& t : ts) t.join();
  CHECK(served.load() == 5);
  CHECK(most_at_once.load() == 1);  // serial, though three were asked for at once
  CHECK(dials.load() == 6);         // three by callers, three by the opener
  const pool_stats s = pool.stats();
  CHECK(s.dials == 6);
  CHECK(s.open == 3);
  CHECK(s.dials_queued == 0);
}

TEST_CASE("while the database is down each failed dial for waiters fails one waiter, in order") {
  // Go's openNewConnection hands a failed dial's error to one waiter and asks a dial for the
  // rest, so waiters fail one per dial, far sooner than their deadline. fifo makes the order
  // checkable; each dial takes 30 ms so the failures are spaced well apart.
  pool_config cfg;
  cfg.max_open = 1;
  cfg.order = waiter_order::fifo;
  std::atomic<bool> down{false};
  real_pool<fake_conn> pool(cfg, [&] {
    if (down) {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      throw std::runtime_error("database is down");
    }
    return std::make_unique<fake_conn>();
  });
  auto held = pool.acquire(5);
  std::mutex mu;
  std::vector<int> failed_order;
  std::vector<std::thread> ts;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&, i] {
      try {
        pool.acquire(10);
      } catch (const pool_error& e) {
        if (e.which() == pool_error::kind::dial_failed) {
          std::lock_guard lk(mu);
          failed_order.push_back(i);
        }
      }
    });
    while (pool.stats().waiting < i + 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  down = true;
  held.release(true);
  for (auto& t : ts) t.join();
  CHECK(failed_order == std::vector<int>{0, 1, 2});
  CHECK(seconds_since(t0) < 3);  // three 30 ms dials, far from the 10 s deadline
  const pool_stats s = pool.stats();
  CHECK(s.dial_failures == 3);
  CHECK(s.wait_timeouts == 0);
  CHECK(s.open == 0);
  CHECK(s.dials_queued == 0);
}

// async_acquire: the same decisions for a caller on an event loop. The loop runs on this
// thread (io.run), dials on a one-thread pool, as in the service.

TEST_CASE(
    "on an event loop a dial runs on the dial thread and a waiter is handed the released "
    "connection") {
  pool_config cfg;
  cfg.max_open = 1;
  std::atomic<std::thread::id> dialed_on;
  real_pool<fake_conn> pool(cfg, [&] {
    dialed_on = std::this_thread::get_id();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return std::make_unique<fake_conn>();
  });
  boost::asio::io_context io;
  boost::asio::thread_pool dialer(1);
  using acquired = real_pool<fake_conn>::acquired;
  std::optional<acquired> first, second;
  pool.async_acquire(io.get_executor(), dialer.get_executor(), 5, false,
                     [&](acquired a) { first = std::move(a); });
  CHECK_FALSE(first);  // the dial is on the dial thread, not done inline
  {
    // The loop has nothing of its own to do until the dial's completion is posted back to it.
    auto busy = boost::asio::make_work_guard(io);
    while (!first) io.run_one();
  }
  REQUIRE(first);
  REQUIRE_FALSE(first->error);
  CHECK(dialed_on.load() != std::this_thread::get_id());
  // It slept 10 ms in the dial; the dial phase ends on the loop, so it is at least that.
  CHECK(first->timing.dial >= 0.010);
  CHECK(first->timing.wait == 0);
  const conn_id id = first->conn.id();

  pool.async_acquire(io.get_executor(), dialer.get_executor(), 5, false,
                     [&](acquired a) { second = std::move(a); });
  CHECK_FALSE(second);
  CHECK(pool.stats().waiting == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  first->conn.release();
  io.restart();
  io.run();  // the hand-off's completion, then the handler of its cancelled deadline
  REQUIRE(second);
  REQUIRE_FALSE(second->error);
  CHECK(second->conn.id() == id);
  // Held for the 20 ms sleep after it queued.
  CHECK(second->timing.wait >= 0.019);
  const pool_stats s = pool.stats();
  CHECK(s.wait_count == 1);
  CHECK(s.wait_timeouts == 0);
  CHECK(s.dials == 1);
  CHECK(s.waiting == 0);
  second->conn.release();
  dialer.join();
}

TEST_CASE("on an event loop a waiter past its deadline gets a wait timeout from its timer") {
  pool_config cfg;
  cfg.max_open = 1;
  real_pool<fake_conn> pool(cfg, [] { return std::make_unique<fake_conn>(); });
  auto held = pool.acquire(5);
  boost::asio::io_context io;
  boost::asio::thread_pool dialer(1);
  std::optional<real_pool<fake_conn>::acquired> got;
  const auto t0 = std::chrono::steady_clock::now();
  pool.async_acquire(io.get_executor(), dialer.get_executor(), 0.1, false,
                     [&](real_pool<fake_conn>::acquired a) { got = std::move(a); });
  io.run();
  const double waited = seconds_since(t0);
  REQUIRE(got);
  REQUIRE(got->error);
  CHECK(got->error->which() == pool_error::kind::wait_timeout);
  CHECK_FALSE(got->conn);
  // At least the deadline; at most a second more, for a loaded 2-core machine.
  CHECK(waited >= 0.1);
  CHECK(waited < 1.1);
  CHECK(got->timing.wait >= 0.1);
  CHECK(pool.stats().wait_timeouts == 1);
  CHECK(pool.stats().waiting == 0);
  // The connection it did not get goes to the idle list as usual.
  held.release();
  CHECK(pool.stats().idle == 1);
  dialer.join();
}

TEST_CASE("two event loops sharing a bounded pool never exceed max_open nor share a connection") {
  pool_config cfg;
  cfg.max_open = 3;
  cfg.max_idle = 2;
  {
    real_pool<fake_conn> pool(cfg, [] { return std::make_unique<fake_conn>(); });
    boost::asio::thread_pool dialer(2);
    std::atomic<int> acquired{0}, failed{0}, double_holds{0}, over{0};
    constexpr int chains = 8, rounds = 200;
    std::vector<std::unique_ptr<boost::asio::io_context>> loops;
    for (int i = 0; i < 2; ++i) loops.push_back(std::make_unique<boost::asio::io_context>(1));
    // Each chain acquires, holds its connection for one turn of its loop, releases, and
    // starts again: 8 chains on 3 connections keep waiters queued from both loops.
    std::function<void(boost::asio::io_context&, int)> step = [&](boost::asio::io_context& io,
                                                                  int left) {
      if (left == 0) return;
      pool.async_acquire(io.get_executor(), dialer.get_executor(), 5, false,
                         [&, left](real_pool<fake_conn>::acquired a) {
                           if (a.error) {
                             failed++;
                             return step(io, left - 1);
                           }
                           acquired++;
                           if (a.conn->held.exchange(true)) double_holds++;
                           if (pool.stats().open > cfg.max_open) over++;
                           auto lease =
                               std::make_shared<real_pool<fake_conn>::lease>(std::move(a.conn));
                           boost::asio::post(io, [&, lease, left] {
                             (*lease)->held = false;
                             lease->release();
                             step(io, left - 1);
                           });
                         });
    };
    for (int c = 0; c < chains; ++c)
      boost::asio::post(*loops[c % 2], [&, c] { step(*loops[c % 2], rounds); });
    std::vector<std::thread> threads;
    for (auto& l : loops) threads.emplace_back([&io = *l] { io.run(); });
    for (auto& t : threads) t.join();
    dialer.join();
    CHECK(failed == 0);
    CHECK(acquired == chains * rounds);
    CHECK(double_holds == 0);
    CHECK(over == 0);
    check_quiet_pool(pool);
    CHECK(pool.stats().wait_count > 0);
  }
  CHECK(fake_conn::alive.load() == 0);
}
