// Each rule of the Go database/sql pool policy (DESIGN.md), one test each; a rule that changed
// between Go releases has a test per profile, named after the Go version.
// The policy is pure, so these tests are exact: no tolerances.
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <vector>

#include "pool_policy.hpp"

using headroom::bad_conn_retry;
using headroom::conn_id;
using headroom::go_version;
using headroom::pool_config;
using headroom::pool_policy;
using headroom::waiter_order;
using act = pool_policy::acquire_decision::action;
using rel = pool_policy::release_decision::action;

namespace {
pool_config limits(int max_open, int max_idle, go_version go = go_version::go1_10) {
  pool_config c;
  c.max_open = max_open;
  c.max_idle = max_idle;
  c.go = go;
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

TEST_CASE("Go 1.10 and 1.15: the idle connection returned longest ago is reused first") {
  for (go_version go : {go_version::go1_10, go_version::go1_15}) {
    INFO("profile " << headroom::to_string(go));
    pool_policy p(limits(0, 3, go));
    conn_id a = dial_one(p, 0), b = dial_one(p, 0), c = dial_one(p, 0);
    p.release(a, 1);
    p.release(c, 2);
    p.release(b, 3);
    CHECK(p.acquire(4).conn == a);  // freeConn[0]: round robin
    CHECK(p.acquire(4).conn == c);
    CHECK(p.acquire(4).conn == b);
  }
}

TEST_CASE("Go 1.18 and 1.23: the most recently returned idle connection is reused first") {
  for (go_version go : {go_version::go1_18, go_version::go1_23}) {
    INFO("profile " << headroom::to_string(go));
    pool_policy p(limits(0, 3, go));
    conn_id a = dial_one(p, 0), b = dial_one(p, 0), c = dial_one(p, 0);
    p.release(a, 1);
    p.release(c, 2);
    p.release(b, 3);
    CHECK(p.acquire(4).conn == b);
    CHECK(p.acquire(4).conn == c);
    CHECK(p.acquire(4).conn == a);
  }
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
    CHECK(r.effects.close == std::vector<conn_id>{held[i]});
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

TEST_CASE("every profile: an expired idle connection found on reuse is closed and the try fails") {
  // Go's conn(): a taken connection past max_lifetime is closed and the call returns
  // ErrBadConn, one of the retry's tries; it does not look at the next idle one.
  for (go_version go :
       {go_version::go1_10, go_version::go1_15, go_version::go1_18, go_version::go1_23}) {
    INFO("profile " << headroom::to_string(go));
    pool_config cfg = limits(0, 2, go);
    cfg.max_lifetime = 10;
    pool_policy p(cfg);
    conn_id old = dial_one(p, 0);
    conn_id young = dial_one(p, 8);
    // Whichever end the profile reuses from, the old one is taken first.
    const bool newest_first = go >= go_version::go1_18;
    p.release(newest_first ? young : old, 9);
    p.release(newest_first ? old : young, 9.5);
    auto d = p.acquire(12);
    CHECK(d.what == act::bad_conn);
    CHECK(d.conn == old);
    CHECK(d.effects.close == std::vector<conn_id>{old});
    CHECK(p.stats().closed_max_lifetime == 1);
    CHECK(p.stats().idle == 1);
    auto again = p.acquire(12);
    CHECK(again.what == act::reuse);
    CHECK(again.conn == young);
  }
}

TEST_CASE("Go 1.10: with three expired idle connections the retry closes two and dials the third") {
  // Each expired connection uses up a pooled try, so the last try dials (alwaysNewConn) even
  // though an idle connection is left.
  pool_config cfg = limits(0, 3, go_version::go1_10);
  cfg.max_lifetime = 10;
  pool_policy p(cfg);
  std::vector<conn_id> held{dial_one(p, 0), dial_one(p, 0), dial_one(p, 0)};
  for (conn_id c : held) CHECK(p.release(c, 20).what == rel::to_idle);  // 1.10 keeps them
  bad_conn_retry retry;
  std::vector<act> tries;
  for (;;) {
    auto d = p.acquire(20, retry.new_conn());
    tries.push_back(d.what);
    if (d.what != act::bad_conn || !retry.again()) break;
  }
  CHECK(tries == std::vector<act>{act::bad_conn, act::bad_conn, act::dial});
  CHECK(p.stats().closed_max_lifetime == 2);
  CHECK(p.stats().idle == 1);
}

TEST_CASE("the retry rule: two tries from the pool, then one on a new connection, then the error") {
  bad_conn_retry retry;
  CHECK_FALSE(retry.new_conn());  // first try: from the pool
  CHECK(retry.again());
  CHECK_FALSE(retry.new_conn());  // second try: from the pool
  CHECK(retry.again());
  CHECK(retry.new_conn());  // third try: alwaysNewConn
  CHECK_FALSE(retry.again());
}

TEST_CASE(
    "Go 1.10: a connection past max_lifetime goes back, and a waiter handed it fails its try") {
  pool_config cfg = limits(1, 1, go_version::go1_10);
  cfg.max_lifetime = 10;
  pool_policy p(cfg);
  conn_id c = dial_one(p, 0);
  auto w = p.acquire(5);
  REQUIRE(w.what == act::wait);
  auto r = p.release(c, 11);
  CHECK(r.what == rel::waiter_bad_conn);
  CHECK(r.waiter == w.waiter);
  CHECK(r.effects.close == std::vector<conn_id>{c});
  CHECK_FALSE(r.effects.start_waiter_dial);  // nobody else waits: the retry dials itself
  CHECK(p.stats().waiting == 0);
  CHECK(p.stats().open == 0);
  CHECK(p.acquire(11).what == act::dial);  // the waiter's second try
  // With no waiter, an expired connection returned is kept idle until someone takes it.
  conn_id old = p.dial_succeeded(11);
  CHECK(p.release(old, 22).what == rel::to_idle);
}

TEST_CASE(
    "Go 1.15: a connection past max_lifetime is closed when returned, and a waiter gets a dial") {
  for (go_version go : {go_version::go1_15, go_version::go1_18, go_version::go1_23}) {
    INFO("profile " << headroom::to_string(go));
    pool_config cfg = limits(1, 1, go);
    cfg.max_lifetime = 10;
    pool_policy p(cfg);
    conn_id c = dial_one(p, 0);
    auto w = p.acquire(5);
    REQUIRE(w.what == act::wait);
    auto r = p.release(c, 11);
    CHECK(r.what == rel::close);
    CHECK(r.reason == headroom::close_reason::max_lifetime);
    CHECK(r.effects.close == std::vector<conn_id>{c});
    CHECK(r.effects.start_waiter_dial);  // Go's maybeOpenNewConnections
    auto h = p.waiter_dial_succeeded(12);
    CHECK(h.what == rel::to_waiter);
    CHECK(h.waiter == w.waiter);
    CHECK(p.stats().open == 1);
    CHECK(p.stats().dials == 2);
  }
}

TEST_CASE("Go 1.10: max_idle_time is refused, since SetConnMaxIdleTime came in Go 1.15") {
  pool_config cfg;
  cfg.max_idle_time = 5;
  CHECK_THROWS_WITH(pool_policy(cfg), Catch::Contains("max_idle_time needs Go 1.15"));
  cfg.go = go_version::go1_15;
  CHECK_NOTHROW(pool_policy(cfg));
}

TEST_CASE("Go 1.15: idle time is checked by the cleaner, never on reuse") {
  pool_config cfg = limits(0, 3, go_version::go1_15);
  cfg.max_idle_time = 5;
  pool_policy p(cfg);
  conn_id a = dial_one(p, 0), b = dial_one(p, 0), c = dial_one(p, 0);
  p.release(a, 1);
  p.release(b, 4);
  p.release(c, 2);
  auto clean = p.expire_idle(6.5);  // a (idle since 1) expired; b and c not yet
  CHECK(clean.effects.close == std::vector<conn_id>{a});
  CHECK_FALSE(clean.effects.start_waiter_dial);
  CHECK(p.stats().idle == 2);
  // The cleaner moved c into a's place (Go 1.15-1.17 delete that way), so c is taken first, and
  // although it has been idle since 2 (past 5 s at 8) it is handed out: reuse does not look at
  // idle time.
  auto d = p.acquire(8);
  CHECK(d.what == act::reuse);
  CHECK(d.conn == c);
  CHECK(p.acquire(8).conn == b);
  CHECK(p.stats().closed_max_idle_time == 1);
}

TEST_CASE("the cleaner runs at most once a second, and not at all without limits") {
  CHECK(pool_policy(pool_config{}).cleaner_interval() == 0);
  CHECK(pool_policy(pool_config{}).expire_idle(5).next_run == 0);
  pool_config cfg;
  cfg.go = go_version::go1_15;
  cfg.max_lifetime = 0.2;
  cfg.max_idle_time = 30;
  CHECK(pool_policy(cfg).cleaner_interval() == 1.0);
  CHECK(pool_policy(cfg).expire_idle(5).next_run == 1.0);
}

TEST_CASE("Go 1.10: the cleaner runs every max_lifetime") {
  pool_config cfg = limits(0, 2, go_version::go1_10);
  cfg.max_lifetime = 30;
  pool_policy p(cfg);
  CHECK(p.cleaner_interval() == 30);
  p.release(dial_one(p, 0), 1);  // expires at 30: the next run is still 30 s away
  CHECK(p.expire_idle(10).next_run == 30);
}

TEST_CASE("Go 1.15: the cleaner runs every min(max_lifetime, max_idle_time) of those set") {
  pool_config cfg = limits(0, 2, go_version::go1_15);
  cfg.max_lifetime = 30;
  cfg.max_idle_time = 12;
  pool_policy p(cfg);
  CHECK(p.cleaner_interval() == 12);
  p.release(dial_one(p, 0), 9);  // idle until 21
  CHECK(p.expire_idle(10).next_run == 12);
  cfg.max_lifetime = 0;
  CHECK(pool_policy(cfg).cleaner_interval() == 12);  // an unset limit is not a 0 interval
}

TEST_CASE("Go 1.18: the cleaner wakes at the next idle connection's expiry, never within 1 s") {
  for (go_version go : {go_version::go1_18, go_version::go1_23}) {
    INFO("profile " << headroom::to_string(go));
    pool_config cfg = limits(0, 2, go);
    cfg.max_lifetime = 30;
    cfg.max_idle_time = 12;
    pool_policy p(cfg);
    CHECK(p.cleaner_interval() == 12);  // nothing idle yet: the shortest limit
    conn_id a = dial_one(p, 0), b = dial_one(p, 8);
    p.release(a, 9);                             // idle time ends at 21, lifetime at 30
    p.release(b, 10);                            // idle time ends at 22, lifetime at 38
    CHECK(p.expire_idle(15).next_run == 6);      // a's idle time, at 21
    CHECK(p.expire_idle(20.5).next_run == 1.0);  // a at 21 is 0.5 s away: at least 1 s
    auto late = p.expire_idle(21.5);             // a expired
    CHECK(late.effects.close == std::vector<conn_id>{a});
    CHECK(late.next_run == 1.0);  // b's idle time ends at 22: 0.5 s away, so 1 s
  }
}

TEST_CASE("Go 1.10: the cleaner deletes by moving the last idle connection into the gap") {
  // Go 1.10-1.17 swap the last entry of freeConn into the expired one's place, so the
  // oldest-first order breaks: c, returned last, is reused before b.
  pool_config cfg = limits(0, 3, go_version::go1_10);
  cfg.max_lifetime = 10;
  pool_policy p(cfg);
  conn_id a = dial_one(p, 0), b = dial_one(p, 5), c = dial_one(p, 5);
  p.release(a, 6);
  p.release(b, 7);
  p.release(c, 8);
  CHECK(p.expire_idle(11).effects.close == std::vector<conn_id>{a});
  CHECK(p.acquire(11).conn == c);
  CHECK(p.acquire(11).conn == b);
}

TEST_CASE("Go 1.18: the cleaner keeps the idle order when it deletes") {
  pool_config cfg = limits(0, 3, go_version::go1_18);
  cfg.max_lifetime = 10;
  pool_policy p(cfg);
  conn_id a = dial_one(p, 0), b = dial_one(p, 5), c = dial_one(p, 5);
  p.release(b, 6);
  p.release(a, 7);
  p.release(c, 8);
  CHECK(p.expire_idle(11).effects.close == std::vector<conn_id>{a});
  CHECK(p.acquire(11).conn == c);  // the most recently returned
  CHECK(p.acquire(11).conn == b);
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

TEST_CASE("a caller's failed dial fails only that caller and lets the opener dial for a waiter") {
  pool_policy p(limits(1, 1));
  REQUIRE(p.acquire(0).what == act::dial);
  auto w = p.acquire(0.1);
  REQUIRE(w.what == act::wait);
  CHECK(p.dial_failed().start_waiter_dial);  // the freed slot goes to the waiter's dial
  CHECK(p.stats().dial_failures == 1);
  CHECK(p.stats().open == 1);
  CHECK(p.stats().waiting == 1);  // the waiter is not failed by someone else's dial
  CHECK(p.waiter_dial_succeeded(0.2).waiter == w.waiter);
}

TEST_CASE("a failed dial for waiters fails one waiter, in waiter order, and dials for the rest") {
  // Go's openNewConnection: putConnDBLocked(nil, err) hands the error to one waiter, then
  // maybeOpenNewConnections; so each failed dial fails one waiter while the database is down.
  pool_config cfg = limits(1, 1);
  cfg.order = waiter_order::fifo;
  pool_policy p(cfg);
  conn_id c = dial_one(p, 0);
  std::vector<headroom::waiter_id> ws;
  for (int i = 0; i < 3; ++i) ws.push_back(p.acquire(1 + i).waiter);
  REQUIRE(p.release(c, 5, true).effects.start_waiter_dial);
  for (int i = 0; i < 3; ++i) {
    auto f = p.waiter_dial_failed(6 + i);
    CHECK(f.failed_waiter == ws[i]);
    CHECK(f.effects.start_waiter_dial == (i < 2));  // a dial for each waiter left
  }
  CHECK(p.stats().waiting == 0);
  CHECK(p.stats().open == 0);
  CHECK(p.stats().dial_failures == 3);
  CHECK(p.stats().wait_timeouts == 0);
  CHECK(p.stats().wait_seconds == (6 - 1) + (7 - 2) + (8 - 3));
}

TEST_CASE("dials for waiters are made one at a time, as many as waiters up to max_open - open") {
  // Go's maybeOpenNewConnections counts min(waiters, max_open - open) dials as open at once;
  // its one connectionOpener goroutine makes them one after another.
  pool_config cfg = limits(3, 3);
  cfg.order = waiter_order::fifo;
  pool_policy p(cfg);
  std::vector<conn_id> held{dial_one(p, 0), dial_one(p, 0), dial_one(p, 0)};
  std::vector<headroom::waiter_id> ws;
  for (int i = 0; i < 5; ++i) ws.push_back(p.acquire(1).waiter);
  std::vector<bool> starts;
  for (conn_id c : held) starts.push_back(p.release(c, 2, true).effects.start_waiter_dial);
  CHECK(starts == std::vector<bool>{true, false, false});  // one dial running, two queued
  CHECK(p.stats().open == 3);                              // never above max_open, though five wait
  CHECK(p.stats().dials_queued == 2);
  CHECK(p.stats().dials == 4);  // three by callers, one started by the opener
  for (int i = 0; i < 3; ++i) {
    auto d = p.waiter_dial_succeeded(3 + i);
    CHECK(d.what == rel::to_waiter);
    CHECK(d.waiter == ws[i]);
    CHECK(d.effects.start_waiter_dial == (i < 2));  // the next queued dial, if any
  }
  CHECK(p.stats().dials_queued == 0);
  CHECK(p.stats().open == 3);
  CHECK(p.stats().waiting == 2);  // they wait for a release: open is at max_open
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

TEST_CASE("a closed pool closes its idle connections, fails its waiters and refuses acquires") {
  pool_policy p(limits(0, 2));
  conn_id a = dial_one(p, 0), b = dial_one(p, 0);
  p.release(a, 1);
  CHECK(p.close(1.5).effects.close == std::vector<conn_id>{a});
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

TEST_CASE("statistics add up over a long random sequence of decisions, in every profile") {
  // Invariants checked after every step: open = in_use + idle + dials in flight + dials
  // queued, open <= max_open, dials - closes - failures = open - queued, one opener dial.
  for (go_version go :
       {go_version::go1_10, go_version::go1_15, go_version::go1_18, go_version::go1_23}) {
    INFO("profile " << headroom::to_string(go));
    pool_config cfg = limits(4, 2, go);
    cfg.max_lifetime = 7;
    if (go != go_version::go1_10) cfg.max_idle_time = 3;
    pool_policy p(cfg);
    std::mt19937_64 rng(3);
    std::vector<conn_id> held;
    int dialing = 0;  // by callers
    bool opener_dialing = false;
    std::vector<headroom::waiter_id> waiting;
    std::uint64_t closed = 0;
    auto effects = [&](const headroom::pool_effects& e) {
      closed += e.close.size();
      if (e.start_waiter_dial) {
        REQUIRE_FALSE(opener_dialing);  // one at a time
        opener_dialing = true;
      }
    };
    auto placed = [&](const pool_policy::release_decision& r) {
      effects(r.effects);
      if (r.what == rel::to_waiter) held.push_back(r.conn);
      if (r.what == rel::to_waiter || r.what == rel::waiter_bad_conn) std::erase(waiting, r.waiter);
    };
    double now = 0;
    for (int step = 0; step < 20000; ++step) {
      now += 0.01;
      int what = static_cast<int>(rng() % 6);
      if (what == 0) {
        auto d = p.acquire(now, rng() % 20 == 0);
        effects(d.effects);
        if (d.what == act::reuse) held.push_back(d.conn);
        if (d.what == act::dial) dialing++;
        if (d.what == act::wait) waiting.push_back(d.waiter);
      } else if (what == 1 && dialing > 0) {
        dialing--;
        if (rng() % 10 == 0) {
          effects(p.dial_failed());
        } else {
          held.push_back(p.dial_succeeded(now));
        }
      } else if (what == 2 && !held.empty()) {
        std::size_t i = rng() % held.size();
        conn_id c = held[i];
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
        placed(p.release(c, now, rng() % 50 == 0));
      } else if (what == 3 && !waiting.empty()) {
        headroom::waiter_id w = waiting.front();
        waiting.erase(waiting.begin());
        REQUIRE(p.cancel_wait(w, now));
      } else if (what == 4 && opener_dialing) {
        opener_dialing = false;
        if (rng() % 10 == 0) {
          auto f = p.waiter_dial_failed(now);
          effects(f.effects);
          if (f.failed_waiter) std::erase(waiting, f.failed_waiter);
        } else {
          placed(p.waiter_dial_succeeded(now));
        }
      } else if (what == 5 && step % 100 == 0) {
        effects(p.expire_idle(now).effects);
      }
      const auto& s = p.stats();
      REQUIRE(s.open <= 4);
      REQUIRE(s.in_use == static_cast<int>(held.size()));
      REQUIRE(s.open == s.in_use + s.idle + dialing + (opener_dialing ? 1 : 0) + s.dials_queued);
      REQUIRE(s.waiting == static_cast<int>(waiting.size()));
      REQUIRE(s.dials - s.dial_failures - closed ==
              static_cast<std::uint64_t>(s.open - s.dials_queued));
      REQUIRE(closed ==
              s.closed_max_idle + s.closed_max_idle_time + s.closed_max_lifetime + s.closed_other);
      std::set<conn_id> distinct(held.begin(), held.end());
      REQUIRE(distinct.size() == held.size());  // never the same connection twice at once
    }
    CHECK(p.stats().closed_max_lifetime > 0);
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

TEST_CASE("closing the pool fails every waiter and drops the dials queued for them") {
  pool_policy p(limits(2, 2));
  conn_id a = dial_one(p, 0), b = dial_one(p, 0);
  auto w1 = p.acquire(1), w2 = p.acquire(1);
  REQUIRE(p.release(a, 2, true).effects.start_waiter_dial);
  p.release(b, 2, true);  // a second dial for waiters, queued behind the first
  REQUIRE(p.stats().dials_queued == 1);
  auto c = p.close(3);
  CHECK(c.failed_waiters == std::vector<headroom::waiter_id>{w1.waiter, w2.waiter});
  CHECK(p.stats().waiting == 0);
  CHECK(p.stats().dials_queued == 0);
  CHECK(p.stats().open == 1);  // the dial in progress
  auto late = p.waiter_dial_succeeded(4);
  CHECK(late.what == rel::close);
  CHECK(late.reason == headroom::close_reason::shutdown);
  CHECK_FALSE(late.effects.start_waiter_dial);
  CHECK(p.stats().open == 0);
}

TEST_CASE("every Go profile picks waiters at random unless an order is set") {
  for (go_version go :
       {go_version::go1_10, go_version::go1_15, go_version::go1_18, go_version::go1_23}) {
    pool_config cfg;
    cfg.go = go;
    CHECK(headroom::effective_waiter_order(cfg) == waiter_order::random);
    cfg.order = waiter_order::fifo;
    CHECK(headroom::effective_waiter_order(cfg) == waiter_order::fifo);
  }
}

TEST_CASE("SetMaxIdleConns on a running pool closes the most recently returned idle connections") {
  pool_policy p(limits(0, 4));
  conn_id a = dial_one(p, 0), b = dial_one(p, 0), c = dial_one(p, 0);
  p.release(a, 1);
  p.release(b, 2);
  p.release(c, 3);
  auto e = p.set_max_idle(1);  // Go keeps freeConn[:1]: a, the one returned first
  CHECK(e.close == std::vector<conn_id>{c, b});
  CHECK_FALSE(e.start_waiter_dial);
  CHECK(p.stats().idle == 1);
  CHECK(p.stats().open == 1);
  CHECK(p.stats().closed_max_idle == 2);
  CHECK(p.stats().max_idle == 1);
  CHECK(p.acquire(4).conn == a);
  // Zero or a negative limit keeps none: the next release closes its connection.
  p.set_max_idle(0);
  CHECK(p.stats().max_idle == 0);
  CHECK(p.release(a, 5).what == rel::close);
  CHECK(p.stats().open == 0);
}

TEST_CASE("SetMaxIdleConns is clamped to max_open, and a higher limit keeps more") {
  pool_policy p(limits(3, 2));
  p.set_max_idle(10);
  CHECK(p.stats().max_idle == 3);
  CHECK(p.config().max_idle == 3);  // Go stores the clamped value
  conn_id a = dial_one(p, 0), b = dial_one(p, 0), c = dial_one(p, 0);
  CHECK(p.release(a, 1).what == rel::to_idle);
  CHECK(p.release(b, 1).what == rel::to_idle);
  CHECK(p.release(c, 1).what == rel::to_idle);  // the default of 2 would have closed it
}

TEST_CASE("SetMaxOpenConns lowers the idle limit with it, and a negative value is unlimited") {
  pool_policy p(limits(0, 8));
  conn_id a = dial_one(p, 0), b = dial_one(p, 0), c = dial_one(p, 0);
  p.release(a, 1);
  p.release(b, 1);
  p.release(c, 1);
  auto e = p.set_max_open(2);  // idle 8 > 2: Go calls SetMaxIdleConns(2)
  CHECK(e.close == std::vector<conn_id>{c});
  CHECK(p.stats().max_open == 2);
  CHECK(p.stats().max_idle == 2);
  CHECK(p.stats().idle == 2);
  // A higher maximum leaves the idle limit where it is.
  CHECK(p.set_max_open(5).close.empty());
  CHECK(p.stats().max_idle == 2);
  p.set_max_open(-3);
  CHECK(p.stats().max_open == 0);
  CHECK(p.config().max_open == 0);
}

TEST_CASE("a lower max_open closes in-use connections over it when they are released") {
  pool_policy p(limits(0, 4));
  conn_id a = dial_one(p, 0), b = dial_one(p, 0), c = dial_one(p, 0);
  CHECK(p.set_max_open(1).close.empty());  // in use: nothing to close yet
  CHECK(p.acquire(1).what == act::wait);   // open 3 >= 1
  auto r = p.release(a, 2);
  CHECK(r.what == rel::close);
  CHECK(r.reason == headroom::close_reason::over_max_open);
  CHECK(p.release(b, 2).what == rel::close);
  // Back at the limit: the last one goes to the waiter.
  CHECK(p.release(c, 2).what == rel::to_waiter);
  CHECK(p.stats().open == 1);
}

TEST_CASE("a higher max_open does not dial for waiters until a connection is released") {
  pool_policy p(limits(1, 1));
  conn_id a = dial_one(p, 0);
  auto w = p.acquire(1);
  REQUIRE(w.what == act::wait);
  auto e = p.set_max_open(4);
  CHECK_FALSE(e.start_waiter_dial);  // Go's SetMaxOpenConns asks the opener for nothing
  CHECK(p.stats().dials_queued == 0);
  CHECK(p.acquire(2).what == act::dial);  // a new caller may dial now
  CHECK(p.release(a, 3).what == rel::to_waiter);
}
