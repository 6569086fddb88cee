// headroom validate: measure cases live that a calibration was not fitted on, beside what the
// model predicted for them (predicted interval for one run, measured spread over repeats).
#include <unistd.h>

#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "calibration_file.hpp"
#include "calibration_fit.hpp"
#include "calibration_runner.hpp"
#include "commands.hpp"
#include "cpu_split_options.hpp"
#include "cross_validation.hpp"
#include "duration_flag.hpp"
#include "json_output.hpp"
#include "local_processes.hpp"
#include "metrics_scrape.hpp"
#include "prediction.hpp"
#include "request_options.hpp"
#include "slo.hpp"

namespace headroom::cli {
namespace cal = headroom::calibrate;
namespace json = boost::json;

namespace {

struct validate_args {
  std::string calibration;
  std::string target;
  std::string method, body_file;
  std::vector<std::string> headers;
  std::string metrics;
  cpu_split_args cpus;
  std::string cases;
  int repeats = 3;
  std::optional<double> step_duration, warmup;
  std::string slo;
  json_output json;
};

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void run_validate(const validate_args& a) {
  try {
    check_writable(a.json);
  } catch (const std::runtime_error& e) {
    throw cal::load_input_error(std::string("--json: ") + e.what());
  }
  cal::calibration_file file = cal::read_calibration_file(a.calibration);
  if (!file.model)
    throw std::invalid_argument(a.calibration +
                                ": holds no fitted model (the calibration's fit "
                                "failed or was interrupted before one step)");
  const auto prov = [&](const char* k, const std::string& fallback) {
    auto it = file.provenance.find(k);
    return it != file.provenance.end() && it->value().is_string()
               ? std::string(it->value().get_string())
               : fallback;
  };
  const latency_slo slo = parse_slo(a.slo.empty() ? prov("slo", "p99=60ms") : a.slo);
  std::vector<double> rates = cal::parse_rate_list(a.cases);
  if (a.repeats < 1) throw cal::load_input_error("--repeats: must be at least 1");

  cal::calibration_target target;
  target.load.targets = {a.target};
  target.load.method = a.method.empty() ? prov("method", "POST") : a.method;
  target.load.body = prov("body", "");
  if (!a.body_file.empty()) target.load.body = read_body_file(a.body_file);
  if (!a.headers.empty()) {
    for (const std::string& h : a.headers) target.load.headers.push_back(parse_header(h));
  } else if (auto it = file.provenance.find("headers");
             it != file.provenance.end() && it->value().is_array()) {
    for (const json::value& h : it->value().get_array()) {
      std::string s(h.as_string());
      auto colon = s.find(':');
      target.load.headers.emplace_back(s.substr(0, colon), s.substr(colon + 2));
    }
  }
  target.load.max_connections =
      file.model->client_connections > 0 ? file.model->client_connections : 100;
  target.step_duration = a.step_duration ? *a.step_duration : file.model->run.live_length;
  target.warmup = a.warmup ? *a.warmup : file.model->run.live_warmup;
  if (!(target.step_duration > 0)) target.step_duration = 20;
  const cal::http_target t = cal::parse_target_url(a.target);
  {
    cal::open_loop_generator probe(target.load);
    probe.check_reachable();
  }
  // The target's own /metrics by default: the service may listen elsewhere than it did when
  // it was calibrated.
  target.metrics_url = metrics_url_for(a.metrics, a.target, "headroom validate");
  if (cal::is_local_host(t.host)) {
    target.service_pid = cal::listening_pid(static_cast<unsigned short>(std::stoi(t.port)));
    auto pms = cal::postmaster_pids();
    if (pms.size() == 1) target.postmaster_pid = pms.front();
  }
  const cpu_split_guard pinned(a.cpus, target.service_pid, target.postmaster_pid,
                               "headroom validate");
  target.target_cpus = pinned.split().target;

  // Predictions first: the service's setting as it reports it now.
  std::optional<cal::pool_setting> setting;
  if (!target.metrics_url.empty()) setting = cal::current_pool_setting(target.metrics_url);
  if (!setting)
    std::cerr << "headroom validate: the service reports no pool setting; predicting with the "
                 "calibration's\n";
  struct one_case {
    double rate;
    prediction p;
    std::vector<double> measured_q, measured_rate;
  };
  std::vector<one_case> cases;
  for (double r : rates) {
    cal::calibration_step probe_step;
    probe_step.rate = r;
    probe_step.pool = setting;
    probe_step.load.duration = target.step_duration;
    probe_step.load.warmup = target.warmup;
    probe_step.load.max_connections = target.load.max_connections;
    scenario s = cal::scenario_for_step(*file.model, probe_step);
    s.run.slo_quantile = slo.quantile;
    s.run.slo_latency = slo.latency;
    std::fprintf(stderr, "predicting %g req/s ...\n", r);
    cases.push_back({r, predict(s), {}, {}});
  }
  // Then the live repeats, interleaved: every case once, then again.
  cal::calibration_runner runner(target);
  const std::size_t total = rates.size() * static_cast<std::size_t>(a.repeats);
  std::size_t done = 0;
  for (int rep = 0; rep < a.repeats; ++rep) {
    for (one_case& c : cases) {
      std::fprintf(stderr, "measuring %zu of %zu: %g req/s (repeat %d), %g s\n", ++done, total,
                   c.rate, rep + 1, target.step_duration + target.warmup);
      cal::planned_step ps{c.rate, rep, done - 1};
      cal::calibration_step s = runner.run(ps, "validate", {});
      c.measured_q.push_back(cal::measured_quantile(s, slo.quantile));
      c.measured_rate.push_back(cal::achieved_rate(s));
    }
  }
  // The table.
  std::ostringstream out;
  out << "validate " << a.calibration << " against " << a.target << " ("
      << (setting ? setting->text() : std::string("setting unknown")) << "), " << slo.text() << ", "
      << a.repeats << " runs of " << target.step_duration << " s per case\n";
  out << "  rate     predicted " << slo.name() << " median [5-95 %]      P(SLO)  measured "
      << slo.name() << " min / median / max      error   inside  throughput pred / meas\n";
  json::array rows;
  for (const one_case& c : cases) {
    const live_run_estimate& l = c.p.live;
    const double med = median_of(c.measured_q);
    const double lo = *std::min_element(c.measured_q.begin(), c.measured_q.end());
    const double hi = *std::max_element(c.measured_q.begin(), c.measured_q.end());
    int inside = 0;
    for (double q : c.measured_q)
      if (q >= l.low && q <= l.high) ++inside;
    const double error = std::isfinite(l.median) && med > 0 ? (l.median - med) / med : NAN;
    char error_text[32] = "     -";  // no error when either side fell over
    if (std::isfinite(error))
      std::snprintf(error_text, sizeof error_text, "%+5.0f %%", 100 * error);
    char line[320];
    std::snprintf(line, sizeof line,
                  "  %-7g  %9s [%s - %s] ms  %5.2f  %9s / %s / %s ms  %s  %d of %zu  %.0f / %.0f\n",
                  c.rate, cal::format_ms(l.median).c_str(), cal::format_ms(l.low).c_str(),
                  cal::format_ms(l.high).c_str(), l.p_slo, cal::format_ms(lo).c_str(),
                  cal::format_ms(med).c_str(), cal::format_ms(hi).c_str(), error_text, inside,
                  c.measured_q.size(), l.throughput_median, median_of(c.measured_rate));
    out << line;
    json::array mq, mr;
    for (double q : c.measured_q) mq.push_back(q);
    for (double r : c.measured_rate) mr.push_back(r);
    rows.push_back({{"rate", c.rate},
                    {"predicted",
                     {{"stable", c.p.stable},
                      {"p_stable", l.p_stable},
                      {"low", std::isfinite(l.low) ? json::value(l.low) : nullptr},
                      {"median", std::isfinite(l.median) ? json::value(l.median) : nullptr},
                      {"high", std::isfinite(l.high) ? json::value(l.high) : nullptr},
                      {"p_slo", l.p_slo},
                      {"throughput", l.throughput_median}}},
                    {"measured", {{"quantile", std::move(mq)}, {"achieved", std::move(mr)}}},
                    {"inside", inside},
                    {"error", std::isfinite(error) ? json::value(error) : nullptr}});
  }
  if (!a.json.to_stdout()) std::cout << out.str();
  write_json(a.json, json::object{{"calibration", a.calibration},
                                  {"target", a.target},
                                  {"slo", slo.text()},
                                  {"repeats", a.repeats},
                                  {"step_duration", target.step_duration},
                                  {"cases", std::move(rows)}});
  set_exit_code(0);
}

}  // namespace

void add_validate_command(CLI::App& app) {
  auto a = std::make_shared<validate_args>();
  auto* sub = app.add_subcommand(
      "validate", "Measure cases live and compare them with a calibration's predictions");
  sub->add_option("--calibration", a->calibration, "Calibration file (headroom calibrate --out)")
      ->required();
  sub->add_option("--target", a->target, "URL of the service, http://host:port/path")->required();
  sub->add_option("--cases", a->cases, "Offered rates to measure, requests/s: r1,r2,...")
      ->required();
  sub->add_option("--repeats", a->repeats, "Live runs per case, interleaved")
      ->capture_default_str();
  add_duration_flag(sub, "--step-duration", a->step_duration,
                    "Measured length of each run (default: the calibration's)");
  add_duration_flag(sub, "--warmup", a->warmup,
                    "Sent before each run, not measured (default: the calibration's)");
  sub->add_option("--method", a->method, "HTTP method (default: the calibration's)");
  sub->add_option("--header", a->headers, "'Name: value' (default: the calibration's)");
  sub->add_option("--body", a->body_file, "Request body from FILE (default: the calibration's)");
  sub->add_option("--metrics", a->metrics,
                  "The service's Prometheus /metrics URL (default: the target's own /metrics if it "
                  "answers; 'none' to skip)");
  sub->add_option("--slo", a->slo, "Latency SLO, e.g. p99=60ms (default: the calibration's)");
  add_cpu_split_options(sub, a->cpus);
  add_json_option(sub, a->json, "Every case, predicted and measured");
  sub->callback([a] {
    try {
      run_validate(*a);
    } catch (const cal::load_input_error& e) {
      std::cerr << "headroom validate: " << e.what() << "\n";
      set_exit_code(2);
    } catch (const std::invalid_argument& e) {
      std::cerr << "headroom validate: " << e.what() << "\n";
      set_exit_code(2);
    } catch (const std::runtime_error& e) {
      std::cerr << "headroom validate: " << e.what() << "\n";
      set_exit_code(1);
    }
  });
}

}  // namespace headroom::cli
