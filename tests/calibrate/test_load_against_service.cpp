// The generator against the real headroom-service and PostgreSQL (CTest fixture `postgres`):
// 30 s at 200 rps of the no-match request, zero errors, all five Server-Timing phases present.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "open_loop_generator.hpp"

extern char** environ;

using namespace headroom::calibrate;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) throw std::runtime_error(std::string(name) + " is not set (run under CTest)");
  return v;
}

std::string command_output(const std::string& command) {
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run: " + command);
  std::string out;
  char buf[512];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  if (::pclose(p) != 0) throw std::runtime_error("failed: " + command);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// headroom-service as a child process, on a free port; killed when this goes out of scope.
class service_child {
 public:
  service_child() {
    std::string dsn = command_output(env("HEADROOM_SOURCE_DIR") + "/scripts/pg dsn --dir " +
                                     env("HEADROOM_PG_DIR"));
    std::string binary = env("HEADROOM_BINARY_DIR") + "/service/headroom-service";
    std::vector<std::string> args{binary, "--dsn", dsn, "--port", "0"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    int rc = ::posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      throw std::runtime_error("cannot start " + binary);
    }
    std::string line;
    char c = 0;
    pollfd p{fds[0], POLLIN, 0};
    // The service prints one line when it listens; 20 s covers a slow first database connect.
    while (::poll(&p, 1, 20000) > 0 && ::read(fds[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(fds[0]);
    std::smatch m;
    if (!std::regex_match(
            line, m, std::regex(R"(headroom-service listening on (http://127\.0\.0\.1:[0-9]+))")))
      throw std::runtime_error("unexpected first line from headroom-service: '" + line + "'");
    url_ = m[1].str() + "/";
  }
  ~service_child() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  service_child(const service_child&) = delete;
  service_child& operator=(const service_child&) = delete;
  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

}  // namespace

TEST_CASE("200 rps for 30 s against the real service gives no errors and all five phases") {
  service_child service;
  std::ifstream body_file(env("HEADROOM_SOURCE_DIR") + "/tests/fixtures/age_no_match.json");
  std::stringstream body;
  body << body_file.rdbuf();
  load_options o;
  o.targets = {service.url()};
  o.method = "POST";
  o.headers = {{"Content-Type", "application/json"}};
  o.body = body.str();
  o.schedule = load_schedule::constant(200, 30);
  open_loop_generator g(o);
  g.check_reachable();
  auto r = g.run();
  INFO(text_report(r));
  CHECK(r.scheduled == 6000);
  CHECK(r.completed == 6000);
  CHECK(r.transport_errors == 0);
  CHECK(r.failed() == 0);
  CHECK(r.status_counts.at(200) == 6000);
  CHECK(r.server_timing_responses == 6000);
  CHECK(r.server_timing_malformed == 0);
  for (const char* phase : {"queue", "wait", "dial", "query", "release"}) {
    INFO(phase);
    REQUIRE(r.phases.count(phase) == 1);
    CHECK(r.phases.at(phase).total_count() == 6000);
  }
  // An open-loop run at 200 rps must achieve it: 1 % as in the in-process rate test.
  CHECK(r.throughput() == Approx(200).epsilon(0.01));
}
