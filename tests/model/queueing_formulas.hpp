// Exact queueing results from QUEUEING.md, for the model's tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>

namespace headroom::exact {

// Erlang C: probability that an arrival waits in M/M/c with offered load a = lambda/mu.
inline double erlang_c(int c, double a) {
  double term = 1, sum = 0;  // a^k / k!
  for (int k = 0; k < c; ++k) {
    sum += term;
    term *= a / (k + 1);
  }
  double top = term * c / (c - a);
  return top / (sum + top);
}

// Smallest t with f(t) >= p for a non-decreasing CDF f, by bisection.
inline double invert(const std::function<double(double)>& cdf, double p, double hi) {
  double lo = 0;
  while (cdf(hi) < p) hi *= 2;
  for (int i = 0; i < 200; ++i) {
    double mid = 0.5 * (lo + hi);
    (cdf(mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

struct mmc {
  int c;
  double lambda, mu;
  double a() const { return lambda / mu; }
  double theta() const { return c * mu - lambda; }
  double C() const { return erlang_c(c, a()); }
  double mean_wait() const { return C() / theta(); }
  double mean_response() const { return mean_wait() + 1 / mu; }
  // P(Wq > t) = C e^{-theta t}: the p-quantile of the wait in queue (0 below 1 - C).
  double wait_quantile(double p) const { return std::max(0.0, std::log(C() / (1 - p)) / theta()); }
  // P(T > t) from QUEUEING.md, including the theta == mu case.
  double response_tail(double t) const {
    double C_ = C(), th = theta();
    double second = std::fabs(th - mu) < 1e-12
                        ? C_ * (1 + mu * t) * std::exp(-mu * t)
                        : C_ * (th * std::exp(-mu * t) - mu * std::exp(-th * t)) / (th - mu);
    return (1 - C_) * std::exp(-mu * t) + second;
  }
  double response_quantile(double p) const {
    return invert([this](double t) { return 1 - response_tail(t); }, p, 10 / mu);
  }
};

// M/D/1 waiting-time CDF (Erlang), alternating terms summed in long double.
inline double md1_wait_cdf(double t, double lambda, double D) {
  long double rho = lambda * D, sum = 0;
  long k_max = static_cast<long>(std::floor(t / D));
  for (long k = 0; k <= k_max; ++k) {
    long double x = lambda * (k * D - t);
    sum += std::pow(x, static_cast<long double>(k)) / std::tgamma(static_cast<long double>(k + 1)) *
           std::exp(-x);
  }
  return static_cast<double>((1 - rho) * sum);
}

}  // namespace headroom::exact
