// Fault tests of headroom-service under load from the real `headroom load`: PostgreSQL killed
// and restarted, its connection slots taken by another client, clients that leave mid-request or
// mid-response, slow clients, SIGTERM. Each checks what a user would: every request answered
// (a success or a clean 5xx), no crash, recovery within a stated bound, the pool's counters
// adding up. CTest runs them alone (RUN_SERIAL): they load the machine and time latencies.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cerrno>
#include <functional>
#include <future>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>

#include "../calibrate/headroom_cli.hpp"
#include "service_process.hpp"

using namespace headroom::test;
namespace json = boost::json;

namespace {

using steady = std::chrono::steady_clock;

double since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

// `headroom load` against the service, started in the background as a user would run it: POST /
// with the no-match body at `rate` requests/s for `seconds`. report() waits for it to end.
class background_load {
 public:
  background_load(unsigned short port, double rate, double seconds)
      : json_path_(temp_path("load-" + std::to_string(next_id()) + ".json")) {
    const std::string cli = env("HEADROOM_BINARY_DIR") + "/cli/headroom";
    std::vector<std::string> args{"load",
                                  "--target",
                                  "http://127.0.0.1:" + std::to_string(port) + "/",
                                  "--method",
                                  "POST",
                                  "--header",
                                  "Content-Type: application/json",
                                  "--body",
                                  env("HEADROOM_SOURCE_DIR") + "/tests/fixtures/age_no_match.json",
                                  "--rate",
                                  std::to_string(rate),
                                  "--duration",
                                  std::to_string(seconds),
                                  "--timeout",
                                  "10s",
                                  "--json=" + json_path_};
    started_ = steady::now();
    run_ = std::async(std::launch::async, [cli, args] { return run_cli(cli, args); });
  }
  ~background_load() {
    if (run_.valid()) run_.wait();
    std::remove(json_path_.c_str());
  }

  steady::time_point started() const { return started_; }

  json::object report() {
    const cli_outcome o = run_.get();
    INFO("headroom load: exit " << o.exit_code << ", stderr: " << o.err);
    REQUIRE(o.exit_code == 0);
    return json::parse(slurp(json_path_)).as_object();
  }

 private:
  static int next_id() {
    static std::atomic<int> n{0};
    return n++;
  }
  std::string json_path_;
  steady::time_point started_;
  std::future<cli_outcome> run_;
};

std::uint64_t count(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v ? json::value_to<std::uint64_t>(*v) : 0;
}

// What a user of the service saw, from the generator's report.
struct load_outcome {
  std::uint64_t scheduled, completed, ok, unavailable, other_status, transport_errors;
  double p99_ok;  // seconds, successes
  std::string statuses, errors;
};

load_outcome outcome_of(const json::object& r) {
  load_outcome o{};
  const auto& req = r.at("requests").as_object();
  o.scheduled = count(req, "scheduled");
  o.completed = count(req, "completed");
  o.transport_errors = count(req, "transport_errors");
  for (const auto& [status, n] : r.at("status_counts").as_object()) {
    const auto k = json::value_to<std::uint64_t>(n);
    if (status == "200")
      o.ok += k;
    else if (status == "503")
      o.unavailable += k;
    else
      o.other_status += k;
    o.statuses += std::string(status) + ": " + std::to_string(k) + "; ";
  }
  for (const auto& [kind, n] : r.at("error_counts").as_object())
    o.errors += std::string(kind) + ": " + std::to_string(json::value_to<std::uint64_t>(n)) + "; ";
  o.p99_ok = r.at("latency").as_object().at("p99_s").to_number<double>();
  return o;
}

// Every request the generator sent got an HTTP answer in time, either a success or the
// service's clean "unavailable" (503 with a JSON error): no timeout, no reset, no other status.
void check_every_request_answered(const load_outcome& o) {
  INFO("statuses " << o.statuses << " errors " << o.errors);
  CHECK(o.scheduled > 0);
  CHECK(o.completed == o.scheduled);
  CHECK(o.transport_errors == 0);
  CHECK(o.other_status == 0);
  CHECK(o.ok + o.unavailable == o.scheduled);
}

// The pool's counters agree, once no request is in flight: every open connection is idle (none
// in use, nobody waiting), and the dials that succeeded minus the connections closed, for any
// reason, are the connections open.
void check_pool_adds_up(const std::string& metrics) {
  auto v = [&](const char* name) { return metric_value(metrics, name).value_or(-1); };
  const double open = v("headroom_pool_open"), idle = v("headroom_pool_idle");
  const double closed =
      v("headroom_pool_closed_max_idle_total") + v("headroom_pool_closed_max_idle_time_total") +
      v("headroom_pool_closed_max_lifetime_total") + v("headroom_pool_closed_other_total");
  INFO(metrics.substr(metrics.find("headroom_pool_closed_max_idle_total")));
  CHECK(v("headroom_pool_in_use") == 0);
  CHECK(v("headroom_pool_waiting") == 0);
  CHECK(open == idle);
  CHECK(v("headroom_pool_dials_total") - v("headroom_pool_dial_failures_total") - closed == open);
}

// POST / once every 50 ms on its own connection, recording when each answer came and its status
// (0: no HTTP answer), so a test can say when the service recovered from a fault.
class prober {
 public:
  explicit prober(unsigned short port) : port_(port) {
    thread_ = std::thread([this] { loop(); });
  }
  ~prober() { stop(); }

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Seconds from `t` to the first success answered after it; nothing if none yet.
  std::optional<double> recovered_after(steady::time_point t) const {
    std::lock_guard lk(mu_);
    for (const auto& p : probes_)
      if (p.answered > t && p.status == 200)
        return std::chrono::duration<double>(p.answered - t).count();
    return std::nullopt;
  }
  // How many answers had this status and a body containing `text`.
  int answers(int status, const std::string& text = {}) const {
    std::lock_guard lk(mu_);
    int n = 0;
    for (const auto& p : probes_)
      if (p.status == status && p.body.find(text) != std::string::npos) n++;
    return n;
  }

 private:
  struct probe {
    steady::time_point answered;
    int status;
    std::string body;
  };
  void loop() {
    std::optional<http_client> c;
    while (!stop_) {
      probe p{};
      try {
        if (!c) c.emplace(port_, 15);
        const auto r = c->request("POST", "/", R"({"Age": 300})");
        p.status = r.status;
        p.body = r.body;
      } catch (const std::exception& e) {
        c.reset();
        p.body = e.what();
      }
      p.answered = steady::now();
      {
        std::lock_guard lk(mu_);
        probes_.push_back(std::move(p));
      }
      sleep_s(0.05);
    }
  }

  unsigned short port_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<probe> probes_;
  std::thread thread_;
};

// Waits until PostgreSQL at `dsn` accepts a connection and answers a query; returns when.
steady::time_point wait_for_postgres(const std::string& dsn, double within) {
  const auto t0 = steady::now();
  while (since(t0) < within) {
    try {
      pqxx::connection c(dsn);
      pqxx::nontransaction(c).exec("select 1");
      return steady::now();
    } catch (const std::exception&) {
      sleep_s(0.05);
    }
  }
  throw std::runtime_error("PostgreSQL did not come back within " + std::to_string(within) + " s");
}

// True once the process is gone (or a zombie nobody reaps: it holds nothing any more).
bool process_gone(pid_t pid) {
  const std::string stat = run("cat /proc/" + std::to_string(pid) + "/stat 2>/dev/null || true");
  const auto paren = stat.rfind(')');
  return paren == std::string::npos || stat.compare(paren + 2, 1, "Z") == 0;
}

void wait_gone(const std::vector<pid_t>& pids, double within) {
  const auto t0 = steady::now();
  for (pid_t p : pids)
    while (!process_gone(p) && since(t0) < within) sleep_s(0.02);
}

}  // namespace

// Bounds used below. Recovery: once PostgreSQL accepts connections again, the next request
// finds the pooled connections dead and retries on a new one (a dial: 25-50 ms here), so it
// succeeds within the probe's 50 ms period plus one dial; 5 s allows for a shared 2-core machine
// where other builds run, and for a probe that was itself waiting on the dead database.
constexpr double recovery_bound = 5.0;

TEST_CASE(
    "PostgreSQL killed with SIGKILL, backends then the postmaster, and restarted: every request "
    "is answered 200 or 503 and the service recovers within 5 s each time") {
  private_postgres pg;
  // Short database limits so that no request outlasts the load's 10 s timeout: a request ends
  // within max(wait, connect) + statement + 1 s = 5 s.
  service_process svc({"--max-open", "8", "--max-idle", "8", "--wait-timeout", "2s",
                       "--connect-timeout", "2s", "--statement-timeout", "2s"},
                      20, pg.dsn());
  {
    http_client warm(svc.port());
    REQUIRE(warm.request("POST", "/", R"({"Age": 300})").status == 200);
  }
  // 100 req/s for 30 s: long enough for both faults and their recoveries on a slow machine.
  background_load load(svc.port(), 100, 30);
  prober probe(svc.port());
  sleep_s(3);

  // The backends die: PostgreSQL's postmaster ends every other backend and recovers by itself.
  const auto backends = pg.backends();
  REQUIRE(!backends.empty());
  for (pid_t p : backends) ::kill(p, SIGKILL);
  // Once the postmaster has reaped them it refuses connections until its recovery is done.
  wait_gone(backends, 10);
  const auto ready1 = wait_for_postgres(pg.dsn(), 30);
  sleep_s(recovery_bound);
  const auto recovery1 = probe.recovered_after(ready1);
  CHECK(recovery1.value_or(99) < recovery_bound);

  // The postmaster dies: nothing restarts it; its children notice and exit.
  const int unavailable_before = probe.answers(503);
  const auto all = pg.processes();
  ::kill(all.front(), SIGKILL);
  wait_gone(all, 20);
  sleep_s(2);  // down: dials are refused
  const int unavailable_while_down = probe.answers(503) - unavailable_before;
  pg.start();
  const auto ready2 = wait_for_postgres(pg.dsn(), 30);
  sleep_s(recovery_bound);
  const auto recovery2 = probe.recovered_after(ready2);
  CHECK(recovery2.value_or(99) < recovery_bound);
  probe.stop();
  INFO("recovery after the backends' kill " << recovery1.value_or(-1) << " s, after the "
                                            << "postmaster's " << recovery2.value_or(-1) << " s");
  // The load outlasts both recoveries, so its last seconds show the service healthy again.
  REQUIRE(since(load.started()) < 28);

  const auto o = outcome_of(load.report());
  check_every_request_answered(o);
  CHECK(o.unavailable > 0);  // the faults were felt
  CHECK(unavailable_while_down > 0);
  CHECK_FALSE(svc.wait_exit(0).has_value());  // no crash
  http_client c(svc.port());
  CHECK(c.request("GET", "/readyz").status == 200);
  const auto m = c.request("GET", "/metrics").body;
  CHECK(metric_value(m, "headroom_pool_dial_failures_total").value_or(0) > 0);
  check_pool_adds_up(m);
}

TEST_CASE(
    "PostgreSQL's max_connections taken by another client: dials fail as 503s, every request is "
    "answered, and the service recovers within 5 s of the slots being freed") {
  // A small server, so that the test's own connections can take every slot quickly (a
  // connection takes up to a few hundred ms on a busy machine).
  constexpr int slots = 10;
  private_postgres pg(slots);
  // No idle connections kept: every request dials, so every request meets the full server.
  service_process svc({"--max-idle", "0", "--wait-timeout", "2s", "--connect-timeout", "2s"}, 20,
                      pg.dsn());
  {
    http_client warm(svc.port());
    REQUIRE(warm.request("POST", "/", R"({"Age": 300})").status == 200);
  }
  // 20 req/s: each dial costs a fork and tens of ms of CPU, 20 a second is a fair share of two
  // shared cores. 30 s covers 3 s before, filling the slots (3-10 s on a busy machine), 4 s
  // full and the recovery.
  background_load load(svc.port(), 20, 30);
  prober probe(svc.port());
  sleep_s(3);

  // Take every slot until PostgreSQL refuses one, then for 4 s more every slot the service's
  // connections give back.
  std::vector<std::unique_ptr<pqxx::connection>> hogs;
  int refused = 0;
  std::optional<steady::time_point> full;
  const auto t_take = steady::now();
  while (full ? since(*full) < 4 : since(t_take) < 30) {
    try {
      hogs.push_back(std::make_unique<pqxx::connection>(pg.dsn()));
    } catch (const pqxx::broken_connection&) {
      refused++;  // full: try again soon for a slot a service connection frees
      if (!full) full = steady::now();
      sleep_s(0.005);
    }
  }
  INFO("the test held " << hogs.size() << " connections; refused " << refused << " times");
  REQUIRE(full.has_value());
  hogs.clear();
  const auto freed = steady::now();
  sleep_s(recovery_bound);
  const auto recovery = probe.recovered_after(freed);
  probe.stop();
  INFO("recovered " << recovery.value_or(-1) << " s after the slots were freed");
  CHECK(recovery.value_or(99) < recovery_bound);
  // The service said why: PostgreSQL's own message in the 503's JSON error.
  CHECK(probe.answers(503, "too many clients") > 0);
  // The load outlasts the recovery, so its last second shows the service healthy again.
  REQUIRE(since(load.started()) < 29);

  const auto o = outcome_of(load.report());
  check_every_request_answered(o);
  CHECK(o.unavailable > 0);
  CHECK_FALSE(svc.wait_exit(0).has_value());
  http_client c(svc.port());
  const auto m = c.request("GET", "/metrics").body;
  CHECK(metric_value(m, "headroom_pool_dial_failures_total").value_or(0) > 0);
  check_pool_adds_up(m);
}

namespace {

// A raw TCP client for the ill-behaved ones: it sends what it is given and leaves when told,
// with a reset (SO_LINGER 0) or an orderly close.
class raw_client {
 public:
  explicit raw_client(unsigned short port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    if (receive_buffer > 0)
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      throw std::runtime_error("cannot connect to the service");
    }
  }
  ~raw_client() { leave(false); }
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  // False once the service closed the connection (or reset it).
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Reads up to `n` bytes, waiting at most `timeout` seconds; what came.
  std::string read_some(std::size_t n, double timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout * 1000)) <= 0) return {};
    std::string buf(n, '\0');
    const ssize_t k = ::recv(fd_, buf.data(), n, 0);
    buf.resize(k > 0 ? static_cast<std::size_t>(k) : 0);
    return buf;
  }
  // True when the service has closed its side (or reset): a read finds the end at once.
  bool closed_by_peer() {
    char c;
    const ssize_t k = ::recv(fd_, &c, 1, MSG_DONTWAIT | MSG_PEEK);
    return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }
  void leave(bool reset) {
    if (fd_ < 0) return;
    if (reset) {
      linger l{1, 0};
      ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string post_head(std::size_t content_length) {
  return "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
         "application/json\r\nContent-Length: " +
         std::to_string(content_length) + "\r\n\r\n";
}

// Polls /metrics until `series` has a value `wanted` accepts or `within` seconds pass; the last
// value seen.
double wait_for_metric(http_client& c, const std::string& series,
                       const std::function<bool(double)>& wanted, double within) {
  const auto t0 = steady::now();
  double v = -1;
  while (since(t0) < within) {
    v = metric_value(c.request("GET", "/metrics").body, series).value_or(-1);
    if (wanted(v)) break;
    sleep_s(0.05);
  }
  return v;
}
auto equals(double value) {
  return [value](double v) { return v == value; };
}

}  // namespace

TEST_CASE(
    "clients that disconnect mid-request and mid-response leave nothing behind: connections back "
    "in the pool, no descriptor or session leaked, and normal clients all served") {
  const std::string dsn = pg_dsn();
  service_process svc({"--max-open", "4", "--max-idle", "4"});
  http_client scrape(svc.port());
  REQUIRE(scrape.request("POST", "/", R"({"Age": 300})").status == 200);
  // Descriptors besides the pool's connections and this one client connection.
  const auto base_metrics = scrape.request("GET", "/metrics").body;
  const int base_fds =
      open_fds(svc.pid()) - static_cast<int>(*metric_value(base_metrics, "headroom_pool_open"));

  background_load load(svc.port(), 50, 10);
  const std::string body = R"({"Age": 30})";  // about 110 people: a 10 KB answer
  for (int round = 0; round < 20; ++round) {
    const bool reset = round % 2 == 1;
    // Mid-request: the headers and half the body, then gone.
    {
      raw_client c(svc.port());
      c.send(post_head(body.size()) + body.substr(0, body.size() / 2));
      sleep_s(0.01);
      c.leave(reset);
    }
    // Mid-headers.
    {
      raw_client c(svc.port());
      c.send("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le");
      c.leave(reset);
    }
    // Whole request, gone before the answer: the query runs for nobody.
    {
      raw_client c(svc.port());
      c.send(post_head(body.size()) + body);
      c.leave(reset);
    }
    // Mid-response: the first bytes of the answer read, then gone with the rest unread. A
    // small receive buffer, and /metrics (tens of KB), leave the service still writing.
    {
      raw_client c(svc.port(), 1024);
      c.send(post_head(body.size()) + body);
      CHECK(c.read_some(100, 5).rfind("HTTP/1.1 200", 0) == 0);
      c.leave(reset);
    }
    {
      raw_client c(svc.port(), 1024);
      c.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      CHECK(c.read_some(100, 5).rfind("HTTP/1.1 200", 0) == 0);
      c.leave(reset);
    }
    sleep_s(0.1);
  }
  // Requests holding pooled connections when their clients leave: a table lock keeps eight
  // queries waiting (all four connections taken, in use or dialing, and requests waiting for
  // them), then the clients reset.
  {
    pqxx::connection locker(dsn);
    auto lock = std::make_unique<pqxx::work>(locker);
    lock->exec("lock table people in access exclusive mode");
    std::vector<std::unique_ptr<raw_client>> held;
    for (int i = 0; i < 8; ++i) {
      held.push_back(std::make_unique<raw_client>(svc.port()));
      held.back()->send(post_head(body.size()) + body);
    }
    CHECK(wait_for_metric(
              scrape, "headroom_pool_waiting", [](double v) { return v >= 1; }, 10) >= 1);
    for (auto& h : held) h->leave(true);
    sleep_s(0.2);
    lock->commit();
  }

  const auto o = outcome_of(load.report());
  check_every_request_answered(o);
  CHECK(o.ok == o.scheduled);  // nothing here makes a normal client's request fail
  // The sessions of the clients that left end (a closing session drains for at most 1 s): only
  // the scrape's connection is left, and only its request in flight.
  CHECK(wait_for_metric(scrape, "headroom_http_connections", equals(1), 5) == 1);
  const auto m = scrape.request("GET", "/metrics").body;
  CHECK(metric_value(m, "headroom_http_in_flight") == 1);
  check_pool_adds_up(m);
  // Descriptors: exactly as before, but for the pool's connections (the other helpers and
  // buffers the service opened at start do not grow).
  const int fds = open_fds(svc.pid()) - static_cast<int>(*metric_value(m, "headroom_pool_open"));
  CHECK(fds == base_fds);
  CHECK_FALSE(svc.wait_exit(0).has_value());
}

TEST_CASE(
    "400 slow clients at once (slowloris) are cut off by the header and body timeouts while "
    "normal clients are served within their usual latency") {
  // Short limits so the test sees each slow client cut off several times.
  constexpr double limit = 2.0;
  service_process svc(
      {"--max-open", "4", "--max-idle", "4", "--header-timeout", "2s", "--body-timeout", "2s"});
  {
    http_client warm(svc.port());
    REQUIRE(warm.request("POST", "/", R"({"Age": 300})").status == 200);
  }
  // The usual latency: the same load alone, just before.
  const auto usual = outcome_of(background_load(svc.port(), 100, 6).report());
  check_every_request_answered(usual);

  // Slow clients: half trickle their headers, half send headers and trickle a body, one byte
  // every 200 ms each; one cut off is replaced by a new one at once, as slowloris does.
  constexpr int slow = 400;
  std::atomic<bool> stop{false};
  std::vector<double> lifetimes;  // seconds from connecting to being cut off
  int reconnect_failures = 0;
  std::thread slowloris([&] {
    struct slow_client {
      std::unique_ptr<raw_client> c;
      steady::time_point opened;
    };
    auto open = [&](int i) {
      slow_client s{std::make_unique<raw_client>(svc.port()), steady::now()};
      s.c->send(i % 2 ? post_head(1000) : "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
      return s;
    };
    std::vector<slow_client> clients;
    for (int i = 0; i < slow; ++i) clients.push_back(open(i));
    while (!stop) {
      sleep_s(0.2);
      for (int i = 0; i < slow; ++i) {
        auto& s = clients[i];
        if (s.c->closed_by_peer() || !s.c->send(i % 2 ? "1" : "X")) {
          lifetimes.push_back(since(s.opened));
          try {
            s = open(i);
          } catch (const std::exception&) {
            reconnect_failures++;
          }
        }
      }
    }
  });
  sleep_s(1);
  const auto loaded = outcome_of(background_load(svc.port(), 100, 6).report());
  stop = true;
  slowloris.join();

  check_every_request_answered(loaded);
  CHECK(loaded.ok == loaded.scheduled);
  // Within the usual latency: twice the p99 measured alone just before, plus 20 ms. The machine
  // is shared: p99 alone varied up to 1.6 x between runs minutes apart (DESIGN.md), and a
  // scheduling hiccup of a few ms is not the slow clients' doing.
  INFO("p99 alone " << usual.p99_ok * 1e3 << " ms, with " << slow << " slow clients "
                    << loaded.p99_ok * 1e3 << " ms");
  CHECK(loaded.p99_ok <= 2 * usual.p99_ok + 0.020);
  // Each slow client was cut off at the limit: not before it (less 0.3 s for the 200 ms period
  // of our check), and not much after (+1.5 s on a busy machine).
  CHECK(reconnect_failures == 0);
  REQUIRE(lifetimes.size() >= slow);  // each at least once in 7 s
  double shortest = 1e9, longest = 0;
  for (double l : lifetimes) {
    shortest = std::min(shortest, l);
    longest = std::max(longest, l);
  }
  INFO("slow clients lived " << shortest << " to " << longest << " s");
  CHECK(shortest >= limit - 0.3);
  CHECK(longest <= limit + 1.5);
  // All gone: the service holds no session for them.
  http_client c(svc.port());
  CHECK(wait_for_metric(c, "headroom_http_connections", equals(1), 5) == 1);
  check_pool_adds_up(c.request("GET", "/metrics").body);
}

TEST_CASE(
    "SIGTERM under load answers every request the service accepted and exits 0 within the "
    "drain timeout") {
  constexpr double drain = 5;
  const std::string dsn = pg_dsn();
  service_process svc({"--max-open", "8", "--max-idle", "8", "--drain-timeout", "5s"});
  {
    http_client warm(svc.port());
    REQUIRE(warm.request("POST", "/", R"({"Age": 300})").status == 200);
  }
  background_load load(svc.port(), 100, 8);
  sleep_s(2.5);
  // A table lock holds the queries for a second, so that about a hundred requests are in
  // flight (on workers, waiting for a connection, queued) when SIGTERM comes.
  pqxx::connection locker(dsn);
  auto lock = std::make_unique<pqxx::work>(locker);
  lock->exec("lock table people in access exclusive mode");
  sleep_s(0.5);
  const auto term = steady::now();
  const double term_at = since(load.started());
  svc.signal(SIGTERM);
  sleep_s(0.5);
  CHECK_FALSE(svc.wait_exit(0).has_value());  // still draining: it waits for the held requests
  lock->commit();
  lock.reset();
  const auto code = svc.wait_exit(drain + 2);
  const double exit_after = since(term);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  // The drain ends once the last held request is answered: well within its timeout.
  INFO("exited " << exit_after << " s after SIGTERM");
  CHECK(exit_after < drain);

  const auto r = load.report();
  const auto o = outcome_of(r);
  INFO("statuses " << o.statuses << " errors " << o.errors);
  // Every answer is a success: a request accepted before SIGTERM is served, not refused.
  CHECK(o.ok == o.completed);
  CHECK(o.other_status + o.unavailable == 0);
  // Requests sent before SIGTERM (the generator's clock started a little after `load.started`,
  // so its whole seconds before term_at - 1 are surely before) were all answered.
  std::uint64_t sent_before = 0, errors_before = 0;
  const auto& seconds = r.at("per_second").as_array();
  for (std::size_t i = 0; i + 1 < static_cast<std::size_t>(term_at) && i < seconds.size(); ++i) {
    sent_before += count(seconds[i].as_object(), "sent");
    errors_before += count(seconds[i].as_object(), "errors");
  }
  CHECK(sent_before >= 100);
  CHECK(errors_before == 0);
  CHECK(o.ok >= sent_before);
  // What failed afterwards failed to connect (the service stopped listening) or found its idle
  // keep-alive connection closed: never a timeout, a bad response or an answer cut off.
  const auto& errors = r.at("error_counts").as_object();
  CHECK(count(errors, "timeout") == 0);
  CHECK(count(errors, "bad response") == 0);
}
