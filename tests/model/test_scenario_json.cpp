// Scenario files: the examples parse, round-trip, and every kind of mistake names its field.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <string>

#include "scenario_json.hpp"

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
}

TEST_CASE("a prediction serialises with the documented fields") {
  scenario s = load_scenario_file(dir + "/study_tuned_pool.json");
  s.arrivals.rate = 200;
  s.run.requests = 5000;
  s.run.max_replications = 8;
  prediction p = predict(s);
  auto v = prediction_to_json(s, p).as_object();
  for (const char* k :
       {"latency", "phases", "throughput_rps", "error_rate", "utilization", "pool", "stable"})
    CHECK(v.contains(k));
  auto lat = v["latency"].as_object();
  for (const char* k : {"p50", "p90", "p95", "p99", "p999", "max"}) CHECK(lat.contains(k));
  CHECK(lat["p99"].as_object().contains("ci_low"));
  CHECK(v["phases"].as_object().contains("dial"));
  CHECK_FALSE(prediction_table(s, p).empty());
}
