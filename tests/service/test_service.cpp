// Black-box tests of the headroom-service process over 127.0.0.1: the study's
// fixtures, Server-Timing, /metrics and the pool's counters, bad input,
// slow clients and command-line errors. (PostgreSQL outages and shutdown are
// in test_service_outage.cpp, which must run alone.)
#include <atomic>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

#include "service_process.hpp"

using namespace headroom::test;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(env("HEADROOM_SOURCE_DIR") + "/tests/fixtures/" + name);
  REQUIRE(in.good());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string scrape(unsigned short port) {
  http_client c(port);
  const auto r = c.request("GET", "/metrics");
  REQUIRE(r.status == 200);
  return r.body;
}

double metric(const std::string& text, const std::string& series) {
  const auto v = metric_value(text, series);
  INFO(series);
  REQUIRE(v.has_value());
  return *v;
}

struct timing {
  double queue, wait, dial, query, release;
  double sum() const { return queue + wait + dial + query + release; }
};

timing parse_server_timing(const std::string& h) {
  static const std::regex re(
      R"(^queue;dur=([0-9.]+), wait;dur=([0-9.]+), dial;dur=([0-9.]+), query;dur=([0-9.]+), release;dur=([0-9.]+)$)");
  std::smatch m;
  INFO("Server-Timing: " << h);
  REQUIRE(std::regex_match(h, m, re));
  return {std::stod(m[1]), std::stod(m[2]), std::stod(m[3]), std::stod(m[4]), std::stod(m[5])};
}

}  // namespace

TEST_CASE("the study's two fixtures answer with the people of that age or none") {
  service_process svc;
  http_client c(svc.port());

  const auto match = c.request("POST", "/", fixture("age_match.json"));
  REQUIRE(match.status == 200);
  CHECK(match.header("Content-Type") == "application/json");
  const auto people = boost::json::parse(match.body).as_object().at("People").as_array();
  // 10,000 generated rows with ages 0-89 give about 111 of each age; any
  // non-empty answer will do, as long as every person is really 30.
  CHECK(people.size() > 10);
  for (const auto& p : people) {
    const auto& o = p.as_object();
    CHECK(o.at("Age").as_int64() == 30);
    CHECK(!o.at("FullName").as_string().empty());
    CHECK(!o.at("Address").as_string().empty());
  }
  // "age" is accepted too, and gives the same answer.
  CHECK(c.request("POST", "/", R"({"age": 30})").body == match.body);

  const auto none = c.request("POST", "/", fixture("age_no_match.json"));
  CHECK(none.status == 200);
  CHECK(none.header("Content-Type") == "application/json");
  CHECK(none.body == R"({"People":[]})");
}

TEST_CASE(
    "every answer to POST / carries Server-Timing whose phases add up to no more than the client "
    "saw") {
  service_process svc;
  http_client c(svc.port());
  int reused = 0;
  for (int i = 0; i < 30; ++i) {
    const std::string body =
        i % 3 == 2 ? "{" : (i % 2 ? fixture("age_match.json") : fixture("age_no_match.json"));
    const auto r = c.request("POST", "/", body);
    CHECK(r.status == (i % 3 == 2 ? 400 : 200));
    const timing t = parse_server_timing(r.header("Server-Timing"));
    // Each phase is printed rounded to 0.001 ms: five roundings add at most 0.0025 ms.
    CHECK(t.sum() <= r.seconds * 1e3 + 0.0025);
    if (i == 0) CHECK(t.dial > 0);  // a fresh pool has nothing to reuse
    if (r.status == 200 && i > 0 && t.dial == 0) reused++;
  }
  // One client in sequence: after the first dial, the idle connection is reused.
  CHECK(reused >= 15);
}

TEST_CASE("/metrics is Prometheus text whose request and phase counts grow by the requests made") {
  service_process svc({"--max-open", "7"});
  {
    http_client c(svc.port());
    REQUIRE(c.request("POST", "/", fixture("age_no_match.json")).status == 200);
  }
  const std::string before = scrape(svc.port());
  const double req0 = metric(before, R"(http_request_seconds_count{code="200",path="/"})");
  const double total0 = metric(before, R"(headroom_phase_seconds_count{phase="total"})");
  http_client c(svc.port());
  for (int i = 0; i < 10; ++i)
    REQUIRE(c.request("POST", "/", fixture("age_match.json")).status == 200);
  CHECK(c.request("POST", "/", "nope").status == 400);
  CHECK(c.request("GET", "/healthz").status == 200);
  CHECK(c.request("GET", "/readyz").status == 200);
  const std::string after = scrape(svc.port());

  // Counts are exact: the service counts every request it answers.
  CHECK(metric(after, R"(http_request_seconds_count{code="200",path="/"})") == req0 + 10);
  CHECK(metric(after, R"(http_request_seconds_count{code="400",path="/"})") == 1);
  CHECK(metric(after, R"(http_request_seconds_count{code="200",path="/healthz"})") == 1);
  CHECK(metric(after, R"(headroom_phase_seconds_count{phase="total"})") == total0 + 10);
  for (const char* phase : {"queue", "wait", "dial", "query", "release", "total"})
    CHECK(metric(after, std::string(R"(headroom_phase_seconds_count{phase=")") + phase + "\"}") ==
          total0 + 10);
  CHECK(metric(after, "headroom_pool_max_open") == 7);
  CHECK(metric(after, "headroom_pool_in_use") == 0);
  CHECK(metric(after, "headroom_pool_open") >= 1);
  CHECK(metric(after, "headroom_pool_idle") == metric(after, "headroom_pool_open"));
  for (const char* name :
       {"headroom_pool_wait_count_total", "headroom_pool_wait_seconds_total",
        "headroom_pool_dials_total", "headroom_pool_closed_max_idle_total",
        "headroom_pool_closed_max_idle_time_total", "headroom_pool_closed_max_lifetime_total"})
    CHECK(metric(after, name) >= 0);
  CHECK(metric(after, "process_cpu_seconds_total") >= 0);
  CHECK(metric(after, "process_resident_memory_bytes") > 1e6);
  CHECK(metric(after, "process_open_fds") > 3);
  CHECK(metric(after, "process_threads") > 2);

  // Every sample line has the text format's shape, and histogram buckets are
  // cumulative (never decrease) up to +Inf, which equals the count.
  static const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? ([-+]?[0-9.eE+-]+|NaN|[+-]Inf)$)");
  std::istringstream lines(after);
  std::string line;
  double last = -1;
  int buckets = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    INFO(line);
    CHECK(std::regex_match(line, sample));
    if (line.rfind(R"(headroom_phase_seconds_bucket{phase="query",)", 0) == 0) {
      const double v = std::stod(line.substr(line.rfind(' ') + 1));
      CHECK(v >= last);
      last = v;
      buckets++;
    }
  }
  CHECK(buckets > 60);
  CHECK(last == total0 + 10);
}

TEST_CASE("with --max-idle 0 every request dials exactly one new connection") {
  service_process svc({"--max-idle", "0"});
  http_client c(svc.port());
  REQUIRE(c.request("POST", "/", fixture("age_no_match.json")).status == 200);
  const std::string before = scrape(svc.port());
  for (int i = 0; i < 10; ++i) {
    const auto r = c.request("POST", "/", fixture("age_no_match.json"));
    REQUIRE(r.status == 200);
    CHECK(parse_server_timing(r.header("Server-Timing")).dial > 0);
  }
  const std::string after = scrape(svc.port());
  // Exact: nothing else touches the pool between the two scrapes.
  CHECK(metric(after, "headroom_pool_dials_total") ==
        metric(before, "headroom_pool_dials_total") + 10);
  CHECK(metric(after, "headroom_pool_closed_max_idle_total") ==
        metric(before, "headroom_pool_closed_max_idle_total") + 10);
  CHECK(metric(after, "headroom_pool_open") == 0);
  CHECK(metric(after, "headroom_pool_idle") == 0);
}

TEST_CASE("with --max-open 4 --max-idle 4 dials stop at four even under concurrency") {
  service_process svc({"--max-open", "4", "--max-idle", "4"});
  std::atomic<int> ok{0}, bad{0};
  auto burst = [&] {
    std::vector<std::thread> ts;
    for (int t = 0; t < 16; ++t)
      ts.emplace_back([&] {
        http_client c(svc.port());
        for (int i = 0; i < 15; ++i)
          (c.request("POST", "/", fixture("age_no_match.json")).status == 200 ? ok : bad)++;
      });
    for (auto& t : ts) t.join();
  };
  burst();
  const std::string first = scrape(svc.port());
  const double dials = metric(first, "headroom_pool_dials_total");
  CHECK(dials >= 1);
  CHECK(dials <= 4);
  CHECK(metric(first, "headroom_pool_open") <= 4);
  CHECK(metric(first, "headroom_pool_max_open") == 4);
  CHECK(metric(first, "headroom_pool_closed_max_idle_total") == 0);
  burst();
  const std::string second = scrape(svc.port());
  // Every open connection went back to the idle list, so nothing dials again
  // (unless the first burst never needed all four, which 16 clients make unlikely).
  CHECK(metric(second, "headroom_pool_dials_total") <= 4);
  CHECK(metric(second, "headroom_pool_closed_max_idle_total") == 0);
  CHECK(ok == 2 * 16 * 15);
  CHECK(bad == 0);
}

namespace {

struct bad_case {
  const char* name;
  std::string method;  // empty: send `raw` as is
  std::string target;
  std::string body;
  int status;
  std::string raw = {};
  std::map<std::string, std::string> headers = {};
};

std::vector<bad_case> bad_cases() {
  const std::string big(64 * 1024 + 1, ' ');
  std::string deep(10000, '[');
  const std::string big_header = "X-Padding: " + std::string(9000, 'x') + "\r\n";
  return {
      {"empty body", "POST", "/", "", 400},
      {"unterminated object", "POST", "/", "{", 400},
      {"not JSON at all", "POST", "/", "Age=30", 400},
      {"JSON array", "POST", "/", "[30]", 400},
      {"bare number", "POST", "/", "30", 400},
      {"JSON null", "POST", "/", "null", 400},
      {"JSON string", "POST", "/", R"("Age")", 400},
      {"empty object", "POST", "/", "{}", 400},
      {"wrong key case", "POST", "/", R"({"AGE": 30})", 400},
      {"Age as a string", "POST", "/", R"({"Age": "30"})", 400},
      {"Age with a fraction", "POST", "/", R"({"Age": 30.5})", 400},
      {"Age written as a float", "POST", "/", R"({"Age": 30.0})", 400},
      {"Age in exponent form", "POST", "/", R"({"Age": 3e1})", 400},
      {"Age true", "POST", "/", R"({"Age": true})", 400},
      {"Age null", "POST", "/", R"({"Age": null})", 400},
      {"Age as an array", "POST", "/", R"({"Age": [30]})", 400},
      {"Age as an object", "POST", "/", R"({"Age": {"n": 30}})", 400},
      {"negative Age", "POST", "/", R"({"Age": -1})", 400},
      {"Age above 2^31-1", "POST", "/", R"({"Age": 2147483648})", 400},
      {"Age above 2^63", "POST", "/", R"({"Age": 18446744073709551615})", 400},
      {"Age beyond 64 bits", "POST", "/", R"({"Age": 123456789012345678901234567890})", 400},
      {"trailing garbage", "POST", "/", R"({"Age": 30}})", 400},
      {"truncated after value", "POST", "/", R"({"Age": 30)", 400},
      {"invalid UTF-8 in a string", "POST", "/", "{\"Age\": 30, \"x\": \"\xff\"}", 400},
      {"nesting 10,000 deep", "POST", "/", deep, 400},
      {"body one byte over 64 KiB", "POST", "/", big, 413},
      {"Content-Length of 1 GB announced", "", "", "", 413,
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n{"},
      {"GET on /", "GET", "/", "", 405},
      {"PUT on /", "PUT", "/", R"({"Age": 30})", 405},
      {"DELETE on /", "DELETE", "/", "", 405},
      {"POST on /metrics", "POST", "/metrics", "", 405},
      {"POST on /healthz", "POST", "/healthz", "", 405},
      {"unknown path", "GET", "/nope", "", 404},
      {"POST to an unknown path", "POST", "/people", R"({"Age": 30})", 404},
      {"path that only starts like /metrics", "GET", "/metrics/x", "", 404},
      {"garbage request line", "", "", "", 400, "GARBAGE\r\n\r\n"},
      {"unknown HTTP version", "", "", "", 400, "POST / HTTP/9.9\r\nHost: x\r\n\r\n"},
      {"non-numeric Content-Length", "", "", "", 400,
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"},
      {"bad chunk size", "", "", "", 400,
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"},
      {"headers over 8 KiB", "", "", "", 431,
       "GET /healthz HTTP/1.1\r\nHost: x\r\n" + big_header + "\r\n"},
  };
}

}  // namespace

TEST_CASE("bad input gets the right status and a JSON error and the service keeps serving") {
  service_process svc;
  const auto cases = bad_cases();
  REQUIRE(cases.size() >= 30);
  for (const auto& bc : cases) {
    INFO("case: " << bc.name);
    http_client c(svc.port());
    const http_reply r =
        bc.method.empty() ? c.raw(bc.raw) : c.request(bc.method, bc.target, bc.body);
    CHECK(r.status == bc.status);
    CHECK(r.header("Content-Type") == "application/json");
    boost::system::error_code ec;
    const auto v = boost::json::parse(r.body, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(v.is_object());
    REQUIRE(v.as_object().contains("error"));
    CHECK(v.as_object().at("error").as_string().size() > 5);
    if (bc.status == 405) CHECK(r.header("Allow") == (bc.target == "/" ? "POST" : "GET"));
    // Errors to POST / carry Server-Timing like its answers do.
    if (bc.method == "POST" && bc.target == "/") CHECK(!r.header("Server-Timing").empty());
  }
  // A chunked body is fine HTTP, and the service is still healthy after all that.
  http_client c(svc.port());
  const auto chunked = c.raw(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nc\r\n{\"Age\": "
      "300}\r\n0\r\n\r\n");
  CHECK(chunked.status == 200);
  CHECK(chunked.body == R"({"People":[]})");
  CHECK(c.request("POST", "/", fixture("age_match.json")).status == 200);
}

TEST_CASE("slow and idle clients are cut off by the header and body timeouts") {
  // Units and bare seconds mean the same.
  service_process svc({"--header-timeout", "1000ms", "--body-timeout", "1"});
  std::optional<double> partial_header, partial_body, idle;
  std::thread a([&] {
    http_client c(svc.port());
    c.raw_send_only("POST / HTTP/1.1\r\nHost: x\r\n");
    partial_header = c.wait_for_close(6);
  });
  std::thread b([&] {
    http_client c(svc.port());
    c.raw_send_only("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Age\":");
    partial_body = c.wait_for_close(6);
  });
  std::thread d([&] {
    http_client c(svc.port());
    REQUIRE(c.request("GET", "/healthz").status == 200);
    idle = c.wait_for_close(6);
  });
  // Meanwhile a well-behaved client is served.
  http_client good(svc.port());
  CHECK(good.request("POST", "/", R"({"Age": 300})").status == 200);
  a.join();
  b.join();
  d.join();
  // The limit is 1 s; up to 3 s more allows for a loaded 2-core machine.
  for (const auto& t : {partial_header, partial_body, idle}) {
    REQUIRE(t.has_value());
    CHECK(*t >= 0.9);
    CHECK(*t < 4);
  }
}

TEST_CASE(
    "bad flags are refused with one line on stderr and exit code 2 and --help lists every flag") {
  const std::string bin = env("HEADROOM_BINARY_DIR") + "/service/headroom-service";
  for (const char* args :
       {"--max-open -1", "--waiter-order lifo", "--port 70000", "--no-such-flag",
        "--wait-timeout soon", "--wait-timeout 5parsecs", "--workers 0", "--host localhostx",
        "--header-timeout 0", "--drain-timeout -1s", "--max-connections 0",
        "--connect-timeout 1500ms", "--statement-timeout -1"}) {
    INFO(args);
    const std::string out =
        run(bin + " --dsn 'host=127.0.0.1' " + args + " 2>&1 >/dev/null; echo \"exit=$?\"");
    CHECK(out.rfind("headroom-service: ", 0) == 0);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);  // the error line, then exit=
    CHECK(out.substr(out.rfind('\n') + 1) == "exit=2");
  }
  // Environment variables go through the same checks, and a DSN libpq cannot parse is a bad
  // flag too, not a failure at the first dial.
  for (const std::string& cmd : {"HEADROOM_WAIT_TIMEOUT=soon " + bin + " --dsn 'host=127.0.0.1'",
                                 bin + " --dsn 'host=127.0.0.1 no_such_keyword=1'"}) {
    INFO(cmd);
    const std::string out = run(cmd + " 2>&1 >/dev/null; echo \"exit=$?\"");
    CHECK(out.rfind("headroom-service: ", 0) == 0);
    CHECK(out.substr(out.rfind('\n') + 1) == "exit=2");
  }
  // Every flag is listed with its unit (and its environment variable).
  const std::string help = run(bin + " --help");
  for (const char* flag : {"--dsn TEXT",
                           "--host IP",
                           "--port PORT",
                           "--io-threads THREADS",
                           "--workers THREADS",
                           "--max-open CONNECTIONS",
                           "--max-idle CONNECTIONS",
                           "--max-lifetime DURATION",
                           "--max-idle-time DURATION",
                           "--wait-timeout DURATION",
                           "--connect-timeout DURATION",
                           "--statement-timeout DURATION",
                           "--waiter-order",
                           "--body-limit BYTES",
                           "--max-connections CONNECTIONS",
                           "--header-timeout DURATION",
                           "--body-timeout DURATION",
                           "--drain-timeout DURATION",
                           "250ms, 5s, 2m",
                           "HEADROOM_DSN",
                           "HEADROOM_WAIT_TIMEOUT",
                           "HEADROOM_MAX_CONNECTIONS"}) {
    INFO(flag);
    CHECK(help.find(flag) != std::string::npos);
  }
  CHECK(help.find("--pool-wait-timeout") == std::string::npos);
  // The defaults shown are those of model/policy/service_defaults.hpp.
  CHECK(help.find("--workers THREADS:INT in [1 - 4096]=64") != std::string::npos);
  CHECK(help.find("--wait-timeout DURATION=5s") != std::string::npos);
  CHECK(help.find("--max-idle CONNECTIONS=2") != std::string::npos);
}

TEST_CASE(
    "connections past --max-connections are answered 503 and closed while those within it are "
    "served") {
  service_process svc({"--max-connections", "4"});
  std::vector<std::unique_ptr<http_client>> within;
  for (int i = 0; i < 4; ++i) {
    within.push_back(std::make_unique<http_client>(svc.port()));
    REQUIRE(within.back()->request("GET", "/healthz").status == 200);
  }
  for (int i = 0; i < 3; ++i) {
    http_client over(svc.port());
    const auto r = over.request("POST", "/", R"({"Age": 30})");
    CHECK(r.status == 503);
    CHECK_FALSE(r.keep_alive);
    CHECK(r.header("Retry-After") == "1");
    CHECK(r.body.find("too many connections") != std::string::npos);
  }
  // The four within the cap are still served, on their keep-alive connections.
  for (auto& c : within) CHECK(c->request("POST", "/", R"({"Age": 300})").status == 200);
  // Exact: the scrape goes over a connection within the cap.
  const auto m = within[0]->request("GET", "/metrics").body;
  CHECK(metric(m, "headroom_http_connections_refused_total") == 3);
  CHECK(metric(m, "headroom_http_connections") == 4);
  // A connection that closes frees its place (the server notices the close at once; 2 s
  // allows for a busy machine).
  within.pop_back();
  int status = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2)) {
    http_client next(svc.port());
    status = next.request("GET", "/healthz").status;
    if (status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(status == 200);
}

TEST_CASE(
    "a client that asks to continue before sending its body is told to go on and then answered") {
  service_process svc;
  http_client c(svc.port());
  const std::string body = R"({"Age": 300})";
  const auto go_on =
      c.raw("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n");
  CHECK(go_on.status == 100);
  const auto r = c.raw(body);
  CHECK(r.status == 200);
  CHECK(r.body == R"({"People":[]})");
  // Over the limit, the answer is 413 at once instead of an invitation.
  http_client d(svc.port());
  CHECK(d.raw("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 70000\r\n\r\n")
            .status == 413);
}

TEST_CASE("/metrics and --help name the pool's Go version profile, and a profile's limits hold") {
  {
    service_process svc;
    http_client c(svc.port());
    const auto m = c.request("GET", "/metrics").body;
    CHECK(metric_value(m, R"(headroom_pool_info{go_version="1.10",waiter_order="random"})") == 1);
    CHECK(metric_value(m, "headroom_pool_max_idle") == 2);  // Go's default
  }
  {
    // The idle limit as Go applies it: clamped to max_open, and a calibration reads it here.
    service_process svc({"--max-open", "3", "--max-idle", "8"});
    http_client c(svc.port());
    CHECK(metric_value(c.request("GET", "/metrics").body, "headroom_pool_max_idle") == 3);
  }
  {
    // Any 1.N takes its release's profile; --waiter-order overrides the Go rule.
    service_process svc(
        {"--go-version", "1.19", "--waiter-order", "fifo", "--max-idle-time", "30"});
    http_client c(svc.port());
    const auto m = c.request("GET", "/metrics").body;
    CHECK(metric_value(m, R"(headroom_pool_info{go_version="1.18",waiter_order="fifo"})") == 1);
    CHECK(c.request("POST", "/", R"({"Age": 300})").status == 200);
  }
  const std::string bin = env("HEADROOM_BINARY_DIR") + "/service/headroom-service";
  // Go 1.10-1.14 had no SetConnMaxIdleTime; 1.9 and earlier are no profile.
  for (const char* args : {"--go-version 1.9", "--go-version 2.0", "--go-version go1.18",
                           "--max-idle-time 5", "--go-version 1.14 --max-idle-time 5"}) {
    INFO(args);
    const std::string out =
        run(bin + " --dsn 'host=127.0.0.1' " + args + " 2>&1 >/dev/null; echo \"exit=$?\"");
    CHECK(out.rfind("headroom-service: ", 0) == 0);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);  // the error line, then exit=
    CHECK(out.substr(out.rfind('\n') + 1) == "exit=2");
  }
  const std::string help = run(bin + " --help");
  for (const char* word : {"--go-version", "HEADROOM_GO_VERSION", "1.23", "--waiter-order"}) {
    INFO(word);
    CHECK(help.find(word) != std::string::npos);
  }
}

TEST_CASE("PUT /pool changes the running pool's limits as Go's setters would, with --pool-admin") {
  {
    service_process svc;  // off by default: no such path, as /debug/pprof/profile without --pprof
    http_client c(svc.port());
    const auto r = c.request("GET", "/pool");
    CHECK(r.status == 404);
    CHECK(r.body.find("--pool-admin") != std::string::npos);
    CHECK(c.request("PUT", "/pool", R"({"max_idle": 0})").status == 404);
  }
  service_process svc({"--pool-admin", "--max-idle", "4"});
  http_client c(svc.port());
  auto pool = [&] { return boost::json::parse(c.request("GET", "/pool").body).as_object(); };
  CHECK(pool().at("max_open").as_int64() == 0);
  CHECK(pool().at("max_idle").as_int64() == 4);
  REQUIRE(c.request("POST", "/", fixture("age_no_match.json")).status == 200);  // one idle now

  // Keep none: the idle connection is closed at once, and every request then dials.
  auto r = c.request("PUT", "/pool", R"({"max_idle": 0})");
  REQUIRE(r.status == 200);
  CHECK(boost::json::parse(r.body).at("max_idle").as_int64() == 0);
  std::string m = scrape(svc.port());
  CHECK(metric(m, "headroom_pool_idle") == 0);
  CHECK(metric(m, "headroom_pool_open") == 0);
  CHECK(metric(m, "headroom_pool_max_idle") == 0);
  const double dials = metric(m, "headroom_pool_dials_total");
  for (int i = 0; i < 3; ++i)
    REQUIRE(c.request("POST", "/", fixture("age_no_match.json")).status == 200);
  CHECK(metric(scrape(svc.port()), "headroom_pool_dials_total") == dials + 3);

  // A maximum lowers the idle limit with it (Go's SetMaxOpenConns), and one connection is then
  // dialed once and reused by every request after it.
  r = c.request("PUT", "/pool", R"({"max_idle": 8, "max_open": 1})");
  REQUIRE(r.status == 200);
  CHECK(boost::json::parse(r.body).at("max_open").as_int64() == 1);
  CHECK(boost::json::parse(r.body).at("max_idle").as_int64() == 1);  // clamped to max_open
  for (int i = 0; i < 5; ++i)
    REQUIRE(c.request("POST", "/", fixture("age_no_match.json")).status == 200);
  m = scrape(svc.port());
  CHECK(metric(m, "headroom_pool_dials_total") == dials + 4);
  CHECK(metric(m, "headroom_pool_max_open") == 1);
  CHECK(metric(m, "headroom_pool_max_idle") == 1);
  CHECK(metric(m, "headroom_pool_idle") == 1);

  // Bad changes are refused with the reason, and change nothing.
  for (const char* body :
       {"", "[1]", "{}", R"({"max_open": -1})", R"({"max_open": 1.5})", R"({"max_idle": "8"})",
        R"({"max_open": 2, "maxOpen": 2})", R"({"max_open": 4294967296})"}) {
    INFO(body);
    r = c.request("PUT", "/pool", body);
    CHECK(r.status == 400);
    CHECK(boost::json::parse(r.body).at("error").as_string().size() > 10);
  }
  CHECK(pool().at("max_open").as_int64() == 1);
  r = c.request("POST", "/pool", R"({"max_open": 2})");
  CHECK(r.status == 405);
  CHECK(r.header("Allow") == "GET, PUT");
  CHECK(c.request("POST", "/", fixture("age_no_match.json")).status == 200);
}
