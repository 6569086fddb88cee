// Sampling and moments of the scenario distributions.
#include "distribution.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace headroom {

namespace {
void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(what);
}

// Marsaglia & Tsang (2000); for shape < 1 the boost Gamma(a+1) * U^(1/a) keeps it exact.
double sample_gamma(double shape, double scale, random_stream& rng) {
  double boost = 1.0;
  if (shape < 1.0) {
    boost = std::pow(rng.uniform_open(), 1.0 / shape);
    shape += 1.0;
  }
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = rng.normal(), v = 1.0 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    double u = rng.uniform_open();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * scale * boost;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v * scale * boost;
  }
}
}  // namespace

distribution distribution::exponential(double mean) {
  require(mean > 0, "exponential mean must be > 0");
  distribution d;
  d.kind = distribution_kind::exponential;
  d.p1 = mean;
  return d;
}

distribution distribution::deterministic(double value) {
  require(value >= 0, "deterministic value must be >= 0");
  distribution d;
  d.kind = distribution_kind::deterministic;
  d.p1 = value;
  return d;
}

distribution distribution::uniform(double low, double high) {
  require(low >= 0 && high >= low, "uniform needs 0 <= low <= high");
  distribution d;
  d.kind = distribution_kind::uniform;
  d.p1 = low;
  d.p2 = high;
  return d;
}

distribution distribution::lognormal(double mu, double sigma) {
  require(sigma >= 0 && std::isfinite(mu), "lognormal needs finite mu and sigma >= 0");
  distribution d;
  d.kind = distribution_kind::lognormal;
  d.p1 = mu;
  d.p2 = sigma;
  return d;
}

distribution distribution::lognormal_mean_cv(double mean, double cv) {
  require(mean > 0 && cv >= 0, "lognormal needs mean > 0 and cv >= 0");
  double s2 = std::log1p(cv * cv);
  return lognormal(std::log(mean) - 0.5 * s2, std::sqrt(s2));
}

distribution distribution::gamma(double shape, double scale) {
  require(shape > 0 && scale > 0, "gamma needs shape > 0 and scale > 0");
  distribution d;
  d.kind = distribution_kind::gamma;
  d.p1 = shape;
  d.p2 = scale;
  return d;
}

distribution distribution::gamma_mean_cv(double mean, double cv) {
  require(mean > 0 && cv > 0, "gamma needs mean > 0 and cv > 0");
  double shape = 1.0 / (cv * cv);
  return gamma(shape, mean / shape);
}

distribution distribution::quantile_table(std::vector<double> probs, std::vector<double> values) {
  require(probs.size() >= 2 && probs.size() == values.size(),
          "quantile table needs at least two (p, value) points, as many values as probabilities");
  require(probs.front() == 0.0 && probs.back() == 1.0,
          "quantile table probabilities must run from 0 to 1");
  for (std::size_t i = 1; i < probs.size(); ++i) {
    require(probs[i] >= probs[i - 1], "quantile table probabilities must not decrease");
    require(values[i] >= values[i - 1], "quantile table values must not decrease");
  }
  require(values.front() >= 0, "quantile table values must be >= 0");
  distribution d;
  d.kind = distribution_kind::empirical;
  d.probs = std::move(probs);
  d.values = std::move(values);
  return d;
}

distribution distribution::histogram(const std::vector<double>& edges,
                                     const std::vector<double>& counts) {
  require(edges.size() >= 2 && counts.size() + 1 == edges.size(),
          "histogram needs bin edges and one count per bin (edges = counts + 1)");
  double total = 0;
  for (double c : counts) {
    require(c >= 0, "histogram counts must be >= 0");
    total += c;
  }
  require(total > 0, "histogram needs a positive count");
  std::vector<double> p{0.0}, v{edges.front()};
  double run = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    run += counts[i];
    p.push_back(i + 1 == counts.size() ? 1.0 : run / total);
    v.push_back(edges[i + 1]);
  }
  return quantile_table(std::move(p), std::move(v));
}

distribution distribution::mixture(const std::vector<double>& weights,
                                   std::vector<distribution> parts) {
  require(!parts.empty() && weights.size() == parts.size(),
          "mixture needs one weight per component");
  double total = 0;
  for (double w : weights) {
    require(w >= 0, "mixture weights must be >= 0");
    total += w;
  }
  require(total > 0, "mixture weights must not all be 0");
  distribution d;
  d.kind = distribution_kind::mixture;
  double run = 0;
  for (double w : weights) {
    run += w / total;
    d.cumulative_weights.push_back(run);
  }
  d.cumulative_weights.back() = 1.0;
  d.components = std::move(parts);
  return d;
}

distribution distribution::scaled(double k) const {
  if (!(k > 0)) throw std::invalid_argument("a distribution can only be scaled by k > 0");
  distribution d = *this;
  d.shift *= k;
  switch (kind) {
    case distribution_kind::zero:
      break;
    case distribution_kind::exponential:
    case distribution_kind::deterministic:
      d.p1 *= k;
      break;
    case distribution_kind::uniform:
      d.p1 *= k;
      d.p2 *= k;
      break;
    case distribution_kind::lognormal:
      d.p1 += std::log(k);  // mu: ln(k X) = ln k + ln X
      break;
    case distribution_kind::gamma:
      d.p2 *= k;  // scale
      break;
    case distribution_kind::empirical:
      for (double& v : d.values) v *= k;
      break;
    case distribution_kind::mixture:
      for (distribution& c : d.components) c = c.scaled(k);
      break;
  }
  return d;
}

double distribution::mean() const {
  double m = 0;
  switch (kind) {
    case distribution_kind::zero:
      m = 0;
      break;
    case distribution_kind::exponential:
      m = p1;
      break;
    case distribution_kind::deterministic:
      m = p1;
      break;
    case distribution_kind::uniform:
      m = 0.5 * (p1 + p2);
      break;
    case distribution_kind::lognormal:
      m = std::exp(p1 + 0.5 * p2 * p2);
      break;
    case distribution_kind::gamma:
      m = p1 * p2;
      break;
    case distribution_kind::empirical:
      for (std::size_t i = 1; i < probs.size(); ++i)
        m += (probs[i] - probs[i - 1]) * 0.5 * (values[i] + values[i - 1]);
      break;
    case distribution_kind::mixture: {
      double prev = 0;
      for (std::size_t i = 0; i < components.size(); ++i) {
        m += (cumulative_weights[i] - prev) * components[i].mean();
        prev = cumulative_weights[i];
      }
      break;
    }
  }
  return m + shift;
}

double distribution::second_moment() const {
  // Raw moments of the unshifted part first, then E[(X+s)^2] = E[X^2] + 2sE[X] + s^2.
  double m1 = mean() - shift, m2 = 0;
  switch (kind) {
    case distribution_kind::zero:
      m2 = 0;
      break;
    case distribution_kind::exponential:
      m2 = 2 * p1 * p1;
      break;
    case distribution_kind::deterministic:
      m2 = p1 * p1;
      break;
    case distribution_kind::uniform:
      m2 = (p1 * p1 + p1 * p2 + p2 * p2) / 3.0;
      break;
    case distribution_kind::lognormal:
      m2 = std::exp(2 * p1 + 2 * p2 * p2);
      break;
    case distribution_kind::gamma:
      m2 = p1 * (p1 + 1) * p2 * p2;
      break;
    case distribution_kind::empirical:
      // Uniform on each segment between consecutive values.
      for (std::size_t i = 1; i < probs.size(); ++i) {
        double a = values[i - 1], b = values[i];
        m2 += (probs[i] - probs[i - 1]) * (a * a + a * b + b * b) / 3.0;
      }
      break;
    case distribution_kind::mixture: {
      double prev = 0;
      for (std::size_t i = 0; i < components.size(); ++i) {
        m2 += (cumulative_weights[i] - prev) * components[i].second_moment();
        prev = cumulative_weights[i];
      }
      break;
    }
  }
  return m2 + 2 * shift * m1 + shift * shift;
}

double distribution::sample_other(random_stream& rng) const {
  double x = 0;
  switch (kind) {
    case distribution_kind::zero:
      break;
    case distribution_kind::exponential:
      x = rng.exponential(p1);
      break;
    case distribution_kind::deterministic:
      x = p1;
      break;
    case distribution_kind::uniform:
      x = p1 + (p2 - p1) * rng.uniform01();
      break;
    case distribution_kind::lognormal:
      x = std::exp(p1 + p2 * rng.normal());
      break;
    case distribution_kind::gamma:
      x = sample_gamma(p1, p2, rng);
      break;
    case distribution_kind::empirical: {
      double u = rng.uniform01();
      auto it = std::upper_bound(probs.begin(), probs.end(), u);
      std::size_t i = static_cast<std::size_t>(it - probs.begin());
      if (i >= probs.size()) i = probs.size() - 1;
      double p0 = probs[i - 1], p1v = probs[i];
      x = p1v > p0 ? values[i - 1] + (values[i] - values[i - 1]) * (u - p0) / (p1v - p0)
                   : values[i];
      break;
    }
    case distribution_kind::mixture: {
      double u = rng.uniform01();
      std::size_t i = 0;
      while (i + 1 < components.size() && u >= cumulative_weights[i]) ++i;
      x = components[i].sample(rng);
      break;
    }
  }
  return x + shift;
}

std::string distribution::describe() const {
  std::ostringstream os;
  os.precision(4);
  switch (kind) {
    case distribution_kind::zero:
      os << "none";
      break;
    case distribution_kind::exponential:
      os << "exponential(mean " << p1 << " s)";
      break;
    case distribution_kind::deterministic:
      os << "deterministic(" << p1 << " s)";
      break;
    case distribution_kind::uniform:
      os << "uniform(" << p1 << ", " << p2 << " s)";
      break;
    case distribution_kind::lognormal:
      os << "lognormal(mu " << p1 << ", sigma " << p2 << ")";
      break;
    case distribution_kind::gamma:
      os << "gamma(shape " << p1 << ", scale " << p2 << " s)";
      break;
    case distribution_kind::empirical:
      os << "empirical(" << probs.size() << " points)";
      break;
    case distribution_kind::mixture:
      os << "mixture(" << components.size() << " components)";
      break;
  }
  if (shift != 0) os << " + " << shift << " s";
  return os.str();
}

}  // namespace headroom
