// headroom sweep: one scenario (or calibration) predicted over a grid of rates x pool settings x
// cores, as a table, CSV or JSON, with progress on stderr. The grid logic is model/sweep.hpp.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "commands.hpp"
#include "duration.hpp"
#include "duration_flag.hpp"
#include "json_output.hpp"
#include "scenario_json.hpp"
#include "scenario_overrides.hpp"
#include "slo.hpp"
#include "sweep.hpp"
#include "sweep_report.hpp"

namespace headroom::cli {
namespace {

// One live run when neither the file nor the flags name one: calibrate's default step.
constexpr double default_run_length = 20, default_run_warmup = 5;

struct sweep_options_cli {
  std::string scenario_file, calibration_file;
  std::string rates;
  std::vector<int> max_open, max_idle;
  std::vector<double> cores;
  scenario_overrides overrides;  // --slo, --run-length, --run-warmup, --precision, --seed, --requests
  int threads = 0;
  std::string parallel = "points";
  json_output csv, json;
};

double parse_number(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  double x = 0;
  try {
    x = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(x))
    throw scenario_error("--rates: not a " + what + ": '" + text + "'");
  return x;
}

// "100,200,400" or "FIRST:LAST:STEP" (both ends included, as far as the steps reach).
std::vector<double> parse_rates(const std::string& text) {
  std::vector<double> out;
  if (text.find(':') != std::string::npos) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    for (std::string p; std::getline(in, p, ':');) parts.push_back(p);
    if (parts.size() != 3)
      throw scenario_error("--rates: a range is FIRST:LAST:STEP, not '" + text + "'");
    const double first = parse_number(parts[0], "rate"), last = parse_number(parts[1], "rate"),
                 step = parse_number(parts[2], "step");
    if (!(step > 0) || last < first)
      throw scenario_error("--rates: a range needs FIRST <= LAST and STEP > 0: '" + text + "'");
    // Counted, not accumulated, so 0.1 steps do not drift past LAST; a hair of slack for LAST.
    const auto n = static_cast<std::size_t>(std::floor((last - first) / step * (1 + 1e-12))) + 1;
    if (n > 100000) throw scenario_error("--rates: more than 100,000 rates in '" + text + "'");
    for (std::size_t i = 0; i < n; ++i) out.push_back(first + static_cast<double>(i) * step);
    return out;
  }
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(parse_number(item, "rate"));
  if (out.empty()) throw scenario_error("--rates: give at least one rate");
  return out;
}

// The same rules and messages as predict and plan; a sweep's default live run is calibrate's step.
void apply_run_options(scenario& s, const sweep_options_cli& o) {
  apply_overrides(s, o.overrides);
  if (s.run.live_length == 0) {
    s.run.live_length = default_run_length;
    if (!o.overrides.run_warmup) s.run.live_warmup = default_run_warmup;
  }
}

std::string ms(double seconds) {
  if (!std::isfinite(seconds)) return "fell over";
  char buf[32];
  std::snprintf(buf, sizeof buf, seconds < 0.01 ? "%.2f ms" : "%.1f ms", seconds * 1000);
  return buf;
}

// The readable table: one line per point.
std::string sweep_table(const scenario& s, const std::vector<sweep_result>& results) {
  std::ostringstream os;
  const latency_slo slo{s.run.slo_quantile, s.run.slo_latency};
  os << "sweep of " << (s.name.empty() ? "(unnamed)" : s.name) << ": " << results.size()
     << " points; one live run of " << format_duration(s.run.live_length) << " after "
     << format_duration(s.run.live_warmup) << " warm-up"
     << (s.run.slo_latency > 0 ? ", SLO " + slo.text() : std::string()) << "\n";
  os << "    rate  max_open max_idle  cores       p50       p99   one run " << slo.name()
     << " median [5-95 %]      P(SLO)  throughput  dials/s\n";
  for (const sweep_result& r : results) {
    const prediction& p = r.p;
    char line[400], p_slo[16] = "-";
    if (p.live.computed && p.live.p_slo >= 0)
      std::snprintf(p_slo, sizeof p_slo, "%.2f", p.live.p_slo);
    const bool known = p.stable && p.replications > 0;
    const std::string live =
        p.live.computed ? ms(p.live.median) + " [" + ms(p.live.low) + " - " + ms(p.live.high) + "]"
                        : std::string("-");
    std::snprintf(line, sizeof line, "%8g  %8d %8d %6g %9s %9s   %-34s  %6s  %10.1f  %7.1f%s\n",
                  r.point.rate, r.point.max_open, r.point.max_idle, r.point.cores,
                  known ? ms(p.all_requests.p50.value).c_str() : "-",
                  known ? ms(p.all_requests.p99.value).c_str() : "-", live.c_str(), p_slo,
                  p.replications > 0 ? p.throughput.value : 0.0,
                  p.has_pool && p.replications > 0 ? p.pool.dials_per_s.value : 0.0,
                  p.stable ? "" : "  UNSTABLE");
    os << line;
  }
  return os.str();
}

void run_sweep_command(const sweep_options_cli& o) {
  try {
    if (o.scenario_file.empty() == o.calibration_file.empty())
      throw scenario_error("--scenario / --calibration: give exactly one");
    scenario s = load_scenario_file(o.scenario_file.empty() ? o.calibration_file : o.scenario_file);
    apply_run_options(s, o);
    sweep_grid grid;
    if (!o.rates.empty()) grid.rates = parse_rates(o.rates);
    grid.max_open = o.max_open;
    grid.max_idle = o.max_idle;
    grid.cores = o.cores;
    sweep_options run;
    run.threads = o.threads;
    if (o.parallel == "points")
      run.parallelism = sweep_parallelism::points;
    else if (o.parallel == "replications")
      run.parallelism = sweep_parallelism::replications;
    else
      throw scenario_error("--parallel: points or replications, not '" + o.parallel + "'");
    check_writable(o.csv);  // before the run, so a typo costs nothing
    check_writable(o.json);
    run.progress = [](const sweep_progress& p) {
      const sweep_point& pt = p.last->point;
      std::fprintf(stderr,
                   "point %zu of %zu: %g req/s, max_open %d, max_idle %d, %g cores%s; %s elapsed, "
                   "eta %s\n",
                   p.done, p.total, pt.rate, pt.max_open, pt.max_idle, pt.cores,
                   p.last->p.stable ? "" : " (unstable)",
                   format_duration(std::round(p.elapsed)).c_str(),
                   format_duration(std::round(p.eta)).c_str());
    };
    const std::vector<sweep_result> results = run_sweep(s, grid, run);
    if (!o.csv.to_stdout() && !o.json.to_stdout())
      std::cout << sweep_table(s, results) << std::flush;
    if (o.csv.requested) {
      std::ostringstream csv;
      write_sweep_csv(csv, results);
      write_text(o.csv, csv.str());
    }
    write_json(o.json, sweep_to_json(s, results));
    set_exit_code(0);
  } catch (const scenario_error& e) {
    std::cerr << "headroom sweep: " << e.what() << "\n";
    set_exit_code(2);
  } catch (const std::runtime_error& e) {  // an output file could not be written
    std::cerr << "headroom sweep: " << e.what() << "\n";
    set_exit_code(2);
  }
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto o = std::make_shared<sweep_options_cli>();
  auto* sub = app.add_subcommand(
      "sweep",
      "Predict a scenario over a grid of rates x pool settings x cores (CSV, JSON or a table)");
  sub->add_option("--scenario", o->scenario_file, "Scenario file (JSON, model/SCENARIO.md)");
  sub->add_option("--calibration", o->calibration_file,
                  "Calibration file written by `headroom calibrate` (same schema as a scenario)");
  sub->add_option("--rates", o->rates,
                  "Offered rates, requests/s: r1,r2,... or FIRST:LAST:STEP (both ends included)")
      ->required();
  sub->add_option(
         "--max-open", o->max_open,
         "pool.max_open values, comma-separated (count; 0 = unlimited; default: the file's)")
      ->delimiter(',');
  sub->add_option("--max-idle", o->max_idle,
                  "pool.max_idle values, comma-separated (count; default: the file's)")
      ->delimiter(',');
  sub->add_option("--cores", o->cores, "cpu.cores values, comma-separated (default: the file's)")
      ->delimiter(',');
  sub->add_option(
      "--slo", o->overrides.slo,
      "Latency SLO whose chance of being met by one live run is reported, e.g. p99=60ms");
  add_duration_flag(sub, "--run-length", o->overrides.run_length,
                    "One live run that the prediction interval describes (default: the file's "
                    "run.live_length, else 20s)");
  add_duration_flag(sub, "--run-warmup", o->overrides.run_warmup,
                    "That run's warm-up, not measured (default: the file's, else 5s)");
  sub->add_option("--precision", o->overrides.precision,
                  "run.target_half_width of every point (fraction; 0.02 = +-2 %, the default)");
  sub->add_option("--seed", o->overrides.seed, "run.seed: seed of every random stream (integer)");
  sub->add_option("--requests", o->overrides.requests,
                  "run.requests: measured requests per replication (count)");
  sub->add_option("--threads", o->threads, "Threads used (count; 0 = all cores)")
      ->capture_default_str();
  sub->add_option("--parallel", o->parallel,
                  "points: several grid points at once, one thread each (results identical for "
                  "any --threads); replications: one point at a time on every thread")
      ->capture_default_str();
  sub->add_option_function<std::string>(
         "--csv",
         [o](const std::string& file) {
           o->csv.requested = true;
           o->csv.file = file;
         },
         "One row per point as CSV (seconds): to stdout instead of the table with no FILE or '-', "
         "else to FILE")
      ->expected(0, 1)
      ->type_name("[FILE]");
  add_json_option(sub, o->json, "Every point's prediction");
  sub->callback([o] { run_sweep_command(*o); });
}

}  // namespace headroom::cli
