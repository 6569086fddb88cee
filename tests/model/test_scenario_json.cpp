// Scenario files: the examples parse, round-trip, defaults are the service's, every kind of
// mistake names its field; predictions serialise with the documented fields (null when unstable).
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <string>

#include "prediction_report.hpp"
#include "scenario_json.hpp"
#include "service_defaults.hpp"

using namespace headroom;

namespace {
std::string error_of(const std::string& text) {
  try {
    scenario s = scenario_from_json(boost::json::parse(text));
    validate(s);
  } catch (const scenario_error& e) {
    return e.what();
  }
  return "";
}
const std::string dir = HEADROOM_SCENARIO_DIR;
}  // namespace

TEST_CASE("the example scenarios parse and validate") {
  for (const char* f : {"study_default_pool.json", "study_tuned_pool.json",
                        "study_random_waiters.json", "mm1.json"}) {
    INFO(f);
    scenario s = load_scenario_file(dir + "/" + f);
    CHECK_NOTHROW(validate(s));
  }
  scenario t = load_scenario_file(dir + "/study_tuned_pool.json");
  CHECK(t.pool.max_open == 8);
  CHECK(t.pool.max_idle == 8);
  CHECK(t.query_db_cpu.mean() == Approx(0.0005));
  CHECK(t.network_rtt.mean() == Approx(0.0001));
}

TEST_CASE("a scenario written as JSON reads back the same") {
  scenario s = load_scenario_file(dir + "/study_tuned_pool.json");
  s.query_delay = distribution::mixture(
      {0.7, 0.3}, {distribution::quantile_table({0, 0.5, 1}, {0.001, 0.002, 0.005}),
                   distribution::gamma(2, 0.001).shifted(0.0005)});
  scenario back = scenario_from_json(scenario_to_json(s));
  CHECK(boost::json::serialize(scenario_to_json(back)) ==
        boost::json::serialize(scenario_to_json(s)));
  CHECK(back.query_delay.mean() == Approx(s.query_delay.mean()).epsilon(1e-12));
}

TEST_CASE("a calibration file is accepted as a scenario") {
  std::string text = R"({"schema": "headroom.calibration/1",
    "calibration": {"service": "http://127.0.0.1:8080", "steps": [50, 500]},
    "phases": {"query": {"db_cpu": {"type": "empirical", "quantiles": [[0, 0.0003], [0.5, 0.0005], [1, 0.002]]}}},
    "pool": {"max_idle": 2}})";
  scenario s = scenario_from_json(boost::json::parse(text));
  CHECK(s.query_db_cpu.kind == distribution_kind::empirical);
  CHECK(s.arrivals.rate == 0);  // given later with --rate
}

TEST_CASE("bad scenarios give one error naming the field") {
  CHECK(error_of(R"({"arrivals": {"rate": -5}})") == "arrivals.rate: must be > 0");
  CHECK(error_of(R"({"arrivals": {"process": "poisson"}})") == "arrivals.rate: missing");
  CHECK(
      error_of(
          R"({"arrivals": {"rate": 5}, "phases": {"query": {"delay": {"type": "weibull", "mean": 1}}}})")
          .rfind("phases.query.delay.type: unknown distribution 'weibull'", 0) == 0);
  CHECK(
      error_of(
          R"({"arrivals": {"rate": 5}, "phases": {"query": {"delay": {"type": "exponential"}}}})") ==
      "phases.query.delay.mean: missing");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "pool": {"max_idel": 3}})") ==
        "pool.max_idel: unknown field");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "pool": {"waiter_order": "lifo"}})")
            .rfind("pool.waiter_order:", 0) == 0);
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "cpu": {"cores": 0}})") == "cpu.cores: must be > 0");
  CHECK(error_of(R"({"arrivals": {"rate": "fast"}})") == "arrivals.rate: must be a number");
  CHECK(
      error_of(
          R"({"arrivals": {"rate": 5}, "phases": {"dial": {"fork": {"type": "exponential", "mean": -1}}}})") ==
      "phases.dial.fork.mean: exponential mean must be > 0");
  CHECK(error_of(R"({"arrivals": {"process": "trace", "times": [0, 2, 1]}})") ==
        "arrivals.times: times must not decrease");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "run": {"requests": 0}})") ==
        "run.requests: must be >= 1");
  CHECK(
      error_of(
          R"({"arrivals": {"rate": 5}, "cpu": {"per_runnable": {"max_runnable": {"database": -1}}}})") ==
      "cpu.per_runnable.max_runnable.database: must be >= 0 (0 = no bound)");
}

TEST_CASE("the bound of the cost per runnable task reads back, and is none when absent") {
  scenario s = scenario_from_json(boost::json::parse(
      R"({"cpu": {"per_runnable": {"service": 1e-6, "database": 2e-5,
                                   "max_runnable": {"service": 17.5, "database": 6}}}})"));
  CHECK(s.service_max_runnable == 17.5);
  CHECK(s.database_max_runnable == 6);
  scenario back = scenario_from_json(scenario_to_json(s));
  CHECK(back.service_max_runnable == 17.5);
  CHECK(back.database_max_runnable == 6);
  // A file written before the bound existed keeps its meaning: no bound.
  scenario old = scenario_from_json(
      boost::json::parse(R"({"cpu": {"per_runnable": {"service": 1e-6, "database": 2e-5}}})"));
  CHECK(old.service_max_runnable == 0);
  CHECK(old.database_max_runnable == 0);
}

TEST_CASE("an idle host's wake-up reads back, is none when absent, and needs its idle gap") {
  scenario s =
      scenario_from_json(boost::json::parse(R"({"wakeup": {"delay": 0.0008, "idle": 0.014}})"));
  CHECK(s.wakeup_delay.kind == distribution_kind::deterministic);
  CHECK(s.wakeup_delay.mean() == 0.0008);
  CHECK(s.wakeup_idle == 0.014);
  scenario back = scenario_from_json(scenario_to_json(s));
  CHECK(back.wakeup_delay.mean() == 0.0008);
  CHECK(back.wakeup_idle == 0.014);
  // A file written before the wake-up existed keeps its meaning: none; so does one that wrote
  // no wake-up as a delay of 0.
  CHECK(scenario_from_json(boost::json::parse(R"({"arrivals": {"rate": 5}})"))
            .wakeup_delay.is_zero());
  CHECK(scenario_from_json(boost::json::parse(R"({"wakeup": {"delay": 0, "idle": 0}})"))
            .wakeup_delay.is_zero());
  // A spread wake-up: a distribution, as every delay.
  scenario spread = scenario_from_json(boost::json::parse(
      R"({"wakeup": {"delay": {"type": "empirical", "quantiles": [[0, 0.0005], [0.5, 0.0008],
          [1, 0.002]]}, "idle": 0.014}})"));
  CHECK(spread.wakeup_delay.kind == distribution_kind::empirical);
  CHECK(scenario_from_json(scenario_to_json(spread)).wakeup_delay.mean() ==
        Approx(spread.wakeup_delay.mean()));
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "wakeup": {"delay": 0.001}})") ==
        "wakeup.idle: must be > 0 when wakeup.delay > 0");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "wakeup": {"delay": -0.001, "idle": 0.01}})") ==
        "wakeup.delay: deterministic value must be >= 0");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "wakeup": {"delay": 2, "idle": 0.01}})") ==
        "wakeup.delay: must have a mean in [0, 1] seconds (0 = none)");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "wakeup": {"delay": 0.001, "idle": 1, "x": 2}})") ==
        "wakeup.x: unknown field");
}

TEST_CASE("the intake's stalls read back, are none when absent, and need a length") {
  scenario s = scenario_from_json(boost::json::parse(
      R"({"stalls": {"rate": 1.5, "length": {"type": "exponential", "mean": 0.004}}})"));
  CHECK(s.stall_rate == 1.5);
  CHECK(s.stall_length.mean() == Approx(0.004).epsilon(1e-12));
  scenario back = scenario_from_json(scenario_to_json(s));
  CHECK(back.stall_rate == 1.5);
  CHECK(back.stall_length.mean() == Approx(0.004).epsilon(1e-12));
  // A file written before stalls existed keeps its meaning: none.
  CHECK(scenario_from_json(boost::json::parse(R"({"arrivals": {"rate": 5}})")).stall_rate == 0);
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "stalls": {"rate": 2}})") ==
        "stalls.length: must have a mean > 0 when stalls.rate or stalls.per_request > 0");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "stalls": {"rate": -1}})") ==
        "stalls.rate: must be >= 0 per second (0 = no stalls)");
}

TEST_CASE("an integer beyond its field's range is an error naming the field, never wrapped") {
  // 4294967297 = 2^32 + 1 used to read as max_open 1 (fuzzing found it): now refused.
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "pool": {"max_open": 4294967297}})") ==
        "pool.max_open: out of range (4294967297)");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "workers": -2147483649})") ==
        "workers: out of range (-2147483649)");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "run": {"seed": 1e17}})") ==
        "run.seed: out of range (1E17)");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "pool": {"max_idle": 2.5}})") ==
        "pool.max_idle: must be an integer");
  // The largest int is still an int.
  scenario s = scenario_from_json(
      boost::json::parse(R"({"arrivals": {"rate": 5}, "pool": {"max_open": 2147483647}})"));
  CHECK(s.pool.max_open == 2147483647);
}

TEST_CASE("the variability's degrees of freedom read back and must be whole counts in range") {
  scenario s = scenario_from_json(boost::json::parse(
      R"({"arrivals": {"rate": 5}, "variability": {"speed_sigma": 0.1, "speed_sigma_dof": 3,
          "delay_sigma": 0.2, "delay_sigma_dof": 4}})"));
  CHECK(s.speed_sigma_dof == 3);
  CHECK(s.delay_sigma_dof == 4);
  scenario back = scenario_from_json(scenario_to_json(s));
  CHECK(back.speed_sigma_dof == 3);
  CHECK(back.delay_sigma_dof == 4);
  // Absent: a sigma taken as known (a file written before the field existed).
  CHECK(scenario_from_json(boost::json::parse(R"({"arrivals": {"rate": 5}})")).speed_sigma_dof ==
        0);
  auto with = [](const std::string& dof) {
    return error_of(R"({"arrivals": {"rate": 5}, "variability": {"speed_sigma_dof": )" + dof +
                    "}}");
  };
  CHECK(with("2.5") == "variability.speed_sigma_dof: must be an integer");
  CHECK(with("\"x\"").find("variability.speed_sigma_dof") == 0);
  CHECK(with("-1") ==
        "variability.speed_sigma_dof: must be a whole number in [0, 10000] (0 = known)");
  CHECK(with("10001") ==
        "variability.speed_sigma_dof: must be a whole number in [0, 10000] (0 = known)");
  CHECK(with("1e12") == "variability.speed_sigma_dof: out of range (1000000000000)");
}

TEST_CASE("a scenario left at its defaults describes the service left at its defaults") {
  scenario s = scenario_from_json(boost::json::parse(R"({"arrivals": {"rate": 100}})"));
  CHECK(s.workers == service_defaults::workers);
  CHECK(s.pool.max_open == service_defaults::max_open);
  CHECK(s.pool.max_idle == service_defaults::max_idle);
  CHECK(s.wait_timeout == service_defaults::wait_timeout);
  CHECK(s.pool.go == go_version::go1_10);
  // No waiter order given: Go 1.10's rule (map order, modelled as random), not an override.
  CHECK_FALSE(s.pool.order.has_value());
  CHECK(effective_waiter_order(s.pool) == waiter_order::random);
  CHECK(s.run.max_in_flight == 0);  // derived from the rate: 100/s x 10 s
  CHECK(in_flight_limit(s) == 1000);
}

TEST_CASE("pool.go_version picks a profile and pool.waiter_order overrides its waiter rule") {
  scenario s = scenario_from_json(boost::json::parse(
      R"({"arrivals": {"rate": 100}, "pool": {"go_version": "1.19", "waiter_order": "fifo"}})"));
  CHECK(s.pool.go == go_version::go1_18);
  REQUIRE(s.pool.order.has_value());
  CHECK(*s.pool.order == waiter_order::fifo);
  // Written back: the profile's name, and the override only because one was given.
  auto pool = scenario_to_json(s).as_object()["pool"].as_object();
  CHECK(pool["go_version"].as_string() == "1.18");
  CHECK(pool["waiter_order"].as_string() == "fifo");
  s.pool.order.reset();
  CHECK_FALSE(scenario_to_json(s).as_object()["pool"].as_object().contains("waiter_order"));
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "pool": {"go_version": "1.8"}})")
            .rfind("pool.go_version: Go version must be 1.10 or later", 0) == 0);
}

TEST_CASE("a prediction serialises with the documented fields") {
  scenario s = load_scenario_file(dir + "/study_tuned_pool.json");
  s.arrivals.rate = 200;
  s.run.requests = 5000;
  s.run.max_replications = 8;
  prediction p = predict(s);
  REQUIRE(p.stable);
  auto v = prediction_to_json(s, p).as_object();
  for (const char* k : {"latency", "latency_all", "phases", "throughput_rps", "error_rate",
                        "utilization", "pool", "stable", "littles_law", "run"})
    CHECK(v.contains(k));
  for (const char* set : {"latency", "latency_all"}) {
    INFO(set);
    auto lat = v[set].as_object();
    for (const char* k : {"count", "mean", "p50", "p90", "p95", "p99", "p999", "max"})
      CHECK(lat.contains(k));
    CHECK(lat["p99"].as_object().contains("ci_low"));
    CHECK(lat["p99"].as_object()["value"].as_double() > 0);
  }
  CHECK(v["phases"].as_object().contains("dial"));
  auto sc = v["scenario"].as_object();
  CHECK(sc["go_version"].as_string() == "1.10");
  std::string table = prediction_table(s, p);
  CHECK(table.find("latency_all") != std::string::npos);
  CHECK(table.find("Go 1.10") != std::string::npos);
}

TEST_CASE("an unstable or refused prediction writes null latencies, never zeros") {
  scenario s = load_scenario_file(dir + "/study_tuned_pool.json");
  // Refused up front: 20,000 req/s x ~0.8 ms of CPU is ~8 x the 2 cores.
  s.arrivals.rate = 20000;
  prediction refused = predict(s);
  REQUIRE_FALSE(refused.stable);
  REQUIRE(refused.replications == 0);
  auto v = prediction_to_json(s, refused).as_object();
  for (const char* k : {"latency", "latency_all", "phases", "throughput_rps", "error_rate",
                        "utilization", "littles_law"}) {
    INFO(k);
    CHECK(v[k].is_null());
  }
  CHECK(v["unstable_reason"].as_string().find("CPU demand") != std::string::npos);
  std::string table = prediction_table(s, refused);
  CHECK(table.find("no latency figures: refused") != std::string::npos);
  CHECK(table.find("p99") == std::string::npos);

  // Simulated and found unstable: what the window saw stays, the percentiles do not.
  scenario d = load_scenario_file(dir + "/study_default_pool.json");
  d.arrivals.rate = 2000;  // max_idle 2: dials through the serial postmaster swamp the CPU
  d.run.requests = 5000;
  prediction unstable = predict(d);
  REQUIRE_FALSE(unstable.stable);
  REQUIRE(unstable.replications > 0);
  auto u = prediction_to_json(d, unstable).as_object();
  CHECK(u["latency"].is_null());
  CHECK(u["latency_all"].is_null());
  CHECK(u["phases"].is_null());
  CHECK(u["throughput_rps"].is_object());
  CHECK(prediction_table(d, unstable).find("no latency figures: the backlog kept growing") !=
        std::string::npos);
}
