// Each rule of the Go database/sql pool policy (DESIGN.md), one test each.
// The policy is pure, so these tests are exact: no tolerances.
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <vector>

#include "pool_policy.hpp"

using headroom::conn_id;
using headroom::pool_config;
using headroom::pool_policy;
using headroom::waiter_order;
using act = pool_policy::acquire_decision::action;
using rel = pool_policy::release_decision::action;

namespace {
pool_config limits(int max_open, int max_idle) {
  pool_config c;
  c.max_open = max_open;
  c.max_idle = max_idle;
  return c;
}

// An acquire that must dial, with the dial completed.
conn_id dial_one(pool_policy& p, double now) {
  auto d = p.acquire(now);
  REQUIRE(d.what == act::dial);
  return p.dial_succeeded(now);
}
}  // namespace

TEST_CASE("an empty pool dials, and a released connection is reused") {
  pool_policy p(pool_config{});
  conn_id c = dial_one(p, 0);
  CHECK(p.stats().open == 1);
  CHECK(p.stats().in_use == 1);
  CHECK(p.release(c, 1).what == rel::to_idle);
  CHECK(p.stats().idle == 1);
  auto d = p.acquire(2);
  CHECK(d.what == act::reuse);
  CHECK(d.conn == c);
  CHECK(p.stats().dials == 1);
}

TEST_CASE("the most recently released idle connection is reused first") {
  pool_policy p(limits(0, 3));
  conn_id a = dial_one(p, 0), b = dial_one(p, 0), c = dial_one(p, 0);
  p.release(a, 1);
  p.release(c, 2);
  p.release(b, 3);
  CHECK(p.acquire(4).conn == b);
  CHECK(p.acquire(4).conn == c);
  CHECK(p.acquire(4).conn == a);
}

TEST_CASE("a new connection is dialed only while open is under max_open") {
  pool_policy p(limits(2, 2));
  dial_one(p, 0);
  auto second = p.acquire(0);
  CHECK(second.what == act::dial);  // counted as open before the dial completes
  auto third = p.acquire(0);
  CHECK(third.what == act::wait);
  CHECK(p.stats().open == 2);
  CHECK(p.stats().dials == 2);
  CHECK(p.stats().waiting == 1);
}

TEST_CASE("max_open 0 means unlimited") {
  pool_policy p(limits(0, 2));
  for (int i = 0; i < 1000; ++i) dial_one(p, 0);
  CHECK(p.stats().open == 1000);
  CHECK(p.stats().wait_count == 0);
}

TEST_CASE("a released connection goes to a waiter before the idle list") {
  pool_policy p(limits(1, 1));
  conn_id c = dial_one(p, 0);
  auto w = p.acquire(1);
  REQUIRE(w.what == act::wait);
  auto r = p.release(c, 3);
  CHECK(r.what == rel::to_waiter);
  CHECK(r.waiter == w.waiter);
  CHECK(p.stats().idle == 0);
  CHECK(p.stats().in_use == 1);  // now the waiter's
  CHECK(p.stats().wait_count == 1);
  CHECK(p.stats().wait_seconds == 2.0);
  CHECK(p.release(c, 4).what == rel::to_idle);
}

TEST_CASE("waiters are served first come first served with fifo order") {
  pool_config cfg = limits(1, 1);
  cfg.order = waiter_order::fifo;
  pool_policy p(cfg);
  conn_id c = dial_one(p, 0);
  std::vector<headroom::waiter_id> order;
  for (int i = 0; i < 5; ++i) order.push_back(p.acquire(1 + i).waiter);
  for (int i = 0; i < 5; ++i) {
    auto r = p.release(c, 10 + i);
    REQUIRE(r.what == rel::to_waiter);
    CHECK(r.waiter == order[i]);
  }
}

TEST_CASE("waiters are served in a seeded random order with random order") {
  // 20 waiters: the chance a random pick reproduces FIFO is 1/20!, so
  // "not FIFO" is a safe check; the same seed must give the same order.
  auto run = [](std::uint64_t seed) {
    pool_config cfg = limits(1, 1);
    cfg.order = waiter_order::random;
    cfg.seed = seed;
    pool_policy p(cfg);
    conn_id c = dial_one(p, 0);
    std::vector<headroom::waiter_id> got;
    for (int i = 0; i < 20; ++i) p.acquire(1);
    for (int i = 0; i < 20; ++i) got.push_back(p.release(c, 2).waiter);
    return got;
  };
  auto a = run(7), b = run(7);
  CHECK(a == b);
  CHECK_FALSE(std::is_sorted(a.begin(), a.end()));
  CHECK(std::set<headroom::waiter_id>(a.begin(), a.end()).size() == 20);
}

TEST_CASE("a released connection is closed when the idle list is full") {
  pool_policy p(limits(0, 2));
  std::vector<conn_id> held;
  for (int i = 0; i < 5; ++i) held.push_back(dial_one(p, 0));
  CHECK(p.release(held[0], 1).what == rel::to_idle);
  CHECK(p.release(held[1], 1).what == rel::to_idle);
  for (int i = 2; i < 5; ++i) {
    auto r = p.release(held[i], 1);
    CHECK(r.what == rel::close);
    CHECK(r.reason == headroom::close_reason::max_idle);
    CHECK(p.closed_by_last_call() == std::vector<conn_id>{held[i]});
  }
  CHECK(p.stats().closed_max_idle == 3);
  CHECK(p.stats().open == 2);
  CHECK(p.stats().idle == 2);
}

TEST_CASE("max_idle defaults to 2, negative means 0, and is clamped to max_open") {
  CHECK(pool_policy(pool_config{}).effective_max_idle() == 2);
  CHECK(pool_policy(limits(0, -1)).effective_max_idle() == 0);
  CHECK(pool_policy(limits(0, 0)).effective_max_idle() == 0);
  CHECK(pool_policy(limits(3, 10)).effective_max_idle() == 3);
  CHECK(pool_policy(limits(0, 10)).effective_max_idle() == 10);
}

TEST_CASE("with max_idle 0 every request dials and every release closes") {
  pool_policy p(limits(0, 0));
  for (int i = 0; i < 10; ++i) {
    conn_id c = dial_one(p, i);
    CHECK(p.release(c, i + 0.5).what == rel::close);
  }
  CHECK(p.stats().dials == 10);
  CHECK(p.stats().closed_max_idle == 10);
  CHECK(p.stats().open == 0);
}

TEST_CASE("an idle connection past max_lifetime is closed on acquire and the next is tried") {
  pool_config cfg = limits(0, 2);
  cfg.max_lifetime = 10;
  pool_policy p(cfg);
  conn_id old = dial_one(p, 0);
  conn_id young = dial_one(p, 8);
  p.release(young, 9);
  p.release(old, 9.5);  // most recent, but dialed at 0
  auto d = p.acquire(12);
  CHECK(d.what == act::reuse);
  CHECK(d.conn == young);
  CHECK(p.closed_by_last_call() == std::vector<conn_id>{old});
  CHECK(p.stats().closed_max_lifetime == 1);
}

TEST_CASE("a connection past max_lifetime is closed on release, and a waiter gets a dial") {
  pool_config cfg = limits(1, 1);
  cfg.max_lifetime = 10;
  pool_policy p(cfg);
  conn_id c = dial_one(p, 0);
  auto w = p.acquire(5);
  REQUIRE(w.what == act::wait);
  auto r = p.release(c, 11);
  CHECK(r.what == rel::close);
  CHECK(r.reason == headroom::close_reason::max_lifetime);
  CHECK(r.dials_for_waiters == 1);  // Go's maybeOpenNewConnections
  auto h = p.waiter_dial_succeeded(12);
  CHECK(h.what == rel::to_waiter);
  CHECK(h.waiter == w.waiter);
  CHECK(p.stats().open == 1);
  CHECK(p.stats().dials == 2);
}

TEST_CASE("an idle connection past max_idle_time is closed, on acquire or by the cleaner") {
  pool_config cfg = limits(0, 3);
  cfg.max_idle_time = 5;
  pool_policy p(cfg);
  conn_id a = dial_one(p, 0), b = dial_one(p, 0), c = dial_one(p, 0);
  p.release(a, 1);
  p.release(b, 4);
  p.release(c, 2);
  CHECK(p.expire_idle(6.5) == 0);  // a (idle since 1) expired; b and c not yet
  CHECK(p.closed_by_last_call() == std::vector<conn_id>{a});
  CHECK(p.stats().idle == 2);
  auto d = p.acquire(8);  // c (idle since 2) expired; b (since 4) not
  CHECK(d.what == act::reuse);
  CHECK(d.conn == b);
  CHECK(p.stats().closed_max_idle_time == 2);
  CHECK(p.cleaner_interval() == 5);
}

TEST_CASE("the cleaner runs at most once a second, and not at all without limits") {
  CHECK(pool_policy(pool_config{}).cleaner_interval() == 0);
  pool_config cfg;
  cfg.max_lifetime = 0.2;
  cfg.max_idle_time = 30;
  CHECK(pool_policy(cfg).cleaner_interval() == 1.0);
}

TEST_CASE("a waiter that gives up at its deadline is removed and its wait counted") {
  pool_policy p(limits(1, 1));
  conn_id c = dial_one(p, 0);
  auto w1 = p.acquire(1);
  auto w2 = p.acquire(2);
  CHECK(p.cancel_wait(w1.waiter, 4));
  CHECK_FALSE(p.cancel_wait(w1.waiter, 4));  // already gone
  CHECK(p.stats().wait_timeouts == 1);
  CHECK(p.stats().wait_seconds == 3.0);
  auto r = p.release(c, 5);
  CHECK(r.waiter == w2.waiter);
  CHECK_FALSE(p.cancel_wait(w2.waiter, 6));  // handed over: the caller must release it
  CHECK(p.stats().wait_count == 2);
  CHECK(p.stats().wait_seconds == 6.0);
}

TEST_CASE("a failed dial frees its slot and starts a dial for a waiter") {
  pool_policy p(limits(1, 1));
  REQUIRE(p.acquire(0).what == act::dial);
  auto w = p.acquire(0.1);
  REQUIRE(w.what == act::wait);
  CHECK(p.dial_failed() == 1);  // the freed slot goes to the waiter's dial
  CHECK(p.stats().dial_failures == 1);
  CHECK(p.stats().open == 1);
  CHECK(p.waiter_dial_succeeded(0.2).waiter == w.waiter);
}

TEST_CASE("a broken connection is closed on release, not reused") {
  pool_policy p(limits(0, 2));
  conn_id c = dial_one(p, 0);
  auto r = p.release(c, 1, true);
  CHECK(r.what == rel::close);
  CHECK(r.reason == headroom::close_reason::broken);
  CHECK(p.stats().open == 0);
  CHECK(p.acquire(2).what == act::dial);
}

TEST_CASE("a closed pool closes its idle connections and refuses new acquires") {
  pool_policy p(limits(0, 2));
  conn_id a = dial_one(p, 0), b = dial_one(p, 0);
  p.release(a, 1);
  p.close();
  CHECK(p.closed_by_last_call() == std::vector<conn_id>{a});
  CHECK_THROWS(p.acquire(2));
  CHECK(p.release(b, 2).what == rel::close);
  CHECK(p.stats().open == 0);
}

TEST_CASE("releasing a connection that is not in use is a logic error") {
  pool_policy p(limits(0, 2));
  conn_id c = dial_one(p, 0);
  p.release(c, 1);
  CHECK_THROWS_AS(p.release(c, 2), std::logic_error);
  CHECK_THROWS_AS(p.release(99, 2), std::logic_error);
}

TEST_CASE("statistics add up over a long random sequence of decisions") {
  // Invariants checked after every step: open = in_use + idle + dials in
  // flight, open <= max_open, dials - closes - failures = open.
  pool_config cfg = limits(4, 2);
  cfg.max_lifetime = 7;
  pool_policy p(cfg);
  std::mt19937_64 rng(3);
  std::vector<conn_id> held;
  int dialing = 0;
  std::vector<headroom::waiter_id> waiting;
  std::uint64_t closed = 0;
  double now = 0;
  for (int step = 0; step < 20000; ++step) {
    now += 0.01;
    int what = static_cast<int>(rng() % 4);
    if (what == 0) {
      auto d = p.acquire(now);
      closed += p.closed_by_last_call().size();
      if (d.what == act::reuse) held.push_back(d.conn);
      if (d.what == act::dial) dialing++;
      if (d.what == act::wait) waiting.push_back(d.waiter);
    } else if (what == 1 && dialing > 0) {
      dialing--;
      if (rng() % 10 == 0) {
        dialing += p.dial_failed();
      } else {
        held.push_back(p.dial_succeeded(now));
      }
    } else if (what == 2 && !held.empty()) {
      std::size_t i = rng() % held.size();
      conn_id c = held[i];
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
      auto r = p.release(c, now, rng() % 50 == 0);
      if (r.what == rel::to_waiter) {
        held.push_back(c);
        std::erase(waiting, r.waiter);
      }
      if (r.what == rel::close) closed++;
      dialing += r.dials_for_waiters;
    } else if (what == 3 && !waiting.empty()) {
      headroom::waiter_id w = waiting.front();
      waiting.erase(waiting.begin());
      REQUIRE(p.cancel_wait(w, now));
    }
    const auto& s = p.stats();
    REQUIRE(s.open <= 4);
    REQUIRE(s.in_use == static_cast<int>(held.size()));
    REQUIRE(s.open == s.in_use + s.idle + dialing);
    REQUIRE(s.waiting == static_cast<int>(waiting.size()));
    REQUIRE(s.dials - s.dial_failures - closed == static_cast<std::uint64_t>(s.open));
    REQUIRE(closed ==
            s.closed_max_idle + s.closed_max_idle_time + s.closed_max_lifetime + s.closed_other);
    std::set<conn_id> distinct(held.begin(), held.end());
    REQUIRE(distinct.size() == held.size());  // never the same connection twice at once
  }
}

TEST_CASE("a waiter failed for another reason than its deadline is not counted as a timeout") {
  pool_policy p(limits(1, 1));
  dial_one(p, 0);
  auto w = p.acquire(1);
  CHECK(p.cancel_wait(w.waiter, 2, false));
  CHECK(p.stats().wait_timeouts == 0);
  CHECK(p.stats().waiting == 0);
  CHECK(p.stats().wait_seconds == 1.0);
}

TEST_CASE("an acquire for a new connection dials even with idle connections, within max_open") {
  pool_policy p(limits(2, 2));
  conn_id c = dial_one(p, 0);
  p.release(c, 1);
  auto d = p.acquire(2, true);
  CHECK(d.what == act::dial);  // Go's alwaysNewConn: the idle one may be dead too
  CHECK(p.stats().idle == 1);
  p.dial_succeeded(2);
  CHECK(p.acquire(3, true).what == act::wait);  // max_open still holds
}
