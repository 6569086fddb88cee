// Fits the spread of a per-run machine-speed factor from repeated measurements of the same load
// steps (a step's p99, or its CPU per request, measured in each repeat).
//
// The maths, once. Repeat r of step s measured x_sr = m_s F_sr, where m_s is the step's own
// level and F_sr a factor of that run, independent across runs, lognormal with mean 1:
// ln F ~ Normal(-sigma^2 / 2, sigma^2). Working on logs removes each step's level: with
// z_sr = ln x_sr - mean_r(ln x_sr) (the log ratio to the step's geometric mean),
//   sum_r z_sr^2 / sigma^2 ~ chi^2 with R_s - 1 degrees of freedom, independently per step,
// so steps with different means pool into nu = sum_s (R_s - 1) degrees of freedom and
//   sigma^2 = sum_sr z_sr^2 / nu            (the maximum-likelihood estimate once the step
//                                            levels are profiled out, with REML's divisor)
//   90 % interval: [SS / chi^2_nu(0.95), SS / chi^2_nu(0.05)], SS = sum_sr z_sr^2
// exact for lognormal factors. The interval's width is set by nu alone: with 2 repeats per step
// each step adds one degree of freedom, and 5 steps (nu = 5) leave sigma known only within
// about a factor [0.67, 2.1] of its estimate; the relative standard error of sigma is about
// 1 / sqrt(2 nu).
#pragma once

#include <string>
#include <vector>

namespace headroom::calibrate {

struct variability_fit {
  double sigma = 0;                      // lognormal sigma of the per-run factor
  double sigma_low = 0, sigma_high = 0;  // confidence interval at `confidence`
  double confidence = 0.9;
  int steps = 0;               // steps with at least two repeats (the others carry no spread)
  int degrees_of_freedom = 0;  // nu
  std::string note;            // how well the repeats pin sigma down, in one sentence
};

// repeats[s] holds step s's measurements (> 0), one per repeat. Throws std::invalid_argument
// if no step has two repeats or a value is <= 0.
variability_fit fit_speed_factor(const std::vector<std::vector<double>>& repeats,
                                 double confidence = 0.9);

}  // namespace headroom::calibrate
