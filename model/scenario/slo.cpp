// Latency SLOs (slo.hpp).
#include "slo.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "duration.hpp"

namespace headroom {

std::string latency_slo::name() const {
  std::ostringstream os;
  os.precision(6);
  os << "p" << quantile * 100;
  return os.str();
}

std::string latency_slo::text() const { return name() + " < " + format_duration(latency); }

latency_slo parse_slo(const std::string& text) {
  const std::string form = " (expected e.g. p99=60ms: a percentile p50..p99.9, '=', a duration)";
  const std::size_t eq = text.find('=');
  if (text.size() < 2 || (text[0] != 'p' && text[0] != 'P') || eq == std::string::npos)
    throw std::invalid_argument("not an SLO: '" + text + "'" + form);
  latency_slo s;
  const std::string pct = text.substr(1, eq - 1);
  std::size_t used = 0;
  double p = 0;
  try {
    p = std::stod(pct, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != pct.size() || !(p > 0 && p < 100))
    throw std::invalid_argument("not an SLO: '" + text + "': the percentile must be in (0, 100)" +
                                form);
  s.quantile = p / 100;
  try {
    s.latency = parse_duration(text.substr(eq + 1));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("not an SLO: '" + text + "': " + e.what());
  }
  if (!(s.latency > 0)) throw std::invalid_argument("not an SLO: '" + text + "': the latency must be > 0");
  return s;
}

}  // namespace headroom
