// Parsing /proc/stat, /proc/schedstat and /proc/pressure/cpu (proc(5), the kernel's
// Documentation/scheduler/sched-stats.rst and accounting/psi.rst).
#include "host_cpu.hpp"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cpu_set.hpp"
#include "proc_cpu.hpp"

namespace headroom::calibrate {
namespace {

std::optional<std::string> read_file(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// "cpu3" and the like (not the "cpu" sum line).
bool is_one_cpu(const std::string& word) {
  return word.size() > 3 && word.compare(0, 3, "cpu") == 0 &&
         word.find_first_not_of("0123456789", 3) == std::string::npos;
}

// "cpu3" when 3 is in `cpus` (sorted).
bool in_list(const std::string& word, const std::vector<int>& cpus) {
  return is_one_cpu(word) && word.size() < 8 &&
         std::binary_search(cpus.begin(), cpus.end(), std::stoi(word.substr(3)));
}

}  // namespace

host_cpu_times parse_host_cpu_times(std::string_view proc_stat_text, const std::vector<int>& only) {
  static const double per_second = static_cast<double>(::sysconf(_SC_CLK_TCK));
  host_cpu_times t;
  bool seen = false;
  int named = 0;  // of `only`'s CPUs, the lines found
  std::istringstream lines{std::string(proc_stat_text)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream in(line);
    std::string key;
    in >> key;
    const bool counted = only.empty() ? key == "cpu" : in_list(key, only);
    if (counted) {
      // user nice system idle iowait irq softirq steal (guest and guest_nice follow, inside
      // user and nice); ticks. Old kernels stop early: missing fields stay 0.
      double* fields[] = {&t.user,   &t.nice, &t.system,  &t.idle,
                          &t.iowait, &t.irq,  &t.softirq, &t.steal};
      for (double* f : fields) {
        std::uint64_t ticks = 0;
        if (!(in >> ticks)) break;
        *f += static_cast<double>(ticks) / per_second;
      }
      seen = true;
      if (!only.empty()) ++named;
    }
    if (is_one_cpu(key)) {
      if (only.empty()) ++t.cpus;
    } else if (key == "ctxt") {
      in >> t.context_switches;
    } else if (key == "processes") {
      in >> t.forks;
    } else if (key == "procs_running") {
      in >> t.procs_running;
    } else if (key == "procs_blocked") {
      in >> t.procs_blocked;
    }
  }
  if (!seen) throw proc_error("no \"cpu\" line in /proc/stat");
  if (!only.empty()) {
    if (named != static_cast<int>(only.size()))
      throw proc_error("/proc/stat has no line for some of CPUs " + cpu_list_text(only));
    t.cpus = named;
  }
  return t;
}

host_cpu_times read_host_cpu_times(const std::vector<int>& only) {
  const auto text = read_file("/proc/stat");
  if (!text) throw proc_error("cannot read /proc/stat (not Linux?)");
  return parse_host_cpu_times(*text, only);
}

host_cpu_times operator-(const host_cpu_times& after, const host_cpu_times& before) {
  host_cpu_times d = after;  // the gauges and cpus as they were at the end
  d.user -= before.user;
  d.nice -= before.nice;
  d.system -= before.system;
  d.idle -= before.idle;
  d.iowait -= before.iowait;
  d.irq -= before.irq;
  d.softirq -= before.softirq;
  d.steal -= before.steal;
  d.context_switches -= before.context_switches;
  d.forks -= before.forks;
  return d;
}

run_queue_totals parse_run_queue_totals(std::string_view proc_schedstat_text,
                                        const std::vector<int>& only) {
  run_queue_totals t;
  std::istringstream lines{std::string(proc_schedstat_text)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream in(line);
    std::string key;
    in >> key;
    if (!is_one_cpu(key) || (!only.empty() && !in_list(key, only))) continue;
    // Nine fields (schedstat versions 15 to 17): yld_count, 0, sched_count, sched_goidle,
    // ttwu_count, ttwu_local, then the three we want: running ns, run-queue wait ns, timeslices.
    std::vector<std::uint64_t> f(9);
    for (auto& v : f)
      if (!(in >> v)) throw proc_error("short line in /proc/schedstat: " + line);
    t.run_seconds += static_cast<double>(f[6]) * 1e-9;
    t.wait_seconds += static_cast<double>(f[7]) * 1e-9;
    t.timeslices += f[8];
    ++t.cpus;
  }
  if (t.cpus == 0) throw proc_error("no cpu lines in /proc/schedstat");
  return t;
}

std::optional<run_queue_totals> read_run_queue_totals(const std::vector<int>& only) {
  const auto text = read_file("/proc/schedstat");
  if (!text) return std::nullopt;
  return parse_run_queue_totals(*text, only);
}

run_queue_totals operator-(const run_queue_totals& after, const run_queue_totals& before) {
  return {after.run_seconds - before.run_seconds, after.wait_seconds - before.wait_seconds,
          after.timeslices - before.timeslices, after.cpus};
}

cpu_pressure parse_cpu_pressure(std::string_view text) {
  cpu_pressure p;
  bool some = false;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream in(line);
    std::string kind, field;
    in >> kind;
    while (in >> field) {
      if (field.rfind("total=", 0) != 0) continue;
      const double seconds = std::stod(field.substr(6)) * 1e-6;  // microseconds
      if (kind == "some") {
        p.some_seconds = seconds;
        some = true;
      } else if (kind == "full") {
        p.full_seconds = seconds;
      }
    }
  }
  if (!some) throw proc_error("no \"some ... total=\" line in /proc/pressure/cpu");
  return p;
}

std::optional<cpu_pressure> read_cpu_pressure() {
  const auto text = read_file("/proc/pressure/cpu");
  if (!text || text->empty()) return std::nullopt;
  return parse_cpu_pressure(*text);
}

cpu_pressure operator-(const cpu_pressure& after, const cpu_pressure& before) {
  return {after.some_seconds - before.some_seconds, after.full_seconds - before.full_seconds};
}

}  // namespace headroom::calibrate
