// Tests of CPU accounting from /proc: children of this test process that burn a known amount of
// CPU (measured by the child itself with getrusage), alive, as zombies and once reaped; processes
// waiting in the run queue; the host's counters; and ([live]) the fixture's real PostgreSQL.
//
// Tolerance: /proc/<pid>/stat gives utime and stime in clock ticks of 10 ms, each truncated from
// the kernel's nanoseconds, so a process reads up to 2 ticks (20 ms) below what getrusage (same
// kernel figures, in microseconds) says. A delta of two such readings is off by at most 20 ms
// either way.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <limits>
#include <pqxx/pqxx>
#include <thread>

#include "host_cpu.hpp"
#include "proc_cpu.hpp"
#include "service_process.hpp"

using namespace headroom::calibrate;

namespace {

constexpr double two_ticks = 0.020;

double own_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double rusage_seconds(int who) {
  rusage r{};
  ::getrusage(who, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
}

void burn_cpu_until(double cpu_seconds) {
  while (own_cpu_seconds() < cpu_seconds) {
    // the clock read itself is the work: the compiler cannot drop it
  }
}

// A forked child of this process: runs `body`, which may write to `to_parent`, then waits for
// the parent to close its end of `from_parent` before it exits (so the parent can look at it
// alive). Never returns into the test framework.
struct child {
  pid_t pid = -1;
  int to_parent = -1;    // the parent reads here
  int from_parent = -1;  // the parent closes this to let the child exit

  explicit child(const std::function<void(int)>& body) {
    int up[2], down[2];
    REQUIRE(::pipe(up) == 0);
    REQUIRE(::pipe(down) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(up[0]);
      ::close(down[1]);
      try {
        body(up[1]);
      } catch (...) {
        ::_exit(2);  // never unwind into the test framework's copy in this process
      }
      char c;
      while (::read(down[0], &c, 1) > 0) {
      }
      ::_exit(0);
    }
    ::close(up[1]);
    ::close(down[0]);
    to_parent = up[0];
    from_parent = down[1];
  }
  template <class T>
  T receive() {
    T v{};
    REQUIRE(::read(to_parent, &v, sizeof v) == static_cast<ssize_t>(sizeof v));
    return v;
  }
  void let_exit() {
    ::close(from_parent);
    from_parent = -1;
  }
  char state() const {
    const auto tree = process_cpu_snapshot::of_tree(pid);
    return tree.processes().front().state;
  }
  void wait_until_zombie() const {
    for (int i = 0; i < 500 && state() != 'Z'; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    REQUIRE(state() == 'Z');
  }
  void reap() {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    pid = -1;
  }
  ~child() {
    if (from_parent >= 0) ::close(from_parent);
    if (to_parent >= 0) ::close(to_parent);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

const process_cpu_delta::one* find(const process_cpu_delta& d, pid_t pid) {
  for (const auto& o : d.by_process)
    if (o.process.pid == pid) return &o;
  return nullptr;
}

}  // namespace

TEST_CASE("a child's 200 ms of CPU is seen once by its parent's tree: alive, zombie and reaped") {
  const pid_t self = ::getpid();
  const auto s0 = process_cpu_snapshot::of_tree(self);
  const double self_cpu0 = rusage_seconds(RUSAGE_SELF);
  const double children_cpu0 = rusage_seconds(RUSAGE_CHILDREN);

  child c([](int out) {
    burn_cpu_until(0.2);
    const double used = rusage_seconds(RUSAGE_SELF);
    if (::write(out, &used, sizeof used) != sizeof used) ::_exit(3);
  });
  const double used = c.receive<double>();
  REQUIRE(used >= 0.2);

  // Alive: its own line in the tree holds what it used.
  const auto s1 = process_cpu_snapshot::of_tree(self);
  REQUIRE(s1.processes().size() == s0.processes().size() + 1);
  const auto alive = s1 - s0;
  CHECK(alive.started == 1);
  CHECK(alive.ended == 0);
  REQUIRE(find(alive, c.pid));
  CHECK(find(alive, c.pid)->self_seconds == Approx(used).margin(two_ticks));
  CHECK(alive.exited_seconds == 0.0);

  // Exited, not yet reaped: a zombie still shows its CPU.
  c.let_exit();
  c.wait_until_zombie();
  const auto zombie = process_cpu_snapshot::of_tree(self) - s0;
  REQUIRE(find(zombie, c.pid));
  CHECK(find(zombie, c.pid)->self_seconds == Approx(used).margin(two_ticks));

  // Reaped: its CPU moved into this process's cutime/cstime; the tree's total kept it.
  c.reap();
  const auto s3 = process_cpu_snapshot::of_tree(self);
  const double self_cpu = rusage_seconds(RUSAGE_SELF) - self_cpu0;
  const double children_cpu = rusage_seconds(RUSAGE_CHILDREN) - children_cpu0;
  // getrusage's final figure for the child: what it reported plus its exit, which tears down its
  // address space: 1.6 ms in the Release build here, 3.7-5.6 ms under ASan (its shadow memory
  // goes too; 5.5 ms failed CI's old 5 ms bound). The exit is allowed a tenth of the child's
  // work: far below the 200 ms a double count or another process's CPU would add. The checks
  // below compare the snapshots with children_cpu itself, exit included, to within the ticks.
  CHECK(children_cpu >= used);
  CHECK(children_cpu - used < 0.1 * used);
  const auto since_start = s3 - s0;
  CHECK(since_start.started == 0);  // born and gone within the interval
  CHECK(since_start.ended == 0);
  CHECK(since_start.exited_seconds == Approx(children_cpu).margin(two_ticks));
  CHECK(since_start.root_seconds == Approx(self_cpu).margin(two_ticks));
  CHECK(since_start.total_seconds == Approx(children_cpu + self_cpu).margin(2 * two_ticks));

  // From the snapshot where it was alive with all its CPU used: nothing new, although the
  // parent's cutime grew by the whole 200 ms (a naive sum of cutime deltas would count it twice).
  const auto since_alive = s3 - s1;
  CHECK(since_alive.ended == 1);
  CHECK(s3.processes().front().reaped_seconds - s1.processes().front().reaped_seconds ==
        Approx(children_cpu).margin(two_ticks));
  CHECK(since_alive.exited_seconds == Approx(0.0).margin(two_ticks));
}

TEST_CASE("a grandchild reaped by a child that is then reaped stays in the tree's total") {
  const pid_t self = ::getpid();
  const auto s0 = process_cpu_snapshot::of_tree(self);
  const double self_cpu0 = rusage_seconds(RUSAGE_SELF);
  // The child forks a grandchild that burns 150 ms, reaps it, burns 50 ms itself, reports its
  // own and its children's CPU, and exits.
  child c([](int out) {
    const pid_t g = ::fork();
    if (g == 0) {
      burn_cpu_until(0.15);
      ::_exit(0);
    }
    ::waitpid(g, nullptr, 0);
    burn_cpu_until(0.05);
    const double figures[2] = {rusage_seconds(RUSAGE_SELF), rusage_seconds(RUSAGE_CHILDREN)};
    if (::write(out, figures, sizeof figures) != sizeof figures) ::_exit(3);
  });
  const auto figures = c.receive<std::array<double, 2>>();
  const double own = figures[0], grandchild = figures[1];
  CHECK(grandchild >= 0.15);

  const auto alive = process_cpu_snapshot::of_tree(self) - s0;
  REQUIRE(find(alive, c.pid));
  CHECK(find(alive, c.pid)->self_seconds == Approx(own).margin(two_ticks));
  CHECK(alive.exited_seconds == Approx(grandchild).margin(two_ticks));  // in the child's cutime

  c.let_exit();
  c.reap();
  const auto gone = process_cpu_snapshot::of_tree(self) - s0;
  const double self_cpu = rusage_seconds(RUSAGE_SELF) - self_cpu0;
  CHECK(gone.exited_seconds == Approx(own + grandchild).margin(2 * two_ticks));
  CHECK(gone.total_seconds == Approx(own + grandchild + self_cpu).margin(3 * two_ticks));
}

// What a spinning child tells its parent: its scheduler figures and when it spun (seconds of
// CLOCK_MONOTONIC).
struct spin {
  task_schedstat used;
  double began = 0, ended = 0;
};

static double seconds_of(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

TEST_CASE("more busy processes than CPUs wait in the run queue, as schedstat and PSI show") {
  const int cpus = read_host_cpu_times().cpus;
  REQUIRE(cpus >= 1);
  const int n = cpus + 2;  // at least two more runnable processes than CPUs
  constexpr double busy_for = 0.4;
  const auto host0 = read_host_cpu_times();
  const auto pressure0 = read_cpu_pressure();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<child>> kids;
  for (int i = 0; i < n; ++i)
    kids.push_back(std::make_unique<child>([=](int out) {
      const auto start = read_task_schedstat(::getpid());
      const auto began = std::chrono::steady_clock::now();
      const auto until = began + std::chrono::duration<double>(busy_for);
      while (std::chrono::steady_clock::now() < until) {
      }
      // steady_clock is CLOCK_MONOTONIC, one clock for every process: the parent compares them.
      const spin figures{read_task_schedstat(::getpid()) - start, seconds_of(began),
                         seconds_of(std::chrono::steady_clock::now())};
      if (::write(out, &figures, sizeof figures) != sizeof figures) ::_exit(3);
    }));
  double run = 0, wait = 0;
  double last_began = 0, first_ended = std::numeric_limits<double>::infinity();
  for (auto& k : kids) {
    const auto f = k->receive<spin>();
    CHECK(f.used.timeslices >= 1);
    run += f.used.run_seconds;
    wait += f.used.wait_seconds;
    last_began = std::max(last_began, f.began);
    first_ended = std::min(first_ended, f.ended);
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // All are told first: each later child inherited the earlier ones' pipe ends, so the last
  // must exit before the first sees its pipe close.
  for (auto& k : kids) k->let_exit();
  for (auto& k : kids) k->reap();
  const auto host = read_host_cpu_times() - host0;

  // Each process was runnable for its whole 0.4 s (running or waiting), and at most `cpus` of
  // them ran at once. Margins: 10 % for the start-up and wake-up of the processes.
  CHECK(run + wait == Approx(n * busy_for).epsilon(0.10));
  CHECK(run <= cpus * wall * 1.01);
  CHECK(wait >= (n - cpus) * busy_for * 0.9);
  // The host: the kernel counted these processes as forks, and its CPUs were busy at least for
  // what the processes ran; all CPU states together cover every CPU for the interval (2 ticks
  // per CPU of sampling).
  CHECK(host.forks >= static_cast<std::uint64_t>(n));
  CHECK(host.busy_seconds() >= run - cpus * two_ticks);
  CHECK(host.total_seconds() == Approx(cpus * wall).margin(cpus * two_ticks + 0.05 * cpus * wall));
  CHECK(host.context_switches > 0);
  // PSI "some": while every child spun (from the last one's start to the first one's end) at
  // least n - cpus >= 2 of them were runnable without a CPU. The kernel counts that per CPU (a
  // CPU has "some" pressure while a task waits in its own run queue) and averages the CPUs
  // weighted by their busy time, so when the waiters all queue on one CPU only 1/cpus of the
  // time counts: that is the bound that holds (less a tick at each end). The old bound, 0.8 x
  // busy_for, was a guess that failed once in CI at 0.3196 s; measured here 0.33-0.39 s of an
  // overlap of 0.38-0.39 s with the children spread 2 + 2.
  if (pressure0) {
    const auto pressure = *read_cpu_pressure() - *pressure0;
    const double overlap = first_ended - last_began;
    INFO("all " << n << " children spun together for " << overlap << " s");
    CHECK(overlap > 0);
    CHECK(pressure.some_seconds >= overlap / cpus - two_ticks);
  } else {
    WARN("no /proc/pressure/cpu on this kernel: CPU pressure not checked");
  }
}

TEST_CASE("/proc/schedstat's per-CPU lines are summed, and a kernel without it says so") {
  // Layout of schedstat versions 15-17 (Documentation/scheduler/sched-stats.rst): per CPU,
  // fields 7-9 are running ns, run-queue wait ns and timeslices; domain lines are skipped.
  const auto t = parse_run_queue_totals(
      "version 15\ntimestamp 4295032560\n"
      "cpu0 0 0 900 120 300 200 2000000000 500000000 1000\n"
      "domain0 03 10 9 1 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
      "cpu1 0 0 700 80 250 150 1000000000 250000000 400\n");
  CHECK(t.cpus == 2);
  CHECK(t.run_seconds == Approx(3.0).epsilon(1e-12));
  CHECK(t.wait_seconds == Approx(0.75).epsilon(1e-12));
  CHECK(t.timeslices == 1400);
  CHECK(t.mean_runnable(1.5) == Approx(2.5).epsilon(1e-12));
  CHECK_THROWS_AS(parse_run_queue_totals("version 15\ncpu0 1 2 3\n"), proc_error);

  const bool present = ::access("/proc/schedstat", R_OK) == 0;
  const auto live = read_run_queue_totals();
  CHECK(live.has_value() == present);
  if (live) {
    CHECK(live->cpus == read_host_cpu_times().cpus);
    CHECK(live->run_seconds > 0);
  } else {
    WARN(
        "this kernel has no /proc/schedstat (CONFIG_SCHEDSTATS off): host run-queue totals "
        "come from per-task schedstat and PSI only");
  }
}

TEST_CASE("/proc that cannot be read gives one line naming the problem") {
  CHECK_THROWS_WITH(process_cpu_snapshot::of_tree(0x3ffffff0), "no process with pid 1073741808");
  CHECK_THROWS_WITH(read_task_schedstat(0x3ffffff0),
                    "cannot read /proc/1073741808/schedstat (no such process, or no schedstat)");
  CHECK_THROWS_WITH(postmaster_pid("/nonexistent"),
                    "cannot read /nonexistent/postmaster.pid (is PostgreSQL running there?)");
  // A tree that restarted (another root) cannot be subtracted.
  child c([](int) {});
  const auto other = process_cpu_snapshot::of_tree(c.pid);
  CHECK_THROWS_AS(other - process_cpu_snapshot::of_tree(::getpid()), proc_error);
}

TEST_CASE("fresh PostgreSQL connections grow the postmaster tree's CPU by their backends' exits",
          "[live]") {
  const std::string dsn = headroom::test::pg_dsn();
  const pid_t postmaster = postmaster_pid(headroom::test::env("HEADROOM_PG_DIR") + "/data");
  // One connection first, so the table is in shared buffers before the measured ones.
  {
    pqxx::connection warm(dsn);
    pqxx::work(warm).exec("select count(*) from people");
  }

  const auto before = process_cpu_snapshot::of_tree(postmaster);
  const auto sched_before = read_task_schedstat(postmaster);
  const auto host_before = read_host_cpu_times();
  constexpr int connections = 40;
  for (int i = 0; i < connections; ++i) {
    pqxx::connection conn(dsn);
    pqxx::work tx(conn);
    tx.exec("select count(*) from people where age = 30");
    tx.commit();
  }
  // The backends exit after the client leaves; wait until the postmaster has reaped them all
  // (its tree is back to its size before), for at most 10 s.
  process_cpu_snapshot after = process_cpu_snapshot::of_tree(postmaster);
  for (int i = 0; i < 1000 && after.processes().size() > before.processes().size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    after = process_cpu_snapshot::of_tree(postmaster);
  }
  REQUIRE(after.processes().size() <= before.processes().size());
  const auto sched = read_task_schedstat(postmaster) - sched_before;
  const auto host = read_host_cpu_times() - host_before;
  const auto d = after - before;

  // Every backend started and ended within the interval, so its whole life is in `exited`:
  // fork, start, a sequential scan of 10,000 rows, exit: well over a millisecond each (the
  // issue measured about 43 ms); ticks of 10 ms cannot hide 40 of them.
  CHECK(d.exited_seconds >= connections * 0.001);
  CHECK(d.total_seconds == Approx(d.live_seconds + d.exited_seconds));
  // The tree's CPU is part of the host's busy time (2 ticks per CPU of sampling).
  CHECK(d.total_seconds <= host.busy_seconds() + host.cpus * two_ticks);
  // The postmaster ran at least once per connection (accept and fork), and its schedstat (the
  // same kernel nanoseconds, not truncated to ticks) agrees with its utime + stime.
  CHECK(sched.timeslices >= static_cast<std::uint64_t>(connections));
  CHECK(sched.run_seconds == Approx(d.root_seconds).margin(two_ticks));
  CHECK(sched.wait_seconds >= 0.0);
  WARN("40 connections: postmaster tree +"
       << d.total_seconds << " s (exited backends " << d.exited_seconds << " s, postmaster "
       << d.root_seconds << " s, run-queue wait " << sched.wait_seconds << " s over "
       << sched.timeslices << " timeslices)");
}
