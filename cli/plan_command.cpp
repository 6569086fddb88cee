// headroom plan: read a calibration (or scenario) file, search the per-instance capacity under an
// SLO and print how many instances the target needs. All logic lives in model/plan.
#include <iostream>
#include <optional>
#include <string>

#include "calibration_file.hpp"
#include "commands.hpp"
#include "duration_flag.hpp"
#include "json_output.hpp"
#include "knee_check.hpp"
#include "plan.hpp"
#include "plan_report.hpp"
#include "scenario_json.hpp"
#include "scenario_overrides.hpp"
#include "slo.hpp"

namespace headroom::cli {
namespace {

struct plan_options {
  std::string scenario_file, calibration_file, slo = "p99=60ms";
  plan_request request;
  scenario_overrides set;  // --max-open, --max-idle, --go-version, --threads, --seed
  bool markdown = false, quiet = false;
  json_output json;
};

// Exit codes: 0 a plan, 3 no feasible plan (the reason is printed), 2 bad input, 1 failure.
constexpr int exit_infeasible = 3;

void run_plan(plan_options& o) {
  try {
    if (o.scenario_file.empty() == o.calibration_file.empty())
      throw scenario_error("--scenario / --calibration: give exactly one");
    if (o.markdown && o.json.to_stdout())
      throw scenario_error("--markdown / --json: only one of them can go to stdout");
    o.request.slo = slo_flag(o.slo);
    scenario s = load_scenario_file(o.scenario_file.empty() ? o.calibration_file : o.scenario_file);
    apply_overrides(s, o.set);
    check_writable(o.json);
    if (!o.quiet)
      o.request.progress = [](const std::string& line) {
        std::cerr << "headroom plan: " << line << "\n" << std::flush;
      };
    plan p = make_plan(s, o.request);
    // The model against its own evidence: the knee the calibration's steps measured.
    // A scenario given as --calibration has no steps: nothing to check.
    if (!o.calibration_file.empty()) {
      std::optional<calibrate::calibration_file> f;
      try {
        f = calibrate::read_calibration_file(o.calibration_file);
      } catch (const std::invalid_argument&) {
      }
      if (f && f->model) {
        const calibrate::knee_comparison k =
            calibrate::compare_knees(*f->model, f->steps, o.request.slo);
        if (k.disagrees) p.summary.push_back(k.line);
      }
    }
    if (o.markdown)
      std::cout << plan_markdown(p) << std::flush;
    else if (!o.json.to_stdout())
      std::cout << plan_text(p) << std::flush;
    write_json(o.json, plan_to_json(p));
    set_exit_code(p.feasible ? 0 : exit_infeasible);
  } catch (const scenario_error& e) {
    std::cerr << "headroom plan: " << e.what() << "\n";
    set_exit_code(2);
  } catch (const std::invalid_argument& e) {
    std::cerr << "headroom plan: " << e.what() << "\n";
    set_exit_code(2);
  } catch (const std::runtime_error& e) {  // the JSON file could not be written
    std::cerr << "headroom plan: " << e.what() << "\n";
    set_exit_code(1);
  }
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto opts = std::make_shared<plan_options>();
  plan_request& r = opts->request;
  auto* sub = app.add_subcommand(
      "plan",
      "How many instances, with which pool setting (README \"Planning\"). Capacity per "
      "instance = the largest rate at which --confidence of the simulated --window windows meet "
      "the SLO and a long run keeps up; its interval (low .. high): the rates between which "
      "--runs windows cannot tell whether that share is above the confidence (90 % Wilson "
      "interval). instances = ceil(target / capacity) + redundancy, rounded to --zones. Exit "
      "0: a plan; 3: no feasible plan (the reason is printed); 2: bad input; 1: a file not "
      "written");
  sub->add_option("--calibration", opts->calibration_file,
                  "Calibration file written by `headroom calibrate`");
  sub->add_option("--scenario", opts->scenario_file,
                  "Any scenario file (JSON, model/SCENARIO.md) instead of a calibration");
  sub->add_option("--target-rps", r.target_rps, "The whole service's expected load (req/s)")
      ->required();
  sub->add_option("--slo", opts->slo,
                  "Latency SLO per window: p50, p90, p95, p99 or p99.9 '=' a duration, e.g. "
                  "p99=60ms")
      ->capture_default_str();
  sub->add_option("--confidence", r.confidence,
                  "Share of windows that must meet the SLO at the capacity (fraction in (0, 1))")
      ->capture_default_str();
  sub->add_option("--redundancy", r.redundancy, "k spare instances added (count; N+k)")
      ->capture_default_str();
  sub->add_option("--zones", r.zones,
                  "Spread instances evenly over this many zones: rounded up to a multiple")
      ->capture_default_str();
  sub->add_flag("--survive-zone-loss", r.survive_zone_loss,
                "With --zones: enough instances that losing one whole zone still carries the "
                "target");
  add_duration_flag(sub, "--window", r.window,
                    "One SLO window: the SLO is judged on each window's own percentile, as a "
                    "dashboard's p99 per minute");
  add_duration_flag(sub, "--window-warmup", r.window_warmup,
                    "Simulated before each window and not measured (queues and pool settle)");
  sub->add_option("--runs", r.runs,
                  "Windows simulated per rate (count; 0 = max(40, 4 / (1 - confidence)): about "
                  "four expected misses at the capacity)")
      ->capture_default_str();
  sub->add_option("--precision", r.precision,
                  "The search stops when its bracket's high end is within this fraction above "
                  "its low end (fraction)")
      ->capture_default_str();
  sub->add_option("--max-open", opts->set.max_open,
                  "pool.max_open to plan with (count; 0 = unlimited); default: the file's");
  sub->add_option("--max-idle", opts->set.max_idle,
                  "pool.max_idle to plan with (count); default: the file's");
  sub->add_option("--go-version", opts->set.go_version,
                  "pool.go_version: whose database/sql rules (1.10, 1.15, 1.18, 1.23); default: "
                  "the file's");
  sub->add_flag("--optimize-pool", r.optimize_pool,
                "Also search max_open {0, 8, 16, 32} x max_idle {2, 8, 16, 32} and show the best "
                "setting beside the planned one");
  sub->add_option("--cores,--service-cores", r.service_cores,
                  "CPU cores of each instance's own host (count): a split deployment, the "
                  "database on its own host; default: the file's deployment (co-located when "
                  "calibrated on one machine)");
  sub->add_option("--db-cores", r.database_cores,
                  "CPU cores of the database's host, shared by all instances (count; default: "
                  "the file's cpu.cores, the calibration machine's)");
  add_duration_flag(sub, "--db-rtt", r.database_rtt,
                    "Service-database round trip in a split deployment (default 500us: one "
                    "data centre)");
  sub->add_flag("--exclude-generator", r.exclude_generator,
                "Drop the load generator's CPU and connection cap (calibrated on one machine, "
                "production has no generator beside the service)");
  sub->add_option("--db-max-connections", r.database_max_connections,
                  "PostgreSQL's max_connections, shared by all instances (count)")
      ->capture_default_str();
  sub->add_option("--threads", opts->set.threads, "Simulations run at once (count; 0 = all cores)");
  sub->add_option("--seed", opts->set.seed, "run.seed: seed of every random stream (integer)");
  sub->add_flag("--quiet", opts->quiet, "No progress lines on stderr");
  sub->add_flag("--markdown", opts->markdown, "Print a Markdown table (for a ticket)");
  add_json_option(sub, opts->json, "The plan (format headroom-plan/1)");
  sub->callback([opts] { run_plan(*opts); });
}

}  // namespace headroom::cli
