// The simulated deployment (scenario.deployment): the hosts' processor-sharing CPUs, each
// service instance's workers and Go pool, and the one database's postmaster.
#pragma once

#include <cstddef>
#include <vector>

#include "pool_policy.hpp"
#include "resources.hpp"
#include "scenario.hpp"

namespace headroom {

// One instance of the service: its own workers and its own pool (pool_policy, the service's code).
struct service_instance {
  service_instance(int workers, const pool_config& pool) : workers(workers), pool(pool) {}
  fcfs_station workers;
  pool_policy pool;
};

// Host 0 runs the database: co-located it is the one machine everything shares (scenario.cores);
// split, it has deployment.database_cores and instance i runs alone on host 1 + i
// (deployment.service_cores).
struct deployment_resources {
  // `pools`: one configuration per instance (each its own seed for the random waiter order).
  deployment_resources(const scenario& s, const std::vector<pool_config>& pools)
      : split(!colocated(s)), postmaster(1) {  // the postmaster forks one backend at a time
    hosts.emplace_back(split ? s.deployment.database_cores : s.cores);
    if (split)
      for (std::size_t i = 0; i < pools.size(); ++i) hosts.emplace_back(s.deployment.service_cores);
    instances.reserve(pools.size());
    for (const pool_config& c : pools) instances.emplace_back(s.workers, c);
  }
  ps_cpu& database_cpu() { return hosts[0]; }
  std::size_t service_host(std::size_t instance) const { return split ? 1 + instance : 0; }

  const bool split;
  std::vector<ps_cpu> hosts;
  std::vector<service_instance> instances;
  fcfs_station postmaster;
};

}  // namespace headroom
