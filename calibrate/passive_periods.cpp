// Cutting a window of request rates into steady periods (passive_periods.hpp).
#include "passive_periods.hpp"

#include <cmath>

namespace headroom::calibrate {

std::vector<steady_period> find_steady_periods(const std::vector<rate_interval>& intervals,
                                               const steady_period_options& o) {
  std::vector<steady_period> out;
  steady_period open;
  double sum = 0;
  auto close = [&] {
    if (open.intervals > 0 && open.end - open.start >= o.min_length - 1e-9 &&
        open.mean_rate >= o.min_rate)
      out.push_back(open);
    open = {};
    sum = 0;
  };
  for (const rate_interval& i : intervals) {
    if (!std::isfinite(i.rate)) {  // a gap in the data ends a period
      close();
      continue;
    }
    if (open.intervals > 0) {
      const double mean = (sum + i.rate) / static_cast<double>(open.intervals + 1);
      // Against the mean with the new interval included: on a slow ramp the mean lags the
      // newest rate by half the period's span, so the ramp is cut into periods about twice the
      // tolerance wide instead of one that drifted.
      const bool steady = std::abs(i.rate - mean) <= o.tolerance * mean;
      if (!steady || i.start > open.end + 1e-6) close();
    }
    if (open.intervals == 0) open.start = i.start;
    open.end = i.end;
    sum += i.rate;
    ++open.intervals;
    open.mean_rate = sum / static_cast<double>(open.intervals);
  }
  close();
  return out;
}

}  // namespace headroom::calibrate
