// Tests of the Prometheus text parser, snapshot deltas, histogram quantiles and the scrape: on a
// page captured from headroom-service (tests/fixtures/service_metrics.txt, after 20 requests
// answered 200 and one 400), on small texts written here, and ([live]) on the running service.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "metrics_scrape.hpp"
#include "prometheus_text.hpp"
#include "service_process.hpp"
#include "test_http_server.hpp"

using namespace headroom::calibrate;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(HEADROOM_TEST_FIXTURES_DIR) + "/" + name);
  REQUIRE(in);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The message of the metrics_text_error that parsing `text` throws ("" if none).
std::string rejection(const std::string& text) {
  try {
    metrics_snapshot::parse(text);
  } catch (const metrics_text_error& e) {
    return e.what();
  }
  return "";
}

histogram_series buckets(std::vector<histogram_bucket> b) {
  histogram_series h;
  h.buckets = std::move(b);
  h.count = h.buckets.back().count;
  return h;
}

// Exact by hand; the interpolation's arithmetic rounds in the last bits only.
constexpr double rounding = 1e-12;

}  // namespace

TEST_CASE("the service's captured /metrics page is read with its types, gauges and histograms") {
  const auto snap = metrics_snapshot::parse(fixture("service_metrics.txt"));
  // 21 families: the in-flight gauge; 6 phase histograms of 81 finite buckets + Inf + sum +
  // count; 2 request histograms (200 and 400) of 51 + Inf + sum + count; 18 pool/process figures.
  CHECK(snap.samples().size() == 1 + 6 * 84 + 2 * 54 + 18);
  CHECK(snap.type("headroom_phase_seconds") == metric_type::histogram);
  CHECK(snap.type("headroom_pool_dials_total") == metric_type::counter);
  CHECK(snap.type("headroom_pool_open") == metric_type::gauge);
  CHECK(snap.help("headroom_pool_idle") == "Idle connections (DBStats.Idle)");
  CHECK(snap.value("headroom_pool_dials_total") == 1.0);
  CHECK(snap.value("process_threads") == 68.0);
  CHECK(snap.value("process_cpu_seconds_total") == Approx(0.07).epsilon(rounding));
  CHECK_FALSE(snap.value("headroom_pool_dials_total", {{"phase", "x"}}));
  CHECK(snap.sum("http_request_seconds_count") == 21.0);
  CHECK(snap.sum("http_request_seconds_count", {{"code", "200"}}) == 20.0);
  CHECK(snap.series("http_request_seconds_count").size() == 2);

  const auto total = snap.histogram("headroom_phase_seconds", {{"phase", "total"}});
  REQUIRE(total);
  REQUIRE(total->buckets.size() == 82);
  CHECK(total->buckets.front().upper_bound == Approx(1e-4).epsilon(rounding));
  CHECK(std::isinf(total->buckets.back().upper_bound));
  CHECK(total->count == 20.0);
  CHECK(total->buckets.back().count == 20.0);
  CHECK(total->sum == Approx(0.05030953899999999).epsilon(rounding));
  // Buckets 1 ms: 2, 1.2589 ms: 11: the median (rank 10) is the 8th of that bucket's 9.
  CHECK(*histogram_quantile(0.5, *total) ==
        Approx(1e-3 + (1.258925411794167e-3 - 1e-3) * 8.0 / 9.0).epsilon(rounding));
  CHECK_FALSE(snap.histogram("headroom_phase_seconds", {{"phase", "nonesuch"}}));
}

TEST_CASE("a histogram's quantile interpolates inside its bucket as Prometheus does") {
  const auto h = buckets({{0.1, 10}, {0.2, 30}, {0.5, 90}, {1, 100}, {INFINITY, 100}});
  CHECK(*histogram_quantile(0.05, h) == Approx(0.05).epsilon(rounding));  // 5 of 10 in [0, 0.1]
  CHECK(*histogram_quantile(0.5, h) == Approx(0.3).epsilon(rounding));    // 20 of 60 in (0.2, 0.5]
  CHECK(*histogram_quantile(0.99, h) == Approx(0.95).epsilon(rounding));  // 9 of 10 in (0.5, 1]
  CHECK(*histogram_quantile(1.0, h) == Approx(1.0).epsilon(rounding));
  CHECK(*histogram_quantile(0.0, h) == 0.0);  // the lower edge of the first non-empty bucket

  // A rank in the +Inf bucket reports the highest finite bound, as Prometheus does.
  CHECK(*histogram_quantile(0.9, buckets({{0.1, 10}, {INFINITY, 20}})) == 0.1);
  // A first bucket at or below 0 is not interpolated from 0.
  CHECK(*histogram_quantile(0.2, buckets({{-1, 5}, {0, 10}, {INFINITY, 10}})) == -1.0);
  // Counts that went backwards (a scrape racing an observation) are forced up, not trusted.
  CHECK(*histogram_quantile(0.5, buckets({{1, 4}, {2, 3}, {4, 8}, {INFINITY, 8}})) ==
        Approx(1.0).epsilon(rounding));
  CHECK_FALSE(histogram_quantile(0.5, buckets({{1, 0}, {INFINITY, 0}})));
  CHECK_THROWS_AS(histogram_quantile(1.5, h), std::invalid_argument);
  CHECK_THROWS_AS(histogram_quantile(0.5, buckets({{1, 3}})), std::invalid_argument);
}

TEST_CASE("label escapes, special values, timestamps, comments and summaries are read") {
  const auto snap = metrics_snapshot::parse(
      "# a free comment\n"
      "# HELP odd A \\\\ backslash\\nand a newline\n"
      "# TYPE odd gauge\n"
      "odd{path=\"C:\\\\dir\",quote=\"say \\\"hi\\\"\",nl=\"a\\nb\",} +Inf 1700000000000\n"
      "odd{path=\"x\"} -Inf\n"
      "odd{path=\"y\"}\tNaN -5\r\n"
      "\n"
      "# TYPE rpc summary\n"
      "rpc{quantile=\"0.5\"} 1.5e-3\n"
      "rpc{quantile=\"0.99\"} 2E-2\n"
      "rpc_sum 17.25\n"
      "rpc_count 1000\n"
      "plain 42\n");
  CHECK(snap.help("odd") == "A \\ backslash\nand a newline");
  const metric_labels escaped{{"path", "C:\\dir"}, {"quote", "say \"hi\""}, {"nl", "a\nb"}};
  const auto inf = snap.value("odd", escaped);
  REQUIRE(inf);
  CHECK((std::isinf(*inf) && *inf > 0));
  CHECK(snap.series("odd")[0]->timestamp_ms == 1700000000000);
  CHECK(*snap.value("odd", {{"path", "x"}}) == -INFINITY);
  CHECK(std::isnan(*snap.value("odd", {{"path", "y"}})));
  CHECK(snap.series("odd")[2]->timestamp_ms == -5);
  CHECK(snap.type("rpc") == metric_type::summary);
  CHECK(snap.value("rpc", {{"quantile", "0.99"}}) == 0.02);
  CHECK(snap.value("rpc_count") == 1000.0);
  CHECK(snap.is_cumulative(*snap.series("rpc_count")[0]));
  CHECK_FALSE(snap.is_cumulative(*snap.series("rpc")[0]));
  CHECK(snap.type("plain") == metric_type::untyped);
  CHECK(snap.value("plain") == 42.0);
  CHECK(metrics_snapshot::parse("").samples().empty());
}

TEST_CASE("two scrapes subtract: counters and histograms grow by what happened between them") {
  const std::string head = "# TYPE req_total counter\n# TYPE lat histogram\n# TYPE busy gauge\n";
  const auto before = metrics_snapshot::parse(
      head +
      "req_total{code=\"200\"} 100\nbusy 7\n"
      "lat_bucket{le=\"0.1\"} 50\nlat_bucket{le=\"1\"} 90\nlat_bucket{le=\"+Inf\"} 100\n"
      "lat_sum 30\nlat_count 100\n");
  const auto after = metrics_snapshot::parse(
      head +
      "req_total{code=\"200\"} 160\nreq_total{code=\"503\"} 4\nbusy 3\n"
      "lat_bucket{le=\"0.1\"} 60\nlat_bucket{le=\"1\"} 150\nlat_bucket{le=\"+Inf\"} 164\n"
      "lat_sum 75.5\nlat_count 164\n");
  const metrics_delta d(before, after);
  REQUIRE_FALSE(d.restarted());
  CHECK(d.counter("req_total", {{"code", "200"}}) == 60.0);
  CHECK(d.counter("req_total", {{"code", "503"}}) == 4.0);  // created in between: counts from 0
  CHECK_FALSE(d.counter("req_total", {{"code", "404"}}));
  CHECK(d.counter_sum("req_total") == 64.0);
  CHECK(d.gauge("busy") == 3.0);  // a gauge is read, not subtracted
  const auto h = d.histogram("lat");
  REQUIRE(h);
  REQUIRE(h->buckets.size() == 3);
  CHECK(h->buckets[0].count == 10.0);
  CHECK(h->buckets[1].count == 60.0);
  CHECK(h->buckets[2].count == 64.0);
  CHECK(h->count == 64.0);
  CHECK(h->sum == Approx(45.5).epsilon(rounding));
  // The interval's median: rank 32 is 22 of 50 observations into (0.1, 1].
  CHECK(*histogram_quantile(0.5, *h) == Approx(0.1 + 0.9 * 22.0 / 50.0).epsilon(rounding));
}

TEST_CASE("a counter that went down means the process restarted, and no delta is returned") {
  const auto before = metrics_snapshot::parse(
      "# TYPE dials_total counter\ndials_total 40\n# TYPE lat histogram\n"
      "lat_bucket{le=\"+Inf\"} 9\nlat_count 9\n");
  const auto after = metrics_snapshot::parse(
      "# TYPE dials_total counter\ndials_total 45\n# TYPE lat histogram\n"
      "lat_bucket{le=\"+Inf\"} 2\nlat_count 2\n");
  const metrics_delta d(before, after);
  CHECK(d.restarted());
  CHECK(d.reset_reason() ==
        "lat_bucket{le=\"+Inf\"} went down from 9 to 2: the process restarted between the two "
        "scrapes");
  // Even the counter that grew is refused: it no longer measures the interval.
  CHECK_THROWS_AS(d.counter("dials_total"), metrics_reset_error);
  CHECK_THROWS_AS(d.histogram("lat"), metrics_reset_error);
  // A gauge going down is no restart.
  CHECK_FALSE(metrics_delta(metrics_snapshot::parse("g 5\n"), metrics_snapshot::parse("g 1\n"))
                  .restarted());
}

TEST_CASE("text that is not Prometheus text is rejected with the line and the problem named") {
  CHECK(rejection("<!DOCTYPE html>\n<html><body>metrics</body></html>\n") ==
        "not Prometheus text: line 1: expected a metric name or '#': '<!DOCTYPE html>'");
  CHECK(rejection("{\"requests\": 12, \"errors\": 0}") ==
        "not Prometheus text: line 1: expected a metric name or '#': "
        "'{\"requests\": 12, \"errors\": 0}'");
  CHECK(rejection("# TYPE a counter\na 1\nNot Found\n") ==
        "not Prometheus text: line 3: invalid value 'Found': 'Not Found'");
  CHECK(rejection("ok") == "not Prometheus text: line 1: no value after ok: 'ok'");
  CHECK(rejection("a{x=\"1} 2\n") ==
        "not Prometheus text: line 1: unterminated label value: 'a{x=\"1} 2'");
  CHECK(rejection("a{x=\"\\t\"} 2\n") ==
        "not Prometheus text: line 1: invalid escape '\\t' in a label value: 'a{x=\"\\t\"} 2'");
  CHECK(rejection("a{x=\"1\" y=\"2\"} 2\n").find("line 1: expected ',' or '}' after label x") !=
        std::string::npos);
  CHECK(rejection("a 1 2 3\n").find("line 1: unexpected text after the timestamp") !=
        std::string::npos);
  CHECK(rejection("a 1 12.5\n").find("line 1: invalid timestamp '12.5'") != std::string::npos);
  CHECK(rejection("a 1\na 2\n").find("line 2: series a appears twice") != std::string::npos);
  CHECK(rejection("a-b 1\n").find("line 1: invalid character in the metric name") !=
        std::string::npos);
  CHECK(rejection("# TYPE a bogus\n").find("line 1: unknown TYPE 'bogus'") != std::string::npos);
  CHECK(rejection("a 1\n# TYPE a gauge\n").find("line 2: TYPE for a after its samples") !=
        std::string::npos);
  CHECK(rejection("# TYPE h histogram\nh_bucket 3\n")
            .find("line 2: a histogram bucket needs a numeric le label") != std::string::npos);
  CHECK(rejection("# TYPE h histogram\nh 3\n").find("line 2: a sample of histogram h needs") !=
        std::string::npos);
  // Binary (a gzipped page) is shown with its control bytes masked, so the message stays one line.
  const std::string gz = rejection(std::string("\x1f\x8b\x08\x00\nx", 6));
  CHECK(gz ==
        "not Prometheus text: line 1: expected a metric name or '#': '?\x8b?"
        "?'");
  // A histogram without +Inf parses (its lines are fine) but cannot be used.
  const auto no_inf = metrics_snapshot::parse("# TYPE h histogram\nh_bucket{le=\"1\"} 3\n");
  CHECK_THROWS_WITH(no_inf.histogram("h"), "not Prometheus text: histogram h has no +Inf bucket");
}

TEST_CASE("a metric read as a count is whole and fits an int, or an error naming it") {
  CHECK(metric_count(0, "x") == 0);
  CHECK(metric_count(2147483647, "x") == 2147483647);
  CHECK_THROWS_WITH(metric_count(4294967297.0, "headroom_pool_max_open"),
                    "headroom_pool_max_open is 4294967297, not a whole number from 0 to 2147483647");
  CHECK_THROWS_WITH(metric_count(2.5, "cores"),
                    "cores is 2.5, not a whole number from 0 to 2147483647");
  CHECK_THROWS_AS(metric_count(-1, "x"), std::invalid_argument);
  CHECK_THROWS_AS(metric_count(std::nan(""), "x"), std::invalid_argument);
  CHECK_THROWS_AS(metric_count(INFINITY, "x"), std::invalid_argument);
}

TEST_CASE("a scrape that fails says why in one line naming the URL") {
  // Refused: a port that was just free.
  std::string closed_url;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    closed_url = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port()) + "/metrics";
  }
  CHECK_THROWS_WITH(scrape_metrics(closed_url, 2),
                    "cannot scrape " + closed_url + ": connection refused");

  // Timeout: a listener that never accepts; the kernel completes the connect, nobody answers.
  // The deadline is 0.3 s; 2 s allows for a loaded machine without hiding a missing deadline.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::string silent_url =
      "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/metrics";
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(scrape_metrics(silent_url, 0.3), "cannot scrape " + silent_url + ": timed out");
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(waited >= 0.29);
  CHECK(waited < 2.0);

  // 200 with a body that is not Prometheus text ("ok").
  headroom::test::test_http_server server;
  CHECK_THROWS_WITH(
      scrape_metrics(server.url("/metrics"), 2),
      server.url("/metrics") + " is not Prometheus text: line 1: no value after ok: 'ok'");
}

TEST_CASE("the live service's /metrics, scraped around 30 requests, counts exactly those",
          "[live]") {
  headroom::test::service_process svc;
  const std::string url = "http://127.0.0.1:" + std::to_string(svc.port()) + "/metrics";
  headroom::test::http_client client(svc.port());
  REQUIRE(client.request("POST", "/", R"({"Age": 30})").status == 200);  // the first dial

  const auto before = scrape_metrics(url);
  std::vector<double> client_seconds;
  for (int i = 0; i < 30; ++i) {
    const auto r = client.request("POST", "/", R"({"Age": 30})");
    REQUIRE(r.status == 200);
    client_seconds.push_back(r.seconds);
  }
  std::sort(client_seconds.begin(), client_seconds.end());
  REQUIRE(client.request("POST", "/", "not json").status == 400);
  const auto after = scrape_metrics(url);

  const metrics_delta d(before, after);
  REQUIRE_FALSE(d.restarted());
  CHECK(d.counter("http_request_seconds_count", {{"code", "200"}, {"path", "/"}}) == 30.0);
  CHECK(d.counter("http_request_seconds_count", {{"code", "400"}, {"path", "/"}}) == 1.0);
  // The first scrape is itself a request, recorded once its answer was ready: after that scrape.
  CHECK(d.counter("http_request_seconds_count", {{"code", "200"}, {"path", "/metrics"}}) == 1.0);
  CHECK(d.counter_sum("http_request_seconds_count") == 32.0);
  // One client, sequential requests, max_idle 2: the connection dialled first is reused.
  CHECK(d.counter("headroom_pool_dials_total") == 0.0);
  const auto total = d.histogram("headroom_phase_seconds", {{"phase", "total"}});
  REQUIRE(total);
  CHECK(total->count == 30.0);
  CHECK(total->buckets.back().count == 30.0);
  // The service's own time is inside the client's; the histogram's median can sit anywhere in
  // its bucket, whose bounds differ by a factor 10^0.1 = 1.259 here, hence that margin.
  const double p50 = *histogram_quantile(0.5, *total);
  CHECK(p50 > 0);
  CHECK(p50 <= client_seconds[15] * 1.259);
  CHECK(total->sum <= std::accumulate(client_seconds.begin(), client_seconds.end(), 0.0));
  CHECK(*d.counter("process_cpu_seconds_total") >= 0.0);
  CHECK(d.gauge("headroom_pool_open") == 1.0);

  // The service's other pages are not metrics: a 404 says so.
  const std::string missing = "http://127.0.0.1:" + std::to_string(svc.port()) + "/nonesuch";
  CHECK_THROWS_WITH(scrape_metrics(missing), "cannot scrape " + missing + ": HTTP 404 Not Found");
}
