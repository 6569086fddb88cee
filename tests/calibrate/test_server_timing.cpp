// Tests of Server-Timing parsing, including headers that break the grammar.
#include <catch2/catch.hpp>

#include "server_timing.hpp"

using headroom::calibrate::parse_server_timing;

TEST_CASE("the service's Server-Timing header gives all five phases in seconds") {
  auto r = parse_server_timing(
      "queue;dur=0.012, wait;dur=0, dial;dur=31.2, query;dur=0.91, release;dur=0.05");
  REQUIRE_FALSE(r.malformed);
  REQUIRE(r.entries.size() == 5);
  CHECK(r.entries[0].name == "queue");
  CHECK(r.entries[0].seconds == Approx(12e-6));
  CHECK(r.entries[1].seconds == 0.0);
  CHECK(r.entries[2].name == "dial");
  CHECK(r.entries[2].seconds == Approx(0.0312));
  CHECK(r.entries[4].name == "release");
}

TEST_CASE("descriptions, quoted values and spacing allowed by the spec are read") {
  auto r = parse_server_timing(
      R"(db ; desc="a, b; c" ; dur = 2.5 ,cache;desc=hit,  total;dur="7";dur=9,miss)");
  CHECK_FALSE(r.malformed);
  REQUIRE(r.entries.size() == 2);  // `cache` and `miss` have no duration: not kept, not errors
  CHECK(r.entries[0].name == "db");
  CHECK(r.entries[0].seconds == Approx(0.0025));
  CHECK(r.entries[1].name == "total");
  CHECK(r.entries[1].seconds == Approx(0.007));  // the first dur wins, as the spec says
  CHECK(parse_server_timing("").entries.empty());
  CHECK_FALSE(parse_server_timing("").malformed);
  CHECK(parse_server_timing("a;DUR=1").entries.size() == 1);  // parameter names ignore case
}

TEST_CASE("malformed metrics are skipped and flagged while the good ones are kept") {
  auto r = parse_server_timing(
      "queue;dur=abc, bad name;dur=1, neg;dur=-3, inf;dur=inf, ;dur=2, query;dur=0.5, x;dur=1e");
  CHECK(r.malformed);
  REQUIRE(r.entries.size() == 1);
  CHECK(r.entries[0].name == "query");
  CHECK(r.entries[0].seconds == Approx(0.0005));
  auto unbalanced = parse_server_timing(R"(query;dur=1, db;desc="never closed)");
  CHECK(unbalanced.malformed);
  auto garbage = parse_server_timing("\x01\x02;;;===,,,\"");
  CHECK(garbage.malformed);
  CHECK(garbage.entries.empty());
}
