// Unit tests of the request handler's pure parts: Age parsing and its error
// messages, PUT /pool's body, the Server-Timing header, JSON errors and the histogram buckets.
#include <algorithm>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cmath>

#include "metrics.hpp"
#include "people_handler.hpp"

using namespace headroom;

namespace {

// `parse` refuses `body` as a client's mistake: a 400 with a message that says something.
template <class Parse>
void check_bad_request(Parse parse, const char* body) {
  try {
    parse(body);
    FAIL("accepted");
  } catch (const bad_request& e) {
    CHECK(e.status == 400);
    CHECK(std::string(e.what()).size() > 10);
  }
}

}  // namespace

TEST_CASE("an Age is read from Age or age and must be a non-negative 32-bit integer") {
  CHECK(parse_age(R"({"Age": 30})") == 30);
  CHECK(parse_age(R"({"age": 300})") == 300);
  CHECK(parse_age(R"({"Age": 0})") == 0);
  CHECK(parse_age(R"({"Age": 2147483647})") == 2147483647);
  CHECK(parse_age(R"( {"Age": 7, "Name": "x"} )") == 7);
  // "Age" wins when both spellings are present.
  CHECK(parse_age(R"({"age": 1, "Age": 2})") == 2);
  for (const char* bad : {"", "{", "[]", "30", R"({"Age": "30"})", R"({"Age": 30.5})",
                          R"({"Age": -1})", R"({"Age": 2147483648})", R"({"Age": null})", R"({})",
                          R"({"Age": 18446744073709551615})"}) {
    INFO(bad);
    check_bad_request(parse_age, bad);
  }
}

TEST_CASE("a pool change takes max_open >= 0 and any integer max_idle, either or both") {
  auto c = parse_pool_change(R"({"max_open": 8, "max_idle": 8})");
  CHECK(c.max_open == 8);
  CHECK(c.max_idle == 8);
  c = parse_pool_change(R"({"max_idle": -1})");  // Go: 0 or less keeps none
  CHECK_FALSE(c.max_open);
  CHECK(c.max_idle == -1);
  c = parse_pool_change(R"({"max_open": 0})");  // unlimited
  CHECK(c.max_open == 0);
  CHECK_FALSE(c.max_idle);
  for (const char* bad : {"", "{", "[]", "8", "{}", R"({"max_open": -1})", R"({"max_open": 2.5})",
                          R"({"max_idle": "2"})", R"({"max_idle": null})", R"({"MaxOpen": 2})",
                          R"({"max_open": 2147483648})", R"({"max_idle": -2147483649})",
                          R"({"max_open": 18446744073709551615})"}) {
    INFO(bad);
    check_bad_request(parse_pool_change, bad);
  }
}

TEST_CASE("Server-Timing lists the five phases in order and in milliseconds") {
  phase_times p;
  p.queue = 0.000012;
  p.wait = 0;
  p.dial = 0.0312;
  p.query = 0.00091;
  p.release = 0.00005;
  CHECK(server_timing(p) ==
        "queue;dur=0.012, wait;dur=0.000, dial;dur=31.200, query;dur=0.910, release;dur=0.050");
}

TEST_CASE("error bodies are JSON objects with an escaped error message") {
  const auto v = boost::json::parse(json_error("bad \"quote\"\n"));
  CHECK(v.as_object().at("error").as_string() == "bad \"quote\"\n");
  const reply r = error_reply(413, "too big");
  CHECK(r.status == 413);
  CHECK(r.content_type == "application/json");
}

TEST_CASE("phase buckets run from 0.1 ms to 10 s and are densest between 10 and 100 ms") {
  const auto b = phase_buckets();
  REQUIRE(b.size() > 2);
  CHECK(b.front() == Approx(1e-4));
  CHECK(b.back() == Approx(10));
  CHECK(std::is_sorted(b.begin(), b.end()));
  CHECK(std::adjacent_find(b.begin(), b.end()) == b.end());
  const auto in = [&](double lo, double hi) {
    return std::count_if(b.begin(), b.end(), [&](double x) { return x >= lo && x < hi; });
  };
  CHECK(in(0.01, 0.1) == 40);
  CHECK(in(0.001, 0.01) == 10);
  // Adjacent bounds in 10-100 ms differ by 10^(1/40) - 1, about 6 %.
  CHECK(b[std::size_t(in(1e-4, 0.01)) + 1] / b[std::size_t(in(1e-4, 0.01))] ==
        Approx(std::pow(10.0, 1.0 / 40)));
}
