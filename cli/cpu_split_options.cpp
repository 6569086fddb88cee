#include "cpu_split_options.hpp"

#include <unistd.h>

#include <iostream>

#include "target_url.hpp"

namespace headroom::cli {
namespace cal = headroom::calibrate;

void add_cpu_split_options(CLI::App* app, cpu_split_args& a) {
  app->add_option("--generator-cpus", a.generator_cpus,
                  "CPU list for the generator, e.g. 0 or 0-1 (taskset's form); the target's "
                  "processes get the rest unless --target-cpus says");
  app->add_option("--target-cpus", a.target_cpus,
                  "CPU list for the service and PostgreSQL when they run here, e.g. 1; the "
                  "generator gets the rest unless --generator-cpus says. Given back at the end");
}

cpu_split_guard::cpu_split_guard(const cpu_split_args& a, pid_t service_pid, pid_t postmaster_pid,
                                 const std::string& command) {
  try {
    split_ = cal::resolve_cpu_split(a.generator_cpus, a.target_cpus);
  } catch (const std::invalid_argument& e) {
    throw cal::load_input_error(e.what());
  }
  if (!split_.apart()) return;
  if (service_pid <= 0)
    throw cal::load_input_error(
        "--target-cpus: no process of the target found on this machine (a target on "
        "127.0.0.1, or give --service-pid): a split needs the service here");
  try {
    const pid_t self = ::getpid();
    restore_.emplace_back(self, cal::process_cpus(self));
    cal::pin_process(self, split_.generator);
    restore_.emplace_back(service_pid, cal::process_cpus(service_pid));
    cal::pin_process_tree(service_pid, split_.target);
    std::cerr << command << ": generator on CPUs " << cal::cpu_list_text(split_.generator)
              << ", service (pid " << service_pid << ")";
    if (postmaster_pid > 0) {
      restore_.emplace_back(postmaster_pid, cal::process_cpus(postmaster_pid));
      cal::pin_process_tree(postmaster_pid, split_.target);
      std::cerr << " and PostgreSQL (pid " << postmaster_pid << ")";
    }
    std::cerr << " on CPUs " << cal::cpu_list_text(split_.target) << "\n";
    if (postmaster_pid <= 0)
      std::cerr << command
                << ": no PostgreSQL found here to pin (give --postgres-pid if it runs here)\n";
  } catch (const std::runtime_error& e) {
    throw cal::load_input_error(std::string("--target-cpus: ") + e.what());
  }
}

cpu_split_guard::~cpu_split_guard() {
  // Whatever the command did, the processes get their CPUs back; a process that has ended
  // meanwhile needs nothing.
  for (auto it = restore_.rbegin(); it != restore_.rend(); ++it) {
    try {
      if (it->first == ::getpid())
        cal::pin_process(it->first, it->second);
      else
        cal::pin_process_tree(it->first, it->second);
    } catch (const std::exception&) {
    }
  }
}

}  // namespace headroom::cli
