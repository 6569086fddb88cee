// The two knees side by side (knee_check.hpp).
#include "knee_check.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "calibration_fit.hpp"
#include "prediction.hpp"

namespace headroom::calibrate {
namespace {

bool at_setting(const calibration_step& s, const scenario& model) {
  if (!s.pool) return true;
  return s.pool->max_open == model.pool.max_open && s.pool->max_idle == model.pool.max_idle;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

std::string knee_rate_text(double r) {
  std::ostringstream os;
  os.precision(r >= 100 ? 0 : 1);
  os << std::fixed << r;
  return os.str();
}

knee_comparison measured_knee(const scenario& model, const std::vector<calibration_step>& steps,
                              const latency_slo& slo) {
  knee_comparison k;
  std::map<double, rate_verdict> by_rate;
  std::vector<double> lengths, warmups;
  for (const calibration_step& s : steps) {
    if (!at_setting(s, model) || !(s.rate > 0)) continue;
    rate_verdict& v = by_rate[s.rate];
    v.rate = s.rate;
    ++v.repeats;
    if (!s.stopped_early && s.load.latency_all.percentile(100 * slo.quantile) <= slo.latency)
      ++v.met;
    lengths.push_back(s.load.duration > 0 ? s.load.duration : s.window);
    warmups.push_back(s.load.warmup);
  }
  if (by_rate.empty()) return k;
  k.available = true;
  for (const auto& [rate, v] : by_rate) {
    k.rates.push_back(v);
    if (v.most_met()) k.measured = rate;
  }
  k.measured_is_lower_bound = k.measured > 0 && k.measured == k.rates.back().rate;
  k.step_length = median(lengths);
  k.warmup = median(warmups);
  return k;
}

knee_comparison compare_knees(const scenario& model, const std::vector<calibration_step>& steps,
                              const latency_slo& slo, int runs) {
  knee_comparison k = measured_knee(model, steps, slo);
  if (!k.available || !(k.step_length > 0)) {
    k.available = false;
    return k;
  }
  // As cross-validation predicts a step (its client, its pool), at the steps' median length.
  const calibration_step* first = nullptr;
  for (const calibration_step& s : steps)
    if (at_setting(s, model) && s.rate > 0 && !first) first = &s;
  scenario base = scenario_for_step(model, *first);
  if (base.arrivals.process == headroom::arrival_process::trace) {
    base.arrivals.process = headroom::arrival_process::constant;
    base.arrivals.times.clear();
  }
  base.run.slo_quantile = slo.quantile;
  base.run.slo_latency = slo.latency;
  base.run.live_length = k.step_length;
  base.run.live_warmup = k.warmup;
  auto meets = [&](double rate) {
    scenario s = base;
    s.arrivals.rate = rate;
    if (!overload_check(s).empty()) return false;
    return predict_live_runs(s, runs).p_slo >= 0.5;
  };
  // A bracket [lo meets, hi misses] from the measured rates upwards, then bisection to 2 %.
  double lo = 0, hi = 0;
  for (const rate_verdict& v : k.rates) {
    if (!meets(v.rate)) {
      hi = v.rate;
      break;
    }
    lo = v.rate;
  }
  const double ceiling = 4 * k.rates.back().rate;
  while (hi == 0) {
    const double next = std::min(2 * lo, ceiling);
    if (!meets(next)) {
      hi = next;
    } else {
      lo = next;
      if (next >= ceiling) break;
    }
  }
  if (hi == 0) {
    k.predicted = lo;
    k.predicted_is_lower_bound = true;
  } else {
    if (lo == 0 && !meets(lo = hi / 8)) lo = 0;  // the lowest step misses: look below it
    while (lo > 0 && hi > lo * 1.02) {
      const double mid = std::sqrt(lo * hi);
      (meets(mid) ? lo : hi) = mid;
    }
    k.predicted = lo;
  }

  if (k.measured > 0) {
    k.difference = (k.predicted - k.measured) / k.measured;
    // A measured knee at the last step is only a lower bound: a model above it agrees.
    k.disagrees = k.difference < -knee_tolerance ||
                  (k.difference > knee_tolerance && !k.measured_is_lower_bound);
  } else {
    k.disagrees = k.predicted > 0;  // every step missed, the model says some rate meets
  }
  if (!k.disagrees) return k;

  // The steps on the wrong side of the model's knee: met above it, or missed below it.
  std::ostringstream steps_text;
  int named = 0;
  for (const rate_verdict& v : k.rates) {
    const bool model_meets = v.rate <= k.predicted;
    if (model_meets == v.most_met()) continue;
    steps_text << (named++ ? ", " : "") << knee_rate_text(v.rate) << " (" << v.met << " of "
               << v.repeats << ")";
  }
  std::ostringstream os;
  os << "warning: the model's knee at max_open " << model.pool.max_open << ", max_idle "
     << model.pool.max_idle << " is " << (k.predicted_is_lower_bound ? "over " : "")
     << knee_rate_text(k.predicted) << " req/s, the steps measured "
     << (k.measured_is_lower_bound ? "at least " : "") << knee_rate_text(k.measured) << " req/s ("
     << (k.difference >= 0 ? "+" : "") << std::lround(100 * k.difference) << " %, beyond "
     << std::lround(100 * knee_tolerance)
     << " %): " << (k.predicted < k.measured ? "met " : "missed ") << slo.text()
     << (k.predicted < k.measured ? " above" : " below") << " the model's knee at "
     << steps_text.str() << " req/s (steps that met of those run; knee: the highest rate at "
     << "which most " << k.step_length << " s runs meet the SLO)";
  k.line = os.str();
  return k;
}

}  // namespace headroom::calibrate
