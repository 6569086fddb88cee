// Which load steps a calibration runs, and in which order: the study's explicit rates, or an
// automatic geometric ramp that stops at the first guard and then refines around the knee.
// Every rate is measured `repeats` times, the repeats interleaved (all rates once, then all
// again), so a drift of the machine's speed shows as spread between repeats, not as a trend
// across rates. Pure logic: the runner measures, the plan decides what comes next.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace headroom::calibrate {

struct step_plan_options {
  std::vector<double> rates;  // explicit rates (requests/s); empty = automatic ramp
  double start_rate = 50;     // automatic: the first rate
  double growth = 1.6;        // automatic: each rate is the previous x growth
  int refine = 2;             // automatic: rates added between the last good and the guard's rate
  double max_rate = 5000;     // never exceeded, explicit rates included (they are refused)
  int repeats = 2;            // measurements of every rate
  double slo_latency = 0.060;     // the SLO's latency (seconds) at slo_quantile
  double slo_quantile = 0.99;     // p99 by default
  double max_errors = 0.01;       // failed fraction that ends the ramp (and stops a step)
  double abort_latency = 0.600;   // p99 that ends the ramp (and stops a step): 10 x SLO
  double saturation = 0.95;       // achieved / offered under this: the target cannot keep up
};

// What the runner saw in one step, as far as the plan cares.
struct step_outcome {
  double rate = 0;             // offered
  double achieved = 0;         // completed per second
  double latency_quantile = 0; // of all requests (failed and censored included), seconds
  double failed_fraction = 0;
  bool stopped_early = false;  // a guard stopped the step before its end
};

struct planned_step {
  double rate = 0;
  int repeat = 0;  // 0-based
  std::size_t index = 0;  // position in the run, 0-based
};

class step_plan {
 public:
  explicit step_plan(step_plan_options o);  // throws std::invalid_argument naming the option

  // The next step to run, or nothing when the plan is done (see stop_reason()).
  std::optional<planned_step> next();
  // The outcome of the step next() returned last.
  void record(const step_outcome& o);

  // Why a step must stop early ("" = keep going), from figures measured so far in the step.
  std::string abort_reason(double latency_quantile, double failed_fraction) const;
  // Why the ramp ended ("" while it runs or when every explicit rate was measured).
  const std::string& stop_reason() const { return stop_reason_; }
  // Steps planned so far (an automatic plan grows as it learns; an estimate for progress).
  std::size_t planned() const;
  const step_plan_options& options() const { return o_; }

 private:
  // explicit: the given rates once; climbing: the automatic ramp; refining: rates added
  // between the last good rate and the guard's; repeating: the later passes.
  enum class phase { explicit_rates, climbing, refining, repeating };

  std::string guard(const step_outcome& o) const;  // "" if the step passed every guard
  void drop_from(double rate);                     // no queued step at this rate or above
  void start_repeats();

  step_plan_options o_;
  phase phase_;
  std::vector<double> safe_rates_;  // first-pass rates that tripped no errors/latency guard
  std::vector<planned_step> queue_;
  std::size_t issued_ = 0;
  double last_good_ = 0;  // climbing: the highest rate that passed every guard
  std::string stop_reason_;
  std::optional<planned_step> current_;
};

}  // namespace headroom::calibrate
