// The figures derived from a scenario's own fields (scenario.hpp).
#include "scenario.hpp"

#include <algorithm>
#include <cmath>

namespace headroom {

double offered_rate(const scenario& s) {
  if (s.arrivals.process != arrival_process::trace) return s.arrivals.rate;
  const auto& t = s.arrivals.times;
  if (t.size() < 2 || t.back() <= t.front()) return 0;
  return static_cast<double>(t.size() - 1) / (t.back() - t.front());
}

std::uint64_t in_flight_limit(const scenario& s) {
  if (s.run.max_in_flight > 0) return s.run.max_in_flight;
  double n = std::ceil(offered_rate(s) * in_flight_time_bound);
  return static_cast<std::uint64_t>(std::clamp(n, 1000.0, 200000.0));
}

}  // namespace headroom
