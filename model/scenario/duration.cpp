// Durations with units (duration.hpp).
#include "duration.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace headroom {

double parse_duration(const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    throw std::invalid_argument("not a duration: '" + text + "' (try 20s, 500ms, 2m)");
  }
  const std::string unit = text.substr(used);
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1;
  else if (unit == "ms")
    scale = 1e-3;
  else if (unit == "us")
    scale = 1e-6;
  else if (unit == "m")
    scale = 60;
  else if (unit == "h")
    scale = 3600;
  else
    throw std::invalid_argument("not a duration: '" + text + "' (units: us, ms, s, m, h)");
  if (!std::isfinite(value)) throw std::invalid_argument("not a duration: '" + text + "'");
  return value * scale;
}

std::string format_duration(double seconds) {
  std::ostringstream os;
  os.precision(4);
  const double a = std::fabs(seconds);
  if (a == 0)
    os << "0s";
  else if (a < 1e-3)
    os << seconds * 1e6 << "us";
  else if (a < 1)
    os << seconds * 1e3 << "ms";
  else if (a < 60 || std::fmod(a, 60) != 0)
    os << seconds << "s";
  else if (std::fmod(a, 3600) != 0)
    os << seconds / 60 << "m";
  else
    os << seconds / 3600 << "h";
  return os.str();
}

}  // namespace headroom
