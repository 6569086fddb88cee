// headroom predict: read a scenario (or calibration) file, apply command-line overrides,
// run the request-path model and print a table or JSON. All logic lives in model/.
#include <iostream>
#include <optional>
#include <string>

#include "commands.hpp"
#include "duration_flag.hpp"
#include "json_output.hpp"
#include "prediction.hpp"
#include "prediction_report.hpp"
#include "scenario_json.hpp"
#include "slo.hpp"

namespace headroom::cli {
namespace {

struct predict_options {
  std::string scenario_file, calibration_file;
  std::optional<double> rate, cores, wait_timeout, precision, run_length, run_warmup;
  std::optional<double> service_cores, database_cores, database_rtt;
  std::optional<int> instances, database_max_connections;
  std::optional<std::string> slo;
  std::optional<int> max_open, max_idle, workers, threads;
  std::optional<std::uint64_t> requests, seed;
  std::optional<std::string> waiter_order, go_version;
  json_output json;
};

void apply_overrides(scenario& s, const predict_options& o) {
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
    try {
      latency_slo slo = parse_slo(*o.slo);
      s.run.slo_quantile = slo.quantile;
      s.run.slo_latency = slo.latency;
    } catch (const std::invalid_argument& e) {
      throw scenario_error(std::string("--slo: ") + e.what());
    }
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

void run_predict(const predict_options& o) {
  try {
    if (o.scenario_file.empty() == o.calibration_file.empty())
      throw scenario_error("--scenario / --calibration: give exactly one");
    const std::string& file = o.scenario_file.empty() ? o.calibration_file : o.scenario_file;
    scenario s = load_scenario_file(file);
    apply_overrides(s, o);
    if (s.arrivals.process != arrival_process::trace && s.arrivals.rate == 0)
      throw scenario_error("arrivals.rate: missing (set it in the file or with --rate)");
    check_writable(o.json);  // before the run, so a typo costs nothing
    prediction p = predict(s);
    if (!o.json.to_stdout()) std::cout << prediction_table(s, p) << std::flush;
    write_json(o.json, prediction_to_json(s, p));
    // The answer is still given, marked; say it where a script's reader looks too.
    if (p.stable && !p.target_reached)
      std::cerr << "headroom predict: warning: the p99 interval did not reach +-"
                << s.run.target_half_width * 100 << " % within run.max_replications ("
                << s.run.max_replications << ")\n";
    if (std::string w = database_connections_warning(s, p); !w.empty())
      std::cerr << "headroom predict: warning: " << w << "\n";
    // An overloaded scenario is an answer, not an error: exit 0, reported as unstable.
    set_exit_code(0);
  } catch (const scenario_error& e) {
    std::cerr << "headroom predict: " << e.what() << "\n";
    set_exit_code(2);
  } catch (const std::runtime_error& e) {  // the JSON file could not be written
    std::cerr << "headroom predict: " << e.what() << "\n";
    set_exit_code(2);
  }
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto opts = std::make_shared<predict_options>();
  auto* sub = app.add_subcommand(
      "predict",
      "Predict latency, throughput and pool behaviour of a scenario (model/SCENARIO.md)");
  sub->add_option("--scenario", opts->scenario_file, "Scenario file (JSON, model/SCENARIO.md)");
  sub->add_option("--calibration", opts->calibration_file,
                  "Calibration file written by `headroom calibrate` (same schema as a scenario)");
  sub->add_option("--rate", opts->rate,
                  "Offered load in requests per second (overrides arrivals.rate)");
  sub->add_option("--max-open", opts->max_open,
                  "pool.max_open: connections at most (count; 0 = unlimited, the default)");
  sub->add_option("--max-idle", opts->max_idle,
                  "pool.max_idle: idle connections kept (count; Go's default is 2)");
  sub->add_option("--go-version", opts->go_version,
                  "pool.go_version: whose database/sql rules (1.10 default, 1.15, 1.18, 1.23; "
                  "any later 1.x maps to its profile)");
  sub->add_option("--waiter-order", opts->waiter_order,
                  "pool.waiter_order override: fifo or random (default: the Go version's rule)");
  add_duration_flag(sub, "--wait-timeout", opts->wait_timeout,
                    "pool.wait_timeout: how long a request waits for a connection before a 503 "
                    "(0 = forever; the service's default is 5s)");
  sub->add_option(
      "--workers", opts->workers,
      "workers: requests served at once (count; 0 = unlimited; the service's default is 64)");
  sub->add_option("--cores", opts->cores, "cpu.cores: CPU cores shared by all work (count)");
  sub->add_option("--instances", opts->instances,
                  "deployment.instances: service instances sharing the one database, each with "
                  "its own workers and pool; --rate is split among them at random (count)");
  sub->add_option("--service-cores", opts->service_cores,
                  "deployment.service_cores: cores of each instance's own host; > 0 splits the "
                  "service from the database (count; 0 = co-located on --cores)");
  sub->add_option("--db-cores", opts->database_cores,
                  "deployment.database_cores: cores of the database's host in a split "
                  "deployment (count)");
  add_duration_flag(sub, "--db-rtt", opts->database_rtt,
                    "deployment.database_rtt: service-database round trip in a split deployment, "
                    "added to every query, dial and release");
  sub->add_option("--db-max-connections", opts->database_max_connections,
                  "deployment.database_max_connections: PostgreSQL's max_connections, checked "
                  "against the peak of open connections (count; default 100)");
  sub->add_option("--requests", opts->requests,
                  "run.requests: measured requests per replication (count)");
  sub->add_option("--seed", opts->seed, "run.seed: seed of every random stream (integer)");
  sub->add_option("--threads", opts->threads,
                  "run.threads: replications run at once (count; 0 = all cores)");
  sub->add_option("--slo", opts->slo,
                  "Latency SLO whose chance of being met by one live run is reported, e.g. "
                  "p99=60ms (run.slo)");
  add_duration_flag(sub, "--run-length", opts->run_length,
                    "run.live_length: one live run (a load test's step) that the prediction "
                    "interval describes; 0 = none (a calibration file sets its step length)");
  add_duration_flag(sub, "--run-warmup", opts->run_warmup,
                    "run.live_warmup: that run's warm-up, not measured");
  sub->add_option("--precision", opts->precision,
                  "run.target_half_width: stop when the p99 interval's half-width is this "
                  "fraction of the p99 (fraction; 0.02 = +-2 %, the default)");
  add_json_option(sub, opts->json, "The prediction");
  sub->callback([opts] { run_predict(*opts); });
}

}  // namespace headroom::cli
