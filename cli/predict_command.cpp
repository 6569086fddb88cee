// headroom predict: read a scenario (or calibration) file, apply command-line overrides,
// run the request-path model and print a table or JSON. All logic lives in model/.
#include <boost/json.hpp>
#include <iostream>
#include <optional>
#include <string>

#include "commands.hpp"
#include "prediction.hpp"
#include "scenario_json.hpp"

namespace headroom::cli {
namespace {

struct predict_options {
  std::string scenario_file, calibration_file;
  std::optional<double> rate, cores, wait_timeout, target;
  std::optional<int> max_open, max_idle, workers, threads;
  std::optional<std::uint64_t> requests, seed;
  std::optional<std::string> waiter_order;
  bool json = false;
};

void apply_overrides(scenario& s, const predict_options& o) {
  if (o.rate) {
    if (s.arrivals.process == arrival_process::trace)
      throw scenario_error("--rate: the scenario replays a trace; a rate does not apply");
    s.arrivals.rate = *o.rate;
  }
  if (o.cores) s.cores = *o.cores;
  if (o.max_open) s.pool.max_open = *o.max_open;
  if (o.max_idle) s.pool.max_idle = *o.max_idle;
  if (o.workers) s.workers = *o.workers;
  if (o.wait_timeout) s.wait_timeout = *o.wait_timeout;
  if (o.requests) s.run.requests = *o.requests;
  if (o.seed) s.run.seed = *o.seed;
  if (o.threads) s.run.threads = *o.threads;
  if (o.target) s.run.target_half_width = *o.target;
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
    prediction p = predict(s);
    if (o.json) {
      std::cout << boost::json::serialize(prediction_to_json(s, p)) << "\n";
    } else {
      std::cout << prediction_table(s, p);
    }
    // An overloaded scenario is an answer, not an error: exit 0, reported as unstable.
    set_exit_code(0);
  } catch (const scenario_error& e) {
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
  sub->add_option("--scenario", opts->scenario_file, "Scenario file (JSON)");
  sub->add_option("--calibration", opts->calibration_file,
                  "Calibration file written by `headroom calibrate` (same schema as a scenario)");
  sub->add_option("--rate", opts->rate, "Offered requests per second (overrides arrivals.rate)");
  sub->add_option("--max-open", opts->max_open, "pool.max_open (0 = unlimited)");
  sub->add_option("--max-idle", opts->max_idle, "pool.max_idle (Go's default is 2)");
  sub->add_option("--waiter-order", opts->waiter_order, "pool.waiter_order: fifo or random");
  sub->add_option("--wait-timeout", opts->wait_timeout,
                  "pool.wait_timeout in seconds (0 = forever)");
  sub->add_option("--workers", opts->workers, "workers (0 = unlimited)");
  sub->add_option("--cores", opts->cores, "cpu.cores");
  sub->add_option("--requests", opts->requests, "run.requests: measured requests per replication");
  sub->add_option("--seed", opts->seed, "run.seed");
  sub->add_option("--threads", opts->threads, "run.threads (0 = all cores)");
  sub->add_option("--target", opts->target,
                  "run.target_half_width of the p99 interval (0.02 = +-2 %)");
  sub->add_flag("--json", opts->json, "Print JSON instead of a table");
  sub->callback([opts] { run_predict(*opts); });
}

}  // namespace headroom::cli
