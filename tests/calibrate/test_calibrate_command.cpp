// `headroom calibrate` and `headroom validate` end to end, against the real headroom-service and
// the CTest fixture's PostgreSQL, with short plans: the file, its reload, cross-validation,
// Ctrl-C mid-plan, validate, and bad input.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "headroom_cli.hpp"
#include "pool_settings.hpp"    // calibrate/: the service's /pool, read as calibrate reads it
#include "service_process.hpp"  // tests/service: spawns headroom-service on the fixture's PostgreSQL

using headroom::test::env;
using headroom::test::run_cli;
using headroom::test::service_process;
using headroom::test::slurp;
using headroom::test::temp_path;
namespace json = boost::json;

namespace {

std::string postmaster_pid() {
  std::ifstream in(env("HEADROOM_PG_DIR") + "/data/postmaster.pid");
  std::string pid;
  std::getline(in, pid);
  return pid;
}

// The service's own URL, the target of every command here.
std::string target_url(const service_process& s) {
  return "http://127.0.0.1:" + std::to_string(s.port()) + "/";
}

std::vector<std::string> request_flags(const service_process& s) {
  return {"--target",  target_url(s),
          "--method",  "POST",
          "--header",  "Content-Type: application/json",
          "--body",    env("HEADROOM_SOURCE_DIR") + "/tests/fixtures/age_no_match.json",
          "--postgres-pid", postmaster_pid(),
          // The guards are step_plan's unit tests' business; here a loaded test machine must not
          // trip them.
          "--abort-latency", "30s", "--max-errors", "0.5"};
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The service's GET/PUT /pool (headroom-service --pool-admin), as calibrate finds it.
std::string pool_url(const service_process& s) {
  return headroom::calibrate::pool_admin_url(target_url(s));
}

json::object read_json(const std::string& path) {
  return json::parse(slurp(path)).as_object();
}

// How many steps a calibration file being written holds: 0 until the file exists (never half a
// file: calibrate renames it into place), for a test that interrupts after some steps.
std::size_t steps_written(const std::string& path) {
  if (!std::ifstream(path)) return 0;
  try {
    return read_json(path).at("calibration").at("steps").as_array().size();
  } catch (const std::exception&) {
    return 0;  // not expected (the rename is atomic); a poll must not throw with the CLI running
  }
}

}  // namespace

TEST_CASE("a short calibration writes a file that reloads as a scenario, with cross-validation") {
  service_process service({"--max-open", "0", "--max-idle", "2"});
  const std::string out = temp_path("cal.json");
  auto o = run_cli(HEADROOM_CLI, std::vector<std::string>{"calibrate"} + request_flags(service) +
                                     std::vector<std::string>{"--rates", "40,80", "--repeats", "2",
                                                              "--step-duration", "3s", "--warmup",
                                                              "1s", "--out", out});
  INFO(o.err);
  INFO(o.out);
  REQUIRE(o.exit_code == 0);
  json::object f = read_json(out);
  CHECK(f.at("schema").as_string() == "headroom.calibration/1");
  const json::object& c = f.at("calibration").as_object();
  CHECK(c.at("fitted").as_bool());
  REQUIRE(c.at("steps").as_array().size() == 4);  // two rates, twice, interleaved
  const json::array& steps = c.at("steps").as_array();
  CHECK(steps[0].at("rate").to_number<double>() == 40);
  CHECK(steps[1].at("rate").to_number<double>() == 80);
  CHECK(steps[2].at("repeat").to_number<int>() == 1);
  // What each step measured around its measured part: the service's counters, /proc.
  for (const json::value& s : steps) {
    CHECK(s.at("window").to_number<double>() == Approx(3).margin(1));
    CHECK(s.at("service").at("requests").to_number<double>() > 0);
    CHECK(s.at("cpu").at("database").to_number<double>() > 0);
    CHECK(s.at("pool").at("max_idle").to_number<int>() == 2);
    // The kernel's CPU contention, where it keeps it (null elsewhere).
    const json::object& cpu = s.at("cpu").as_object();
    if (std::ifstream("/proc/pressure/cpu")) {
      const double pressure = cpu.at("cpu_pressure").to_number<double>();
      CHECK(pressure >= 0);
      CHECK(pressure <= 1);
    }
    if (std::ifstream("/proc/schedstat")) {
      CHECK(cpu.at("waiting").to_number<double>() >= 0);
      CHECK(cpu.at("postmaster_wait").to_number<double>() >= 0);
    }
  }
  REQUIRE(c.at("cross_validation").as_array().size() == 4);
  for (const json::value& r : c.at("cross_validation").as_array()) CHECK(r.as_object().contains("inside"));
  // The file is a scenario: predict reads it.
  auto p = run_cli(HEADROOM_CLI, {"predict", "--calibration", out, "--rate", "80", "--json"});
  INFO(p.err);
  REQUIRE(p.exit_code == 0);
  // Whether 80 req/s is stable depends on how noisy these short steps were; what must hold is
  // that the file is a scenario the model runs, with the interval for one live run.
  json::object pj = json::parse(p.out).as_object();
  CHECK(pj.at("stable").is_bool());
  REQUIRE(pj.at("live_run").is_object());
  CHECK(pj.at("live_run").at("runs").to_number<int>() >= 40);
  CHECK(pj.at("live_run").at("length").to_number<double>() == 3);
  // validate measures a case the fit never saw.
  auto v = run_cli(HEADROOM_CLI, {"validate", "--calibration", out, "--target",
                                  target_url(service),
                                  "--cases", "60", "--repeats", "1", "--step-duration", "2s",
                                  "--warmup", "1s", "--json"});
  INFO(v.err);
  REQUIRE(v.exit_code == 0);
  json::object vj = json::parse(v.out).as_object();
  REQUIRE(vj.at("cases").as_array().size() == 1);
  const json::object& row = vj.at("cases").as_array()[0].as_object();
  CHECK(row.at("measured").at("quantile").as_array().size() == 1);
  CHECK(row.at("measured").at("achieved").as_array()[0].to_number<double>() ==
        Approx(60).epsilon(0.05));
  std::remove(out.c_str());
}

TEST_CASE("Ctrl-C in the middle of a calibration leaves a valid file with the finished steps") {
  service_process service({"--max-open", "8", "--max-idle", "8"});
  const std::string out = temp_path("cal-int.json");
  std::remove(out.c_str());
  // Interrupt once the first step is in the file. What must hold: the steps written before the
  // interrupt are kept, the step in flight may be (marked as stopped), and none starts after it.
  // The count at the interrupt, not "fewer than planned": on a loaded machine the poll can find
  // more than one step written (each step's refit runs before the file is renamed into place).
  std::size_t at_interrupt = 0;
  auto first_step_written = [&] {
    at_interrupt = steps_written(out);
    return at_interrupt >= 1;
  };
  auto o =
      run_cli(HEADROOM_CLI,
              std::vector<std::string>{"calibrate"} + request_flags(service) +
                  std::vector<std::string>{"--rates", "40,50,60,70,80,90", "--repeats", "1",
                                           "--step-duration", "3s", "--warmup", "1s", "--out", out},
              0, first_step_written);
  INFO(o.err);
  CHECK(o.exit_code == 130);
  json::object f = read_json(out);
  const json::array& steps = f.at("calibration").at("steps").as_array();
  INFO("steps in the file at the interrupt: " << at_interrupt);
  REQUIRE(at_interrupt >= 1);
  CHECK(steps.size() >= at_interrupt);
  CHECK(steps.size() <= at_interrupt + 1);
  CHECK(steps.size() < 6);
  CHECK(steps[0].at("stopped_early").as_bool() == false);
  std::remove(out.c_str());
}

TEST_CASE("calibrate --pool-settings measures each setting through /pool, fits the first and "
          "sets the pool back") {
  namespace cal = headroom::calibrate;
  service_process service({"--max-open", "0", "--max-idle", "2", "--pool-admin"});
  const std::string pool = pool_url(service);
  const std::string out = temp_path("cal-two.json");
  auto o = run_cli(HEADROOM_CLI,
                   std::vector<std::string>{"calibrate"} + request_flags(service) +
                       std::vector<std::string>{"--rates", "40,80", "--pool-settings",
                                                "current,warm", "--quick", "--repeats", "1",
                                                "--step-duration", "2s", "--warmup", "1s",
                                                "--no-cross-validation", "--out", out});
  INFO(o.err);
  REQUIRE(o.exit_code == 0);
  CHECK(o.err.find("pool setting 2 of 2: max_open") != std::string::npos);
  json::object f = read_json(out);
  const json::object& c = f.at("calibration").as_object();
  const int cores = c.at("provenance").at("cores").to_number<int>();
  const std::string own = "max_open 0, max_idle 2";
  const std::string warm = "max_open " + std::to_string(2 * cores) + ", max_idle " +
                           std::to_string(2 * cores);
  CHECK(c.at("provenance").at("model_setting").as_string() == own);
  CHECK(c.at("provenance").at("pool_settings") == json::array{json::value(own), json::value(warm)});
  const json::array& steps = c.at("steps").as_array();
  REQUIRE(steps.size() == 4);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    INFO("step " << i);
    const bool second = i >= 2;
    CHECK(steps[i].at("index").to_number<int>() == static_cast<int>(i));
    CHECK(steps[i].at("label").as_string() == (second ? warm : own));
    // What the service's /metrics said during the step: the setting was applied.
    CHECK(steps[i].at("pool").at("max_open").to_number<int>() == (second ? 2 * cores : 0));
    CHECK(steps[i].at("pool").at("max_idle").to_number<int>() == (second ? 2 * cores : 2));
  }
  // The model is the service's own setting, and the service runs it again.
  CHECK(f.at("name").as_string() == "calibrated: " + own);
  CHECK(f.at("pool").at("max_open").to_number<int>() == 0);
  CHECK(f.at("pool").at("max_idle").to_number<int>() == 2);
  const auto after = cal::read_pool_limits(pool);
  REQUIRE(after);
  CHECK(*after == cal::pool_limits{0, 2});
  // --refit keeps describing the setting the calibration chose, not the last steps'.
  auto r = run_cli(HEADROOM_CLI, {"calibrate", "--refit", "--no-cross-validation", "--out", out});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(read_json(out).at("name").as_string() == "calibrated: " + own);
  // --append adds its setting to the file's list; the model is the last run's (README).
  auto more = run_cli(HEADROOM_CLI,
                      std::vector<std::string>{"calibrate"} + request_flags(service) +
                          std::vector<std::string>{"--rates", "40", "--single-setting", "--label",
                                                   "again", "--repeats", "1", "--step-duration",
                                                   "2s", "--warmup", "1s", "--no-cross-validation",
                                                   "--append", "--out", out});
  INFO(more.err);
  REQUIRE(more.exit_code == 0);
  const json::object appended = read_json(out);
  const json::object& p = appended.at("calibration").at("provenance").as_object();
  CHECK(p.at("pool_settings") ==
        json::array{json::value(own), json::value(warm), json::value("again")});
  CHECK(p.at("model_setting").as_string() == "again");
  CHECK(appended.at("calibration").at("steps").as_array().size() == 5);
  std::remove(out.c_str());
}

TEST_CASE("Ctrl-C after the last step keeps the steps and the fit without the cross-validation") {
  service_process service({"--max-open", "0", "--max-idle", "2"});
  const std::string out = temp_path("cal-cv-int.json");
  std::remove(out.c_str());
  // Once the file holds both steps, what is left is the last fit and the cross-validation.
  auto measured = [&] { return steps_written(out) == 2; };
  auto i = run_cli(HEADROOM_CLI,
                   std::vector<std::string>{"calibrate"} + request_flags(service) +
                       std::vector<std::string>{"--rates", "40,80", "--repeats", "1",
                                                "--step-duration", "2s", "--warmup", "1s",
                                                "--out", out},
                   0, measured);
  INFO(i.err);
  CHECK(i.exit_code == 130);
  const json::object f = read_json(out);
  CHECK(f.contains("phases"));  // the fitted model
  CHECK(f.at("calibration").at("steps").as_array().size() == 2);
  CHECK(f.at("calibration").at("cross_validation").as_array().empty());
  std::remove(out.c_str());
}

TEST_CASE("Ctrl-C during a calibration's second pool setting keeps its steps and sets the pool "
          "back") {
  namespace cal = headroom::calibrate;
  service_process service({"--max-open", "0", "--max-idle", "2", "--pool-admin"});
  const std::string pool = pool_url(service);
  const std::string out = temp_path("cal-two-int.json");
  {
    auto second_setting_started = [&] {
      try {
        const json::object f = read_json(out);
        const json::array& s = f.at("calibration").at("steps").as_array();
        return !s.empty() && s.back().at("label").as_string() == "max_open 3, max_idle 3";
      } catch (const std::exception&) {
        return false;
      }
    };
    std::remove(out.c_str());
    auto i = run_cli(HEADROOM_CLI,
                     std::vector<std::string>{"calibrate"} + request_flags(service) +
                         std::vector<std::string>{"--rates", "40,50,60", "--pool-settings",
                                                  "current,3/3", "--repeats", "1",
                                                  "--step-duration", "2s", "--warmup", "1s",
                                                  "--out", out},
                     0, second_setting_started);
    INFO(i.err);
    CHECK(i.exit_code == 130);
    CHECK(i.err.find("pool set back to max_open 0, max_idle 2") != std::string::npos);
    const auto after = cal::read_pool_limits(pool);
    REQUIRE(after);
    CHECK(*after == cal::pool_limits{0, 2});
    const json::object f = read_json(out);
    const json::array& s = f.at("calibration").at("steps").as_array();
    CHECK(s.size() >= 4);
    CHECK(s.size() < 6);
  }
  std::remove(out.c_str());
}

TEST_CASE("pool settings a calibration cannot measure are refused before any load, exit code 2") {
  namespace cal = headroom::calibrate;
  service_process service({"--max-open", "0", "--max-idle", "2", "--pool-admin"});
  const std::string out = temp_path("cal-two-bad.json");
  {
    auto both = run_cli(HEADROOM_CLI, std::vector<std::string>{"calibrate"} +
                                          request_flags(service) +
                                          std::vector<std::string>{"--rates", "40",
                                                                   "--pool-settings", "warm",
                                                                   "--single-setting", "--out", out});
    CHECK(both.exit_code == 2);
    CHECK(both.err.find("--single-setting and --pool-settings") != std::string::npos);
    // --refit measures nothing: the flags that shape a measurement are refused, not ignored.
    auto refit = run_cli(HEADROOM_CLI, {"calibrate", "--refit", "--quick", "--out", out});
    CHECK(refit.exit_code == 2);
    CHECK(refit.err.find("only when the generator runs") != std::string::npos);
    auto label = run_cli(HEADROOM_CLI, std::vector<std::string>{"calibrate"} +
                                           request_flags(service) +
                                           std::vector<std::string>{"--rates", "40",
                                                                    "--pool-settings", "current,warm",
                                                                    "--label", "x", "--out", out});
    CHECK(label.exit_code == 2);
    CHECK(label.err.find("--label") != std::string::npos);
    auto bad = run_cli(HEADROOM_CLI, std::vector<std::string>{"calibrate"} +
                                         request_flags(service) +
                                         std::vector<std::string>{"--rates", "40", "--pool-settings",
                                                                  "current,8", "--out", out});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("--pool-settings: '8' is not a setting") != std::string::npos);
    // "current" is the service's 0/2: the two entries would measure one setting twice.
    auto twice = run_cli(HEADROOM_CLI, std::vector<std::string>{"calibrate"} +
                                           request_flags(service) +
                                           std::vector<std::string>{"--rates", "40",
                                                                    "--pool-settings", "current,0/2",
                                                                    "--out", out});
    CHECK(twice.exit_code == 2);
    CHECK(twice.err.find("--pool-settings: entries 1 and 2 are both max_open 0, max_idle 2 on "
                         "this service ('current' is the setting it runs): list it once") !=
          std::string::npos);
    service_process closed({"--max-open", "0", "--max-idle", "2"});  // no --pool-admin
    auto no_admin = run_cli(HEADROOM_CLI, std::vector<std::string>{"calibrate"} +
                                              request_flags(closed) +
                                              std::vector<std::string>{"--rates", "40",
                                                                       "--pool-settings", "warm",
                                                                       "--out", out});
    CHECK(no_admin.exit_code == 2);
    CHECK(no_admin.err.find("--pool-admin") != std::string::npos);
    // Nothing was measured and the service's pool was never touched.
    CHECK(std::ifstream(out).fail());
    const auto untouched = cal::read_pool_limits(pool_url(service));
    REQUIRE(untouched);
    CHECK(*untouched == cal::pool_limits{0, 2});
  }
  std::remove(out.c_str());
}

// The CPUs a process may run on, as the kernel lists them ("0-1").
std::string cpus_allowed(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Cpus_allowed_list:", 0) == 0) return line.substr(line.find_last_of(" \t") + 1);
  return "";
}

TEST_CASE("calibrate --target-cpus measures the target's CPUs apart from the generator's") {
  service_process service({"--max-open", "4", "--max-idle", "4"});
  const std::string before = cpus_allowed(service.pid());
  const std::string pg_before = cpus_allowed(std::stoi(postmaster_pid()));
  if (before.find_first_of("-,") == std::string::npos) {
    WARN("one usable CPU (" << before << "): a split cannot be checked here");
    return;
  }
  const std::string last = before.substr(before.find_last_of("-,") + 1);
  const std::string out = temp_path("cal-split.json");
  auto o = run_cli(HEADROOM_CLI, std::vector<std::string>{"calibrate"} + request_flags(service) +
                                     std::vector<std::string>{
                                         "--rates", "40,80", "--repeats", "1", "--step-duration",
                                         "2s", "--warmup", "1s", "--no-cross-validation",
                                         "--target-cpus", last, "--out", out});
  INFO(o.err);
  REQUIRE(o.exit_code == 0);
  CHECK(o.err.find("on CPUs " + last) != std::string::npos);
  // Given back at the end, the service's and PostgreSQL's.
  CHECK(cpus_allowed(service.pid()) == before);
  CHECK(cpus_allowed(std::stoi(postmaster_pid())) == pg_before);
  json::object f = read_json(out);
  const json::object& c = f.at("calibration").as_object();
  CHECK(c.at("provenance").at("target_cpus").as_string() == last);
  CHECK(c.at("provenance").at("cores").to_number<int>() == 1);
  for (const json::value& s : c.at("steps").as_array()) {
    CHECK(s.at("cpu").at("target_cpus").as_string() == last);
    CHECK(s.at("cpu").at("cores").to_number<int>() == 1);
    // The service and PostgreSQL ran on that one CPU: together at most its seconds.
    const double window = s.at("window").to_number<double>();
    CHECK(s.at("cpu").at("host_busy").to_number<double>() <= window * 1.05);
  }
  // The model: one core, no generator CPU and no client station (a deployment's case).
  CHECK(f.at("cpu").at("cores").to_number<double>() == 1);
  CHECK(f.at("client").at("max_connections").to_number<int>() == 0);
  bool said = false;
  for (const json::value& line : c.at("fit").at("assumptions").as_array())
    if (std::string(line.as_string()).find("CPUs of its own") != std::string::npos) said = true;
  CHECK(said);

  auto all = run_cli(HEADROOM_CLI, std::vector<std::string>{"calibrate"} + request_flags(service) +
                                       std::vector<std::string>{"--rates", "40", "--target-cpus",
                                                                before, "--out", out});
  CHECK(all.exit_code == 2);
  CHECK(all.err == "headroom calibrate: --target-cpus takes every CPU this process may use (" +
                       before + "): none is left for the generator\n");
  auto refit = run_cli(HEADROOM_CLI, {"calibrate", "--refit", "--out", out, "--target-cpus", last});
  CHECK(refit.exit_code == 2);
  CHECK(refit.err.find("only when the generator runs") != std::string::npos);
  std::remove(out.c_str());
}

TEST_CASE("calibrate refuses bad input with one line and exit code 2") {
  const std::string out = temp_path("cal-bad.json");
  auto unreachable = run_cli(HEADROOM_CLI, {"calibrate", "--target", "http://127.0.0.1:9/",
                                            "--rates", "10", "--out", out});
  CHECK(unreachable.exit_code == 2);
  CHECK(unreachable.err.find("headroom calibrate:") == 0);
  service_process service;
  const std::string url = target_url(service);
  auto not_metrics = run_cli(HEADROOM_CLI, {"calibrate", "--target", url, "--metrics", url + "healthz",
                                            "--rates", "10", "--out", out});
  CHECK(not_metrics.exit_code == 2);
  CHECK(not_metrics.err.find("not Prometheus text") != std::string::npos);
  auto no_plan = run_cli(HEADROOM_CLI, {"calibrate", "--target", url, "--out", out});
  CHECK(no_plan.exit_code == 2);
  CHECK(no_plan.err.find("--rates") != std::string::npos);
  auto over_max = run_cli(HEADROOM_CLI, {"calibrate", "--target", url, "--rates", "100,5000",
                                         "--max-rate", "3000", "--out", out});
  CHECK(over_max.exit_code == 2);
  CHECK(over_max.err.find("--max-rate") != std::string::npos);
  // A truncated or foreign calibration file.
  {
    std::ofstream bad(out);
    bad << R"({"schema": "headroom.calibration/1", "calibration": {"steps": [)";
  }
  auto truncated = run_cli(HEADROOM_CLI, {"validate", "--calibration", out, "--target", url,
                                          "--cases", "10"});
  CHECK(truncated.exit_code == 2);
  CHECK(truncated.err.find("not JSON") != std::string::npos);
  {
    std::ofstream foreign(out);
    foreign << R"({"schema": "headroom.scenario/1"})";
  }
  auto foreign = run_cli(HEADROOM_CLI, {"validate", "--calibration", out, "--target", url,
                                        "--cases", "10"});
  CHECK(foreign.exit_code == 2);
  CHECK(foreign.err.find("not a calibration file") != std::string::npos);
  std::remove(out.c_str());
}
