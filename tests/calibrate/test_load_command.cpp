// Tests of the `headroom load` command as a user runs it: exit codes, Ctrl-C, merge.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "headroom_cli.hpp"
#include "test_http_server.hpp"

namespace {

using outcome = headroom::test::cli_outcome;
using headroom::test::slurp;
using headroom::test::temp_path;

// Runs headroom with `args`; if interrupt_after > 0, sends SIGINT after that many seconds.
outcome run_headroom(std::vector<std::string> args, double interrupt_after = 0) {
  return headroom::test::run_cli(HEADROOM_CLI, std::move(args), interrupt_after);
}

bool one_line(const std::string& s) {
  return !s.empty() && s.back() == '\n' && s.find('\n') == s.size() - 1;
}

}  // namespace

TEST_CASE("bad input gives one line on stderr and exit code 2") {
  std::string closed_url;
  {
    headroom::test::test_http_server s;
    closed_url = s.url();
  }
  headroom::test::test_http_server server;
  const std::vector<std::vector<std::string>> cases = {
      {"load", "--target", "not-a-url", "--rate", "10", "--duration", "1s"},
      {"load", "--target", closed_url, "--rate", "10", "--duration", "1s"},  // unreachable
      {"load", "--target", server.url(), "--rate", "0", "--duration", "1s"},
      {"load", "--target", server.url(), "--rate", "-5", "--duration", "1s"},
      {"load", "--target", server.url(), "--rate", "10", "--duration", "0s"},
      {"load", "--target", server.url(), "--rate", "10", "--duration", "1s", "--body",
       "/nonexistent/body.json"},
      {"load", "--target", server.url(), "--steps", "10,x", "--step-duration", "1s"},
      {"load", "--target", server.url(), "--rate", "10", "--duration", "abc"},
      {"load", "--target", server.url(), "--rate", "10", "--duration", "1s", "--timeout", "5x"},
      {"load", "--target", server.url(), "--rate", "10", "--duration", "1s", "--json",
       "/nonexistent/dir/run.json"},
  };
  for (const auto& args : cases) {
    auto o = run_headroom(args);
    INFO(args[2] << " " << args[3] << " " << args[4] << ": " << o.err);
    CHECK(o.exit_code == 2);
    CHECK(one_line(o.err));
    CHECK(o.out.empty());
  }
  CHECK(server.requests() == 0);
}

TEST_CASE("Ctrl-C stops the run and still prints and saves what was measured") {
  headroom::test::test_http_server server;
  std::string json = temp_path("interrupted.json");
  auto o = run_headroom(
      {"load", "--target", server.url(), "--rate", "200", "--duration", "60s", "--json", json},
      1.5);
  CHECK(o.exit_code == 130);  // the shell's convention for "ended by SIGINT"
  CHECK(o.out.find("INTERRUPTED") != std::string::npos);
  auto report = boost::json::parse(slurp(json)).as_object();
  std::remove(json.c_str());
  CHECK(report.at("interrupted").as_bool());
  // ~1.5 s at 200 rps, less process start-up: 150..320 allows for a slow start on a busy machine.
  auto completed = report.at("requests").at("completed").as_int64();
  CHECK(completed >= 150);
  CHECK(completed <= 320);
}

TEST_CASE("headroom load merge combines two JSON reports into one") {
  headroom::test::test_http_server server;
  std::string a = temp_path("a.json"), b = temp_path("b.json"), m = temp_path("m.json");
  REQUIRE(run_headroom(
              {"load", "--target", server.url(), "--rate", "100", "--duration", "1s", "--json", a})
              .exit_code == 0);
  REQUIRE(run_headroom(
              {"load", "--target", server.url(), "--rate", "50", "--duration", "1s", "--json", b})
              .exit_code == 0);
  auto o = run_headroom({"load", "merge", a, b, "--json", m});
  CHECK(o.exit_code == 0);
  CHECK(o.out.find("2 runs merged") != std::string::npos);
  auto merged = boost::json::parse(slurp(m)).as_object();
  CHECK(merged.at("runs").as_int64() == 2);
  CHECK(merged.at("requests").at("completed").as_int64() == 150);
  CHECK(merged.at("latency").at("count").as_int64() == 150);
  CHECK(merged.at("latency_all").at("count").as_int64() == 150);
  CHECK(merged.at("censored").as_int64() == 0);
  CHECK(merged.at("offered_rate").as_double() == Approx(150));
  // --json with no FILE: the merged JSON on stdout instead of the text.
  auto to_stdout = run_headroom({"load", "merge", a, b, "--json"});
  CHECK(to_stdout.exit_code == 0);
  CHECK(boost::json::parse(to_stdout.out).at("runs").as_int64() == 2);
  for (const auto& p : {a, b, m}) std::remove(p.c_str());
}

TEST_CASE("a JSON report asked for with no file or - goes to stdout instead of the text") {
  headroom::test::test_http_server server;
  for (std::vector<std::string> json_flag :
       {std::vector<std::string>{"--json"}, std::vector<std::string>{"--json", "-"}}) {
    std::vector<std::string> args = {"load", "--target",   server.url(), "--rate",
                                     "100",  "--duration", "500ms"};
    args.insert(args.end(), json_flag.begin(), json_flag.end());
    auto o = run_headroom(args);
    INFO(o.err);
    CHECK(o.exit_code == 0);
    auto report = boost::json::parse(o.out).as_object();  // all of stdout is one JSON document
    CHECK(report.at("format").as_string() == "headroom-load/2");
    CHECK(report.at("requests").at("completed").as_int64() == 50);
    CHECK(report.at("latency").at("count").as_int64() == 50);
    CHECK(report.at("latency_all").at("count").as_int64() == 50);
    CHECK(report.at("censored").as_int64() == 0);
    CHECK_FALSE(report.at("latency_all_is_lower_bound").as_bool());
  }
}

TEST_CASE("the help of headroom load gives the unit of every flag") {
  auto o = run_headroom({"load", "--help"});
  CHECK(o.exit_code == 0);
  std::istringstream lines(o.out);
  std::string line;
  int flags = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("  --", 0) != 0 || line.rfind("  --help", 0) == 0) continue;
    ++flags;
    INFO(line);
    // A unit, a unit-free kind (URL, FILE, a word list), or a duration with its units.
    bool has_unit = false;
    for (const char* unit : {"rps", "duration:", "connections", "threads", "FILE", "URL", "uniform",
                             "HTTP method", "Name: value", "integer", "bytes", "CPU list"})
      has_unit = has_unit || line.find(unit) != std::string::npos;
    CHECK(has_unit);
  }
  CHECK(flags == 20);  // every option of `headroom load` was looked at (with the CPU split's two)
}
