// CPU lists as taskset(1) and cpusets write them ("1", "0-1", "0,2-3"), and pinning processes
// to them with sched_setaffinity(2), so that on one host the load generator can run apart from
// the service and PostgreSQL (calibrate, validate, load: --generator-cpus, --target-cpus). An
// affinity, not a cgroup: it needs no privilege beyond owning the processes, and processes
// forked later (PostgreSQL's backends, the generator's threads) inherit it.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace headroom::calibrate {

// Sorted, without repeats. Throws std::invalid_argument naming what is wrong ("a CPU list:
// '0-x'..."); `flag` starts the message (e.g. "--target-cpus").
std::vector<int> parse_cpu_list(std::string_view text, const std::string& flag);
std::string cpu_list_text(const std::vector<int>& cpus);  // "0-1,3"

// The CPUs this process may run on (sched_getaffinity).
std::vector<int> usable_cpus();

// Every thread of `pid` (/proc/<pid>/task) pinned to `cpus`. Throws std::runtime_error naming
// the process and the reason (EPERM: another user's process) when one cannot be pinned.
void pin_process(pid_t pid, const std::vector<int>& cpus);
// `root` and every process below it (PostgreSQL's postmaster and its backends and workers; a
// service's children), each with all its threads.
void pin_process_tree(pid_t root, const std::vector<int>& cpus);
// The CPUs every thread of `pid` may run on, the union over its threads.
std::vector<int> process_cpus(pid_t pid);

// --generator-cpus and --target-cpus checked together: each within usable_cpus(), and the two
// sets disjoint (a shared CPU would be no split at all). Throws std::invalid_argument.
void check_cpu_split(const std::vector<int>& generator, const std::vector<int>& target);

// The split the flags ask for: either flag alone gives the other the rest of usable_cpus(); both
// empty when neither was given. Throws std::invalid_argument (a bad list, a shared or unusable
// CPU, nothing left for the other side).
struct cpu_split {
  std::vector<int> generator, target;
  bool apart() const { return !target.empty(); }
};
cpu_split resolve_cpu_split(const std::string& generator_flag, const std::string& target_flag);

}  // namespace headroom::calibrate
