// Load schedules and the intended send times they produce (see load_schedule.hpp).
#include "load_schedule.hpp"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace headroom::calibrate {

std::vector<double> parse_rate_list(const std::string& text) {
  std::vector<double> rates;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    double r = 0;
    try {
      r = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !std::isfinite(r))
      throw std::invalid_argument("not a rate: '" + item + "'");
    rates.push_back(r);
  }
  if (rates.empty()) throw std::invalid_argument("empty list of rates");
  return rates;
}

arrival_process parse_arrival_process(const std::string& text) {
  if (text == "uniform") return arrival_process::uniform;
  if (text == "poisson") return arrival_process::poisson;
  throw std::invalid_argument("arrivals must be uniform or poisson, not '" + text + "'");
}

const char* to_string(arrival_process a) {
  return a == arrival_process::uniform ? "uniform" : "poisson";
}

namespace {
void check_positive(double v, const char* what) {
  if (!(v > 0) || !std::isfinite(v))
    throw std::invalid_argument(std::string(what) + " must be positive");
}
}  // namespace

load_schedule load_schedule::constant(double rate, double duration) {
  check_positive(rate, "rate");
  check_positive(duration, "duration");
  load_schedule s;
  s.segments_.push_back({duration, rate, rate});
  s.index();
  return s;
}

load_schedule load_schedule::steps(const std::vector<double>& rates, double step_duration) {
  check_positive(step_duration, "step duration");
  if (rates.empty()) throw std::invalid_argument("steps need at least one rate");
  load_schedule s;
  for (double r : rates) {
    check_positive(r, "every step rate");
    s.segments_.push_back({step_duration, r, r});
  }
  s.index();
  return s;
}

load_schedule load_schedule::ramp(double rate_begin, double rate_end, double duration) {
  check_positive(duration, "duration");
  // A ramp may start or end at zero, but must send something.
  if (!(rate_begin >= 0) || !(rate_end >= 0) || !(rate_begin + rate_end > 0) ||
      !std::isfinite(rate_begin + rate_end))
    throw std::invalid_argument("ramp rates must be non-negative and not both zero");
  load_schedule s;
  s.segments_.push_back({duration, rate_begin, rate_end});
  s.index();
  return s;
}

load_schedule load_schedule::with_warmup(double warmup) const {
  if (!(warmup >= 0) || !std::isfinite(warmup))
    throw std::invalid_argument("warmup must be zero or positive");
  load_schedule s = *this;
  if (warmup > 0) {
    double r = segments_.front().rate_begin > 0 ? segments_.front().rate_begin
                                                : segments_.front().rate_end;
    s.segments_.insert(s.segments_.begin(), {warmup, r, r});
    s.warmup_ = warmup_ + warmup;
  }
  s.index();
  return s;
}

void load_schedule::index() {
  cumulative_at_start_.clear();
  double c = 0;
  for (const auto& seg : segments_) {
    cumulative_at_start_.push_back(c);
    c += 0.5 * (seg.rate_begin + seg.rate_end) * seg.duration;
  }
  cumulative_at_start_.push_back(c);
}

double load_schedule::total_duration() const {
  double d = 0;
  for (const auto& seg : segments_) d += seg.duration;
  return d;
}

double load_schedule::cumulative(double t) const {
  double start = 0;
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    const auto& seg = segments_[i];
    if (t < start + seg.duration) {
      double tau = std::max(0.0, t - start);
      double slope = (seg.rate_end - seg.rate_begin) / seg.duration;
      return cumulative_at_start_[i] + seg.rate_begin * tau + 0.5 * slope * tau * tau;
    }
    start += seg.duration;
  }
  return cumulative_at_start_.back();
}

double load_schedule::time_of(double s) const {
  if (s >= cumulative_at_start_.back()) return std::numeric_limits<double>::infinity();
  double start = 0;
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    const auto& seg = segments_[i];
    if (s < cumulative_at_start_[i + 1]) {
      double u = s - cumulative_at_start_[i];
      if (u <= 0) return start;
      // Solve r0 tau + k tau^2 / 2 = u in the form that stays exact when k = 0 or r0 = 0.
      double k = (seg.rate_end - seg.rate_begin) / seg.duration;
      double tau =
          2 * u / (seg.rate_begin + std::sqrt(seg.rate_begin * seg.rate_begin + 2 * k * u));
      return start + std::min(tau, seg.duration);
    }
    start += seg.duration;
  }
  return std::numeric_limits<double>::infinity();
}

double load_schedule::measured_requests() const {
  return cumulative_at_start_.back() - cumulative(warmup_);
}

double load_schedule::offered_rate() const { return measured_requests() / measured_duration(); }

std::string load_schedule::describe() const {
  std::ostringstream out;
  std::size_t first = warmup_ > 0 ? 1 : 0;
  for (std::size_t i = first; i < segments_.size(); ++i) {
    const auto& seg = segments_[i];
    if (i > first) out << ", then ";
    if (seg.rate_begin == seg.rate_end)
      out << seg.rate_begin << " rps for " << seg.duration << " s";
    else
      out << seg.rate_begin << " to " << seg.rate_end << " rps over " << seg.duration << " s";
  }
  if (warmup_ > 0) out << " (after " << warmup_ << " s of warmup)";
  return out.str();
}

arrival_sequence::arrival_sequence(const load_schedule& schedule, arrival_process process,
                                   int thread_index, int thread_count, std::uint64_t seed)
    : schedule_(&schedule),
      process_(process),
      step_(thread_count),
      end_(schedule.cumulative(schedule.total_duration())),
      rng_(seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(thread_index) + 1),
      gap_(1.0 / thread_count) {
  s_ = process_ == arrival_process::uniform ? thread_index : gap_(rng_);
}

std::optional<double> arrival_sequence::next() {
  if (s_ >= end_) return std::nullopt;
  double t = schedule_->time_of(s_);
  if (!std::isfinite(t)) return std::nullopt;
  s_ += process_ == arrival_process::uniform ? step_ : gap_(rng_);
  return t;
}

}  // namespace headroom::calibrate
