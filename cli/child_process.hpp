// Programs `headroom demo` starts and must stop: fork + exec with stdout/stderr to files or
// inherited, a wait that forwards Ctrl-C / SIGTERM to the child, and a stop that escalates.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace headroom::cli {

// Installs SIGINT and SIGTERM handlers that only record the signal (no SA_RESTART, so a blocked
// wait returns and can forward it). Returns the signal received so far, 0 if none.
void record_stop_signals();
int stop_signal();

class child_process {
 public:
  // Starts argv[0] (searched in PATH) with argv; stdout/stderr go to the files when given
  // (truncated), else to ours. The child gets its own process group, so a terminal's Ctrl-C
  // reaches only us and we forward it exactly once, and dies with us (PR_SET_PDEATHSIG).
  // Throws std::runtime_error naming the program when it cannot be started.
  child_process(const std::vector<std::string>& argv, const std::string& stdout_file = "",
                const std::string& stderr_file = "");
  ~child_process();  // stop(2 s) if still running
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Waits for the exit; a stop signal we receive meanwhile is passed on to the child once.
  // Returns the exit code, or 128 + signal when it was killed.
  int wait();
  // SIGTERM, then SIGKILL after `grace` seconds; returns as wait().
  int stop(double grace);

 private:
  pid_t pid_ = -1;
  int status_ = -1;  // exit code once reaped
};

// Runs argv to completion (stdout and stderr inherited) and returns its exit code.
int run_program(const std::vector<std::string>& argv);
// Runs argv to completion and returns its stdout; throws std::runtime_error with its stderr's
// last line when it fails.
std::string run_program_output(const std::vector<std::string>& argv);

}  // namespace headroom::cli
