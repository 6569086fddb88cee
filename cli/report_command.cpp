// headroom report: one self-contained HTML page from a calibration (and a plan and a validation
// when given, and the live window from Prometheus when asked). Gathering and drawing live in
// report/; this file parses flags and writes the file.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "commands.hpp"
#include "duration.hpp"
#include "duration_flag.hpp"
#include "prometheus_client.hpp"
#include "report_data.hpp"
#include "report_page.hpp"

namespace headroom::cli {
namespace {

using report::live_request;

struct report_args {
  report::report_request request;
  std::optional<std::string> slo;
  std::string out;
};

// Whole or not at all: a browser open on the old report never sees half a page.
void write_page(const std::string& path, const std::string& html) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << html;
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      throw std::runtime_error("cannot write " + path);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path);
  }
}

void run_report(report_args& a) {
  try {
    if (!(a.request.precision > 0 && a.request.precision < 1))
      throw std::invalid_argument("--precision: a fraction in (0, 1), e.g. 0.05");
    if (a.request.points < 2) throw std::invalid_argument("--points: at least 2");
    // Checked before the sweeps, so a typo costs nothing.
    {
      std::ofstream probe(a.out + ".tmp");
      if (!probe) throw std::invalid_argument("--out: cannot write " + a.out);
    }
    std::remove((a.out + ".tmp").c_str());
    a.request.slo = a.slo;
    a.request.progress = [](const std::string& curve, const sweep_progress& p) {
      std::fprintf(stderr, "predicting %s: point %zu of %zu (%g req/s), %s elapsed, eta %s\n",
                   curve.c_str(), p.done, p.total, p.last->point.rate,
                   format_duration(std::round(p.elapsed)).c_str(),
                   format_duration(std::round(p.eta)).c_str());
    };
    const report::report_inputs in = report::gather_report_inputs(a.request);
    write_page(a.out, report::report_html(in));
    std::cout << "wrote " << a.out << " (" << report::report_chart_count(in) << " charts)\n";
    set_exit_code(0);
  } catch (const calibrate::prometheus_error& e) {
    // Asked for the live window and could not read it: a report without it is not what was
    // asked for, so say so and stop (leave out --prometheus to write one anyway).
    std::cerr << "headroom report: " << e.what() << "\n";
    set_exit_code(1);
  } catch (const std::invalid_argument& e) {
    std::cerr << "headroom report: " << e.what() << "\n";
    set_exit_code(2);
  } catch (const std::runtime_error& e) {
    std::cerr << "headroom report: " << e.what() << "\n";
    set_exit_code(1);
  }
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto a = std::make_shared<report_args>();
  auto* sub = app.add_subcommand(
      "report", "Write one self-contained HTML report (charts, plan, validation) of a calibration");
  sub->add_option("--calibration", a->request.calibration,
                  "Calibration file (headroom calibrate --out)")
      ->required();
  sub->add_option("--plan", a->request.plan, "Plan file (headroom plan --json FILE)");
  sub->add_option("--validation", a->request.validation,
                  "Validation file (headroom validate --json FILE)");
  sub->add_option("--out", a->out, "The HTML file to write")->required();
  sub->add_option("--slo", a->slo,
                  "Latency SLO drawn and used for the knee, e.g. p99=60ms (default: the plan's, "
                  "else the calibration's)");
  sub->add_option("--points", a->request.points, "Predicted rates per curve (count)")
      ->capture_default_str();
  sub->add_option("--precision", a->request.precision,
                  "run.target_half_width of each predicted point (fraction)")
      ->capture_default_str();
  sub->add_option("--threads", a->request.threads, "Threads used (count; 0 = all cores)")
      ->capture_default_str();
  live_request& live = a->request.live;
  sub->add_option("--prometheus", live.prometheus,
                  "Prometheus base URL, e.g. http://127.0.0.1:9090: adds the live window's "
                  "dashboard (request rate, latency, phases, pool, CPU) beside the model. "
                  "Unreachable: one line on stderr, exit 1 (leave the flag out to report without "
                  "it)");
  sub->add_option("--job", live.job, "Prometheus scrape job of the service (with --prometheus)")
      ->capture_default_str();
  sub->add_option("--node-job", live.node_job,
                  "Prometheus scrape job of node_exporter, for the machine's CPU (with "
                  "--prometheus; scripts/observe --node-job)")
      ->capture_default_str();
  sub->add_option("--from", live.from,
                  "Start of the live window: now-15m, unix seconds or 2026-11-29T08:00:00Z")
      ->capture_default_str();
  sub->add_option("--to", live.to, "End of the live window (same forms as --from)")
      ->capture_default_str();
  add_duration_flag(sub, "--step", live.step,
                    "Between two points of a panel (default: the window / 300, at least 1s; rates "
                    "look back 4 steps, at least 4s, so give at least half the scrape interval)");
  sub->callback([a] { run_report(*a); });
}

}  // namespace headroom::cli
