// --pool-settings as a user writes it, the warm pool --auto adds, and the /pool URL of a target.
// (Reading and changing a real service's pool: test_calibrate_command; here a /pool that answers
// with an error status, which the real service never does.)
#include <catch2/catch.hpp>
#include <stdexcept>

#include "pool_settings.hpp"
#include "test_http_server.hpp"

using namespace headroom::calibrate;

TEST_CASE("pool settings read current, warm and OPEN/IDLE, in the order given") {
  const auto s = parse_pool_settings("current,warm,0/2,16/4", 2);
  REQUIRE(s.size() == 4);
  CHECK_FALSE(s[0].has_value());
  CHECK(*s[1] == pool_limits{4, 4});
  CHECK(*s[2] == pool_limits{0, 2});
  CHECK(*s[3] == pool_limits{16, 4});
  CHECK(warm_pool(8) == pool_limits{16, 16});
  CHECK(pool_label({0, 2}) == "max_open 0, max_idle 2");
}

TEST_CASE("a bad or repeated setting is refused by name") {
  const std::string form =
      "is not a setting (current, warm, or OPEN/IDLE such as 8/8: max_open and max_idle, whole "
      "numbers >= 0, max_open 0 = no limit)";
  CHECK_THROWS_WITH(parse_pool_settings("current,8", 2), "--pool-settings: '8' " + form);
  CHECK_THROWS_WITH(parse_pool_settings("8/x", 2), "--pool-settings: '8/x' " + form);
  CHECK_THROWS_WITH(parse_pool_settings("-1/2", 2), "--pool-settings: '-1/2' " + form);
  CHECK_THROWS_WITH(parse_pool_settings("current,", 2), "--pool-settings: '' " + form);
  CHECK_THROWS_WITH(parse_pool_settings("Current", 2), "--pool-settings: 'Current' " + form);
  CHECK_THROWS_WITH(parse_pool_settings("4/4,warm", 2), "--pool-settings: 'warm' is listed twice");
  CHECK_THROWS_WITH(parse_pool_settings("current,current", 2),
                    "--pool-settings: 'current' is listed twice");
}

TEST_CASE("two settings Go applies alike are one setting") {
  CHECK(as_applied({8, 16}) == pool_limits{8, 8});
  CHECK(as_applied({0, 16}) == pool_limits{0, 16});  // no open limit: the idle limit stands
  CHECK(as_applied({8, 2}) == pool_limits{8, 2});
  CHECK_THROWS_WITH(parse_pool_settings("8/16,0/2,8/8", 2),
                    "--pool-settings: '8/8' is the same setting as '8/16' (max_open 8, max_idle "
                    "8: Go keeps max_idle <= max_open)");
  CHECK(parse_pool_settings("8/16,16/16", 2).size() == 2);
}

TEST_CASE("a /pool that answers an error is named with its status; a missing one is nullopt") {
  headroom::test::test_http_server server;
  CHECK_THROWS_WITH(read_pool_limits(server.url("/pool?status=401")),
                    Catch::Contains("cannot read the pool setting: " +
                                    server.url("/pool?status=401") + ": HTTP 401"));
  CHECK_THROWS_AS(read_pool_limits(server.url("/pool?status=500")), std::runtime_error);
  CHECK_FALSE(read_pool_limits(server.url("/pool?status=404")).has_value());
  // 200 with a body that is not a pool setting ("ok")
  CHECK_THROWS_WITH(read_pool_limits(server.url("/pool")),
                    Catch::Contains("the answer is not {\"max_open\": N, \"max_idle\": N}"));
}

TEST_CASE("a target's /pool is on the same host and port") {
  CHECK(pool_admin_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/pool");
  CHECK(pool_admin_url("http://localhost:9000/api/people?x=1") == "http://localhost:9000/pool");
}
