// The wake-up of an idle host comes back from steps' p50 drawn with a known cost and the
// model's own samplers, and is not found where the p50 does not fall with the load.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "distribution.hpp"
#include "fit_wakeup.hpp"
#include "random_stream.hpp"

using headroom::distribution;
using headroom::random_stream;
using namespace headroom::calibrate;

namespace {
// calibrate --auto's rates (50 x 1.6^k up to 1,150 req/s), 3 repeats each: p50 = awake +
// delay x min(1, gap / idle), times a mean-1 lognormal of 5 % (a step's p50 from run to run).
std::vector<wakeup_point> wakeup_steps(double awake, double delay, double idle,
                                       std::uint64_t seed) {
  auto noise = distribution::lognormal(-0.5 * 0.05 * 0.05, 0.05);
  random_stream rng(seed, 0, 5);
  std::vector<wakeup_point> out;
  for (double rate = 50; rate <= 1150; rate *= 1.6)
    for (int r = 0; r < 3; ++r)
      out.push_back(
          {1 / rate, (awake + delay * std::min(1.0, (1 / rate) / idle)) * noise.sample(rng)});
  return out;
}
}  // namespace

TEST_CASE("a wake-up of 0.85 ms after 14 ms idle comes back from 21 steps") {
  // This machine's calibration of 2026-12-07 (notebooks/data): p50 0.55 ms awake, 1.4 ms at
  // 50 req/s. With 5 % noise on each p50 the delay is known to about 0.03 ms; the bounds are
  // 3 standard errors, and 10 seeds must all pass (and find it: it is ~28 standard errors).
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    wakeup_fit f = fit_wakeup(wakeup_steps(0.00055, 0.00085, 0.014, seed));
    INFO("seed " << seed << ": " << f.note);
    REQUIRE(f.found);
    CHECK(f.points == 21);
    CHECK(f.gaps == 7);
    CHECK(f.delay == Approx(0.00085).margin(0.0001));
    CHECK(f.idle == Approx(0.014).epsilon(0.3));
    CHECK(f.base == Approx(0.00055).margin(0.00005));
    CHECK(f.delay_standard_error > 0);
    CHECK(f.rms < 0.5 * f.rms_without);
  }
}

TEST_CASE("no wake-up is found where p50 rises with the load or stays put") {
  // A simulated machine: p50 is the query's 0.55 ms plus queueing that grows with the load; and
  // a flat p50 with 5 % noise (fit_wakeup.hpp: none of 1,000 such pass five standard errors).
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    std::vector<wakeup_point> rising = wakeup_steps(0.00055, 0, 0.014, seed);
    for (wakeup_point& p : rising) p.p50 += 0.0001 * (1 / p.gap) / 1150;
    wakeup_fit f = fit_wakeup(rising);
    INFO("seed " << seed << ": " << f.note);
    CHECK_FALSE(f.found);
    CHECK(f.delay == 0);
    CHECK(f.idle == 0);
    CHECK(f.note.find("none") == 0);
    CHECK_FALSE(fit_wakeup(wakeup_steps(0.00055, 0, 0.014, seed)).found);
  }
}

TEST_CASE("a wake-up needs three rates: two say so and fit nothing") {
  std::vector<wakeup_point> two{{0.02, 0.0014}, {0.02, 0.0015}, {0.001, 0.00055}};
  wakeup_fit f = fit_wakeup(two);
  CHECK_FALSE(f.found);
  CHECK(f.gaps == 2);
  CHECK(f.note == "not fitted: 2 distinct rates among the quiet steps (3 or more are needed)");
  CHECK_FALSE(fit_wakeup({}).found);
}

TEST_CASE("the quiet steps' spread splits into the network's and the wake-up's") {
  // The split's known truth at one quantile: the network's spread 0.4 ms (a = 0.16 ms^2), the
  // wake-up's 1.2 ms at a full idle gap (b = 1.44 ms^2), at --auto's rates with a 14 ms idle, 3
  // repeats, each step's y times a mean-1 lognormal of 30 % (a p99's spread from run to run
  // on this machine), and one wild step (a storm's echo, 40 ms^2) among them.
  const double a = 0.16e-6, b = 1.44e-6, idle = 0.014;
  auto noise = distribution::lognormal(-0.5 * 0.3 * 0.3, 0.3);
  random_stream rng(11, 0, 5);
  std::vector<spread_point> points;
  for (double rate = 50; rate <= 1150; rate *= 1.6)
    for (int r = 0; r < 3; ++r) {
      const double share = std::min(1.0, (1 / rate) / idle);
      points.push_back({share * share, (a + b * share * share) * noise.sample(rng)});
    }
  points[4].y = 40e-6;
  const spread_split s = fit_spread_split(points);
  CHECK(std::sqrt(s.constant) == Approx(0.0004).epsilon(0.25));
  CHECK(std::sqrt(s.growing) == Approx(0.0012).epsilon(0.25));

  // Points on the line come back exactly.
  const spread_split exact = fit_spread_split({{0, 1e-7}, {0.25, 3e-7}, {1, 9e-7}});
  CHECK(exact.constant == Approx(1e-7));
  CHECK(exact.growing == Approx(8e-7));
  // No wake-up (every x 0): the median of y, and nothing growing.
  const spread_split flat = fit_spread_split({{0, 1e-7}, {0, 5e-7}, {0, 2e-7}});
  CHECK(flat.constant == Approx(2e-7));
  CHECK(flat.growing == 0);
  // A spread that shrinks with the idle gap is no wake-up's: b stays at 0, not negative.
  const spread_split shrinking = fit_spread_split({{0, 9e-7}, {0.5, 5e-7}, {1, 1e-7}});
  CHECK(shrinking.growing == 0);
  CHECK(shrinking.constant == Approx(5e-7));
  const spread_split none = fit_spread_split({});
  CHECK(none.constant == 0);
  CHECK(none.growing == 0);
}
