// headroom demo: the whole story on this machine, from one command: embedded PostgreSQL, the
// service with Go's default pool, a live calibration, a capacity plan with a pool
// recommendation, a live check of the recommendation, and the HTML report. It runs the same
// `headroom` subcommands a user would (printed before each), so their progress shows as is,
// and it stops everything it started, also on Ctrl-C or a failure.
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "calibration_file.hpp"
#include "child_process.hpp"
#include "commands.hpp"
#include "knee_check.hpp"
#include "slo.hpp"

namespace headroom::cli {
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

struct demo_args {
  bool quick = false;
  std::string dir = ".headroom/demo";
  double target_rps = 10000;
  std::string slo = "p99=60ms";
  int redundancy = 1;
  std::string service_binary = HEADROOM_SERVICE_BINARY;
  std::string pg_script = HEADROOM_SOURCE_DIR "/scripts/pg";
  std::string body = HEADROOM_SOURCE_DIR "/tests/fixtures/age_no_match.json";
};

struct interrupted : std::runtime_error {
  interrupted() : std::runtime_error("interrupted: stopped what the demo started") {}
};

std::string self_path() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("cannot find the headroom binary (/proc/self/exe)");
  return p.string();
}

std::string quote(const std::string& s) {
  if (s.find_first_of(" '\"$\\") == std::string::npos) return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class demo_run {
 public:
  explicit demo_run(demo_args a) : a_(std::move(a)), headroom_(self_path()) {}

  ~demo_run() { stop_all(); }

  void run() {
    fs::create_directories(a_.dir);
    dir_ = fs::canonical(a_.dir);
    const int steps = 7;
    step(1, steps, "embedded PostgreSQL (scripts/pg start --dir " + (dir_ / "pg").string() + ")");
    start_postgres();
    step(2, steps, "headroom-service with Go's default pool (--max-open 0 --max-idle 2), the study's setting");
    start_service(0, 2);

    step(3, steps, a_.quick ? "headroom calibrate: a short step test of the service's pool and a warm one (--quick)"
                            : "headroom calibrate: the service's pool and a warm one, each a ramp until a guard trips, then refinement (about 8 minutes)");
    const std::string cal = (dir_ / "calibration.json").string();
    std::vector<std::string> calibrate = {
        headroom_, "calibrate", "--target", url_ + "/", "--method", "POST", "--header",
        "Content-Type: application/json", "--body", a_.body, "--service-pid",
        std::to_string(service_->pid()), "--postgres-pid", std::to_string(postmaster_pid()),
        "--slo", a_.slo, "--out", cal};
    if (a_.quick) {
      for (const char* s : {"--rates", "50,150,300", "--pool-settings", "current,warm", "--quick",
                            "--step-duration", "3s", "--warmup", "1s"})
        calibrate.push_back(s);
    } else {
      // Both of --auto's settings (the service's and a warm pool), with shorter steps than its
      // defaults so that the demo takes minutes, not half an hour.
      for (const char* s : {"--auto", "--repeats", "2", "--step-duration", "8s", "--warmup",
                            "2s", "--max-rate", "3000"})
        calibrate.push_back(s);
    }
    run_checked(calibrate);

    step(4, steps, "headroom plan: instances for " + std::to_string(static_cast<long>(a_.target_rps)) +
                       " req/s under " + a_.slo + ", N+" + std::to_string(a_.redundancy) +
                       ", the best pool setting beside the calibrated one");
    const std::string plan = (dir_ / "plan.json").string();
    std::vector<std::string> plan_cmd = {
        headroom_, "plan", "--calibration", cal, "--target-rps", number(a_.target_rps), "--slo",
        a_.slo, "--redundancy", std::to_string(a_.redundancy), "--optimize-pool", "--json", plan};
    if (a_.quick) plan_cmd.insert(plan_cmd.end(), {"--precision", "0.05"});
    const int plan_rc = run_logged(plan_cmd);
    if (!fs::exists(plan)) throw std::runtime_error("headroom plan wrote no plan (exit " + std::to_string(plan_rc) + ")");
    const json::value plan_json = read_json(plan);

    // The recommendation (or the calibrated setting when there is none), checked live at a rate
    // where the default pool's measured p99 broke the SLO: 1.25 x its measured knee.
    int max_open = 0, max_idle = 2;
    std::string setting = "the calibrated setting (no better one found)";
    if (const json::value* r = plan_json.as_object().if_contains("recommendation"); r && r->is_object()) {
      max_open = static_cast<int>(r->at("max_open").to_number<double>());
      max_idle = static_cast<int>(r->at("max_idle").to_number<double>());
      setting = "the recommendation";
    }
    const double knee = measured_knee(cal);
    const double check_rate = std::round(1.25 * knee);
    step(5, steps, "headroom validate: " + setting + " (--max-open " + std::to_string(max_open) +
                       " --max-idle " + std::to_string(max_idle) + ") live at " + number(check_rate) +
                       " req/s, 1.25 x the default pool's measured knee (" + number(knee) + " req/s)");
    start_service(max_open, max_idle);
    const std::string validation = (dir_ / "validation.json").string();
    run_checked({headroom_, "validate", "--calibration", cal, "--target", url_ + "/", "--cases",
                 number(check_rate), "--repeats", "1", "--step-duration", a_.quick ? "3s" : "10s",
                 "--warmup", a_.quick ? "1s" : "2s", "--json", validation});
    stop_service();

    step(6, steps, "headroom report: one HTML file, no network");
    const std::string report = (dir_ / "report.html").string();
    run_checked({headroom_, "report", "--calibration", cal, "--plan", plan, "--validation",
                 validation, "--out", report});

    step(7, steps, "stopping what the demo started");
    stop_all();
    summary(cal, plan_json, read_json(validation), report);
  }

 private:
  static std::string number(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
  }

  void step(int i, int n, const std::string& what) {
    check_signal();
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::cout << "\n== [" << i << "/" << n << ", " << static_cast<long>(t) << " s] " << what << "\n" << std::flush;
  }

  void check_signal() {
    if (stop_signal() != 0) throw interrupted();
  }

  int run_logged(const std::vector<std::string>& argv) {
    std::cout << "$ headroom";
    for (std::size_t i = 1; i < argv.size(); ++i) std::cout << ' ' << quote(argv[i]);
    std::cout << "\n" << std::flush;
    const int rc = run_program(argv);
    check_signal();
    return rc;
  }

  void run_checked(const std::vector<std::string>& argv) {
    if (int rc = run_logged(argv); rc != 0)
      throw std::runtime_error("headroom " + argv[1] + " failed (exit " + std::to_string(rc) + ")");
  }

  void start_postgres() {
    const std::string out = run_program_output({a_.pg_script, "start", "--dir", (dir_ / "pg").string()});
    pg_started_ = true;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("host=", 0) == 0) dsn_ = line;
    if (dsn_.empty()) throw std::runtime_error("scripts/pg printed no DSN");
    std::cout << "DSN: " << dsn_ << "\n";
  }

  long postmaster_pid() const {
    std::ifstream in(dir_ / "pg" / "data" / "postmaster.pid");
    long pid = 0;
    if (!(in >> pid)) throw std::runtime_error("cannot read PostgreSQL's postmaster.pid");
    return pid;
  }

  void start_service(int max_open, int max_idle) {
    stop_service();
    const fs::path out = dir_ / "service.out", err = dir_ / "service.err";
    service_.emplace(std::vector<std::string>{a_.service_binary, "--dsn", dsn_, "--port", "0",
                                              "--max-open", std::to_string(max_open), "--max-idle",
                                              std::to_string(max_idle), "--pool-admin"},
                     out.string(), err.string());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    const std::string marker = "listening on ";
    while (std::chrono::steady_clock::now() < deadline) {
      check_signal();
      std::ifstream in(out);
      for (std::string line; std::getline(in, line);)
        if (auto at = line.find(marker); at != std::string::npos) {
          url_ = line.substr(at + marker.size());
          url_ = url_.substr(0, url_.find(' '));
          while (!url_.empty() && url_.back() == '/') url_.pop_back();
          std::cout << "headroom-service --max-open " << max_open << " --max-idle " << max_idle
                    << " listening on " << url_ << " (pid " << service_->pid() << ")\n";
          return;
        }
      if (!service_->running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::ifstream e(err);
    std::string last, line;
    while (std::getline(e, line)) last = line;
    throw std::runtime_error("headroom-service did not start" + (last.empty() ? "" : ": " + last));
  }

  void stop_service() {
    if (service_) service_->stop(5.0);
    service_.reset();
  }

  void stop_all() {
    stop_service();
    if (pg_started_) {
      pg_started_ = false;
      try {
        run_program_output({a_.pg_script, "stop", "--dir", (dir_ / "pg").string()});
      } catch (const std::exception& e) {
        std::cerr << "headroom demo: stopping PostgreSQL: " << e.what() << "\n";
      }
    }
  }

  static json::value read_json(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    boost::system::error_code ec;
    json::value v = json::parse(ss.str(), ec);
    if (ec || !v.is_object()) throw std::runtime_error(path + ": not a JSON object");
    return v;
  }

  // The highest calibrated rate where most repeats met the SLO (its percentile over every
  // request: calibrate::measured_knee, as calibrate, plan and report compare it); the lowest rate
  // if none did.
  double measured_knee(const std::string& cal) const {
    const calibrate::calibration_file f = calibrate::read_calibration_file(cal);
    if (!f.model) return 50;
    const calibrate::knee_comparison k =
        calibrate::measured_knee(*f.model, f.steps, parse_slo(a_.slo));
    if (!k.available) return 50;
    return k.measured > 0 ? k.measured : k.rates.front().rate;
  }

  void summary(const std::string& cal, const json::value& plan, const json::value& validation,
               const std::string& report) {
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::cout << "\n== summary (" << static_cast<long>(t) << " s)\n";
    std::cout << "calibration  " << cal << "\n";
    if (const json::value* s = plan.as_object().if_contains("summary"); s && s->is_array())
      for (const json::value& line : s->as_array())
        if (line.is_string()) std::cout << "plan         " << line.as_string().c_str() << "\n";
    for (const json::value& c : validation.at("cases").as_array()) {
      const json::object& p = c.at("predicted").as_object();
      const json::array& q = c.at("measured").at("quantile").as_array();
      auto ms = [](const json::value& v) {
        return v.is_null() ? std::string("fell over") : number(std::round(10000 * v.to_number<double>()) / 10) + " ms";
      };
      std::cout << "live check   " << number(c.at("rate").to_number<double>()) << " req/s: predicted "
                << parse_slo(a_.slo).name() << " " << ms(p.at("median")) << " ["
                << ms(p.at("low")) << " - " << ms(p.at("high")) << "], measured "
                << (q.empty() ? std::string("-") : ms(q.front()))
                << (c.at("inside").to_number<double>() > 0 ? " (inside the interval)" : " (outside the interval)")
                << "\n";
    }
    std::cout << "report       " << report << "  (open it in a browser)\n";
  }

  demo_args a_;
  std::string headroom_;
  fs::path dir_;
  std::string dsn_, url_;
  bool pg_started_ = false;
  std::optional<child_process> service_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

void add_demo_command(CLI::App& app) {
  auto a = std::make_shared<demo_args>();
  CLI::App* sub = app.add_subcommand(
      "demo",
      "The main job on this machine: embedded PostgreSQL, the service with Go's default pool, a "
      "live calibration, a plan for 10,000 req/s with p99 < 60 ms and N+1, a pool "
      "recommendation checked live, and the HTML report. Stops everything it started.");
  sub->add_flag("--quick", a->quick, "A short calibration and plan (about a minute; for CI)");
  sub->add_option("--dir", a->dir, "Folder for PostgreSQL, logs, the calibration, plan and report")
      ->capture_default_str();
  sub->add_option("--target-rps", a->target_rps, "Load to plan for, requests/s")->capture_default_str();
  sub->add_option("--slo", a->slo, "Latency SLO: percentile=duration")->capture_default_str();
  sub->add_option("--redundancy", a->redundancy, "Spare instances (N+k)")->capture_default_str();
  sub->add_option("--service-binary", a->service_binary, "headroom-service to start")->capture_default_str();
  sub->add_option("--pg-script", a->pg_script, "The embedded PostgreSQL script (scripts/pg)")->capture_default_str();
  sub->add_option("--body", a->body, "Request body file (the study's {\"Age\": 300})")->capture_default_str();
  sub->callback([a] {
    record_stop_signals();
    try {
      demo_run(*a).run();
      set_exit_code(0);
    } catch (const interrupted& e) {
      std::cerr << "headroom demo: " << e.what() << "\n";
      set_exit_code(130);
    } catch (const std::exception& e) {
      std::cerr << "headroom demo: " << e.what() << "\n";
      set_exit_code(1);
    }
  });
}

}  // namespace headroom::cli
