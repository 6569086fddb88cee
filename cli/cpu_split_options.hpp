// --generator-cpus and --target-cpus, the same for load, calibrate and validate: on one host,
// the generator (this process) on CPUs of its own and the target's local processes (the
// service's tree, PostgreSQL's) on the others, so they do not fight for the same cores
// (calibrate/observe/cpu_set.hpp). Their former CPUs are given back when the command ends.
#pragma once

#include <sys/types.h>

#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cpu_set.hpp"

namespace headroom::cli {

struct cpu_split_args {
  std::string generator_cpus, target_cpus;  // "" = not given
};

void add_cpu_split_options(CLI::App* app, cpu_split_args& args);

// Pins for as long as it lives. Neither flag: does nothing. Throws calibrate::load_input_error
// (exit 2) for a bad list, a shared or unusable CPU, or no local service to pin; a PostgreSQL
// that is not found here is said on stderr (the database may be on another host).
class cpu_split_guard {
 public:
  cpu_split_guard(const cpu_split_args& args, pid_t service_pid, pid_t postmaster_pid,
                  const std::string& command);
  ~cpu_split_guard();
  cpu_split_guard(const cpu_split_guard&) = delete;
  cpu_split_guard& operator=(const cpu_split_guard&) = delete;

  const calibrate::cpu_split& split() const { return split_; }

 private:
  calibrate::cpu_split split_;
  std::vector<std::pair<pid_t, std::vector<int>>> restore_;  // each pinned tree's former CPUs
};

}  // namespace headroom::cli
