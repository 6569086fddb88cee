// The wake-up of an idle host (scenario.wakeup_delay, wakeup_idle) fitted from steps' p50.
//
// At low load the CPUs sleep between requests and every request pays their wake-up: on this
// machine the whole latency distribution sat 0.7-0.9 ms higher at 50 req/s than from 800 req/s
// up. With evenly spaced arrivals a step at rate r has the same idle gap g = 1 / r before every
// request, so its p50 is
//   p50(g) = base + delay * min(1, g / idle)
// with `base` the p50 of an awake machine. For each `idle` on a log grid the rest is a straight
// line (least squares on x = min(1, g / idle)); the grid point with the least squared error
// wins, among the idles at which the ramp spans a quarter of the delay or more over the gaps
// measured. The fit counts as found when the delay is at least five times its standard error at
// that idle; else there is no wake-up to model (a simulated machine, a host kept busy). Five,
// not two: the best of a grid is a search, and on 1,000 synthetic calibrations without a
// wake-up (p50 flat with 5 % noise, --auto's 7 rates x 3 repeats) 16 passed three standard
// errors, 4 passed four and none passed five; this machine's wake-up is 35 of them.
#pragma once

#include <string>
#include <vector>

namespace headroom::calibrate {

struct wakeup_point {
  double gap = 0;  // seconds between arrivals (1 / rate)
  double p50 = 0;  // the step's median latency, seconds
};

struct wakeup_fit {
  bool found = false;
  double delay = 0, idle = 0;  // scenario.wakeup_delay, wakeup_idle (0 when not found)
  double delay_standard_error = 0;
  double base = 0;                  // p50 of an awake machine
  double rms = 0, rms_without = 0;  // of the fit, and of a constant p50 (no wake-up)
  int points = 0, gaps = 0;         // steps used, distinct gaps among them
  std::string note;                 // what was found, in one sentence
};

// Needs 3 distinct gaps or more (fewer: not found, the note says why).
wakeup_fit fit_wakeup(const std::vector<wakeup_point>& points);

// The client's spread about its p50 at quiet steps, split into a part every request has (the
// network's) and one that grows with the idle gap (the wake-up's). At one quantile, per quiet
// step: y = the squared distance of the client's quantile from its p50, less the phases' (the
// parts independent, each spread like a normal's), x = min(1, gap / idle)^2, the wake-up's
// share squared. Then y = a + b x with a the network's squared spread and b the wake-up's at a
// full idle gap. On this machine the client's p99 sat 1-3 ms above its p50 at 50 req/s and
// 0.3-0.6 ms above it from 600 req/s up; one spread for both put the idle machine's on every
// request (bench run 9: p99 2.1 ms predicted at 728 req/s, 0.9-1.1 live).
struct spread_point {
  double x = 0;  // the wake-up's share of a full one, squared
  double y = 0;  // squared spread the phases leave, s^2
};
struct spread_split {
  double constant = 0;  // a: every request's, s^2
  double growing = 0;   // b: the wake-up's at a full idle gap, s^2
};
// Least absolute deviations with a, b >= 0: a median line, so one wild step (a storm's echo)
// moves it little. With every x equal (no wake-up), a is the median of y and b is 0. Empty
// input: both 0.
spread_split fit_spread_split(const std::vector<spread_point>& points);

}  // namespace headroom::calibrate
