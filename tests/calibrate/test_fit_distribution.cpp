// Distribution fitting recovers the parameters of samples drawn with the model's own samplers,
// picks their family by AIC, and falls back to an empirical table when no family fits.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "distribution.hpp"
#include "fit_distribution.hpp"
#include "latency_histogram.hpp"
#include "random_stream.hpp"

using headroom::distribution;
using headroom::random_stream;
using namespace headroom::calibrate;

namespace {
// 20,000 samples: the relative standard error of an exponential mean is 1/sqrt(n) = 0.7 %, of a
// lognormal sigma 1/sqrt(2n) = 0.5 %, of its median sigma/sqrt(n) <= 0.6 %, and of a gamma shape
// near 2 about 0.9 % (Fisher information n (shape trigamma(shape) - 1) / shape). 5 % is then
// more than 5 standard errors for every parameter: a correct fit never misses it.
constexpr int sample_size = 20000;

std::vector<double> draw(const distribution& d, std::uint64_t purpose) {
  random_stream rng(2026, 0, purpose);
  std::vector<double> out;
  for (int i = 0; i < sample_size; ++i) out.push_back(d.sample(rng));
  return out;
}

const family_fit& candidate(const distribution_fit& fit, fit_family family) {
  for (const auto& c : fit.candidates)
    if (c.family == family) return c;
  throw std::logic_error("family not tried");
}
}  // namespace

TEST_CASE("an exponential sample gives back its mean within 5 %") {
  auto fit = fit_distribution(observations_from_samples(draw(distribution::exponential(2e-3), 1)));
  const family_fit& e = candidate(fit, fit_family::exponential);
  CHECK(e.fitted.p1 == Approx(2e-3).epsilon(0.05));
  // Gamma nests the exponential: AIC may pick a gamma of shape ~1 (about 16 % of samples),
  // which is the same distribution.
  REQUIRE((fit.family == fit_family::exponential || fit.family == fit_family::gamma));
  if (fit.family == fit_family::gamma) CHECK(fit.chosen.p1 == Approx(1.0).epsilon(0.05));
}

TEST_CASE("a lognormal sample gives back its median and sigma within 5 % and is chosen by AIC") {
  const double median = 1e-3, sigma = 0.8;
  auto fit = fit_distribution(
      observations_from_samples(draw(distribution::lognormal(std::log(median), sigma), 2)));
  REQUIRE(fit.family == fit_family::lognormal);
  CHECK(std::exp(fit.chosen.p1) == Approx(median).epsilon(0.05));
  CHECK(fit.chosen.p2 == Approx(sigma).epsilon(0.05));
  // The right family matches the data everywhere: KS under 1.63 / sqrt(n) = 0.0115 (not
  // rejected at 1 %; fitted parameters only make it smaller), and the fitted p99 within 8 % of
  // the measured one: the sample p99's own standard error is 2.1 % at sigma 0.8
  // (sqrt(0.99 x 0.01 / n) / (phi(2.33) / sigma)), the fitted one's ~1 %, so 8 % is 3.5 of them.
  CHECK(fit.candidates.front().ks < 0.0115);
  CHECK(fit.candidates.front().p99_fitted == Approx(fit.p99_measured).epsilon(0.08));
}

TEST_CASE("a gamma sample gives back its shape and scale within 5 % and is chosen by AIC") {
  const double shape = 2.0, scale = 0.5e-3;
  auto fit =
      fit_distribution(observations_from_samples(draw(distribution::gamma(shape, scale), 3)));
  REQUIRE(fit.family == fit_family::gamma);
  CHECK(fit.chosen.p1 == Approx(shape).epsilon(0.05));
  CHECK(fit.chosen.p2 == Approx(scale).epsilon(0.05));
  // The wrong families lose by far more than AIC's 2 per parameter at this sample size.
  CHECK(candidate(fit, fit_family::lognormal).aic - fit.candidates.front().aic > 100);
}

TEST_CASE("a fixed floor is subtracted before fitting and returned as the shift") {
  const double floor = 1e-3, median = 0.5e-3, sigma = 0.5;
  auto d = distribution::lognormal(std::log(median), sigma).shifted(floor);
  distribution_fit_options options;
  options.floor = floor;
  auto fit = fit_distribution(observations_from_samples(draw(d, 4)), options);
  REQUIRE(fit.family == fit_family::lognormal);
  CHECK(fit.chosen.shift == floor);
  CHECK(std::exp(fit.chosen.p1) == Approx(median).epsilon(0.05));
  CHECK(fit.chosen.p2 == Approx(sigma).epsilon(0.05));
  // A floor above the fastest latency is a contradiction, named as such.
  options.floor = 10e-3;
  CHECK_THROWS_WITH(fit_distribution(observations_from_samples(draw(d, 4)), options),
                    Catch::Contains("at or below the floor"));
}

TEST_CASE("a latency histogram gives back the parameters of the latencies recorded in it") {
  // Recorded to whole microseconds in buckets at most 1/1024 of their value wide: the midpoint
  // approximation moves nothing by more than 0.1 %, well inside the 5 %.
  const double median = 1e-3, sigma = 0.6, shape = 3.0, scale = 0.4e-3;
  latency_histogram lognormal_h, gamma_h;
  for (double v : draw(distribution::lognormal(std::log(median), sigma), 5)) lognormal_h.record(v);
  for (double v : draw(distribution::gamma(shape, scale), 6)) gamma_h.record(v);

  auto ln = fit_distribution(observations_from_histogram(lognormal_h));
  CHECK(ln.count == sample_size);
  REQUIRE(ln.family == fit_family::lognormal);
  CHECK(std::exp(ln.chosen.p1) == Approx(median).epsilon(0.05));
  CHECK(ln.chosen.p2 == Approx(sigma).epsilon(0.05));
  // The measured p99 read from the buckets is the histogram's own p99 (to its resolution).
  CHECK(ln.p99_measured == Approx(lognormal_h.percentile(99)).epsilon(2e-3));

  auto g = fit_distribution(observations_from_histogram(gamma_h));
  REQUIRE(g.family == fit_family::gamma);
  CHECK(g.chosen.p1 == Approx(shape).epsilon(0.05));
  CHECK(g.chosen.p2 == Approx(scale).epsilon(0.05));
}

TEST_CASE("a two-humped latency no family fits becomes an empirical table through its quantiles") {
  // Half the requests reuse a connection (~0.3 ms), half dial one first (~20 ms): no single
  // exponential, lognormal or gamma comes near, and the table reproduces the measured tail.
  auto d = distribution::mixture({0.5, 0.5}, {distribution::exponential(0.3e-3),
                                              distribution::exponential(2e-3).shifted(20e-3)});
  auto fit = fit_distribution(observations_from_samples(draw(d, 7)));
  REQUIRE(fit.family == fit_family::empirical);
  CHECK(fit.chosen.kind == headroom::distribution_kind::empirical);
  CHECK(fit.candidates.front().ks > 0.03);
  CHECK_THAT(fit.note, Catch::Contains("empirical"));
  // The table passes through the measured quantiles: its own p99 is the measured p99 exactly
  // (0.99 is one of its points). Its mean is the true mean within 3 %: the sample mean's own
  // standard error is 0.7 %, and the one linear piece crossing the empty gap between the humps
  // (1 % of the mass, 20 ms wide) moves the mean by at most 0.01 x 20 ms / 2 = 0.9 %.
  auto it = std::find(fit.chosen.probs.begin(), fit.chosen.probs.end(), 0.99);
  REQUIRE(it != fit.chosen.probs.end());
  CHECK(fit.chosen.values[static_cast<std::size_t>(it - fit.chosen.probs.begin())] ==
        fit.p99_measured);
  CHECK(fit.chosen.mean() == Approx(d.mean()).epsilon(0.03));
}

TEST_CASE("no latencies, or buckets without bounds for every count, are refused by name") {
  CHECK_THROWS_WITH(fit_distribution(observations_from_samples({})), "no latencies to fit");
  CHECK_THROWS_WITH(observations_from_buckets({0.0}, {1e-3, 2e-3}, {5.0}),
                    "buckets need a lower bound, an upper bound and a count each");
}
