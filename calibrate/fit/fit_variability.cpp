// The per-run speed factor's spread from repeated steps; the maths is in fit_variability.hpp.
#include "fit_variability.hpp"

#include <boost/math/distributions/chi_squared.hpp>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace headroom::calibrate {

variability_fit fit_speed_factor(const std::vector<std::vector<double>>& repeats,
                                 double confidence) {
  if (!(confidence > 0 && confidence < 1))
    throw std::invalid_argument("variability: confidence must be between 0 and 1");
  variability_fit out;
  out.confidence = confidence;
  double sum_squares = 0;
  for (const auto& step : repeats) {
    for (double v : step)
      if (!(v > 0)) throw std::invalid_argument("variability: a repeated measurement is <= 0");
    if (step.size() < 2) continue;
    double mean_log = 0;
    for (double v : step) mean_log += std::log(v);
    mean_log /= static_cast<double>(step.size());
    for (double v : step) sum_squares += std::pow(std::log(v) - mean_log, 2);
    out.steps += 1;
    out.degrees_of_freedom += static_cast<int>(step.size()) - 1;
  }
  if (out.degrees_of_freedom == 0)
    throw std::invalid_argument("variability: no step was measured twice, so no spread is known");

  const double nu = out.degrees_of_freedom;
  boost::math::chi_squared chi2(nu);
  const double tail = 0.5 * (1.0 - confidence);
  out.sigma = std::sqrt(sum_squares / nu);
  out.sigma_low = std::sqrt(sum_squares / boost::math::quantile(chi2, 1.0 - tail));
  out.sigma_high = std::sqrt(sum_squares / boost::math::quantile(chi2, tail));

  std::ostringstream note;
  note.precision(2);
  note << "sigma " << out.sigma << " from " << out.steps << " steps (" << out.degrees_of_freedom
       << " degrees of freedom): the " << 100 * confidence << " % interval runs from "
       << out.sigma_low / out.sigma << " to " << out.sigma_high / out.sigma
       << " times the estimate";
  out.note = note.str();
  return out;
}

}  // namespace headroom::calibrate
