// The calibration's step plan (step_plan.hpp).
#include "step_plan.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace headroom::calibrate {
namespace {

std::string fmt(double x) {
  std::ostringstream os;
  os.precision(4);
  os << x;
  return os.str();
}

}  // namespace

step_plan::step_plan(step_plan_options o) : o_(std::move(o)) {
  auto bad = [](const std::string& what) { throw std::invalid_argument(what); };
  if (o_.repeats < 1) bad("--repeats: must be at least 1");
  if (!(o_.max_rate > 0)) bad("--max-rate: must be > 0");
  if (!(o_.slo_latency > 0)) bad("--slo: the latency must be > 0");
  if (!(o_.slo_quantile > 0 && o_.slo_quantile < 1)) bad("--slo: the quantile must be in (0, 1)");
  if (!(o_.max_errors >= 0 && o_.max_errors < 1)) bad("--max-errors: must be in [0, 1)");
  if (!(o_.abort_latency > 0)) bad("--abort-latency: must be > 0");
  for (double r : o_.rates) {
    if (!(r > 0)) bad("--rates: every rate must be > 0");
    if (r > o_.max_rate)
      bad("--rates: " + fmt(r) + " req/s is above --max-rate " + fmt(o_.max_rate));
  }
  if (o_.rates.empty()) {
    if (!(o_.start_rate > 0) || o_.start_rate > o_.max_rate)
      bad("the automatic ramp's first rate must be in (0, --max-rate]");
    if (!(o_.growth > 1)) bad("the automatic ramp's growth must be > 1");
    if (o_.refine < 0) bad("the automatic ramp's refinement must be >= 0");
    phase_ = phase::climbing;
    queue_.push_back({o_.start_rate, 0, 0});
  } else {
    phase_ = phase::explicit_rates;
    for (double r : o_.rates) queue_.push_back({r, 0, 0});
  }
}

std::optional<planned_step> step_plan::next() {
  if (current_) throw std::logic_error("step_plan::next before the last step was recorded");
  if (queue_.empty()) return std::nullopt;
  planned_step s = queue_.front();
  queue_.erase(queue_.begin());
  s.index = issued_++;
  current_ = s;
  return s;
}

std::string step_plan::abort_reason(double latency_quantile, double failed_fraction) const {
  if (failed_fraction > o_.max_errors)
    return fmt(100 * failed_fraction) + " % of requests failed (--max-errors " +
           fmt(100 * o_.max_errors) + " %)";
  if (latency_quantile > o_.abort_latency) {
    std::ostringstream os;
    os.precision(4);
    os << "p" << 100 * o_.slo_quantile << " " << latency_quantile * 1e3
       << " ms is over --abort-latency " << o_.abort_latency * 1e3 << " ms";
    return os.str();
  }
  return "";
}

std::string step_plan::guard(const step_outcome& o) const {
  std::string abort = abort_reason(o.latency_quantile, o.failed_fraction);
  if (!abort.empty()) return abort;
  if (o.stopped_early) return "the step was stopped early";
  if (o.achieved < o_.saturation * o.rate)
    return "the target answered only " + fmt(o.achieved) + " of " + fmt(o.rate) + " req/s";
  if (o.latency_quantile > o_.slo_latency) {
    // (a stream, not string +: g++ 12 warns falsely about `"p" + std::string`, -Wrestrict)
    std::ostringstream os;
    os.precision(4);
    os << "p" << 100 * o_.slo_quantile << " " << o.latency_quantile * 1e3 << " ms is over the SLO "
       << o_.slo_latency * 1e3 << " ms";
    return os.str();
  }
  return "";
}

void step_plan::drop_from(double rate) {
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [&](const planned_step& p) { return p.rate >= rate; }),
               queue_.end());
}

void step_plan::record(const step_outcome& o) {
  if (!current_) throw std::logic_error("step_plan::record without a step");
  const planned_step s = *current_;
  current_.reset();
  const std::string why = guard(o);
  // Only the errors and latency guards (and a step stopped by them) make a rate unsafe to send
  // again; a step over the SLO or at saturation is what the fit needs most, so it is repeated.
  const bool unsafe =
      o.stopped_early || !abort_reason(o.latency_quantile, o.failed_fraction).empty();
  if (s.repeat == 0 && !unsafe) safe_rates_.push_back(s.rate);
  if (unsafe) {
    if (stop_reason_.empty()) stop_reason_ = "at " + fmt(s.rate) + " req/s: " + why;
    drop_from(s.rate);
  }

  if (phase_ == phase::climbing) {
    if (why.empty() && s.rate < o_.max_rate) {
      last_good_ = s.rate;
      queue_.push_back({std::min(o_.max_rate, s.rate * o_.growth), 0, 0});
      return;
    }
    if (why.empty()) {
      stop_reason_ = "reached --max-rate " + fmt(o_.max_rate) + " req/s";
    } else {
      if (stop_reason_.empty()) stop_reason_ = "at " + fmt(s.rate) + " req/s: " + why;
      // Geometric steps between the last good rate and this one: the knee is where p99 turns,
      // and on a log scale of rate.
      if (last_good_ > 0 && o_.refine > 0) {
        const double ratio = std::pow(s.rate / last_good_, 1.0 / (o_.refine + 1));
        double r = last_good_;
        for (int i = 0; i < o_.refine; ++i) queue_.push_back({r *= ratio, 0, 0});
      }
    }
    phase_ = phase::refining;
  }
  if (queue_.empty() && phase_ != phase::repeating) start_repeats();
}

// The later passes: every safe rate again, in increasing order, one pass per repeat.
void step_plan::start_repeats() {
  phase_ = phase::repeating;
  std::vector<double> rates = safe_rates_;
  std::sort(rates.begin(), rates.end());
  for (int rep = 1; rep < o_.repeats; ++rep)
    for (double r : rates) queue_.push_back({r, rep, 0});
}

std::size_t step_plan::planned() const {
  std::size_t n = issued_ + queue_.size();
  if (phase_ != phase::repeating) {
    // Still in the first pass: the repeats of what is known (at least) will follow.
    const std::size_t known = safe_rates_.size() + queue_.size();
    n += known * static_cast<std::size_t>(o_.repeats - 1);
  }
  return n;
}

}  // namespace headroom::calibrate
