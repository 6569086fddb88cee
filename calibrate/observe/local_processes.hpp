// Finds, on this machine, the processes behind a calibration target: the one listening on the
// target's port (the service) and PostgreSQL's postmasters, so `headroom calibrate` can read
// their CPU from /proc without being told their pids.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace headroom::calibrate {

// True for 127.0.0.0/8, ::1 and "localhost": a target this machine's /proc can see.
bool is_local_host(const std::string& host);

// The process that holds a listening TCP socket on `port` (IPv4 or IPv6), found through
// /proc/net/tcp{,6} and the socket inodes in /proc/<pid>/fd. 0 when none is found (or the
// process belongs to another user and its fds cannot be read).
pid_t listening_pid(unsigned short port);

// Every running PostgreSQL postmaster: a process named postgres whose parent is not.
std::vector<pid_t> postmaster_pids();

}  // namespace headroom::calibrate
