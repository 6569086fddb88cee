// The whole machine's CPU from /proc, as snapshots to subtract around a load step: time per CPU
// state (/proc/stat), run-queue totals (/proc/schedstat, when the kernel keeps them) and CPU
// pressure (/proc/pressure/cpu, PSI). With node_exporter these come over HTTP instead.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace headroom::calibrate {

// /proc/stat's "cpu" line (all CPUs summed, seconds) and its counters. Guest time is already
// inside user and nice, so it is not kept apart.
struct host_cpu_times {
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  std::uint64_t context_switches = 0;  // ctxt
  std::uint64_t forks = 0;             // processes
  int procs_running = 0;               // at the moment of reading (a gauge: a delta keeps `after`)
  int procs_blocked = 0;
  int cpus = 0;  // cpuN lines

  double busy_seconds() const { return user + nice + system + irq + softirq + steal; }
  double total_seconds() const { return busy_seconds() + idle + iowait; }
};
// Throws proc_error (proc_cpu.hpp) if the text has no "cpu" line. With `only` (a CPU list,
// cpu_set.hpp), the times are those of the cpuN lines named there and `cpus` is how many of them
// there are: the target's share of a host split with the generator (--target-cpus).
host_cpu_times parse_host_cpu_times(std::string_view proc_stat_text,
                                    const std::vector<int>& only = {});
host_cpu_times read_host_cpu_times(const std::vector<int>& only = {});  // /proc/stat
host_cpu_times operator-(const host_cpu_times& after, const host_cpu_times& before);

// /proc/schedstat's per-CPU lines summed over CPUs: time tasks ran, time runnable tasks waited in
// a run queue, and timeslices. Over an interval of length T, (run + wait) / T is the mean number
// of runnable tasks, and wait / T the mean number waiting for a CPU.
struct run_queue_totals {
  double run_seconds = 0;
  double wait_seconds = 0;
  std::uint64_t timeslices = 0;
  int cpus = 0;
  double mean_runnable(double interval_seconds) const {
    return (run_seconds + wait_seconds) / interval_seconds;
  }
};
// Throws proc_error if there is no cpuN line with nine fields. `only`: as for the host's times.
run_queue_totals parse_run_queue_totals(std::string_view proc_schedstat_text,
                                        const std::vector<int>& only = {});
// Nothing when the kernel has no /proc/schedstat (built without CONFIG_SCHEDSTATS).
std::optional<run_queue_totals> read_run_queue_totals(const std::vector<int>& only = {});
run_queue_totals operator-(const run_queue_totals& after, const run_queue_totals& before);

// /proc/pressure/cpu: the time during which at least one runnable task waited for a CPU
// ("some"), and, on cgroup levels only, during which all did ("full").
struct cpu_pressure {
  double some_seconds = 0;
  double full_seconds = 0;
};
// Throws proc_error if the text has no "some ... total=" line.
cpu_pressure parse_cpu_pressure(std::string_view text);
// Nothing when the kernel has no PSI (CONFIG_PSI off, or psi=0 on the command line).
std::optional<cpu_pressure> read_cpu_pressure();
cpu_pressure operator-(const cpu_pressure& after, const cpu_pressure& before);

}  // namespace headroom::calibrate
