// Each rule of the Go database/sql pool policy (DESIGN.md), one test each.
#include <catch2/catch.hpp>

#include "pool_policy.hpp"

using headroom::pool_config;
using headroom::pool_policy;
using act = pool_policy::acquire_decision::action;
using rel = pool_policy::release_decision::action;

namespace {
// Acquire that must dial, and complete the dial.
headroom::conn_id dial_one(pool_policy& p, double now) {
  auto d = p.acquire(now);
  REQUIRE(d.what == act::dial);
  return p.dial_succeeded(now);
}
}  // namespace

TEST_CASE("an empty pool dials, and a released connection is reused") {
  pool_policy p(pool_config{});
  auto c = dial_one(p, 0);
  CHECK(p.stats().open == 1);
  CHECK(p.stats().in_use == 1);
  CHECK(p.release(c, 1).what == rel::to_idle);
  auto d = p.acquire(2);
  CHECK(d.what == act::reuse);
  CHECK(d.conn == c);
  CHECK(p.stats().dials == 1);
}
