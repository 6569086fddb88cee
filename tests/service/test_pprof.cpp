// Black-box tests of the service's CPU profile endpoint (--pprof): a profile taken under load
// that google-pprof reads and that shows the query on the I/O thread, one profile at a time,
// the bounds on `seconds`, the 404 without the flag, and a profile cut short by SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <regex>
#include <thread>
#include <vector>

#include "service_process.hpp"

using namespace headroom::test;

namespace {

using steady = std::chrono::steady_clock;

double since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

// Runs GET `target` on its own connection in the background (a profile takes seconds).
std::future<http_reply> get_async(unsigned short port, const std::string& target) {
  return std::async(std::launch::async, [port, target] {
    http_client c(port, 90);
    return c.request("GET", target);
  });
}

std::string error_of(const http_reply& r) {
  INFO("body: " << r.body);
  return std::string(boost::json::parse(r.body).as_object().at("error").as_string());
}

// How long the running profile still takes, from a 409's "... it ends in 1.5s".
double seconds_left(const http_reply& busy) {
  const std::string why = error_of(busy);
  INFO(why);
  std::smatch m;
  REQUIRE(std::regex_match(
      why, m, std::regex(R"(a CPU profile is already running; it ends in ([0-9.]+)(ms|s))")));
  return std::stod(m[1]) / (m[2] == "ms" ? 1000 : 1);
}

// The header gperftools writes first, in machine words: a zero count, 3 header words, format
// version 0, the sampling period in microseconds, a zero.
struct profile_header {
  std::uintptr_t words[5];
};

profile_header header_of(const std::string& profile) {
  REQUIRE(profile.size() >= sizeof(profile_header));
  profile_header h;
  std::memcpy(&h, profile.data(), sizeof h);
  return h;
}

// A profile in a file of its own, removed with the object, for google-pprof to read.
class profile_file {
 public:
  explicit profile_file(const std::string& bytes) {
    char name[] = "/tmp/headroom-test-profile-XXXXXX";
    const int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    ::close(fd);
    path_ = name;
    std::ofstream(path_, std::ios::binary) << bytes;
  }
  ~profile_file() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string pprof(const std::string& options, const profile_file& profile) {
  const std::string binary = env("HEADROOM_BINARY_DIR") + "/service/headroom-service";
  // Its "Using local file" notes go to stderr.
  return run("google-pprof " + options + " " + binary + " " + profile.path() + " 2>/dev/null");
}

// POST / in a loop on `clients` keep-alive connections until stopped, counting the answers.
class load {
 public:
  load(unsigned short port, int clients) {
    for (int i = 0; i < clients; ++i)
      threads_.emplace_back([this, port] {
        http_client c(port);
        while (!stop_) {
          const auto r = c.request("POST", "/", R"({"Age": 30})");
          (r.status == 200 ? ok_ : failed_)++;
        }
      });
  }
  ~load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0};
  std::vector<std::thread> threads_;
};

}  // namespace

TEST_CASE(
    "a profile taken under load names the service's functions and the query on its I/O thread") {
  // One I/O thread: if the profile held it, nothing else would be answered meanwhile.
  service_process svc({"--pprof", "--io-threads", "1"});
  load clients(svc.port(), 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the pool fills up first
  const int ok_before = clients.ok();

  const auto t0 = steady::now();
  auto profile = get_async(svc.port(), "/debug/pprof/profile?seconds=3");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  http_client c(svc.port());
  const auto health = c.request("GET", "/healthz");
  // Answered before the profile ends: the I/O thread serves on while the profile runs. About
  // 1 ms when the machine is quiet; 1 s leaves room for a crowded one and is still 1 s short of
  // the profile's end.
  CHECK(health.status == 200);
  CHECK(health.seconds < 1.0);
  CHECK(profile.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);

  const auto r = profile.get();
  const double took = since(t0);
  const int ok_during = clients.ok() - ok_before;
  clients.stop();
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == "application/octet-stream");
  // The timer is 3 s; a second more for the request itself on a crowded machine.
  CHECK(took >= 3.0);
  CHECK(took < 4.0);
  // SIGPROF interrupts system calls on every thread: none of the load's requests may fail.
  CHECK(clients.failed() == 0);
  CHECK(ok_during > 100);  // several hundred a second here, even on a crowded machine

  const auto h = header_of(r.body);
  CHECK(h.words[0] == 0);
  CHECK(h.words[1] == 3);
  CHECK(h.words[2] == 0);
  CHECK(h.words[3] == 10000);  // gperftools' default: 100 samples per second of CPU

  const profile_file file(r.body);
  const std::string top = pprof("--text", file);
  INFO("google-pprof --text:\n" << top);
  std::smatch total;
  REQUIRE(std::regex_search(top, total, std::regex(R"(^Total: ([0-9]+) samples)")));
  // 38 to 55 samples were measured here (about 0.15 core for 3 s); 10 still shows sampling works.
  CHECK(std::stoi(total[1]) >= 10);
  // The service's own code, and the query each request runs.
  CHECK(top.find("headroom::") != std::string::npos);
  CHECK(top.find("headroom::people_handler::find_people") != std::string::npos);

  // Whose samples they are, from the thread's entry point at the root of each stack. Since the
  // asynchronous query path, a request runs start to end on the I/O thread that read it (its
  // loop started in http_server::start), the query included; the thread pool only dials, and
  // a warm pool seldom dials, each dial a fraction of a sample of the service's CPU (CI's clean
  // clone saw 0 of 48 samples there, so the pool is not asserted). gperftools' process-wide
  // ITIMER_PROF sends SIGPROF to whichever thread used the CPU, without registering threads.
  int io = 0, query_on_io = 0, folded_total = 0;
  const std::string folded = pprof("--collapsed", file);
  std::istringstream collapsed(folded);
  for (std::string line; std::getline(collapsed, line);) {
    const int n = std::stoi(line.substr(line.rfind(' ') + 1));
    folded_total += n;
    if (line.find("headroom::http_server::start()") == std::string::npos) continue;
    io += n;
    if (line.find("headroom::people_handler::find_people") != std::string::npos) query_on_io += n;
  }
  CHECK(io >= 1);
  CHECK(query_on_io >= 1);

  // The README's flame graph: the folded stacks through scripts/flamegraph (Debian has no
  // flame-graph tool). Its title counts every sample, and the handler is one of its frames.
  const std::string folded_path = file.path() + ".folded";
  {
    std::ofstream(folded_path) << folded;
  }
  const std::string svg = run(env("HEADROOM_SOURCE_DIR") + "/scripts/flamegraph " + folded_path);
  std::remove(folded_path.c_str());
  INFO("scripts/flamegraph:\n" << svg.substr(0, 2000));
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("(" + std::to_string(folded_total) + " samples)") != std::string::npos);
  CHECK(svg.find("<title>headroom::people_handler::find_people") != std::string::npos);
}

TEST_CASE("a second profile while one runs gets 409 saying when the first one ends") {
  service_process svc({"--pprof"});
  const auto t0 = steady::now();
  auto first = get_async(svc.port(), "/debug/pprof/profile?seconds=2");
  // Time for the first request to arrive (milliseconds) before the second is sent.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  http_client c(svc.port());
  const auto second = c.request("GET", "/debug/pprof/profile?seconds=1");
  const double answered = since(t0);
  REQUIRE(second.status == 409);
  // The first began after t0 and the second was answered `answered` after it, so at most 2 s
  // and at least 2 s - answered were left (10 ms for the message's rounding).
  const double left = seconds_left(second);
  CHECK(left <= 2.0 + 0.01);
  CHECK(left >= 2.0 - answered - 0.01);
  const int retry = std::stoi(second.header("Retry-After"));
  CHECK(retry >= 1);
  CHECK(retry <= 2);

  const auto r = first.get();
  CHECK(r.status == 200);
  CHECK(header_of(r.body).words[1] == 3);
  // One at a time, not one ever: the next profile may start.
  CHECK(c.request("GET", "/debug/pprof/profile?seconds=1").status == 200);
}

TEST_CASE("a profile's seconds must be a whole number from 1 to 60, and 30 when not given") {
  service_process svc({"--pprof"});
  http_client c(svc.port());
  for (const char* bad : {"0", "61", "-1", "2.5", "abc", "", "1e1", "99999999999"}) {
    const auto r = c.request("GET", std::string("/debug/pprof/profile?seconds=") + bad);
    INFO("seconds=" << bad);
    CHECK(r.status == 400);
    CHECK(error_of(r) ==
          std::string("seconds must be a whole number from 1 to 60, not '") + bad + "'");
  }
  CHECK(c.request("POST", "/debug/pprof/profile?seconds=1").status == 405);
  // Other parameters are ignored, as Go's handler does.
  CHECK(c.request("GET", "/debug/pprof/profile?debug=1&seconds=1").status == 200);

  // Without `seconds`, 30 s, as in Go (seen through the second request's 409: waiting for the
  // whole profile would make the test 30 s longer).
  const auto started = steady::now();
  auto long_one = get_async(svc.port(), "/debug/pprof/profile");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto busy = c.request("GET", "/debug/pprof/profile?seconds=1");
  const double answered = since(started);
  REQUIRE(busy.status == 409);
  CHECK(seconds_left(busy) <= 30.0 + 0.01);
  CHECK(seconds_left(busy) >= 30.0 - answered - 0.01);

  // SIGTERM ends it early: its client gets the samples so far, and the service exits cleanly
  // within its drain timeout (10 s) rather than after the profile's 30 s.
  const auto t0 = steady::now();
  svc.signal(SIGTERM);
  const auto r = long_one.get();
  CHECK(since(t0) < 5.0);
  CHECK(r.status == 200);
  CHECK(header_of(r.body).words[1] == 3);
  CHECK(svc.wait_exit(10) == std::optional<int>(0));
}

TEST_CASE("without --pprof the profile's path is not found, and HEADROOM_PPROF turns it on") {
  {
    service_process svc;
    http_client c(svc.port());
    const auto r = c.request("GET", "/debug/pprof/profile?seconds=1");
    CHECK(r.status == 404);
    CHECK(error_of(r) == "no such path: /debug/pprof/profile (needs --pprof)");
  }
  ::setenv("HEADROOM_PPROF", "1", 1);
  service_process svc;
  ::unsetenv("HEADROOM_PPROF");
  http_client c(svc.port());
  CHECK(c.request("GET", "/debug/pprof/profile?seconds=1").status == 200);
}
