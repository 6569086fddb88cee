// CPU lists, the host's CPU read over some CPUs only, and pinning real processes
// (calibrate/observe/cpu_set.hpp): what --generator-cpus and --target-cpus rest on.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "cpu_set.hpp"
#include "host_cpu.hpp"
#include "proc_cpu.hpp"

extern char** environ;

using namespace headroom::calibrate;

namespace {

// /bin/sh with one child of its own: a tree of two processes, killed at the end.
struct process_tree {
  pid_t pid = 0;
  process_tree() {
    const char* argv[] = {"/bin/sh", "-c", "sleep 30 & exec sleep 31", nullptr};
    REQUIRE(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
  }
  ~process_tree() {
    for (pid_t c : children()) ::kill(c, SIGKILL);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  std::vector<pid_t> children() const {
    std::vector<pid_t> tree = process_tree_pids(pid);
    tree.erase(tree.begin());  // the root
    return tree;
  }
};

}  // namespace

TEST_CASE("CPU lists are read as taskset writes them, and bad ones are refused by name") {
  CHECK(parse_cpu_list("1", "--target-cpus") == std::vector<int>{1});
  CHECK(parse_cpu_list("0-2", "--target-cpus") == std::vector<int>{0, 1, 2});
  CHECK(parse_cpu_list("3,0-1,1", "--target-cpus") == std::vector<int>{0, 1, 3});
  CHECK(cpu_list_text({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8");
  CHECK(cpu_list_text({}) == "");
  CHECK_THROWS_WITH(parse_cpu_list("", "--target-cpus"), "--target-cpus: empty CPU list");
  CHECK_THROWS_WITH(parse_cpu_list("0-x", "--generator-cpus"),
                    "--generator-cpus: '0-x' is not a CPU list (CPU numbers and ranges: 1, 0-1, "
                    "0,2-3)");
  CHECK_THROWS_WITH(parse_cpu_list("1,", "--target-cpus"),
                    "--target-cpus: '1,' is not a CPU list (CPU numbers and ranges: 1, 0-1, "
                    "0,2-3)");
  CHECK_THROWS_WITH(parse_cpu_list("3-1", "--target-cpus"), "--target-cpus: '3-1' runs backwards");
  CHECK_THROWS_WITH(parse_cpu_list("-1", "--target-cpus"),
                    "--target-cpus: '-1' is not a CPU list (CPU numbers and ranges: 1, 0-1, "
                    "0,2-3)");
}

TEST_CASE("the host's CPU is read over the target's CPUs alone when it has some") {
  const double tick = 1.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  const char* stat =
      "cpu  300 3 60 900 9 0 6 0 0 0\n"
      "cpu0 100 1 20 300 3 0 2 0 0 0\n"
      "cpu1 200 2 40 600 6 0 4 0 0 0\n"
      "ctxt 1234\nprocesses 99\nprocs_running 3\n";
  const host_cpu_times all = parse_host_cpu_times(stat);
  CHECK(all.cpus == 2);
  CHECK(all.busy_seconds() == Approx((300 + 3 + 60 + 6) * tick));
  const host_cpu_times one = parse_host_cpu_times(stat, {1});
  CHECK(one.cpus == 1);
  CHECK(one.busy_seconds() == Approx((200 + 2 + 40 + 4) * tick));
  CHECK(one.idle == Approx(600 * tick));
  CHECK(one.context_switches == 1234);  // the host's: the kernel counts them for all CPUs only
  CHECK_THROWS_AS(parse_host_cpu_times(stat, {1, 2}), proc_error);  // no cpu2 line

  const auto rq = parse_run_queue_totals(
      "version 15\ntimestamp 1\n"
      "cpu0 0 0 900 120 300 200 2000000000 500000000 1000\n"
      "cpu1 0 0 700 80 250 150 1000000000 250000000 400\n",
      {1});
  CHECK(rq.cpus == 1);
  CHECK(rq.run_seconds == Approx(1.0));
  CHECK(rq.wait_seconds == Approx(0.25));

  // This machine's: the two readings of one CPU add up to at most the whole.
  const std::vector<int> usable = usable_cpus();
  REQUIRE(!usable.empty());
  const host_cpu_times first = read_host_cpu_times({usable.front()});
  CHECK(first.cpus == 1);
  CHECK(first.total_seconds() <= read_host_cpu_times().total_seconds());
}

TEST_CASE("a process tree is pinned, every thread and child, and given its CPUs back") {
  const std::vector<int> usable = usable_cpus();
  process_tree tree;
  // The shell forks its child before it execs: wait for it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (tree.children().empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(tree.children().size() == 1);
  const pid_t child = tree.children().front();
  CHECK(process_cpus(tree.pid) == usable);

  const std::vector<int> last{usable.back()};
  pin_process_tree(tree.pid, last);
  CHECK(process_cpus(tree.pid) == last);
  CHECK(process_cpus(child) == last);
  pin_process_tree(tree.pid, usable);
  CHECK(process_cpus(tree.pid) == usable);
  CHECK(process_cpus(child) == usable);

  // This process: every thread, those started before it too.
  std::thread other([] { std::this_thread::sleep_for(std::chrono::milliseconds(200)); });
  pin_process(::getpid(), last);
  CHECK(process_cpus(::getpid()) == last);
  pin_process(::getpid(), usable);
  other.join();
  CHECK(process_cpus(::getpid()) == usable);

  CHECK_THROWS_WITH(pin_process(0x3ffffff0, last), "cannot pin process 1073741808 to CPUs " +
                                                       cpu_list_text(last) + ": no such process");
}

TEST_CASE("the generator's and the target's CPUs are resolved together, apart and usable") {
  const std::vector<int> usable = usable_cpus();
  CHECK_FALSE(resolve_cpu_split("", "").apart());
  CHECK_THROWS_WITH(resolve_cpu_split("", cpu_list_text(usable)),
                    "--target-cpus takes every CPU this process may use (" + cpu_list_text(usable) +
                        "): none is left for the generator");
  CHECK_THROWS_WITH(
      resolve_cpu_split("4095", ""),
      "--generator-cpus: CPU 4095 is not one this process may use (" + cpu_list_text(usable) + ")");
  if (usable.size() < 2) {
    WARN("one usable CPU: a split cannot be checked here");
    return;
  }
  const std::string first = std::to_string(usable.front());
  const cpu_split target_only = resolve_cpu_split("", first);
  CHECK(target_only.apart());
  CHECK(target_only.target == std::vector<int>{usable.front()});
  CHECK(target_only.generator == std::vector<int>(usable.begin() + 1, usable.end()));
  const cpu_split generator_only = resolve_cpu_split(first, "");
  CHECK(generator_only.generator == std::vector<int>{usable.front()});
  CHECK(generator_only.target == std::vector<int>(usable.begin() + 1, usable.end()));
  CHECK_THROWS_WITH(resolve_cpu_split(first, first),
                    "--generator-cpus and --target-cpus share CPU " + first + ": give them apart");
}
