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
#include "scenario_overrides.hpp"

namespace headroom::cli {
namespace {

struct predict_options {
  std::string scenario_file, calibration_file;
  scenario_overrides set;
  json_output json;
};

void run_predict(const predict_options& o) {
  try {
    if (o.scenario_file.empty() == o.calibration_file.empty())
      throw scenario_error("--scenario / --calibration: give exactly one");
    const std::string& file = o.scenario_file.empty() ? o.calibration_file : o.scenario_file;
    scenario s = load_scenario_file(file);
    apply_overrides(s, o.set);
    require_rate(s);
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
  sub->add_option("--rate", opts->set.rate,
                  "Offered load in requests per second (overrides arrivals.rate)");
  sub->add_option("--max-open", opts->set.max_open,
                  "pool.max_open: connections at most (count; 0 = unlimited, the default)");
  sub->add_option("--max-idle", opts->set.max_idle,
                  "pool.max_idle: idle connections kept (count; Go's default is 2)");
  sub->add_option("--go-version", opts->set.go_version,
                  "pool.go_version: whose database/sql rules (1.10 default, 1.15, 1.18, 1.23; "
                  "any later 1.x maps to its profile)");
  sub->add_option("--waiter-order", opts->set.waiter_order,
                  "pool.waiter_order override: fifo or random (default: the Go version's rule)");
  add_duration_flag(sub, "--wait-timeout", opts->set.wait_timeout,
                    "pool.wait_timeout: how long a request waits for a connection before a 503 "
                    "(0 = forever; the service's default is 5s)");
  sub->add_option(
      "--workers", opts->set.workers,
      "workers: requests served at once (count; 0 = unlimited; the service's default is 64)");
  sub->add_option("--cores", opts->set.cores, "cpu.cores: CPU cores shared by all work (count)");
  sub->add_option("--instances", opts->set.instances,
                  "deployment.instances: service instances sharing the one database, each with "
                  "its own workers and pool; --rate is split among them at random (count)");
  sub->add_option("--service-cores", opts->set.service_cores,
                  "deployment.service_cores: cores of each instance's own host; > 0 splits the "
                  "service from the database (count; 0 = co-located on --cores)");
  sub->add_option("--db-cores", opts->set.database_cores,
                  "deployment.database_cores: cores of the database's host in a split "
                  "deployment (count)");
  add_duration_flag(sub, "--db-rtt", opts->set.database_rtt,
                    "deployment.database_rtt: service-database round trip in a split deployment, "
                    "added to every query, dial and release");
  sub->add_option("--db-max-connections", opts->set.database_max_connections,
                  "deployment.database_max_connections: PostgreSQL's max_connections, checked "
                  "against the peak of open connections (count; default 100)");
  sub->add_option("--requests", opts->set.requests,
                  "run.requests: measured requests per replication (count)");
  sub->add_option("--seed", opts->set.seed, "run.seed: seed of every random stream (integer)");
  sub->add_option("--threads", opts->set.threads,
                  "run.threads: replications run at once (count; 0 = all cores)");
  sub->add_option("--slo", opts->set.slo,
                  "Latency SLO whose chance of being met by one live run is reported, e.g. "
                  "p99=60ms (run.slo)");
  add_duration_flag(sub, "--run-length", opts->set.run_length,
                    "run.live_length: one live run (a load test's step) that the prediction "
                    "interval describes; 0 = none (a calibration file sets its step length)");
  add_duration_flag(sub, "--run-warmup", opts->set.run_warmup,
                    "run.live_warmup: that run's warm-up, not measured");
  sub->add_option("--precision", opts->set.precision,
                  "run.target_half_width: stop when the p99 interval's half-width is this "
                  "fraction of the p99 (fraction; 0.02 = +-2 %, the default)");
  add_json_option(sub, opts->json, "The prediction");
  sub->callback([opts] { run_predict(*opts); });
}

}  // namespace headroom::cli
