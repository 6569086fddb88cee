// Open-loop load schedules: the intended send time of every request, fixed before the run starts.
//
// A schedule is a list of segments whose rate goes linearly from rate_begin to rate_end (a
// constant rate, a step, a ramp). Its cumulative count L(t) = integral of rate up to t maps time
// to "expected requests so far"; request number s is intended at L^-1(s). Evenly spaced arrivals
// take s = 0, 1, 2, ...; Poisson arrivals take s as a unit-rate Poisson process (exponential gaps),
// which L^-1 turns into a Poisson process of the schedule's rate, ramps included.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace headroom::calibrate {

// "50,500,1000" (requests per second). Throws std::invalid_argument on an empty or bad item.
std::vector<double> parse_rate_list(const std::string& text);

enum class arrival_process { uniform, poisson };
arrival_process parse_arrival_process(const std::string& text);  // "uniform" | "poisson"
const char* to_string(arrival_process a);

struct schedule_segment {
  double duration;    // seconds, > 0
  double rate_begin;  // requests per second at the segment's start, >= 0
  double rate_end;    // at its end (equal to rate_begin for a constant segment)
};

class load_schedule {
 public:
  // Every factory throws std::invalid_argument on a non-positive duration or rate.
  static load_schedule constant(double rate, double duration);
  static load_schedule steps(const std::vector<double>& rates, double step_duration);
  static load_schedule ramp(double rate_begin, double rate_end, double duration);
  // Prepends `warmup` seconds at the schedule's first rate; those requests are sent, not reported.
  load_schedule with_warmup(double warmup) const;

  const std::vector<schedule_segment>& segments() const { return segments_; }
  double warmup() const { return warmup_; }
  double total_duration() const;  // warmup included
  double measured_duration() const { return total_duration() - warmup_; }
  double cumulative(double t) const;  // L(t)
  double time_of(double s) const;     // L^-1(s); +inf past the end
  double measured_requests() const;   // L(T) - L(warmup)
  double offered_rate() const;        // mean rate over the measured part
  std::string describe() const;

 private:
  std::vector<schedule_segment> segments_;
  std::vector<double> cumulative_at_start_;  // L at each segment's start
  double warmup_ = 0;
  void index();
};

// The intended send times one generator thread owns. Thread k of n takes every n-th evenly spaced
// request (or an independent Poisson stream at 1/n of the rate), so the threads together follow
// the schedule exactly.
class arrival_sequence {
 public:
  arrival_sequence(const load_schedule& schedule, arrival_process process, int thread_index,
                   int thread_count, std::uint64_t seed);
  std::optional<double> next();  // seconds since the start of the run, ascending; none when done

 private:
  const load_schedule* schedule_;
  arrival_process process_;
  double s_;
  double step_;
  double end_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_;
};

}  // namespace headroom::calibrate
