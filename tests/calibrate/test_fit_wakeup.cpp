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
