// The Prometheus query client against a real Prometheus (Debian's, private, scraping itself),
// and the time points of --from/--to.
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <functional>
#include <thread>

#include "prometheus_client.hpp"
#include "prometheus_process.hpp"
#include "test_http_server.hpp"

using headroom::calibrate::parse_time_point;
using headroom::calibrate::prometheus_client;
using headroom::calibrate::prometheus_error;
using headroom::calibrate::prometheus_series;

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const prometheus_error& e) {
    return e.what();
  }
  return "(no prometheus_error)";
}

// Waits until Prometheus has scraped itself at least `samples` times (1 s apart).
std::vector<prometheus_series> wait_for_self_scrapes(const prometheus_client& c, int samples) {
  for (int i = 0; i < 60; ++i) {
    auto r = c.query("count_over_time(up{job=\"prometheus\"}[1m])", unix_now());
    if (!r.empty() && r[0].points[0].second >= samples) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  FAIL("Prometheus did not scrape itself " << samples << " times within 30 s");
  return {};
}

}  // namespace

TEST_CASE("time points are read as now, now minus a duration, unix seconds and RFC 3339") {
  const double now = 1795939200.5;
  // Exact: each is integer or millisecond arithmetic on doubles far below 2^53.
  CHECK(parse_time_point("now", now) == now);
  CHECK(parse_time_point("now-10m", now) == now - 600);
  CHECK(parse_time_point("now-250ms", now) == now - 0.25);
  CHECK(parse_time_point("1764400000", now) == 1764400000.0);
  CHECK(parse_time_point("1764400000.25", now) == 1764400000.25);
  CHECK(parse_time_point("2026-11-29T08:00:00Z", now) == 1795939200.0);
  CHECK(parse_time_point("2026-11-29T09:00:00+01:00", now) == 1795939200.0);
  CHECK(parse_time_point("2026-11-29T08:00:00.5Z", now) == 1795939200.5);
  for (const char* bad : {"yesterday", "now-", "now-10parsecs", "2026-11-29",
                          "2026-13-01T00:00:00Z", "2026-11-29T08:00:00", ""}) {
    INFO(bad);
    try {
      parse_time_point(bad, now);
      FAIL("accepted");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find(std::string("'") + bad + "'") != std::string::npos);
    }
  }
}

TEST_CASE("a real Prometheus answers instant, range and scalar queries with labels and values") {
  headroom::test::prometheus_process prometheus;
  const prometheus_client client(prometheus.url());
  wait_for_self_scrapes(client, 8);

  const double now = unix_now();
  auto up = client.query("up{job=\"prometheus\"}", now);
  REQUIRE(up.size() == 1);
  CHECK(up[0].labels.at("job") == "prometheus");
  CHECK(up[0].labels.at("instance") == "127.0.0.1:" + std::to_string(prometheus.port()));
  REQUIRE(up[0].points.size() == 1);
  CHECK(up[0].points[0].first == Approx(now).margin(0.001));  // the time asked, to the ms
  CHECK(up[0].points[0].second == 1);

  // A range of 3 s at a 1 s step, well inside the 8 s scraped: 4 points at start + k x step
  // (Prometheus's grid), all up.
  const double start = std::floor(now) - 5;
  auto range = client.query_range("up{job=\"prometheus\"}", start, start + 3, 1);
  REQUIRE(range.size() == 1);
  REQUIRE(range[0].points.size() == 4);
  for (std::size_t k = 0; k < 4; ++k) {
    CHECK(range[0].points[k].first == Approx(start + static_cast<double>(k)).margin(0.001));
    CHECK(range[0].points[k].second == 1);
  }

  auto scalar = client.query("1 + 1", now);
  REQUIRE(scalar.size() == 1);
  CHECK(scalar[0].labels.empty());
  CHECK(scalar[0].points[0].second == 2);

  // A selector that matches nothing is an empty answer, not an error.
  CHECK(client.query("up{job=\"no-such-job\"}", now).empty());
}

TEST_CASE(
    "a bad query, an unreachable URL and a server that is not Prometheus are one clear line") {
  headroom::test::prometheus_process prometheus;
  const prometheus_client client(prometheus.url());
  const std::string refused = error_of([&] { client.query("sum(", unix_now()); });
  CHECK(refused.find("Prometheus at " + prometheus.url() + " refused the query 'sum('") == 0);
  CHECK(refused.find("parse error") != std::string::npos);  // Prometheus's own words
  CHECK(refused.find('\n') == std::string::npos);

  std::string closed_url;
  {
    headroom::test::test_http_server gone;  // a port that was free a moment ago
    closed_url = gone.url("");
  }
  const std::string unreachable =
      error_of([&] { prometheus_client(closed_url, 2).query("up", unix_now()); });
  CHECK(unreachable == "cannot reach Prometheus at " + closed_url + ": connection refused");

  headroom::test::test_http_server not_prometheus;  // answers 200 "ok" to everything
  const std::string other = not_prometheus.url("");
  const std::string foreign = error_of([&] { prometheus_client(other).query("up", unix_now()); });
  CHECK(foreign == other +
                       " is not a Prometheus server (/api/v1/query: the answer is not "
                       "Prometheus API JSON)");
}
