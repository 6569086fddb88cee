// Fits one owner's CPU demands (the service, the database or the generator) across load steps
// by non-negative weighted least squares: CPU per request, per dial, per close, the growth of
// the per-request cost with load, and a background cost per second.
//
// The maths, once. Step s measured CPU y_s over a window of T_s seconds with r_s requests,
// d_s dials, c_s closes and L_s runnable tasks on average. The model is
//   y_s = r_s (a0 + a1 L_s) + g T_s + b d_s + c c_s
// which is linear in x = (a0, g, b, c, a1): y = X x. Why these terms:
//   - a1 L: per-request overhead that grows with the number of runnable tasks (context
//     switches, cache refills when more tasks share the cores). L is the step's mean run-queue
//     length (running + waiting, from /proc/schedstat), which the simulator also knows at every
//     moment (the jobs sharing the CPU), so the fitted form can be evaluated inside the model.
//     It is identifiable as soon as the steps ran at different loads, and linear, so the same
//     least squares fits it. Utilisation would saturate at 1 exactly where the cost keeps growing.
//   - g T: CPU burnt per second whatever the rate (timers, scrapes, idle polling). Without it a
//     per-request cost must absorb it, which is why measured CPU per request *falls* from 300 to
//     1,800 rps (issue 8: 0.94 ms to 0.65 ms).
// Each row is divided by y_s, so every step counts by its relative error: CPU noise is roughly
// proportional to the CPU (the machine's speed varies by a factor from run to run).
// Costs cannot be negative. With at most five terms the non-negative least-squares optimum is
// found exactly by solving the unconstrained problem on every subset of terms and keeping the
// best solution whose coefficients are all >= 0 (the NNLS optimum is the unconstrained optimum
// on its set of positive terms). A term left at 0 is reported as clamped.
// Weights: 1 / y_s first, then 1 / fitted_s (twice), so a step's own noise does not set its
// weight. Standard errors on the positive terms P are heteroscedasticity-robust (HC3:
// (X'X)^-1 X' diag(e_s^2 / (1 - h_s)^2) X (X'X)^-1, h the leverage): a low-rate step's CPU is
// mostly a few dozen dials and closes, so it is noisier relative to its size than a busy
// step's, and one pooled sigma^2 understated the background and dial errors by half.
// Identifiability is checked first, term by term in the order above: a term whose column (scaled
// to unit length) is within 1e-3 of the span of the terms already kept cannot be told apart from
// them (all zero: "no step has any dials"; a combination: closes equal to dials in every step),
// is not fitted, and is named with the reason; the others are fitted.
#pragma once

#include <string>
#include <vector>

namespace headroom::calibrate {

struct demand_step {
  double window_seconds = 0;
  double cpu_seconds = 0;  // this owner's CPU over the window (> 0)
  double requests = 0, dials = 0, closes = 0;
  double runnable = 0;  // mean runnable tasks on the host over the window (running + waiting)
};

struct demand_fit_options {
  bool load_dependent = true;  // fit a1 (needs steps at different loads)
  bool background = true;      // fit g (needs steps at different rates)
};

struct demand_term {
  std::string name;  // request, background, dial, close, request_per_runnable
  std::string unit;  // "s per request", ...
  bool fitted = false;
  bool clamped = false;  // the unconstrained fit wanted it below 0; held at 0
  double value = 0;
  double standard_error = 0;  // NaN when clamped or when no degree of freedom is left
  std::string reason;         // why it was not fitted (empty when it was)
};

struct demand_fit {
  std::string owner;
  std::vector<demand_term> terms;
  std::vector<double> predicted, residual;  // per step, CPU seconds (measured - predicted)
  double r_squared = 0;                     // of the CPU seconds, 1 - RSS / TSS
  double rms_relative_residual = 0;         // sqrt(mean((y - fit) / y)^2)
  std::vector<std::string> not_fitted;      // one line per term that could not be fitted

  const demand_term& term(const std::string& name) const;  // throws if no such term
  // The fitted value; throws std::domain_error with the reason if it could not be fitted.
  double cost(const std::string& name) const;
};

// Throws std::invalid_argument on bad input (no steps, CPU <= 0, negative counts, fewer steps
// than fittable terms).
demand_fit fit_cpu_demands(const std::string& owner, const std::vector<demand_step>& steps,
                           const demand_fit_options& options = {});

}  // namespace headroom::calibrate
