// Diagnosis of an overloaded replication: the detector of a backlog that grows through the
// measured window, and the sentence that names the resource whose demand exceeds its capacity.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "scenario.hpp"

namespace headroom {

// Mean requests in flight over the measured window's first and second half (split by arrivals).
struct in_flight_halves {
  double first = 0, second = 0;
};

// The detector: why the run is overloaded ("requests in flight grew from ... to ..."), when the
// second half holds clearly more requests in flight than the first while the busiest resource
// of `utilization` (replication_result's) is saturated; nothing otherwise.
std::optional<std::string> growing_backlog(
    const in_flight_halves& in_flight,
    const std::vector<std::pair<std::string, double>>& utilization);

// What an overloaded run offered its resources: over the measured window, or over the whole run
// when it stopped during warm-up. The queues are as they stood when it stopped.
struct overload_evidence {
  double seconds = 1;      // how long the evidence covers
  double cpu_seconds = 0;  // CPU work offered in that time, every owner's
  // The same by host in a split deployment: the database's, and all instances' together.
  double database_cpu_seconds = 0, service_cpu_seconds = 0;
  std::uint64_t dials = 0;       // dials started in that time (each one a postmaster fork)
  std::size_t worker_queue = 0;  // requests queued for a worker, all instances
  int connection_waiters = 0;    // requests waiting for a pool connection, all instances
};

// The resource whose offered demand is furthest above its capacity, as a sentence.
std::string name_overloaded_resource(const scenario& s, const overload_evidence& e);

}  // namespace headroom
