// Reading /proc/<pid>/stat for a process tree, consistently, and subtracting two such snapshots;
// the method is explained at the top of proc_cpu.hpp.
#include "proc_cpu.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <sstream>
#include <utility>

namespace headroom::calibrate {
namespace {

// A whole small file, or nothing when it cannot be opened (the process is gone).
std::optional<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (n < 0) return std::nullopt;  // ESRCH: it exited while we read
  return out;
}

double ticks_to_seconds(std::uint64_t ticks) {
  static const double per_second = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return static_cast<double>(ticks) / per_second;
}

// /proc/<pid>/stat: "pid (comm) state ppid ... utime stime cutime cstime ... starttime ...".
// comm may hold spaces and parentheses, so the fields start after the last ')'.
std::optional<process_cpu> read_stat(pid_t pid) {
  const auto text = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  const auto open = text->find('(');
  const auto close = text->rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open)
    throw proc_error("unreadable /proc/" + std::to_string(pid) + "/stat");
  process_cpu p;
  p.pid = pid;
  p.name = text->substr(open + 1, close - open - 1);
  std::istringstream fields(text->substr(close + 1));
  // Fields 3.. of proc(5); we need 3 (state), 4 (ppid), 14-17 (times) and 22 (starttime).
  std::vector<std::string> f;
  std::string word;
  while (f.size() < 20 && fields >> word) f.push_back(word);
  if (f.size() < 20) throw proc_error("short /proc/" + std::to_string(pid) + "/stat");
  auto number = [&](int field) {
    std::uint64_t v = 0;
    const std::string& s = f[static_cast<std::size_t>(field - 3)];
    if (std::from_chars(s.data(), s.data() + s.size(), v).ec != std::errc())
      throw proc_error("bad field " + std::to_string(field) + " in /proc/" + std::to_string(pid) +
                       "/stat");
    return v;
  };
  p.state = f[0].empty() ? '?' : f[0][0];
  p.ppid = static_cast<pid_t>(number(4));
  p.self_seconds = ticks_to_seconds(number(14) + number(15));
  p.reaped_seconds = ticks_to_seconds(number(16) + number(17));
  p.start_ticks = number(22);
  return p;
}

// The command line with NULs as spaces (PostgreSQL writes "postgres: user db host state" there);
// the stat's comm when empty (kernel threads, zombies).
std::string command_line(pid_t pid, const std::string& comm) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  if (!text || text->empty()) return comm;
  for (char& c : *text)
    if (c == '\0') c = ' ';
  while (!text->empty() && text->back() == ' ') text->pop_back();
  return text->empty() ? comm : *text;
}

std::vector<pid_t> all_pids() {
  DIR* dir = ::opendir("/proc");
  if (!dir) throw proc_error(std::string("cannot list /proc: ") + std::strerror(errno));
  std::vector<pid_t> out;
  while (const dirent* e = ::readdir(dir)) {
    pid_t pid = 0;
    const char* end = e->d_name + std::strlen(e->d_name);
    if (std::from_chars(e->d_name, end, pid).ptr == end && pid > 0) out.push_back(pid);
  }
  ::closedir(dir);
  return out;
}

}  // namespace

std::vector<pid_t> process_tree_pids(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  bool root_seen = false;
  for (pid_t pid : all_pids()) {
    const auto p = read_stat(pid);
    if (!p) continue;
    children.emplace(p->ppid, pid);
    root_seen = root_seen || pid == root;
  }
  if (!root_seen) throw proc_error("no process with pid " + std::to_string(root));
  std::vector<pid_t> out{root};
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto [from, to] = children.equal_range(out[i]);
    for (auto it = from; it != to; ++it) out.push_back(it->second);
  }
  return out;
}

process_cpu_snapshot process_cpu_snapshot::of_tree(pid_t root) {
  // Children of a parent must not be reaped between reading them and reading the parent. So:
  // find the tree, read every member's reaped(), read every member, read the reaped() again,
  // and start over if any changed (or a member vanished meanwhile). A member gone by the time it is
  // read was reaped before its parent's first read, so it is in that reaped() already: dropping it
  // is right. A child born after the scan is missed until the next snapshot, with the CPU of its
  // first moments (microseconds of fork).
  constexpr int attempts = 50;  // a retry needs an exit within one pass (about 3 ms, 110 processes)
  for (int attempt = 0; attempt < attempts; ++attempt) {
    const std::vector<pid_t> pids = process_tree_pids(root);
    auto reaped_of_members = [&]() {
      std::vector<double> out;
      for (pid_t pid : pids) {
        const auto p = read_stat(pid);
        out.push_back(p ? p->reaped_seconds : -1);
      }
      return out;
    };
    const std::vector<double> first = reaped_of_members();
    process_cpu_snapshot snap;
    for (pid_t pid : pids) {
      auto p = read_stat(pid);
      if (!p) {
        if (pid == root) throw proc_error("process " + std::to_string(root) + " exited");
        continue;
      }
      p->name = command_line(pid, p->name);
      snap.processes_.push_back(std::move(*p));
    }
    if (reaped_of_members() == first) return snap;
  }
  throw proc_error("the process tree of " + std::to_string(root) +
                   " kept changing while it was read");
}

double process_cpu_snapshot::total_seconds() const {
  double total = 0;
  for (const auto& p : processes_) total += p.self_seconds + p.reaped_seconds;
  return total;
}

process_cpu_delta operator-(const process_cpu_snapshot& after, const process_cpu_snapshot& before) {
  const auto& a0 = after.processes().front();
  const auto& b0 = before.processes().front();
  if (a0.pid != b0.pid || a0.start_ticks != b0.start_ticks)
    throw proc_error("the root process changed between the two snapshots (pid " +
                     std::to_string(b0.pid) + " then " + std::to_string(a0.pid) +
                     "): the target restarted");
  using key = std::pair<pid_t, std::uint64_t>;
  std::map<key, const process_cpu*> was;
  for (const auto& p : before.processes()) was[{p.pid, p.start_ticks}] = &p;

  process_cpu_delta d;
  for (const auto& p : after.processes()) {
    const auto it = was.find({p.pid, p.start_ticks});
    const double self_before = it == was.end() ? 0 : it->second->self_seconds;
    const double reaped_before = it == was.end() ? 0 : it->second->reaped_seconds;
    if (it == was.end())
      ++d.started;
    else
      was.erase(it);
    d.by_process.push_back({p, p.self_seconds - self_before});
    d.live_seconds += p.self_seconds - self_before;
    d.exited_seconds += p.reaped_seconds - reaped_before;
  }
  // What is left in `was` ended in the interval: what it had used by the first snapshot is now
  // inside some parent's reaped() and was counted above; take it out again.
  for (const auto& [k, p] : was) d.exited_seconds -= p->self_seconds + p->reaped_seconds;
  d.ended = static_cast<int>(was.size());
  d.root_seconds = a0.self_seconds - b0.self_seconds;
  d.total_seconds = d.live_seconds + d.exited_seconds;
  return d;
}

pid_t postmaster_pid(const std::string& data_directory) {
  const std::string file = data_directory + "/postmaster.pid";
  const auto text = read_file(file);
  if (!text) throw proc_error("cannot read " + file + " (is PostgreSQL running there?)");
  pid_t pid = 0;
  const auto newline = text->find('\n');
  const char* end = text->data() + (newline == std::string::npos ? text->size() : newline);
  if (std::from_chars(text->data(), end, pid).ptr != end || pid <= 0)
    throw proc_error(file + " does not start with a pid");
  const auto p = read_stat(pid);
  if (!p || (p->name != "postgres" && p->name != "postmaster"))
    throw proc_error(file + " names pid " + std::to_string(pid) +
                     ", which is not a running PostgreSQL");
  return pid;
}

task_schedstat read_task_schedstat(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/schedstat";
  const auto text = read_file(path);
  if (!text) throw proc_error("cannot read " + path + " (no such process, or no schedstat)");
  std::istringstream in(*text);
  std::uint64_t run_ns = 0, wait_ns = 0, slices = 0;
  if (!(in >> run_ns >> wait_ns >> slices)) throw proc_error("unreadable " + path);
  return {run_ns * 1e-9, wait_ns * 1e-9, slices};
}

task_schedstat operator-(const task_schedstat& after, const task_schedstat& before) {
  return {after.run_seconds - before.run_seconds, after.wait_seconds - before.wait_seconds,
          after.timeslices - before.timeslices};
}

}  // namespace headroom::calibrate
