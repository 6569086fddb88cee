#include "cpu_set.hpp"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "proc_cpu.hpp"

namespace headroom::calibrate {
namespace {

int parse_cpu(std::string_view s, const std::string& flag, std::string_view whole) {
  if (s.empty() || s.size() > 4 || s.find_first_not_of("0123456789") != std::string_view::npos)
    throw std::invalid_argument(flag + ": '" + std::string(whole) +
                                "' is not a CPU list (CPU numbers and ranges: 1, 0-1, 0,2-3)");
  return std::stoi(std::string(s));
}

std::vector<pid_t> numbered_entries(const std::filesystem::path& dir) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos)
      out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

}  // namespace

std::vector<int> parse_cpu_list(std::string_view text, const std::string& flag) {
  std::vector<int> cpus;
  std::string_view rest = text;
  if (rest.empty()) throw std::invalid_argument(flag + ": empty CPU list");
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const auto dash = item.find('-');
    if (dash == std::string_view::npos) {
      cpus.push_back(parse_cpu(item, flag, text));
    } else {
      const int a = parse_cpu(item.substr(0, dash), flag, text);
      const int b = parse_cpu(item.substr(dash + 1), flag, text);
      if (b < a) throw std::invalid_argument(flag + ": '" + std::string(item) + "' runs backwards");
      for (int c = a; c <= b; ++c) cpus.push_back(c);
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

std::string cpu_list_text(const std::vector<int>& cpus) {
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

std::vector<int> usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0)
    throw std::runtime_error(std::string("sched_getaffinity: ") + std::strerror(errno));
  std::vector<int> out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

void pin_process(pid_t pid, const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  std::vector<pid_t> threads = numbered_entries("/proc/" + std::to_string(pid) + "/task");
  if (threads.empty())
    throw std::runtime_error("cannot pin process " + std::to_string(pid) + " to CPUs " +
                             cpu_list_text(cpus) + ": no such process");
  for (pid_t tid : threads)
    if (sched_setaffinity(tid, sizeof set, &set) != 0 && errno != ESRCH)  // ESRCH: it ended
      throw std::runtime_error("cannot pin process " + std::to_string(pid) + " to CPUs " +
                               cpu_list_text(cpus) + ": " + std::strerror(errno));
}

void pin_process_tree(pid_t root, const std::vector<int>& cpus) {
  std::vector<pid_t> tree;
  try {
    tree = process_tree_pids(root);
  } catch (const proc_error&) {
    tree = {root};  // pin_process says it in its words
  }
  for (pid_t p : tree) {
    try {
      pin_process(p, cpus);
    } catch (const std::runtime_error&) {
      if (p == root) throw;  // a child may have ended since the scan
    }
  }
}

std::vector<int> process_cpus(pid_t pid) {
  std::vector<int> out;
  for (pid_t tid : numbered_entries("/proc/" + std::to_string(pid) + "/task")) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(tid, sizeof set, &set) != 0) continue;
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void check_cpu_split(const std::vector<int>& generator, const std::vector<int>& target) {
  const std::vector<int> usable = usable_cpus();
  auto check = [&](const std::vector<int>& cpus, const std::string& flag) {
    for (int c : cpus)
      if (!std::binary_search(usable.begin(), usable.end(), c))
        throw std::invalid_argument(flag + ": CPU " + std::to_string(c) +
                                    " is not one this process may use (" + cpu_list_text(usable) +
                                    ")");
  };
  check(generator, "--generator-cpus");
  check(target, "--target-cpus");
  for (int c : generator)
    if (std::binary_search(target.begin(), target.end(), c))
      throw std::invalid_argument("--generator-cpus and --target-cpus share CPU " +
                                  std::to_string(c) + ": give them apart");
}

cpu_split resolve_cpu_split(const std::string& generator_flag, const std::string& target_flag) {
  cpu_split s;
  if (generator_flag.empty() && target_flag.empty()) return s;
  if (!generator_flag.empty()) s.generator = parse_cpu_list(generator_flag, "--generator-cpus");
  if (!target_flag.empty()) s.target = parse_cpu_list(target_flag, "--target-cpus");
  auto rest = [](const std::vector<int>& taken, const char* flag, const char* other) {
    std::vector<int> out;
    for (int c : usable_cpus())
      if (!std::binary_search(taken.begin(), taken.end(), c)) out.push_back(c);
    if (out.empty())
      throw std::invalid_argument(std::string(flag) + " takes every CPU this process may use (" +
                                  cpu_list_text(usable_cpus()) + "): none is left for " + other);
    return out;
  };
  if (s.generator.empty()) s.generator = rest(s.target, "--target-cpus", "the generator");
  if (s.target.empty()) s.target = rest(s.generator, "--generator-cpus", "the target");
  check_cpu_split(s.generator, s.target);
  return s;
}

}  // namespace headroom::calibrate
