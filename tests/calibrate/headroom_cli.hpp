// Runs the `headroom` command as a user does, for tests: a child process with its stdout and
// stderr captured, optionally interrupted (SIGINT) after a delay or once a condition holds.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace headroom::test {

struct cli_outcome {
  int exit_code;
  std::string out;
  std::string err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string temp_path(const std::string& name) {
  return "/tmp/headroom-test-" + std::to_string(::getpid()) + "-" + name;
}

// Runs `cli` with `args`. With `interrupt_when`, polls it every 100 ms and sends SIGINT once it
// returns true (or once `interrupt_after` seconds passed, if > 0).
inline cli_outcome run_cli(const std::string& cli, std::vector<std::string> args,
                           double interrupt_after = 0,
                           const std::function<bool()>& interrupt_when = {}) {
  const std::string out_path = temp_path("stdout"), err_path = temp_path("stderr");
  args.insert(args.begin(), cli);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, cli.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot run " + cli);
  if (interrupt_when || interrupt_after > 0) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {  // ended before the interrupt
        cli_outcome o{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                      slurp(out_path), slurp(err_path)};
        std::remove(out_path.c_str());
        std::remove(err_path.c_str());
        return o;
      }
      const double t =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if ((interrupt_when && interrupt_when()) || (interrupt_after > 0 && t >= interrupt_after))
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid, SIGINT);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  cli_outcome o{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), slurp(out_path),
                slurp(err_path)};
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return o;
}

}  // namespace headroom::test
