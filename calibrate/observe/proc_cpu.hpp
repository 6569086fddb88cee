// CPU seconds of a local process and everything it forked, from /proc: the service, or
// PostgreSQL's postmaster with its backends (including backends that already exited), and one
// task's scheduler statistics (run time, run-queue wait, timeslices) from /proc/<pid>/schedstat.
//
// How the CPU of a tree is counted, and why a delta neither loses nor double-counts a process
// that exits between two snapshots. For a process p, /proc/<p>/stat gives
//   self(p)  = utime + stime: p's own CPU, all its threads, dead threads included;
//   reaped(p) = cutime + cstime: the self + reaped of every child p has waited for (reaped).
// When p reaps a child c, the kernel adds self(c) + reaped(c) to reaped(p) at that moment, so
// CPU moves from a child to its parent without changing the sum. The tree's cumulative CPU is
//   C = sum over the processes in the tree now (zombies included) of self(p) + reaped(p),
// which counts the root's whole history (reaped(root) holds children reaped long ago, before the
// first snapshot, but they are in both snapshots and cancel). Between two snapshots,
// C(t2) - C(t1) is exactly the CPU the tree used in between: a backend alive at t1 that exited
// and was reaped by t2 was counted at t1 as self(c)(t1) and at t2 inside its parent's reaped(),
// with its final total; the difference is what it used after t1. The delta splits C's change as
//   live   = sum over processes alive at t2 of self(t2) - self(t1) (0 at t1 for new ones);
//   exited = sum over t2's processes of reaped(t2) - reaped(t1), minus self + reaped at t1 of
//            the processes gone by t2: the CPU used in the interval by processes that ended
//            (whether they started before t1 or within the interval);
// and live + exited = C(t2) - C(t1). Processes are matched by pid and start time (pids recycle).
//
// Reading /proc is not atomic: if a child is read and then reaped before its parent is read, it
// would be counted twice. A snapshot therefore reads the parents' reaped() before and after
// reading the tree, and reads again if it changed (see process_cpu_snapshot::of_tree).
// Limits: a process that leaves the tree alive (re-parented to init when its parent dies) takes
// its CPU with it, and a parent that ignores SIGCHLD never adds its children to cutime; neither
// happens to a running postmaster or the service. Units are clock ticks (sysconf(_SC_CLK_TCK),
// 100 per second on Linux: 10 ms), converted to seconds; each process reads up to one tick low.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace headroom::calibrate {

// /proc could not be read (no such process, not Linux, a changed tree). One line.
struct proc_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One process as /proc/<pid>/stat shows it.
struct process_cpu {
  pid_t pid = 0;
  pid_t ppid = 0;
  std::uint64_t start_ticks = 0;  // since boot: with pid, identifies the process
  std::string name;               // /proc/<pid>/cmdline (PostgreSQL sets it to the backend's role)
  char state = '?';               // R, S, D, Z (zombie: exited, not yet reaped) ...
  double self_seconds = 0;        // utime + stime
  double reaped_seconds = 0;      // cutime + cstime
};

// Pids of `root` and its live descendants as one scan of /proc shows them, root first. Throws
// proc_error if root does not exist.
std::vector<pid_t> process_tree_pids(pid_t root);

class process_cpu_snapshot {
 public:
  // `root` and all its live descendants. Throws proc_error if root does not exist.
  static process_cpu_snapshot of_tree(pid_t root);

  pid_t root() const { return processes_.front().pid; }
  const std::vector<process_cpu>& processes() const { return processes_; }  // root first
  // The tree's cumulative CPU (see the top of this file).
  double total_seconds() const;

 private:
  std::vector<process_cpu> processes_;
};

struct process_cpu_delta {
  double total_seconds = 0;   // live + exited
  double root_seconds = 0;    // the root's own self (e.g. the postmaster's forks)
  double live_seconds = 0;    // self of processes alive at the second snapshot, root included
  double exited_seconds = 0;  // used in the interval by processes that ended within it
  int started = 0;            // processes seen in the second snapshot only
  int ended = 0;              // processes seen in the first snapshot only
  struct one {
    process_cpu process;  // as in the second snapshot
    double self_seconds;  // its own CPU in the interval
  };
  std::vector<one> by_process;  // processes alive at the second snapshot
};

// Throws proc_error if the roots differ (the target restarted between the snapshots).
process_cpu_delta operator-(const process_cpu_snapshot& after, const process_cpu_snapshot& before);

// The postmaster's pid from a PostgreSQL data directory (first line of postmaster.pid).
// Throws proc_error if the file is missing or the process is not running.
pid_t postmaster_pid(const std::string& data_directory);

// /proc/<pid>/schedstat: one task (for a process, its main thread), cumulative since it started.
struct task_schedstat {
  double run_seconds = 0;   // on a CPU
  double wait_seconds = 0;  // runnable, waiting in a run queue
  std::uint64_t timeslices = 0;
};
// Throws proc_error when the task is gone or the kernel has no schedstat (CONFIG_SCHED_INFO).
task_schedstat read_task_schedstat(pid_t pid);
task_schedstat operator-(const task_schedstat& after, const task_schedstat& before);

}  // namespace headroom::calibrate
