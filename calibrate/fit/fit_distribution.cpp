// Maximum-likelihood fits of a latency distribution; the maths is in fit_distribution.hpp.
#include "fit_distribution.hpp"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/special_functions/digamma.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <boost/math/special_functions/trigamma.hpp>
#include <cmath>
#include <numeric>
#include <sstream>
#include <stdexcept>

namespace headroom::calibrate {
namespace {

constexpr double half_log_two_pi = 0.91893853320467274178;

double cdf(const family_fit& f, double x) {
  const distribution& d = f.fitted;
  double y = x - d.shift;
  if (y <= 0) return 0.0;
  switch (f.family) {
    case fit_family::exponential:
      return -std::expm1(-y / d.p1);
    case fit_family::lognormal:
      return 0.5 * std::erfc(-(std::log(y) - d.p1) / (d.p2 * std::sqrt(2.0)));
    case fit_family::gamma:
      return boost::math::gamma_p(d.p1, y / d.p2);
    case fit_family::empirical:
      break;
  }
  throw std::logic_error("cdf of an empirical fit");
}

double quantile(const family_fit& f, double p) {
  const distribution& d = f.fitted;
  switch (f.family) {
    case fit_family::exponential:
      return d.shift - d.p1 * std::log1p(-p);
    case fit_family::lognormal:
      return d.shift + std::exp(d.p1 + d.p2 * boost::math::quantile(boost::math::normal(), p));
    case fit_family::gamma:
      return d.shift + d.p2 * boost::math::gamma_p_inv(d.p1, p);
    case fit_family::empirical:
      break;
  }
  throw std::logic_error("quantile of an empirical fit");
}

// Sum of w * g(y) over the observations, y = value - floor.
template <class F>
double weighted_sum(const latency_observations& obs, double floor, F g) {
  double s = 0;
  for (std::size_t i = 0; i < obs.value.size(); ++i) s += obs.weight[i] * g(obs.value[i] - floor);
  return s;
}

double ks_distance(const latency_observations& obs, const family_fit& f) {
  const double n = obs.total_weight();
  double below = 0, ks = 0;
  for (std::size_t i = 0; i < obs.value.size(); ++i) {
    ks = std::max(ks, std::abs(below / n - cdf(f, obs.lower[i])));
    below += obs.weight[i];
    ks = std::max(ks, std::abs(below / n - cdf(f, obs.upper[i])));
  }
  return ks;
}

// Minka (2002): the closed form is within 1.5 % of the root; Newton converges in 2-4 steps.
double gamma_shape(double s) {
  double k = (3.0 - s + std::sqrt((s - 3.0) * (s - 3.0) + 24.0 * s)) / (12.0 * s);
  for (int i = 0; i < 50; ++i) {
    double g = std::log(k) - boost::math::digamma(k) - s;
    double dg = 1.0 / k - boost::math::trigamma(k);
    double next = k - g / dg;
    if (!(next > 0)) next = k / 2;  // Newton left the domain: halve instead
    if (std::abs(next - k) < 1e-12 * k) return next;
    k = next;
  }
  return k;
}

latency_observations sorted_points(std::vector<double> value, std::vector<double> weight,
                                   std::vector<double> lower, std::vector<double> upper) {
  std::vector<std::size_t> order(value.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return value[a] < value[b]; });
  latency_observations obs;
  for (auto i : order) {
    obs.value.push_back(value[i]);
    obs.weight.push_back(weight[i]);
    obs.lower.push_back(lower[i]);
    obs.upper.push_back(upper[i]);
  }
  return obs;
}

}  // namespace

double latency_observations::total_weight() const {
  return std::accumulate(weight.begin(), weight.end(), 0.0);
}

double latency_observations::quantile(double p) const {
  if (value.empty()) throw std::invalid_argument("quantile of no observations");
  const double target = std::clamp(p, 0.0, 1.0) * total_weight();
  double below = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (below + weight[i] >= target) {
      double inside = weight[i] > 0 ? (target - below) / weight[i] : 0.0;
      return lower[i] + (upper[i] - lower[i]) * std::clamp(inside, 0.0, 1.0);
    }
    below += weight[i];
  }
  return upper.back();
}

latency_observations observations_from_samples(std::vector<double> seconds) {
  std::vector<double> ones(seconds.size(), 1.0);
  return sorted_points(seconds, ones, seconds, seconds);
}

latency_observations observations_from_buckets(const std::vector<double>& lower,
                                               const std::vector<double>& upper,
                                               const std::vector<double>& counts) {
  if (lower.size() != upper.size() || lower.size() != counts.size())
    throw std::invalid_argument("buckets need a lower bound, an upper bound and a count each");
  std::vector<double> v, w, lo, hi;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (!(upper[i] >= lower[i]) || lower[i] < 0)
      throw std::invalid_argument("a bucket needs 0 <= lower <= upper");
    if (counts[i] < 0) throw std::invalid_argument("a bucket count must be >= 0");
    if (counts[i] == 0) continue;
    v.push_back(0.5 * (lower[i] + upper[i]));
    w.push_back(counts[i]);
    lo.push_back(lower[i]);
    hi.push_back(upper[i]);
  }
  return sorted_points(v, w, lo, hi);
}

latency_observations observations_from_histogram(const latency_histogram& h) {
  std::vector<double> lower, upper, counts;
  for (auto [index, count] : h.nonzero_counts()) {
    // highest_equivalent is the last whole microsecond of the bucket; + 1 µs ends it.
    lower.push_back(std::max(0.0, h.lowest_equivalent(index) - 0.5e-6));
    upper.push_back(h.highest_equivalent(index) + 0.5e-6);
    counts.push_back(static_cast<double>(count));
  }
  return observations_from_buckets(lower, upper, counts);
}

std::string family_name(fit_family f) {
  switch (f) {
    case fit_family::exponential:
      return "exponential";
    case fit_family::lognormal:
      return "lognormal";
    case fit_family::gamma:
      return "gamma";
    case fit_family::empirical:
      return "empirical";
  }
  return "?";
}

family_fit fit_family_ml(const latency_observations& obs, fit_family family, double floor) {
  if (obs.value.empty()) throw std::invalid_argument("no latencies to fit");
  if (obs.value.front() <= floor) {
    std::ostringstream os;
    os << "a latency of " << obs.value.front() << " s is at or below the floor of " << floor
       << " s";
    throw std::invalid_argument(os.str());
  }
  const double n = obs.total_weight();
  const double mean = weighted_sum(obs, floor, [](double y) { return y; }) / n;
  const double mean_log = weighted_sum(obs, floor, [](double y) { return std::log(y); }) / n;
  family_fit f;
  f.family = family;
  switch (family) {
    case fit_family::exponential:
      f.parameters = 1;
      f.fitted = distribution::exponential(mean);
      f.log_likelihood = -n * (std::log(mean) + 1.0);  // sum y / mean = n at the MLE
      break;
    case fit_family::lognormal: {
      f.parameters = 2;
      double var = weighted_sum(obs, floor,
                                [&](double y) {
                                  double z = std::log(y) - mean_log;
                                  return z * z;
                                }) /
                   n;
      double sigma = std::sqrt(var);
      if (!(sigma > 0)) throw std::invalid_argument("every latency is the same: no spread to fit");
      f.fitted = distribution::lognormal(mean_log, sigma);
      f.log_likelihood = -n * (mean_log + std::log(sigma) + half_log_two_pi + 0.5);
      break;
    }
    case fit_family::gamma: {
      f.parameters = 2;
      double s = std::log(mean) - mean_log;  // >= 0 by Jensen; 0 only if all values are equal
      if (!(s > 0)) throw std::invalid_argument("every latency is the same: no spread to fit");
      double shape = gamma_shape(s), scale = mean / shape;
      f.fitted = distribution::gamma(shape, scale);
      f.log_likelihood =
          n * ((shape - 1) * mean_log - shape - std::lgamma(shape) - shape * std::log(scale));
      break;
    }
    case fit_family::empirical:
      throw std::invalid_argument("the empirical table is not a maximum-likelihood family");
  }
  f.fitted = f.fitted.shifted(floor);
  f.aic = 2.0 * f.parameters - 2.0 * f.log_likelihood;
  f.ks = ks_distance(obs, f);
  f.p50_fitted = quantile(f, 0.50);
  f.p99_fitted = quantile(f, 0.99);
  return f;
}

distribution_fit fit_distribution(const latency_observations& obs,
                                  const distribution_fit_options& options) {
  distribution_fit out;
  out.count = obs.total_weight();
  if (!(out.count > 0)) throw std::invalid_argument("no latencies to fit");
  out.p50_measured = obs.quantile(0.50);
  out.p99_measured = obs.quantile(0.99);
  for (auto family : {fit_family::exponential, fit_family::lognormal, fit_family::gamma})
    out.candidates.push_back(fit_family_ml(obs, family, options.floor));
  std::sort(out.candidates.begin(), out.candidates.end(),
            [](const family_fit& a, const family_fit& b) { return a.aic < b.aic; });

  const family_fit& best = out.candidates.front();
  const double ks_limit = std::max(options.ks_bound, 1.63 / std::sqrt(out.count));
  const double p99_error = std::abs(best.p99_fitted / out.p99_measured - 1.0);
  std::ostringstream note;
  note.precision(3);
  if (best.ks <= ks_limit && p99_error <= options.p99_bound) {
    out.chosen = best.fitted;
    out.family = best.family;
    note << family_name(best.family) << ": lowest AIC, KS " << best.ks << " <= " << ks_limit
         << ", p99 within " << 100 * p99_error << " %";
  } else {
    // Through the measured quantiles at every percent (a gap between two humps is then crossed
    // by one linear piece of 1 % of the mass), finer in the tail where the SLO is read.
    std::vector<double> probs{0.0, 0.001, 0.005};
    for (int i = 1; i < 100; ++i) probs.push_back(i / 100.0);
    for (double p : {0.995, 0.999, 0.9999, 1.0}) probs.push_back(p);
    std::vector<double> values;
    for (double p : probs) values.push_back(obs.quantile(p));
    out.chosen = distribution::quantile_table(probs, values);
    out.family = fit_family::empirical;
    note << "empirical: the best family (" << family_name(best.family) << ") has KS " << best.ks
         << " (bound " << ks_limit << ") and p99 off by " << 100 * p99_error << " % (bound "
         << 100 * options.p99_bound << " %)";
  }
  out.note = note.str();
  return out;
}

}  // namespace headroom::calibrate
