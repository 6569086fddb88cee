// The knee check (knee_check.hpp) against a known truth: one worker serving exponential times of
// mean 1 ms to evenly spaced arrivals is a D/M/1 queue, whose sojourn time is exponential with
// rate mu (1 - s), s the root of s = exp(-mu (1 - s) / lambda). Its p99 is under 20 ms while
// mu (1 - s) > ln(100) / 0.02, that is s < 0.76974: lambda < 230.26 / -ln(0.76974) = 880 req/s.
// With Poisson arrivals it is M/M/1: rate mu - lambda, so lambda < 1000 - 230.26 = 770 req/s.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "knee_check.hpp"

using namespace headroom;
using namespace headroom::calibrate;

namespace {

scenario dm1() {
  scenario s;
  s.name = "D/M/1, mean service 1 ms";
  s.use_pool = false;
  s.workers = 1;
  s.arrivals.process = arrival_process::constant;  // as a calibration of evenly spaced steps
  s.query_delay = distribution::exponential(0.001);
  s.run.seed = 3;
  return s;
}

const latency_slo slo{0.99, 0.020};

// A step whose every request took `p99` (so that is its p99), 10 s measured after 2 s.
calibration_step step(double rate, double p99, int max_idle = 2) {
  calibration_step c;
  c.rate = rate;
  c.window = 10;
  c.pool = pool_setting{0, max_idle, "1.10", "random"};
  c.load.duration = 10;
  c.load.warmup = 2;
  for (int i = 0; i < 100; ++i) c.load.latency_all.record(p99);
  return c;
}

std::vector<calibration_step> steps(const std::vector<std::pair<double, double>>& rate_p99) {
  std::vector<calibration_step> out;
  for (int repeat = 0; repeat < 2; ++repeat)
    for (auto [rate, p99] : rate_p99) out.push_back(step(rate, p99));
  return out;
}

}  // namespace

TEST_CASE("the predicted knee is the D/M/1 queue's, within 10 %", "[knee]") {
  const knee_comparison k =
      compare_knees(dm1(), steps({{200, 0.005}, {400, 0.006}, {800, 0.012}, {1200, 0.3}}), slo);
  REQUIRE(k.available);
  CHECK(k.predicted == Approx(880).epsilon(0.10));
  CHECK_FALSE(k.predicted_is_lower_bound);
  CHECK(k.measured == 800);
  CHECK_FALSE(k.measured_is_lower_bound);
  CHECK(k.step_length == 10);
  CHECK(k.warmup == 2);
  // 800 measured, about 880 predicted: within 15 %, no word.
  CHECK_FALSE(k.disagrees);
  CHECK(k.line.empty());

  scenario mm1 = dm1();
  mm1.arrivals.process = arrival_process::poisson;
  CHECK(compare_knees(mm1, steps({{200, 0.005}, {1200, 0.3}}), slo).predicted ==
        Approx(770).epsilon(0.10));
}

TEST_CASE("steps that met the SLO far above the model's knee earn one line naming them", "[knee]") {
  const knee_comparison k =
      compare_knees(dm1(), steps({{200, 0.005}, {800, 0.012}, {1200, 0.015}, {1600, 0.018}}), slo);
  CHECK(k.measured == 1600);
  CHECK(k.measured_is_lower_bound);
  CHECK(k.difference < -0.15);
  REQUIRE(k.disagrees);
  INFO(k.line);
  CHECK(k.line.find("steps measured at least 1600 req/s") != std::string::npos);
  CHECK(k.line.find("1200 (2 of 2), 1600 (2 of 2)") != std::string::npos);
  CHECK(k.line.find("800 (2 of 2)") == std::string::npos);  // 800 agrees with the model
  CHECK(k.line.find('\n') == std::string::npos);
}

TEST_CASE("a model more optimistic than a failed step disagrees; above the last step it cannot",
          "[knee]") {
  SECTION("failed at 400 and 800, where the model holds") {
    const knee_comparison k =
        compare_knees(dm1(), steps({{200, 0.005}, {400, 0.1}, {800, 0.2}}), slo);
    CHECK(k.measured == 200);
    REQUIRE(k.disagrees);
    CHECK(k.line.find("400 (0 of 2), 800 (0 of 2)") != std::string::npos);
  }
  SECTION("every step met, the model's knee beyond them: a lower bound that agrees") {
    const knee_comparison k = compare_knees(dm1(), steps({{200, 0.005}, {400, 0.006}}), slo);
    CHECK(k.measured == 400);
    CHECK(k.measured_is_lower_bound);
    CHECK(k.predicted > 400);
    CHECK_FALSE(k.disagrees);
  }
}

TEST_CASE("the measured knee: most repeats must meet the SLO; other pool settings are left out",
          "[knee]") {
  std::vector<calibration_step> s = steps({{200, 0.005}, {400, 0.006}});
  s.push_back(step(600, 0.010));
  s.push_back(step(600, 0.500));      // one storm in two repeats: not most
  s.push_back(step(900, 0.001, 16));  // another pool setting
  const knee_comparison k = measured_knee(dm1(), s, slo);
  REQUIRE(k.available);
  REQUIRE(k.rates.size() == 3);
  CHECK(k.rates[2].met == 1);
  CHECK(k.rates[2].repeats == 2);
  CHECK(k.measured == 400);
  CHECK_FALSE(k.measured_is_lower_bound);

  scenario tuned = dm1();
  tuned.pool.max_idle = 8;
  CHECK_FALSE(measured_knee(tuned, s, slo).available);
}
