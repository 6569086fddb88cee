// CPU demand fitting recovers known per-request, per-dial, per-close, background and
// load-dependent costs from steps whose CPU is summed from the model's own demand samplers, and
// names the costs a design cannot identify.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "distribution.hpp"
#include "fit_demands.hpp"
#include "random_stream.hpp"

using headroom::distribution;
using headroom::random_stream;
using namespace headroom::calibrate;

namespace {
// The database owner's true costs, of the size issue 8 measured on the study's machine.
constexpr double request_cost = 0.5e-3;   // s per request at no load
constexpr double per_runnable = 0.02e-3;  // s more per request per runnable task
constexpr double background = 0.02;       // s per second (2 % of a core)
constexpr double dial_cost = 15e-3;       // backend start and first query
constexpr double close_cost = 25e-3;      // backend exit
constexpr double window = 60.0;           // s per step
constexpr int repeats = 3;                // each step measured three times

struct plan_step {
  double rate, dials_per_second, closes_per_second, runnable;
};

// What a plan must measure for all five costs to come back within 5 %, found by trying smaller
// ones (the standard errors below scale as 1 / sqrt(repeats x window)):
//   - the study's rates at two pool settings: Go's default dials and closes up to ~25/s with a
//     crowded run queue; a tuned pool barely dials and runs a quarter of the runnable tasks;
//   - a step that warms a pool up (dials, no closes) and one that drains it (closes, no
//     dials): otherwise dials and closes move together and only their sum is known;
//   - three steps crowded by other CPU work (10 more runnable tasks at the same rate):
//     otherwise the load grows only with the rate and its cost is confounded with the
//     per-request and background costs;
//   - 3 repeats of 60 s. With the study's 5 rates x 2 repeats of 20 s alone the standard errors
//     are 5 to 17 %.
std::vector<plan_step> calibration_plan() {
  std::vector<plan_step> plan;
  for (int r = 0; r < repeats; ++r) {
    for (double rate : {50.0, 500.0, 1000.0, 2000.0, 3000.0}) {
      double runnable = 0.5 + rate / 400.0;
      plan.push_back({rate, std::min(25.0, rate / 40.0), std::min(24.0, rate / 42.0), runnable});
      plan.push_back({rate, 0.05, 0.05, runnable * 0.25});
    }
    plan.push_back({800.0, 10.0, 0.0, 2.0});
    plan.push_back({1500.0, 0.0, 12.0, 4.0});
    for (double rate : {500.0, 1000.0, 2000.0})
      plan.push_back({rate, 0.05, 0.05, 10.5 + rate / 400.0});
  }
  return plan;
}

// Each step's CPU is the sum of one demand sample per request (gamma, cv 0.5), per dial and per
// close (gamma, cv 0.3: a fork and an exit vary less), plus the background, times a per-step
// machine-speed factor (lognormal, sigma 0.5 %).
std::vector<demand_step> synthesize(const std::vector<plan_step>& plan, std::uint64_t seed) {
  random_stream rng(seed, 0, 11);
  std::vector<demand_step> steps;
  for (const auto& p : plan) {
    demand_step s;
    s.window_seconds = window;
    s.requests = std::round(p.rate * window);
    s.dials = std::round(p.dials_per_second * window);
    s.closes = std::round(p.closes_per_second * window);
    s.runnable = p.runnable;
    auto per_request = distribution::gamma_mean_cv(request_cost + per_runnable * p.runnable, 0.5);
    auto per_dial = distribution::gamma_mean_cv(dial_cost, 0.3);
    auto per_close = distribution::gamma_mean_cv(close_cost, 0.3);
    double cpu = background * window;
    for (double i = 0; i < s.requests; ++i) cpu += per_request.sample(rng);
    for (double i = 0; i < s.dials; ++i) cpu += per_dial.sample(rng);
    for (double i = 0; i < s.closes; ++i) cpu += per_close.sample(rng);
    s.cpu_seconds = cpu * std::exp(0.005 * rng.normal());
    steps.push_back(s);
  }
  return steps;
}
}  // namespace

TEST_CASE("CPU per request, dial, close, background and load growth come back within 5 %") {
  auto fit = fit_cpu_demands("database", synthesize(calibration_plan(), 1));
  REQUIRE(fit.not_fitted.empty());
  const std::vector<std::pair<std::string, double>> truth{{"request", request_cost},
                                                          {"request_per_runnable", per_runnable},
                                                          {"background", background},
                                                          {"dial", dial_cost},
                                                          {"close", close_cost}};
  for (const auto& [name, value] : truth) {
    INFO(name << ": " << fit.cost(name) << " +- " << fit.term(name).standard_error);
    CHECK_FALSE(fit.term(name).clamped);
    // This plan gives standard errors of at most ~1.6 % (background and dial; 0.2 % for the
    // request cost), so 5 % is over 3 standard errors (40 seeds tried: worst error 3 %); the
    // reported standard error must also be honest: the error within 4 of them.
    CHECK(fit.cost(name) == Approx(value).epsilon(0.05));
    CHECK(std::abs(fit.cost(name) - value) < 4 * fit.term(name).standard_error);
  }
  // The model explains the steps to their noise (0.5 % machine factor, up to ~1.5 % of sampling
  // at the lowest rate).
  CHECK(fit.r_squared > 0.999);
  CHECK(fit.rms_relative_residual < 0.02);
  REQUIRE(fit.residual.size() == calibration_plan().size());
}

TEST_CASE("a plan without dials fits the other costs and names the dial cost it cannot fit") {
  auto plan = calibration_plan();
  for (auto& p : plan) p.dials_per_second = 0;
  auto fit = fit_cpu_demands("database", synthesize(plan, 2));
  CHECK_THROWS_WITH(fit.cost("dial"),
                    "database: dial cost cannot be fitted: no step has any dials");
  REQUIRE(fit.not_fitted.size() == 1);
  for (const auto& [name, value] : std::vector<std::pair<std::string, double>>{
           {"request", request_cost}, {"close", close_cost}, {"background", background}}) {
    INFO(name);
    CHECK(fit.cost(name) == Approx(value).epsilon(0.05));
  }
}

TEST_CASE("closes equal to dials in every step leave the close cost unfitted, named") {
  auto plan = calibration_plan();
  for (auto& p : plan) p.closes_per_second = p.dials_per_second;
  auto fit = fit_cpu_demands("database", synthesize(plan, 3));
  CHECK_THROWS_WITH(fit.cost("close"),
                    Catch::StartsWith("database: close cost cannot be fitted: in every step the "
                                      "closes are a linear combination of the requests"));
  // What is fitted is the cost of a dial and its close together.
  CHECK(fit.cost("dial") == Approx(dial_cost + close_cost).epsilon(0.05));
  CHECK(fit.cost("request") == Approx(request_cost).epsilon(0.05));
}

TEST_CASE("steps all at the same load leave the load growth unfitted, named") {
  auto plan = calibration_plan();
  for (auto& p : plan) p.runnable = 3.0;
  auto fit = fit_cpu_demands("database", synthesize(plan, 4));
  CHECK_THROWS_WITH(fit.cost("request_per_runnable"),
                    Catch::StartsWith("database: growth of the request cost with load cannot be "
                                      "fitted"));
  // The per-request cost then includes the growth at that load.
  CHECK(fit.cost("request") == Approx(request_cost + 3.0 * per_runnable).epsilon(0.05));
}

TEST_CASE("a cost the data want below zero is held at zero and marked clamped") {
  // CPU that is exactly 1 ms per request less 0.05 s per second: the unconstrained background
  // would be -0.05; held at 0, the request cost absorbs it.
  std::vector<demand_step> steps;
  for (double rate : {100.0, 400.0, 1600.0}) {
    demand_step s;
    s.window_seconds = window;
    s.requests = rate * window;
    s.cpu_seconds = 1e-3 * s.requests - 0.05 * window;
    steps.push_back(s);
  }
  demand_fit_options options;
  options.load_dependent = false;
  auto fit = fit_cpu_demands("service", steps, options);
  CHECK(fit.term("background").clamped);
  CHECK(fit.cost("background") == 0.0);
  CHECK(fit.cost("request") < 1e-3);
  // dials and closes were never measured: named, not fitted.
  CHECK(fit.not_fitted.size() == 2);
}

TEST_CASE("fewer steps than costs to fit is refused with the counts") {
  auto steps = synthesize(calibration_plan(), 5);
  steps.resize(3);
  CHECK_THROWS_WITH(fit_cpu_demands("database", steps), "database: 3 steps cannot fit 5 CPU costs");
}
