// The intake's stalls fitted by simulating candidates against the steps (fit_stalls.hpp).
#include "fit_stalls.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "calibration_fit.hpp"
#include "prediction.hpp"
#include "request_path_model.hpp"

namespace headroom::calibrate {

namespace json = boost::json;

namespace {

// The candidates: the share of time the intake is stalled, and a stall's mean length. A grid,
// not a local search: the loss is a sum over simulated runs, flat in places and stepped where a
// step starts to fall over, and a grid shows the whole shape in the report.
constexpr double shares[] = {0.001, 0.003, 0.01, 0.03};
// ... or so many stalls per request offered (pauses that come with the load).
constexpr double per_request[] = {0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03};
constexpr double lengths[] = {0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032};

// The 95 % point of chi-square with 2 degrees of freedom: -2 ln(0.05).
constexpr double chi_square_2_at_95 = 5.991;

// Two shapes of a stall's length: exponential (most short, a few long) or all the same (a
// thread descheduled for about one scheduler slice).
distribution stall_length(double mean, bool fixed) {
  return fixed ? distribution::deterministic(mean) : distribution::exponential(mean);
}

// One point of the grid: stalls per second set by a share of time stalled, or stalls per
// request; a mean length, exponential or fixed. value 0: no stalls.
struct candidate {
  bool per_request = false;
  double value = 0, length = 0;
  bool fixed = false;
  void apply(scenario& m) const {
    if (!(value > 0)) return;
    m.stall_length = stall_length(length, fixed);
    if (per_request)
      m.stall_per_request = value;
    else
      m.stall_rate = value / (length * (1 - value));  // share = length / (length + 1 / rate)
  }
  json::object to_json() const {
    return {{per_request ? "per_request" : "share", value},
            {"mean_length", length},
            {"lengths", fixed ? "deterministic" : "exponential"}};
  }
};

std::vector<candidate> candidates() {
  std::vector<candidate> out;
  for (bool fixed : {false, true})
    for (double length : lengths) {
      for (double share : shares) out.push_back({false, share, length, fixed});
      for (double p : per_request) out.push_back({true, p, length, fixed});
    }
  return out;
}

// Replications numbered apart from predict's, and the same for every candidate (common random
// numbers), so two candidates differ by their stalls, not by their luck.
constexpr std::uint64_t first_replication = 3ull << 30;

// How a step's simulated runs came out.
struct simulated_step {
  int runs = 0, missed = 0;  // runs that missed the SLO (or fell over)
  double median_p99 = 0;     // over the runs that met it (0: none did)
  double dials_per_s = 0;    // mean over the runs that met it
};

simulated_step simulate_step(const scenario& model, const calibration_step& step, int runs,
                             const stall_fit_options& o, std::uint64_t first) {
  const scenario s = one_live_run(scenario_for_step(model, step));
  simulated_step out;
  out.runs = runs;
  std::vector<double> p99s;
  double dials = 0;
  for (const replication_result& r : run_replications(s, first, first + runs, s.run.threads)) {
    const double p99 = r.pooled_all.empty() ? 0 : r.pooled_all.quantile(0.99);
    const double at_slo = r.pooled_all.empty() ? 0 : r.pooled_all.quantile(o.slo_quantile);
    if (!r.stable || at_slo > o.slo_latency) {
      ++out.missed;
      continue;
    }
    p99s.push_back(p99);
    dials += r.window > 0 ? static_cast<double>(r.pool.dials) / r.window : 0;
  }
  if (!p99s.empty()) {
    std::sort(p99s.begin(), p99s.end());
    const std::size_t n = p99s.size();
    out.median_p99 = n % 2 ? p99s[n / 2] : 0.5 * (p99s[n / 2 - 1] + p99s[n / 2]);
    out.dials_per_s = dials / static_cast<double>(n);
  }
  return out;
}

// -2 ln of a share estimated from n runs, floored at half a run (a share of 0 of 6 runs is not
// proof of impossibility).
double minus_two_log(double share, int runs) { return -2 * std::log(std::max(share, 0.5 / runs)); }

}  // namespace

stall_fit fit_stalls(const scenario& model, const std::vector<const calibration_step*>& ran,
                     const std::vector<const calibration_step*>& stopped,
                     const stall_fit_options& o) {
  stall_fit out;
  // A measured run is judged as the simulated ones are, by its regime first: one whose latency
  // at the SLO's quantile passed the SLO's missed it (as did a step a guard stopped), and is
  // compared by that alone. Not its p99 or its dials: a storm's are set by how long it ran before
  // the CPU gave out (live repeats at one rate: 960 to 4,454 dials, p99 84 to 252 ms), and a storm
  // compared with the simulated runs that met the SLO scored a candidate by the wrong runs' dials.
  std::vector<const calibration_step*> met, missed = stopped;
  for (const calibration_step* s : ran)
    (s->load.latency_all.percentile(100 * o.slo_quantile) > o.slo_latency ? missed : met)
        .push_back(s);
  if (met.empty()) return out;
  // One run's p99 scatters about its median by the tail's run-to-run spread (delay_sigma): the
  // scale of a step's p99 misfit, never taken below a quarter (two repeats rarely agree closer).
  const double sigma = std::max(model.delay_sigma, 0.25);
  const int n = o.runs_per_step;

  // The loss of one candidate: a sum over steps of squared, scaled misfits (each ~ chi-square
  // with one degree of freedom when the candidate is right). Every term is >= 0, so a candidate
  // is abandoned once its sum passes `bound` (the best so far): it cannot win, and the steps
  // left (the ones that missed the SLO last: storms are the slowest to simulate) are not
  // simulated. The choice is the same as without the bound; the grid reports such a loss as a
  // lower bound. `steps`, when given, receives each step's terms (the report's breakdown).
  // One step's row of the report's breakdown: what every step has.
  auto step_row = [](const calibration_step& s, bool met_slo, int missed, double regime_term) {
    return json::object{{"step", s.index},       {"label", s.label},
                        {"rate", s.rate},        {"repeat", s.repeat},
                        {"met_slo", met_slo},    {"p99", s.load.latency_all.percentile(99)},
                        {"runs_missed", missed}, {"loss_regime", regime_term}};
  };
  auto loss_of = [&](const candidate& c, double bound, json::array* steps = nullptr) {
    scenario m = model;
    c.apply(m);
    double loss = 0;
    std::uint64_t first = first_replication;
    for (const calibration_step* s : met) {
      const simulated_step p = simulate_step(m, *s, n, o, first);
      first += static_cast<std::uint64_t>(n);
      const double regime_term = minus_two_log(1 - static_cast<double>(p.missed) / n, n);
      double p99_term = 0, dial_term = 0;
      const double measured = s->load.latency_all.percentile(99);
      const bool compared = p.missed < n;  // else nothing but the regime to compare
      if (compared && measured > 0 && p.median_p99 > 0) {
        const double z = std::log(p.median_p99 / measured) / sigma;
        p99_term = z * z;
      }
      // Dials are counts: on the square-root scale a Poisson count's variance is 1/4.
      if (compared && s->service && s->window > 0) {
        const double d = std::sqrt(p.dials_per_s * s->window) - std::sqrt(s->service->dials);
        dial_term = 4 * d * d;
      }
      loss += regime_term + p99_term + dial_term;
      if (steps) {
        json::object row = step_row(*s, true, p.missed, regime_term);
        row["predicted_p99"] = p.median_p99;
        row["dials"] = s->service ? s->service->dials : 0.0;
        row["predicted_dials"] = p.dials_per_s * s->window;
        row["loss_p99"] = p99_term;
        row["loss_dials"] = dial_term;
        steps->push_back(std::move(row));
      }
      if (loss > bound) return loss;
    }
    for (const calibration_step* s : missed) {
      const simulated_step p = simulate_step(m, *s, n, o, first);
      first += static_cast<std::uint64_t>(n);
      const double term = minus_two_log(static_cast<double>(p.missed) / n, n);
      loss += term;
      if (steps) steps->push_back(step_row(*s, false, p.missed, term));
      if (loss > bound) return loss;
    }
    return loss;
  };

  const double none = loss_of(candidate{}, std::numeric_limits<double>::infinity());
  double best = none;
  candidate chosen;
  json::array grid;
  for (const candidate& c : candidates()) {
    const double l = loss_of(c, best);
    json::object row = c.to_json();
    row[l > best ? "loss_at_least" : "loss"] = l;
    grid.push_back(std::move(row));
    if (l < best) {
      best = l;
      chosen = c;
    }
  }
  // Two parameters more than no stalls: kept only when they lower the loss by more than the
  // 95 % point of chi-square with 2 degrees of freedom (a likelihood-ratio test), so steps
  // without stalls do not get a tiny one fitted to their noise. (The choice between the four
  // families is a third, discrete one, not counted.)
  const bool significant = none - best > chi_square_2_at_95;
  if (!significant) {
    best = none;
    chosen = candidate{};
  }
  // The chosen candidate once more, step by step (the same random numbers: the same loss).
  json::array per_step;
  loss_of(chosen, std::numeric_limits<double>::infinity(), &per_step);
  scenario with = model;
  chosen.apply(with);
  out.rate = with.stall_rate;
  out.per_request = with.stall_per_request;
  out.length = with.stall_length;
  json::object chosen_json = chosen.to_json();
  out.report = {
      {"rate", out.rate},
      {"per_request", out.per_request},
      {"mean_length", chosen.length},
      {"lengths", chosen.fixed ? "deterministic" : "exponential"},
      {"chosen", std::move(chosen_json)},
      {"loss", best},
      {"loss_without_stalls", none},
      {"significant", significant},
      {"steps_met_slo", met.size()},
      {"steps_missed_slo", missed.size()},
      {"slo", {{"quantile", o.slo_quantile}, {"latency", o.slo_latency}}},
      {"runs_per_step", n},
      {"measure",
       "whether each step met the SLO (all requests), and for one that did its p99 (scale "
       "ln, sigma max(delay_sigma, 0.25)) and dials (square-root scale) against its own "
       "simulated runs that met it"},
      {"grid", std::move(grid)},
      {"steps", std::move(per_step)}};
  return out;
}

}  // namespace headroom::calibrate
