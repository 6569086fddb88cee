// Processes of a local target, from /proc (local_processes.hpp).
#include "local_processes.hpp"

#include <dirent.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace headroom::calibrate {
namespace {

std::vector<pid_t> all_pids() {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end && *end == '\0' && pid > 0) out.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return out;
}

// comm and parent from /proc/<pid>/stat ("pid (comm) state ppid ..."; comm may hold spaces).
bool read_stat(pid_t pid, std::string& comm, pid_t& ppid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return false;
  comm = text.substr(open + 1, close - open - 1);
  std::istringstream rest(text.substr(close + 1));
  char state = 0;
  long parent = 0;
  if (!(rest >> state >> parent)) return false;
  ppid = static_cast<pid_t>(parent);
  return true;
}

// Socket inodes listening on `port` in one /proc/net/tcp table (state 0A = LISTEN).
void listening_inodes(const char* table, unsigned short port, std::vector<std::string>& inodes) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state, queues, timer, retr, uid, timeout, inode;
    if (!(f >> slot >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >>
          inode))
      continue;
    const auto colon = local.rfind(':');
    if (colon == std::string::npos || state != "0A") continue;
    if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) == port) inodes.push_back(inode);
  }
}

}  // namespace

bool is_local_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

pid_t listening_pid(unsigned short port) {
  std::vector<std::string> inodes;
  listening_inodes("/proc/net/tcp", port, inodes);
  listening_inodes("/proc/net/tcp6", port, inodes);
  if (inodes.empty()) return 0;
  for (pid_t pid : all_pids()) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = opendir(dir.c_str());
    if (!d) continue;
    bool found = false;
    while (dirent* e = readdir(d)) {
      char target[PATH_MAX];
      const std::string link = dir + "/" + e->d_name;
      const ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      for (const std::string& inode : inodes)
        if (std::string(target) == "socket:[" + inode + "]") found = true;
      if (found) break;
    }
    closedir(d);
    if (found) return pid;
  }
  return 0;
}

std::vector<pid_t> postmaster_pids() {
  std::vector<pid_t> out;
  for (pid_t pid : all_pids()) {
    std::string comm, parent_comm;
    pid_t ppid = 0, grand = 0;
    if (!read_stat(pid, comm, ppid) || comm != "postgres") continue;
    if (read_stat(ppid, parent_comm, grand) && parent_comm == "postgres") continue;
    out.push_back(pid);
  }
  return out;
}

}  // namespace headroom::calibrate
