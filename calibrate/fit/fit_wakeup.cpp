// The wake-up of an idle host from steps' p50; the maths is in fit_wakeup.hpp.
#include "fit_wakeup.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

namespace headroom::calibrate {

namespace {

// The least share of the delay that the ramp must span between the shortest and longest gap.
constexpr double min_ramp_span = 0.25;

struct line_fit {
  double intercept = 0, slope = 0, slope_se = 0, sse = 0;
  bool ok = false;
};

// Least squares of y on x, with the slope's standard error.
line_fit fit_line(const std::vector<double>& x, const std::vector<double>& y) {
  line_fit f;
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) mx += x[i], my += y[i];
  mx /= n, my /= n;
  double sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    sxx += (x[i] - mx) * (x[i] - mx), sxy += (x[i] - mx) * (y[i] - my);
  if (!(sxx > 1e-12 * n)) return f;  // x constant: the slope is not identified
  f.slope = sxy / sxx;
  f.intercept = my - f.slope * mx;
  for (std::size_t i = 0; i < x.size(); ++i)
    f.sse += std::pow(y[i] - f.intercept - f.slope * x[i], 2);
  f.slope_se = n > 2 ? std::sqrt(f.sse / (n - 2) / sxx) : 0;
  f.ok = true;
  return f;
}

}  // namespace

wakeup_fit fit_wakeup(const std::vector<wakeup_point>& points) {
  wakeup_fit out;
  out.points = static_cast<int>(points.size());
  std::set<double> gaps;
  double mean = 0;
  for (const wakeup_point& p : points) gaps.insert(p.gap), mean += p.p50;
  out.gaps = static_cast<int>(gaps.size());
  if (out.gaps < 3) {
    out.note = "not fitted: " + std::to_string(out.gaps) +
               " distinct rates among the quiet steps (3 or more are needed)";
    return out;
  }
  mean /= static_cast<double>(points.size());
  double sse0 = 0;
  for (const wakeup_point& p : points) sse0 += std::pow(p.p50 - mean, 2);
  out.rms_without = std::sqrt(sse0 / static_cast<double>(points.size()));
  out.base = mean;
  out.rms = out.rms_without;

  // idle on a log grid from a quarter of the shortest gap to four times the longest.
  const double lo = *gaps.begin() / 4, hi = *gaps.rbegin() * 4;
  const int grid = 400;
  line_fit best;
  double best_idle = 0;
  std::vector<double> x(points.size()), y(points.size());
  for (std::size_t i = 0; i < points.size(); ++i) y[i] = points[i].p50;
  for (int k = 0; k < grid; ++k) {
    const double idle = lo * std::pow(hi / lo, k / double(grid - 1));
    for (std::size_t i = 0; i < points.size(); ++i) x[i] = std::min(1.0, points[i].gap / idle);
    // An idle at which the ramp hardly moves over the measured gaps (all of them past it, or
    // the shortest just below it) would turn a few points' noise into a large delay.
    const auto [x_min, x_max] = std::minmax_element(x.begin(), x.end());
    if (*x_max - *x_min < min_ramp_span) continue;
    line_fit f = fit_line(x, y);
    if (f.ok && (!best.ok || f.sse < best.sse)) best = f, best_idle = idle;
  }
  std::ostringstream note;
  note.precision(2);
  if (!best.ok || !(best.slope > 0) || !(best.slope > 5 * best.slope_se)) {
    note << "none: p50 does not fall as the load grows (" << out.points << " steps, " << out.gaps
         << " rates)";
    out.note = note.str();
    return out;
  }
  out.found = true;
  out.delay = best.slope;
  out.delay_standard_error = best.slope_se;
  out.idle = best_idle;
  out.base = best.intercept;
  out.rms = std::sqrt(best.sse / static_cast<double>(points.size()));
  note << "p50 " << 1e3 * out.base << " ms awake, " << 1e3 * (out.base + out.delay)
       << " ms after an idle gap of " << 1e3 * out.idle << " ms or more (" << out.points
       << " steps, " << out.gaps << " rates; rms " << 1e3 * out.rms << " ms, "
       << 1e3 * out.rms_without << " ms without a wake-up)";
  if (out.idle > *gaps.rbegin())
    note << "; the longest gap measured is " << 1e3 * *gaps.rbegin()
         << " ms, so the cost past it is extrapolated";
  out.note = note.str();
  return out;
}

spread_split fit_spread_split(const std::vector<spread_point>& points) {
  // The cost is convex and piecewise linear in (a, b), so its least on the quadrant a, b >= 0 is
  // at a corner: where two points' lines a + b x_i = y_i cross, or one meets an edge (a = 0 or
  // b = 0), or the origin. Every corner is tried: n^2 lines of n points each, 45 quiet steps in
  // a calibration of --auto's size.
  auto cost = [&](double a, double b) {
    double c = 0;
    for (const spread_point& p : points) c += std::abs(p.y - a - b * p.x);
    return c;
  };
  spread_split best;
  double best_cost = cost(0, 0);
  auto consider = [&](double a, double b) {
    if (!(a >= 0) || !(b >= 0) || !std::isfinite(a) || !std::isfinite(b)) return;
    if (const double c = cost(a, b); c < best_cost) best_cost = c, best = {a, b};
  };
  for (std::size_t i = 0; i < points.size(); ++i) {
    const spread_point& p = points[i];
    consider(p.y, 0);
    if (p.x > 0) consider(0, p.y / p.x);
    for (std::size_t j = i + 1; j < points.size(); ++j) {
      const spread_point& q = points[j];
      if (q.x == p.x) continue;
      const double b = (q.y - p.y) / (q.x - p.x);
      consider(p.y - b * p.x, b);
    }
  }
  return best;
}

}  // namespace headroom::calibrate
