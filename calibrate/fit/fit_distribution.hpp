// Fits a phase's latency distribution to measurements: maximum likelihood per family, the
// family chosen by AIC, an empirical quantile table when no family fits.
//
// The maths, once. Observations are weighted points x_i (weight w_i, N = sum w_i): raw samples
// have weight 1; a histogram bucket [lo, hi) becomes one point at its midpoint with its count
// as weight. For the HDR histogram a bucket is at most 1/1024 of its value wide (1 µs below
// 2 ms), so the midpoint moves no estimate by more than that; coarse buckets (Prometheus'
// le="0.005") would bias the fit and are not what this is for.
// A fixed floor f (a known minimum, e.g. a network round trip) is subtracted first, y = x - f,
// and added back as the distribution's shift; it is not estimated, so it costs no parameter.
//   exponential   mean = sum w y / N                                            (k = 1)
//   lognormal     mu = sum w ln y / N,  sigma^2 = sum w (ln y - mu)^2 / N       (k = 2)
//   gamma         s = ln(mean y) - mean(ln y) > 0; shape from Minka's closed form
//                 (3 - s + sqrt((s - 3)^2 + 24 s)) / (12 s), refined by Newton on
//                 ln(shape) - digamma(shape) = s; scale = mean / shape         (k = 2)
// These three cover what a phase looks like: memoryless waits, multiplicative (long-tailed)
// service times, and sums of a few steps; each is in the model (model/scenario/distribution.hpp).
// AIC = 2k - 2 ln L picks among them (parameter counts differ). Gamma nests the exponential,
// so on exponential data AIC picks a gamma with shape ~1 about one time in six
// (P(chi^2_1 > 2) = 16 %; 19 % of 400 samples of 20,000 measured): the same distribution.
// Goodness of fit: KS = max |F_data - F_fit| over the points (over bucket edges for buckets),
// and p50/p99 fitted vs measured. The best family is kept only if KS <= max(ks_bound,
// 1.63 / sqrt(N)) (an absolute bound, or not rejected at 1 % when N is small) and its p99 is
// within p99_bound of the measured one (the SLO is a tail figure); otherwise the result is an
// empirical quantile table through the measured quantiles.
#pragma once

#include <string>
#include <vector>

#include "distribution.hpp"
#include "latency_histogram.hpp"

namespace headroom::calibrate {

// Weighted points, ascending by value; lower/upper are the bucket's bounds (equal to value for a
// raw sample). Seconds.
struct latency_observations {
  std::vector<double> value, weight, lower, upper;
  double total_weight() const;
  // The p-quantile (p in [0, 1]), linear inside a bucket.
  double quantile(double p) const;
};

latency_observations observations_from_samples(std::vector<double> seconds);
// Buckets [lower[i], upper[i]) with counts[i]; buckets with count 0 are dropped.
latency_observations observations_from_buckets(const std::vector<double>& lower,
                                               const std::vector<double>& upper,
                                               const std::vector<double>& counts);
// The HDR histogram's buckets; a value was rounded to whole microseconds when recorded, so a
// bucket [v, v + width) µs holds values from v - 0.5 µs to v + width - 0.5 µs.
latency_observations observations_from_histogram(const latency_histogram& h);

enum class fit_family { exponential, lognormal, gamma, empirical };
std::string family_name(fit_family f);

struct family_fit {
  fit_family family = fit_family::exponential;
  headroom::distribution fitted;  // including the floor as shift
  int parameters = 0;
  double log_likelihood = 0, aic = 0;
  double ks = 0;  // max |F_data - F_fit|
  double p50_fitted = 0, p99_fitted = 0;
};

struct distribution_fit_options {
  double floor = 0;         // fixed minimum subtracted before fitting, seconds
  double ks_bound = 0.03;   // a family must stay within 3 points of probability everywhere
  double p99_bound = 0.25;  // and within 25 % of the measured p99
};

struct distribution_fit {
  headroom::distribution chosen;
  fit_family family = fit_family::empirical;
  double count = 0;  // N
  double p50_measured = 0, p99_measured = 0;
  std::vector<family_fit> candidates;  // every family tried, best AIC first
  std::string note;                    // why this one, in one sentence
};

// One family's maximum-likelihood fit (throws if a value is at or below the floor).
family_fit fit_family_ml(const latency_observations& obs, fit_family family, double floor);
// All families, AIC choice, empirical fallback. Throws std::invalid_argument on empty input.
distribution_fit fit_distribution(const latency_observations& obs,
                                  const distribution_fit_options& options = {});

}  // namespace headroom::calibrate
