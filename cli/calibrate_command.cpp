// headroom calibrate: measure a live deployment step by step (calibrate/step_plan,
// calibration_runner), or read its history from Prometheus (--prometheus: passive_calibration),
// fit the model to it (calibration_fit) and write the calibration file, rewritten after every
// step so Ctrl-C or a crash keeps what was measured.
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

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
#include "passive_calibration.hpp"
#include "pool_settings.hpp"
#include "proc_cpu.hpp"
#include "request_options.hpp"
#include "slo.hpp"

namespace headroom::cli {
namespace cal = headroom::calibrate;

namespace {

struct calibrate_args {
  request_args request;
  cpu_split_args cpus;
  std::string metrics;  // "" = the target's /metrics if it answers; "none" = do not scrape
  std::string slo = "p99=60ms";
  std::string out;
  std::string rates;
  bool automatic = false;
  bool quick = false;
  // Unset: 20 s and 5 s, or 5 s and 2 s with --quick; 3 repeats for --auto, 2 otherwise.
  std::optional<double> step_duration, warmup;
  std::optional<int> repeats;
  std::string pool_settings;  // --pool-settings; "" = --auto's two (or the service's alone)
  bool single_setting = false;
  double max_rate = 3000;
  double max_errors = 0.01;
  std::optional<double> abort_latency;
  std::string label;
  bool append = false;
  bool exclude_generator = false;
  int service_pid = 0, postgres_pid = 0;
  bool no_cross_validation = false;
  bool refit = false;
  // Passive: steps from Prometheus history instead of the generator.
  std::string prometheus, job = "headroom-service", node_job = "node", from, to = "now";
  double step = 15, tolerance = 0.10;
  std::optional<double> min_period;
  std::string prior;  // passive: an earlier active calibration for what history cannot give
  json_output json;
};

std::string fmt(double x, int digits = 4) {
  std::ostringstream os;
  os.precision(digits);
  os << x;
  return os.str();
}

// Ctrl-C or SIGTERM stop the step in flight (it is kept if it measured anything, marked as
// stopped); a second one quits at once. A thread of its own, so a step's generator needs none.
class interrupt_watch {
 public:
  explicit interrupt_watch(cal::calibration_runner& runner) : signals_(io_, SIGINT, SIGTERM) {
    signals_.async_wait([this, &runner](const boost::system::error_code& ec, int) {
      if (ec) return;
      interrupted_ = true;
      std::fprintf(stderr,
                   "\nheadroom calibrate: stopping: the steps measured so far are kept "
                   "(Ctrl-C again to quit now)\n");
      runner.request_stop();
      signals_.async_wait([](const boost::system::error_code& e, int) {
        if (!e) std::_Exit(130);
      });
    });
    thread_ = std::thread([this] { io_.run(); });
  }
  ~interrupt_watch() {
    io_.stop();
    thread_.join();
  }
  bool interrupted() const { return interrupted_; }

 private:
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  std::atomic<bool> interrupted_{false};
  std::thread thread_;
};

void find_local_processes(const calibrate_args& a, const cal::http_target& t,
                          cal::calibration_target& target) {
  target.service_pid = a.service_pid;
  target.postmaster_pid = a.postgres_pid;
  if (!cal::is_local_host(t.host)) return;
  if (target.service_pid == 0)
    target.service_pid = cal::listening_pid(static_cast<unsigned short>(std::stoi(t.port)));
  if (target.postmaster_pid == 0) {
    auto pms = cal::postmaster_pids();
    if (pms.size() == 1) {
      target.postmaster_pid = pms.front();
    } else if (pms.size() > 1) {
      std::cerr << "headroom calibrate: " << pms.size()
                << " PostgreSQL servers run here; give --postgres-pid to measure the database's "
                   "CPU\n";
    }
  }
  if (target.service_pid == 0)
    std::cerr << "headroom calibrate: cannot find the process listening on port " << t.port
              << " (give --service-pid): no service CPU from /proc\n";
}

std::string time_left(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d:%02d", static_cast<int>(seconds) / 60,
                static_cast<int>(seconds) % 60);
  return buf;
}

// What the fit is told, the same for every fit a command makes (after each step, cross-
// validation, --refit).
cal::calibration_fit_options fit_options(const calibrate_args& a, const std::string& label,
                                         const latency_slo& slo) {
  cal::calibration_fit_options fo;
  fo.label = label;
  fo.exclude_generator = a.exclude_generator;
  fo.slo_quantile = slo.quantile;
  fo.slo_latency = slo.latency;
  return fo;
}

bool is_passive(const cal::calibration_file& file) {
  const auto source = file.provenance.find("source");
  return source != file.provenance.end() && source->value().is_string() &&
         source->value().get_string() == "prometheus";
}

// --prior FILE: an active calibration's model, for the fork and the variability a passive one
// cannot measure. Its problems are the flag's: one line naming it.
void use_prior(cal::calibration_fit_options& fo, const std::string& path) {
  if (path.empty()) return;
  cal::calibration_file prior;
  try {
    prior = cal::read_calibration_file(path);
  } catch (const std::exception& e) {
    throw cal::load_input_error(std::string("--prior: ") + e.what());
  }
  if (is_passive(prior))
    throw cal::load_input_error("--prior: " + path +
                                " is a passive calibration (from Prometheus): give an active one, "
                                "whose steps measured the fork and were repeated");
  if (!prior.model) throw cal::load_input_error("--prior: " + path + " has no fitted model");
  fo.prior = *prior.model;
  fo.prior_name = path;
}

// A passive calibration's fit report lists first what history could not give (kept in the
// provenance, so a refit says it again).
void with_not_measured(cal::calibration_file& file) {
  boost::json::array lines;
  if (auto it = file.provenance.find("not_measured");
      it != file.provenance.end() && it->value().is_array())
    lines = it->value().get_array();
  if (auto it = file.fit.find("not_fitted"); it != file.fit.end() && it->value().is_array())
    for (const auto& v : it->value().get_array()) lines.push_back(v);
  file.fit["not_fitted"] = std::move(lines);
}

// --refit: the steps already in the file, fitted again with this Headroom's fit; no load sent.
void refit(const calibrate_args& a, const latency_slo& slo) {
  cal::calibration_file file = cal::read_calibration_file(a.out);
  if (file.steps.empty()) throw std::invalid_argument(a.out + ": no measured step to fit");
  // The setting the model describes: --label, else the one the calibration chose.
  std::string label = a.label;
  if (auto it = file.provenance.find("model_setting");
      label.empty() && it != file.provenance.end() && it->value().is_string())
    label = std::string(it->value().get_string());
  cal::calibration_fit_options fo = fit_options(a, label, slo);
  const bool passive = is_passive(file);
  if (passive) fo.exclude_generator = true;  // as when it was made: no generator in history
  // The prior it was made with, unless --prior names another.
  std::string prior = a.prior;
  if (auto it = file.provenance.find("prior");
      prior.empty() && passive && it != file.provenance.end() && it->value().is_string())
    prior = std::string(it->value().get_string());
  if (!passive && !a.prior.empty())
    throw cal::load_input_error("--prior: " + a.out +
                                " is an active calibration: it measured the fork and its repeats");
  if (passive) use_prior(fo, prior);
  if (passive && !prior.empty()) file.provenance["prior"] = prior;
  cal::calibration_fit fit = cal::fit_calibration(file.steps, fo);
  file.model = fit.model;
  file.fit = fit.report;
  if (passive) with_not_measured(file);
  file.provenance["slo"] = a.slo;
  if (!a.no_cross_validation) file.cross_validation = cal::cross_validate(file.steps, fo, slo);
  cal::write_calibration_file(a.out, file);
  std::ostream& text = a.json.to_stdout() ? std::cerr : std::cout;
  text << cal::calibration_summary(file, slo) << "refitted " << a.out << "\n";
  write_json(a.json, cal::to_json(file));
  set_exit_code(0);
}

// --prometheus: the steady periods of a window of history become the steps, fitted as an
// active calibration's. Nothing is sent to the service.
// Before any measurement, so that a typo in --out or --json costs nothing: both can be written.
void check_outputs(const calibrate_args& a) {
  {
    std::ofstream probe(a.out + ".tmp");
    if (!probe) throw cal::load_input_error("cannot write " + a.out);
  }
  std::remove((a.out + ".tmp").c_str());
  try {
    check_writable(a.json);
  } catch (const std::runtime_error& e) {
    throw cal::load_input_error(std::string("--json: ") + e.what());
  }
}

void run_passive(const calibrate_args& a, const latency_slo& slo) {
  if (a.from.empty()) throw cal::load_input_error("--prometheus needs --from (e.g. now-30m)");
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  cal::passive_options po;
  po.job = a.job;
  po.node_job = a.node_job;
  try {
    po.from = cal::parse_time_point(a.from, now);
    po.to = cal::parse_time_point(a.to, now);
  } catch (const std::invalid_argument& e) {
    throw cal::load_input_error(std::string("--from/--to: ") + e.what());
  }
  po.step = a.step;
  po.tolerance = a.tolerance;
  if (!(a.tolerance > 0 && a.tolerance < 1))
    throw cal::load_input_error("--tolerance: must be between 0 and 1 (0.1 = +-10 %)");
  if (a.min_period) po.min_period = *a.min_period;
  cal::calibration_fit_options fo = fit_options(a, a.label, slo);
  fo.exclude_generator = true;  // no generator in history: the model plans for production
  use_prior(fo, a.prior);
  check_outputs(a);

  const auto started = std::chrono::steady_clock::now();
  const cal::prometheus_client prometheus(a.prometheus);
  cal::passive_reading reading = cal::read_passive_steps(prometheus, po);
  for (const cal::calibration_step& s : reading.steps)
    std::fprintf(stderr, "steady period %zu: %s s from %s, %s req/s, %s\n", s.index + 1,
                 fmt(s.window).c_str(), s.started_at.c_str(), fmt(s.rate).c_str(), s.label.c_str());

  cal::calibration_file file;
  file.steps = std::move(reading.steps);
  double longest = 0;
  for (const cal::calibration_step& s : file.steps) longest = std::max(longest, s.window);
  file.provenance["source"] = "prometheus";
  file.provenance["prometheus"] = prometheus.base_url();
  file.provenance["job"] = a.job;
  file.provenance["node_job"] = a.node_job;
  file.provenance["from"] = a.from;
  file.provenance["to"] = a.to;
  file.provenance["from_unix"] = po.from;
  file.provenance["to_unix"] = po.to;
  file.provenance["step"] = po.step;
  file.provenance["tolerance"] = po.tolerance;
  file.provenance["min_period"] = po.min_period > 0 ? po.min_period : 3 * po.step;
  file.provenance["instances"] = reading.instances;
  file.provenance["slo"] = a.slo;  // as given: validate reads it back
  file.provenance["step_duration"] = longest;
  file.provenance["warmup"] = 0;
  if (!a.prior.empty()) file.provenance["prior"] = a.prior;
  boost::json::array not_measured;
  for (const std::string& l : reading.not_measured) {
    // What the prior gives instead is said on the same line (and among the fit's assumptions).
    const bool from_prior = !a.prior.empty() && (l.rfind("the postmaster's fork", 0) == 0 ||
                                                 l.rfind("repeats:", 0) == 0);
    not_measured.push_back(
        boost::json::value(from_prior ? l + "; taken from --prior " + a.prior : l));
  }
  file.provenance["not_measured"] = std::move(not_measured);

  cal::calibration_fit fit = cal::fit_calibration(file.steps, fo);
  file.model = fit.model;
  file.fit = fit.report;
  with_not_measured(file);
  cal::write_calibration_file(a.out, file);
  if (!a.no_cross_validation) {
    file.cross_validation = cal::cross_validate(file.steps, fo, slo);
    cal::write_calibration_file(a.out, file);
  }
  std::ostream& text = a.json.to_stdout() ? std::cerr : std::cout;
  text << cal::calibration_summary(file, slo);
  text << "wrote " << a.out << " from " << file.steps.size() << " steady periods of "
       << prometheus.base_url() << " job " << a.job << " ("
       << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
       << " s)\n";
  write_json(a.json, cal::to_json(file));
  set_exit_code(0);
}

void run_calibrate(const calibrate_args& a) {
  const latency_slo slo = parse_slo(a.slo);
  if (!a.prior.empty() && a.prometheus.empty() && !a.refit)
    throw cal::load_input_error(
        "--prior: only for a passive calibration (--prometheus), or --refit of one: an active "
        "one measures the fork and its repeats itself");
  if ((a.refit || !a.prometheus.empty()) &&
      !(a.cpus.generator_cpus.empty() && a.cpus.target_cpus.empty()))
    throw cal::load_input_error(
        "--generator-cpus/--target-cpus: only when the generator runs (not --refit or "
        "--prometheus)");
  if ((a.refit || !a.prometheus.empty()) &&
      (a.quick || a.single_setting || !a.pool_settings.empty()))
    throw cal::load_input_error(
        "--quick/--single-setting/--pool-settings: only when the generator runs (not --refit or "
        "--prometheus)");
  if (a.refit) return refit(a, slo);
  if (!a.prometheus.empty()) return run_passive(a, slo);
  if (a.single_setting && !a.pool_settings.empty())
    throw cal::load_input_error("--single-setting and --pool-settings: give one");
  const double step_duration = a.step_duration.value_or(a.quick ? 5 : 20);
  const double warmup = a.warmup.value_or(a.quick ? 2 : 5);
  cal::step_plan_options po;
  if (!a.rates.empty()) po.rates = cal::parse_rate_list(a.rates);
  if (po.rates.empty() && !a.automatic)
    throw cal::load_input_error("give --rates r1,r2,... or --auto");
  if (!po.rates.empty() && a.automatic) throw cal::load_input_error("--rates and --auto: give one");
  po.repeats = a.repeats.value_or(a.automatic && !a.quick ? 3 : 2);
  po.max_rate = a.max_rate;
  po.max_errors = a.max_errors;
  po.slo_latency = slo.latency;
  po.slo_quantile = slo.quantile;
  po.abort_latency = a.abort_latency ? *a.abort_latency : 10 * slo.latency;
  { const cal::step_plan check(po); }  // now, before any load: invalid_argument names the option
  if (!(step_duration > 0)) throw cal::load_input_error("--step-duration: must be > 0");
  if (warmup < 0) throw cal::load_input_error("--warmup: must be >= 0");

  cal::calibration_target target;
  target.load = build_request(a.request);
  target.step_duration = step_duration;
  target.warmup = warmup;
  const cal::http_target t = cal::parse_target_url(target.load.targets.front());
  {
    cal::open_loop_generator probe(target.load);
    probe.check_reachable();
  }
  target.metrics_url =
      metrics_url_for(a.metrics, target.load.targets.front(), "headroom calibrate");
  find_local_processes(a, t, target);
  const cpu_split_guard pinned(a.cpus, target.service_pid, target.postmaster_pid,
                               "headroom calibrate");
  target.target_cpus = pinned.split().target;
  const int cores = pinned.split().apart()
                        ? static_cast<int>(pinned.split().target.size())
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  // The pool settings to measure, in order; the model describes the first.
  std::vector<std::optional<cal::pool_limits>> wanted;  // nullopt: the service's own setting
  if (!a.pool_settings.empty()) wanted = cal::parse_pool_settings(a.pool_settings, cores);
  const std::string pool_url = cal::pool_admin_url(target.load.targets.front());
  std::optional<cal::pool_limits> original;  // the service's setting, when /pool tells it
  if (!a.single_setting && (a.automatic || !wanted.empty())) {
    bool answered = true;  // false: /pool answered an error, already said
    try {
      original = cal::read_pool_limits(pool_url);
    } catch (const std::runtime_error& e) {
      answered = false;
      if (!wanted.empty()) throw cal::load_input_error(std::string("--pool-settings: ") + e.what());
      // --auto's second setting is a bonus: a /pool that will not say (401, 500) costs it, not
      // the calibration.
      std::fprintf(stderr, "headroom calibrate: %s; only the service's own setting is measured\n",
                   e.what());
    }
    if (!original && !wanted.empty())
      throw cal::load_input_error("--pool-settings: " + pool_url +
                                  " is not found: start the service with --pool-admin to let a "
                                  "calibration change its pool");
    if (!original && answered)
      std::fprintf(stderr,
                   "headroom calibrate: the service does not let its pool be changed (%s is not "
                   "found: no --pool-admin), so only its own setting is measured\n",
                   pool_url.c_str());
    // Two entries that come to one setting once "current" is read (current,0/2 on a 0/2
    // service) would measure it twice under two names.
    for (std::size_t i = 0; original && i < wanted.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (cal::as_applied(wanted[i].value_or(*original)) ==
            cal::as_applied(wanted[j].value_or(*original)))
          throw cal::load_input_error(
              "--pool-settings: entries " + std::to_string(j + 1) + " and " +
              std::to_string(i + 1) + " are both " +
              cal::pool_label(cal::as_applied(wanted[i].value_or(*original))) +
              " on this service ('current' is the setting it runs): list it once");
    if (original && wanted.empty()) {
      wanted = {std::nullopt, cal::warm_pool(cores)};
      if (*original == cal::warm_pool(cores)) {
        std::fprintf(stderr,
                     "headroom calibrate: the service already runs a warm pool (%s), so only "
                     "its own setting is measured\n",
                     cal::pool_label(*original).c_str());
        wanted.pop_back();
      }
    }
  }
  if (wanted.empty()) wanted = {std::nullopt};
  if (wanted.size() > 1 && !a.label.empty())
    throw cal::load_input_error(
        "--label: names one setting's steps; with several, each is named by its pool setting "
        "(give --single-setting to measure one)");

  cal::calibration_file file;
  if (a.append) {
    std::ifstream exists(a.out);
    if (exists) file = cal::read_calibration_file(a.out);
  }
  check_outputs(a);
  file.provenance["target"] = target.load.targets.front();
  file.provenance["method"] = target.load.method;
  file.provenance["body"] = target.load.body;
  boost::json::array headers;
  for (auto& [k, v] : target.load.headers) headers.push_back(boost::json::value(k + ": " + v));
  file.provenance["headers"] = std::move(headers);
  file.provenance["metrics"] = target.metrics_url;
  file.provenance["service_pid_found"] = target.service_pid > 0;
  file.provenance["postgres_pid_found"] = target.postmaster_pid > 0;
  file.provenance["slo"] = a.slo;  // as given: validate reads it back
  file.provenance["step_duration"] = step_duration;
  file.provenance["warmup"] = warmup;
  file.provenance["cores"] = cores;
  if (pinned.split().apart()) {
    file.provenance["generator_cpus"] = cal::cpu_list_text(pinned.split().generator);
    file.provenance["target_cpus"] = cal::cpu_list_text(pinned.split().target);
  }

  cal::calibration_runner runner(target);
  interrupt_watch watch(runner);
  const bool tty = isatty(STDERR_FILENO) == 1;
  const auto started = std::chrono::steady_clock::now();
  // The pool is set back to the service's own setting however this ends (a failure, Ctrl-C);
  // only a second Ctrl-C, which quits at once, leaves it as it was last set.
  struct restore_pool {
    std::string url;
    std::optional<cal::pool_limits> original;
    bool changed = false;  // set before a PUT: one whose answer was lost may still have applied
    void now() {
      if (!changed || !original) return;
      changed = false;
      try {
        cal::apply_pool_limits(url, *original);
        std::fprintf(stderr, "pool set back to %s\n", cal::pool_label(*original).c_str());
      } catch (const std::exception& e) {
        std::fprintf(stderr,
                     "headroom calibrate: %s; set it back by hand: curl -X PUT -d "
                     "'{\"max_open\": %d, \"max_idle\": %d}' %s\n",
                     e.what(), original->max_open, original->max_idle, url.c_str());
      }
    }
    ~restore_pool() { now(); }
  } restore{pool_url, original};

  std::string model_label;  // the first setting's: what the fits describe
  boost::json::array measured_settings;  // --append: the file's settings, then this run's
  if (auto it = file.provenance.find("pool_settings");
      a.append && it != file.provenance.end() && it->value().is_array())
    measured_settings = it->value().get_array();
  auto refit_and_save = [&] {
    if (model_label.empty()) return;  // nothing measured yet
    cal::calibration_fit_options fo = fit_options(a, model_label, slo);
    try {
      cal::calibration_fit fit = cal::fit_calibration(file.steps, fo);
      file.model = fit.model;
      file.fit = fit.report;
    } catch (const std::invalid_argument& e) {
      file.model.reset();
      file.fit = {{"error", e.what()}};
    }
    cal::write_calibration_file(a.out, file);
  };

  const double per_step = step_duration + warmup;
  for (std::size_t k = 0; k < wanted.size() && !watch.interrupted(); ++k) {
    std::string label = a.label;
    if (wanted[k]) {
      restore.changed = true;
      const std::string applied = cal::pool_label(cal::apply_pool_limits(pool_url, *wanted[k]));
      if (label.empty()) label = applied;
    } else if (original) {
      if (restore.changed) cal::apply_pool_limits(pool_url, *original);  // fails loudly here
      restore.changed = false;
      if (label.empty()) label = cal::pool_label(*original);
    }
    if (wanted.size() > 1)
      std::fprintf(stderr, "pool setting %zu of %zu: %s%s\n", k + 1, wanted.size(), label.c_str(),
                   wanted[k] ? "" : " (the service's own)");
    // Step numbers go on from the file's (--append, the settings before this one).
    std::size_t first_index = 0;
    for (const cal::calibration_step& s : file.steps)
      first_index = std::max(first_index, s.index + 1);
    cal::step_plan plan(po);
    while (auto step = plan.next()) {
      if (watch.interrupted()) break;
      const std::size_t n = plan.planned();
      // What is left: this setting's steps, then as many again for each setting after it.
      const double left = per_step * static_cast<double>(n - step->index +
                                                         n * (wanted.size() - k - 1));
      std::fprintf(
          stderr, "step %zu of %s%zu: %s req/s%s, %s s ... (about %s left)\n", step->index + 1,
          plan.stop_reason().empty() ? "~" : "", n, fmt(step->rate).c_str(),
          step->repeat > 0 ? (" (repeat " + std::to_string(step->repeat + 1) + ")").c_str() : "",
          fmt(per_step).c_str(), time_left(left).c_str());
      cal::planned_step ps = *step;
      ps.index = first_index + step->index;
      cal::calibration_step s = runner.run(ps, label, [&](const cal::step_progress& p) {
        if (tty)
          std::fprintf(stderr, "\r  %5.1f s  p99 %8.2f ms  failed %5.2f %%   ", p.elapsed,
                       p.p99 * 1e3, 100 * p.failed_fraction);
        return plan.abort_reason(p.p99, p.failed_fraction);
      });
      if (tty) std::fprintf(stderr, "\r");
      if (label.empty())
        label = s.pool ? cal::pool_label({s.pool->max_open, s.pool->max_idle})
                       : "run " + std::to_string(first_index / 1000 + 1);
      if (model_label.empty()) {
        model_label = label;
        file.provenance["model_setting"] = model_label;
      }
      s.label = label;
      const double measured = s.load.duration > 0 ? s.load.duration : step_duration;
      cal::step_outcome o;
      o.rate = s.rate;
      o.achieved = static_cast<double>(s.load.completed) / measured;
      o.latency_quantile = s.load.latency_all.percentile(100 * slo.quantile);
      o.failed_fraction = s.load.scheduled > 0
                              ? static_cast<double>(s.load.failed() + s.load.unsent) /
                                    static_cast<double>(s.load.scheduled)
                              : 0;
      o.stopped_early = s.stopped_early;
      std::fprintf(stderr, "  achieved %s req/s, %s %s ms, failed %s %%%s\n",
                   fmt(o.achieved).c_str(), slo.name().c_str(),
                   fmt(o.latency_quantile * 1e3).c_str(), fmt(100 * o.failed_fraction, 3).c_str(),
                   s.stopped_early ? (": stopped: " + s.stop_reason).c_str() : "");
      if (s.window > 0 || !s.stopped_early) file.steps.push_back(std::move(s));
      plan.record(o);
      refit_and_save();
    }
    if (!plan.stop_reason().empty())
      std::fprintf(stderr, "ramp ended %s\n", plan.stop_reason().c_str());
    if (!label.empty() && std::find(measured_settings.begin(), measured_settings.end(),
                                    boost::json::value(label)) == measured_settings.end()) {
      measured_settings.push_back(boost::json::value(label));
      file.provenance["pool_settings"] = measured_settings;
    }
  }
  restore.now();  // before the fit and cross-validation: minutes the service need not run it
  refit_and_save();
  if (!file.model) {
    std::cerr << "headroom calibrate: the fit failed ("
              << (model_label.empty() ? std::string("no step measured")
                                      : boost::json::serialize(file.fit))
              << "); the measured steps are in " << a.out << "\n";
    if (model_label.empty()) cal::write_calibration_file(a.out, file);
    set_exit_code(watch.interrupted() ? 130 : 1);
    return;
  }
  if (!a.no_cross_validation && !watch.interrupted()) {
    cal::calibration_fit_options fo = fit_options(a, model_label, slo);
    const auto cv_started = std::chrono::steady_clock::now();
    struct stopped {};  // Ctrl-C during the cross-validation: keep the fit, skip the rest
    try {
      file.cross_validation =
          cal::cross_validate(file.steps, fo, slo, [&](std::size_t i, std::size_t n) {
            if (watch.interrupted()) throw stopped{};
            const double elapsed =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - cv_started)
                    .count();
            const std::string eta =
                i > 0
                    ? ", about " +
                          time_left(elapsed / static_cast<double>(i) * static_cast<double>(n - i)) +
                          " left"
                    : "";
            if (tty)
              std::fprintf(stderr, "\rcross-validation: step %zu of %zu%s   ", i + 1, n,
                           eta.c_str());
            else if (i == 0 || (10 * i) / n != (10 * (i - 1)) / n)  // a log: a line every tenth
              std::fprintf(stderr,
                           "cross-validation: step %zu of %zu (each refitted without it)%s\n",
                           i + 1, n, eta.c_str());
          });
    } catch (const stopped&) {
      std::fprintf(stderr,
                   "\ncross-validation stopped: %s has the steps and the fit, without it "
                   "(headroom calibrate --refit --out %s to run it)\n",
                   a.out.c_str(), a.out.c_str());
      set_exit_code(130);
      return;
    }
    if (tty) std::fprintf(stderr, "\r");
    cal::write_calibration_file(a.out, file);
  }
  // The summary is the text report; with --json on stdout it goes to stderr instead.
  std::ostream& text = a.json.to_stdout() ? std::cerr : std::cout;
  text << cal::calibration_summary(file, slo);
  text << "wrote " << a.out << " ("
       << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
       << " s)\n";
  write_json(a.json, cal::to_json(file));
  set_exit_code(watch.interrupted() ? 130 : 0);
}

}  // namespace

void add_calibrate_command(CLI::App& app) {
  auto a = std::make_shared<calibrate_args>();
  auto* sub = app.add_subcommand(
      "calibrate",
      "Measure a live service step by step and fit the model to it (writes a calibration file)");
  add_request_options(sub, a->request);
  add_cpu_split_options(sub, a->cpus);
  sub->add_option("--metrics", a->metrics,
                  "The service's Prometheus /metrics URL (default: the target's own /metrics if it "
                  "answers; 'none' to skip)");
  sub->add_option("--slo", a->slo, "Latency SLO: percentile=duration, e.g. p99=60ms")
      ->capture_default_str();
  sub->add_option("--out", a->out, "Calibration file to write (JSON)")->required();
  sub->add_option("--rates", a->rates, "Step rates in requests/s, e.g. 50,500,1000,2000,3000");
  sub->add_flag("--auto", a->automatic,
                "Geometric ramp from 50 req/s until the SLO, error or saturation guard trips, "
                "then refinement below it");
  add_duration_flag(sub, "--step-duration", a->step_duration,
                    "Measured length of each step (default 20s; 5s with --quick)");
  add_duration_flag(sub, "--warmup", a->warmup,
                    "Sent before each step at its rate, not measured (default 5s; 2s with "
                    "--quick)");
  sub->add_option("--repeats", a->repeats,
                  "Measurements of every rate, interleaved (default 3 with --auto, 2 with --rates "
                  "or --quick)");
  sub->add_flag("--quick", a->quick,
                "Short steps for a first look or a test: 5s steps, 2s warm-up, 2 repeats (the "
                "flags above override each)");
  sub->add_option("--pool-settings", a->pool_settings,
                  "Pool settings to measure in turn, changed through the service's /pool "
                  "(headroom-service --pool-admin): current (the one it runs), warm (2 x cores "
                  "for both) or OPEN/IDLE, e.g. current,8/8; the model describes the first, and "
                  "the pool is set back at the end. Default with --auto: current and warm when "
                  "/pool answers");
  sub->add_flag("--single-setting", a->single_setting,
                "Measure only the setting the service runs (no /pool change)");
  sub->add_option("--max-rate", a->max_rate, "Never send more requests/s than this")
      ->capture_default_str();
  sub->add_option("--max-errors", a->max_errors,
                  "Failed fraction (0.01 = 1 %) that stops a step and ends the ramp")
      ->capture_default_str();
  add_duration_flag(sub, "--abort-latency", a->abort_latency,
                    "SLO percentile that stops a step and ends the ramp (default 10 x the SLO)");
  sub->add_option("--label", a->label,
                  "Name of this run in the file (default: the pool setting the service reports)");
  sub->add_flag("--append", a->append,
                "Add the steps to --out's (another pool setting); the fit uses them all");
  sub->add_flag("--exclude-generator", a->exclude_generator,
                "Plan for production: leave the generator's CPU and client out of the model");
  sub->add_option("--service-pid", a->service_pid,
                  "The service's pid (default: the process listening on the target's port)");
  sub->add_option("--postgres-pid", a->postgres_pid,
                  "PostgreSQL's postmaster pid (default: the only one running here)");
  sub->add_flag("--refit", a->refit,
                "Fit the steps already in --out again (a newer Headroom, another --label), "
                "sending no load");
  sub->add_flag("--no-cross-validation", a->no_cross_validation,
                "Skip predicting each step with it left out of the fit");
  auto* prometheus =
      sub->add_option("--prometheus", a->prometheus,
                      "Passive: calibrate from this Prometheus's history (http://host:port) "
                      "instead of sending load; excludes --target");
  prometheus->excludes(sub->get_option("--target"));
  sub->get_option("--target")->excludes(prometheus);
  sub->add_option("--job", a->job, "Passive: the service's scrape job")->capture_default_str();
  sub->add_option("--node-job", a->node_job, "Passive: node_exporter's scrape job")
      ->capture_default_str();
  sub->add_option("--prior", a->prior,
                  "Passive: an earlier active calibration of the same deployment; history "
                  "cannot give the postmaster's fork (no per-process CPU) or the run-to-run "
                  "variability (no repeats), so they are taken from it and said so")
      ->check(CLI::ExistingFile);
  sub->add_option("--from", a->from,
                  "Passive: start of the window: now-30m, unix seconds or 2026-11-29T08:00:00Z");
  sub->add_option("--to", a->to, "Passive: end of the window (same forms)")->capture_default_str();
  add_duration_flag(sub, "--step", a->step,
                    "Passive: resolution of the rate series that is cut into steady periods");
  sub->add_option("--tolerance", a->tolerance,
                  "Passive: a steady period's rate stays within this share of its mean")
      ->capture_default_str();
  add_duration_flag(sub, "--min-period", a->min_period,
                    "Passive: shortest steady period kept (default 3 x --step)");
  add_json_option(sub, a->json, "The calibration file");
  sub->callback([a] {
    try {
      run_calibrate(*a);
    } catch (const cal::prometheus_error& e) {
      std::cerr << "headroom calibrate: " << e.what() << "\n";
      set_exit_code(2);
    } catch (const cal::load_input_error& e) {
      std::cerr << "headroom calibrate: " << e.what() << "\n";
      set_exit_code(2);
    } catch (const std::invalid_argument& e) {
      std::cerr << "headroom calibrate: " << e.what() << "\n";
      set_exit_code(2);
    } catch (const std::runtime_error& e) {
      std::cerr << "headroom calibrate: " << e.what() << "\n";
      set_exit_code(1);
    }
  });
}

}  // namespace headroom::cli
