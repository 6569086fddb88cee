// The command-line overrides of a scenario (scenario_overrides.hpp).
#include "scenario_overrides.hpp"

#include <stdexcept>

#include "slo.hpp"

namespace headroom {

latency_slo slo_flag(const std::string& text) {
  try {
    return parse_slo(text);
  } catch (const std::invalid_argument& e) {
    throw scenario_error(std::string("--slo: ") + e.what());
  }
}

void apply_overrides(scenario& s, const scenario_overrides& o) {
  if (o.rate) {
    if (s.arrivals.process == arrival_process::trace)
      throw scenario_error("--rate: the scenario replays a trace; a rate does not apply");
    s.arrivals.rate = *o.rate;
  }
  if (o.cores) s.cores = *o.cores;
  if (o.instances) s.deployment.instances = *o.instances;
  if (o.service_cores) s.deployment.service_cores = *o.service_cores;
  if (o.database_cores) s.deployment.database_cores = *o.database_cores;
  if (o.database_rtt) {
    if (!(*o.database_rtt >= 0)) throw scenario_error("--db-rtt: must be >= 0");
    s.deployment.database_rtt =
        *o.database_rtt > 0 ? distribution::deterministic(*o.database_rtt) : distribution::none();
  }
  if (o.database_max_connections)
    s.deployment.database_max_connections = *o.database_max_connections;
  if (o.max_open) s.pool.max_open = *o.max_open;
  if (o.max_idle) s.pool.max_idle = *o.max_idle;
  if (o.workers) s.workers = *o.workers;
  if (o.wait_timeout) s.wait_timeout = *o.wait_timeout;
  if (o.requests) s.run.requests = *o.requests;
  if (o.seed) s.run.seed = *o.seed;
  if (o.threads) s.run.threads = *o.threads;
  if (o.precision) s.run.target_half_width = *o.precision;
  if (o.run_length) s.run.live_length = *o.run_length;
  if (o.run_warmup) s.run.live_warmup = *o.run_warmup;
  if (o.slo) {
    const latency_slo slo = slo_flag(*o.slo);
    s.run.slo_quantile = slo.quantile;
    s.run.slo_latency = slo.latency;
  }
  if (o.go_version) {
    try {
      s.pool.go = parse_go_version(*o.go_version);
    } catch (const std::invalid_argument& e) {
      throw scenario_error(std::string("--go-version: ") + e.what());
    }
  }
  if (o.waiter_order) {
    try {
      s.pool.order = parse_waiter_order(*o.waiter_order);
    } catch (const std::invalid_argument& e) {
      throw scenario_error(std::string("--waiter-order: ") + e.what());
    }
  }
}

void require_rate(const scenario& s) {
  if (s.arrivals.process != arrival_process::trace && s.arrivals.rate == 0)
    throw scenario_error("arrivals.rate: missing (set it in the file or with --rate)");
}

}  // namespace headroom
