// The per-run speed factor's spread comes back from repeats drawn with the model's lognormal
// sampler, pooled across steps of very different levels, with an honest interval.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "distribution.hpp"
#include "fit_variability.hpp"
#include "random_stream.hpp"

using headroom::distribution;
using headroom::random_stream;
using namespace headroom::calibrate;

namespace {
// Each step's level (a p99 from 5 ms to 2 s, geometric) times a mean-1 lognormal factor per run.
std::vector<std::vector<double>> repeats(int steps, int per_step, double sigma,
                                         std::uint64_t seed) {
  auto factor = distribution::lognormal(-0.5 * sigma * sigma, sigma);
  random_stream rng(seed, 0, 21);
  std::vector<std::vector<double>> out;
  for (int s = 0; s < steps; ++s) {
    double level = 5e-3 * std::pow(400.0, s / std::max(1.0, steps - 1.0));
    std::vector<double> step;
    for (int r = 0; r < per_step; ++r) step.push_back(level * factor.sample(rng));
    out.push_back(step);
  }
  return out;
}
}  // namespace

TEST_CASE("the speed factor's sigma comes back within 20 % from 60 steps of 3 repeats") {
  // nu = 60 x (3 - 1) = 120 degrees of freedom: the relative standard error of sigma is
  // 1 / sqrt(2 nu) = 6.5 %, so 20 % is three standard errors. (With 2 repeats per step the
  // same precision needs 120 steps; 20 % at one standard error would need only nu = 13.)
  const double sigma = 0.12;
  auto fit = fit_speed_factor(repeats(60, 3, sigma, 1));
  CHECK(fit.degrees_of_freedom == 120);
  CHECK(fit.steps == 60);
  CHECK(fit.sigma == Approx(sigma).epsilon(0.20));
  // At nu = 120 the 90 % interval spans sqrt(146.57 / 95.70) = 1.238 from end to end, whatever
  // the data (chi^2_120's 95 % and 5 % points).
  CHECK(fit.sigma_high / fit.sigma_low == Approx(1.238).epsilon(1e-3));
}

TEST_CASE("the 90 % interval for sigma holds the true sigma in 90 % of calibrations") {
  // 400 independent calibrations of 10 steps x 2 repeats: the interval's coverage must be
  // 0.90 within 3 binomial standard errors (sqrt(0.9 x 0.1 / 400) = 1.5 %): 85.5 % to 94.5 %.
  const double sigma = 0.1;
  int covered = 0;
  for (std::uint64_t seed = 100; seed < 500; ++seed) {
    auto fit = fit_speed_factor(repeats(10, 2, sigma, seed));
    covered += fit.sigma_low <= sigma && sigma <= fit.sigma_high ? 1 : 0;
  }
  CHECK(covered / 400.0 == Approx(0.90).margin(0.045));
}

TEST_CASE("two repeats of five steps pin sigma only within a factor of about three") {
  // nu = 5: chi^2_5 has its 5 % and 95 % points at 1.1455 and 11.0705, so the 90 % interval
  // is [sqrt(5 / 11.0705), sqrt(5 / 1.1455)] = [0.672, 2.089] times the estimate, whatever the
  // data: what the study's default of 2 repeats can say about run-to-run spread.
  auto fit = fit_speed_factor(repeats(5, 2, 0.1, 2));
  CHECK(fit.degrees_of_freedom == 5);
  CHECK(fit.sigma_low / fit.sigma == Approx(0.672).epsilon(1e-3));
  CHECK(fit.sigma_high / fit.sigma == Approx(2.089).epsilon(1e-3));
  CHECK_THAT(fit.note, Catch::Contains("5 degrees of freedom"));
}

TEST_CASE("a step measured once carries no spread; none measured twice is refused") {
  auto data = repeats(4, 2, 0.1, 3);
  auto with_single = data;
  with_single.push_back({0.5});  // one more step, one repeat: changes nothing
  CHECK(fit_speed_factor(with_single).sigma == fit_speed_factor(data).sigma);
  CHECK(fit_speed_factor(with_single).steps == 4);
  CHECK_THROWS_WITH(fit_speed_factor({{0.1}, {0.2}}),
                    "variability: no step was measured twice, so no spread is known");
  CHECK_THROWS_WITH(fit_speed_factor({{0.1, 0.0}}), "variability: a repeated measurement is <= 0");
}
