// The command-line overrides of a scenario (`headroom predict --rate 500 --max-open 8 ...`),
// as data, so the CLI and the Python bindings change a scenario by the same rules and with the
// same messages (an error names the flag: "--go-version: unknown Go version '2.0'").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "scenario.hpp"
#include "slo.hpp"

namespace headroom {

struct scenario_overrides {
  std::optional<double> rate, cores, wait_timeout, precision, run_length, run_warmup;
  // the deployment (scenario.deployment): --instances, --service-cores, --db-cores, --db-rtt,
  // --db-max-connections
  std::optional<double> service_cores, database_cores, database_rtt;
  std::optional<int> instances, database_max_connections;
  std::optional<std::string> slo, waiter_order, go_version;
  std::optional<int> max_open, max_idle, workers, threads;
  std::optional<std::uint64_t> requests, seed;
};

// Applies every set field; throws scenario_error naming the flag for a value that cannot apply.
void apply_overrides(scenario& s, const scenario_overrides& o);

// The --slo flag's text ("p99=60ms") as an SLO: the one parser and message ("--slo: ...") of
// predict, sweep, plan and the Python module. Throws scenario_error.
latency_slo slo_flag(const std::string& text);

// Throws scenario_error when the scenario has no offered load (no rate and no trace).
void require_rate(const scenario& s);

}  // namespace headroom
