// Overload diagnosis (overload_diagnosis.hpp): the growing-backlog detector with the reasons for
// its constants, and the sentence naming the overloaded resource.
#include "overload_diagnosis.hpp"

#include <algorithm>
#include <sstream>

namespace headroom {

namespace {

// The detector: the window's second half holds more than growth_ratio x the first half's mean
// number in flight, plus growth_floor, while the busiest resource is more than `saturated` busy.
// - growth_ratio: a backlog that grows at g requests/s from the start of a run whose warm-up
//   lasts f x the window T has means g(f + 1/4)T and g(f + 3/4)T over the two halves: a ratio
//   of (f + 3/4) / (f + 1/4) = 2.4 with the default warm-up (f = 1/10), still 1.75 at
//   f = 1/2. 1.5 sits below both; a stable run's halves differ by chance only.
// - growth_floor: with a few requests in flight, one burst can make a half 1.5 x the other
//   by chance; 20 requests on average is far above such a burst at light load. In an
//   overload it costs little: l2 - 1.5 l1 = (3/8 - f/2) gT = 0.325 gT at f = 1/10, so any
//   overload whose backlog grows by more than ~62 requests over the window is still caught
//   (and a faster one trips run.max_in_flight first).
// - saturated: a backlog grows without bound only behind a resource that never idles, so the
//   bottleneck's busy share over the window is ~1; a stable run near 0.9 whose halves differ
//   by a burst is not called overloaded. 0.97 leaves room for the idle moments of a window
//   that began before the backlog did.
constexpr double growth_ratio = 1.5, growth_floor = 20, saturated = 0.97;

// The busiest resource a backlog can queue behind (the per-owner CPU shares are parts of "cpu").
double busiest_utilization(const std::vector<std::pair<std::string, double>>& utilization) {
  double busiest = 0;
  for (auto& [name, share] : utilization)
    if (name == "cpu" || name == "service_cpu" || name == "database_cpu" || name == "workers" ||
        name == "dial_server" || name == "pool")
      busiest = std::max(busiest, share);
  return busiest;
}

}  // namespace

std::optional<std::string> growing_backlog(
    const in_flight_halves& in_flight,
    const std::vector<std::pair<std::string, double>>& utilization) {
  if (!(in_flight.second > growth_ratio * in_flight.first + growth_floor &&
        busiest_utilization(utilization) > saturated))
    return std::nullopt;
  std::ostringstream os;
  os.precision(3);
  os << "requests in flight grew from " << in_flight.first << " to " << in_flight.second
     << " on average through the run";
  return os.str();
}

std::string name_overloaded_resource(const scenario& s, const overload_evidence& e) {
  // The busiest CPU: co-located the one machine's; split, the database's or the instances'.
  double cpu = e.cpu_seconds / (s.cores * e.seconds);
  std::ostringstream cpu_name;
  cpu_name.precision(3);
  cpu_name << "CPU demand " << cpu << " x capacity (" << s.cores << " cores)";
  if (!colocated(s)) {
    const deployment_spec& d = s.deployment;
    const double database = e.database_cpu_seconds / (d.database_cores * e.seconds);
    const double service = e.service_cpu_seconds / (d.instances * d.service_cores * e.seconds);
    cpu = std::max(database, service);
    cpu_name.str("");
    if (database >= service) {
      cpu_name << "database CPU demand " << database << " x capacity (" << d.database_cores
               << " cores, shared by " << d.instances << " instances)";
    } else {
      cpu_name << "service CPU demand " << service << " x capacity (" << d.service_cores
               << " cores per instance)";
    }
  }
  double fork = s.dial_fork.mean() * static_cast<double>(e.dials) / e.seconds;
  // Workers and connections are each instance's own.
  const char* each = s.deployment.instances > 1 ? " per instance" : "";
  std::ostringstream os;
  os.precision(3);
  if (s.use_pool && fork > cpu && fork >= 1) {
    os << "dial demand " << fork << " x capacity (the postmaster forks one backend at a time; "
       << static_cast<double>(e.dials) / e.seconds << " dials/s)";
  } else if (cpu >= 1) {
    os << cpu_name.str();
  } else if (s.workers > 0 && e.worker_queue > 0) {
    os << "all " << s.workers << " workers" << each << " busy, " << e.worker_queue
       << " requests queued";
  } else if (s.use_pool && s.pool.max_open > 0 && e.connection_waiters > 0) {
    os << "all " << s.pool.max_open << " connections" << each << " busy, " << e.connection_waiters
       << " requests waiting";
  } else {
    os << "CPU demand " << cpu << " x capacity, dial demand " << fork << " x capacity";
  }
  return os.str();
}

}  // namespace headroom
