// Service-time and CPU-demand distributions, as data: what a scenario or a calibration
// file names, sampled from a random_stream. Seconds everywhere.
#pragma once

#include <string>
#include <vector>

#include "random_stream.hpp"

namespace headroom {

enum class distribution_kind {
  zero,           // nothing: the step is skipped (no event is scheduled)
  exponential,    // p1 = mean
  deterministic,  // p1 = value
  uniform,        // [p1, p2)
  lognormal,      // p1 = mu, p2 = sigma of the underlying normal
  gamma,          // p1 = shape, p2 = scale
  empirical,      // quantile table: piecewise-linear inverse CDF through (probs, values)
  mixture,        // components chosen with probabilities weights
};

struct distribution {
  distribution_kind kind = distribution_kind::zero;
  double p1 = 0, p2 = 0;
  double shift = 0;  // added to every sample (the "shifted" variants: a minimum time)
  std::vector<double> probs, values;       // empirical: probs from 0 to 1, both non-decreasing
  std::vector<double> cumulative_weights;  // mixture: running sum, last = 1
  std::vector<distribution> components;    // mixture

  static distribution none() { return {}; }
  static distribution exponential(double mean);
  static distribution deterministic(double value);
  static distribution uniform(double low, double high);
  static distribution lognormal(double mu, double sigma);
  static distribution lognormal_mean_cv(double mean, double cv);
  static distribution gamma(double shape, double scale);
  static distribution gamma_mean_cv(double mean, double cv);
  // Inverse CDF through the points (probs[i], values[i]); probs must start at 0 and end at 1.
  static distribution quantile_table(std::vector<double> probs, std::vector<double> values);
  // A histogram (bin edges, counts per bin), uniform inside each bin: the same quantile table.
  static distribution histogram(const std::vector<double>& edges,
                                const std::vector<double>& counts);
  static distribution mixture(const std::vector<double>& weights, std::vector<distribution> parts);
  // Every sample multiplied by k > 0 (a faster or slower machine): same shape, mean x k.
  distribution scaled(double k) const;
  distribution shifted(double s) const {
    distribution d = *this;
    d.shift += s;
    return d;
  }

  bool is_zero() const { return kind == distribution_kind::zero && shift == 0; }
  double mean() const;
  // E[X^2], for Pollaczek-Khinchine style checks and the stability estimate.
  double second_moment() const;
  // The common kinds inline (a sample is drawn for almost every event); the rest out of line.
  double sample(random_stream& rng) const {
    switch (kind) {
      case distribution_kind::zero:
        return shift;
      case distribution_kind::deterministic:
        return p1 + shift;
      case distribution_kind::exponential:
        return rng.exponential(p1) + shift;
      default:
        return sample_other(rng);
    }
  }
  double sample_other(random_stream& rng) const;
  std::string describe() const;  // "lognormal(mean 0.0005 s, cv 1.2)" for messages
};

}  // namespace headroom
