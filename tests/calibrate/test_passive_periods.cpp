// Steady periods in a series of request rates, and Prometheus histogram buckets turned into the
// latency histograms a calibration step holds: the pure parts of passive calibration.
#include <catch2/catch.hpp>
#include <cmath>

#include "passive_calibration.hpp"
#include "passive_periods.hpp"

using headroom::calibrate::find_steady_periods;
using headroom::calibrate::histogram_from_buckets;
using headroom::calibrate::rate_interval;
using headroom::calibrate::steady_period_options;

namespace {

// 5 s intervals from t = 1000 with the given rates.
std::vector<rate_interval> every_5s(const std::vector<double>& rates) {
  std::vector<rate_interval> out;
  double t = 1000;
  for (double r : rates) {
    out.push_back({t, t + 5, r});
    t += 5;
  }
  return out;
}

}  // namespace

TEST_CASE("three steady levels with a change between each become three periods at their rates") {
  // +-3 % noise on each level; 45 and 90 straddle a change (half an interval at each level).
  auto intervals = every_5s({30, 31, 29.2, 30.5, 45, 60, 61.5, 58.4, 60.2, 90, 120, 123, 117, 121});
  steady_period_options o;
  o.min_length = 15;
  auto periods = find_steady_periods(intervals, o);
  REQUIRE(periods.size() == 3);
  // The straddling intervals fall out, so each period is exactly its level's 4 intervals.
  const double levels[] = {30, 60, 120};
  const double starts[] = {1000, 1025, 1050};
  for (int i = 0; i < 3; ++i) {
    CHECK(periods[i].intervals == 4);
    CHECK(periods[i].start == starts[i]);
    CHECK(periods[i].end - periods[i].start == 20);
    CHECK(periods[i].mean_rate == Approx(levels[i]).epsilon(0.03));  // the noise put in
  }
}

TEST_CASE("a slow ramp is cut into periods no wider than about twice the tolerance") {
  std::vector<rate_interval> ramp;
  for (int i = 0; i < 100; ++i) ramp.push_back({double(i), double(i + 1), 100.0 + i});  // +1 %/s
  steady_period_options o;
  o.tolerance = 0.10;
  o.min_length = 5;
  auto periods = find_steady_periods(ramp, o);
  REQUIRE(periods.size() >= 3);
  for (const auto& p : periods) {
    const double first = 100 + p.start, last = 100 + p.end - 1;
    INFO("period " << first << " to " << last << " req/s");
    // Every interval within 10 % of the mean with it included, so the span is at most about
    // 2 x 10 % of the mean (plus one interval's 1 req/s step).
    CHECK((last - first) <= 2 * 0.10 * p.mean_rate + 1);
  }
}

TEST_CASE("a gap in the scrapes ends a period, and short or idle periods are dropped") {
  auto intervals = every_5s({50, 50, 50, 50, NAN, 50, 50, 0, 0, 0, 0});
  steady_period_options o;
  o.min_length = 15;
  auto periods = find_steady_periods(intervals, o);
  // 20 s at 50, a gap, 10 s at 50 (too short), 20 s idle (below 1 req/s).
  REQUIRE(periods.size() == 1);
  CHECK(periods[0].end - periods[0].start == 20);
  CHECK(periods[0].mean_rate == 50);
}

TEST_CASE(
    "Prometheus buckets become a histogram with the same counts, quantiles inside the "
    "right bucket and the exact mean") {
  // Cumulative counts as increase() gives them: fractions, in any order, +Inf included.
  std::vector<std::pair<double, double>> buckets{
      {0.005, 89.8}, {0.001, 10.4}, {HUGE_VAL, 100.2}, {0.002, 39.6}, {0.01, 100.2}};
  const double sum = 0.350;  // 100 requests, mean 3.5 ms
  auto h = histogram_from_buckets(buckets, false, sum);
  CHECK(h.total_count() == 100);
  // The 50th request is the 10th of the 50 in (2, 5] ms: inside that bucket. The histogram keeps
  // 3 significant digits, hence the 0.1 % margins.
  CHECK(h.percentile(50) > 0.002 * 0.999);
  CHECK(h.percentile(50) <= 0.005 * 1.001);
  CHECK(h.percentile(99) > 0.005 * 0.999);
  CHECK(h.percentile(99) <= 0.01 * 1.001);
  CHECK(h.min() > 0);
  CHECK(h.min() < 0.001);
  CHECK(h.mean() == Approx(0.0035).epsilon(1e-9));  // the exact sum, not the spread values'

  // A phase that most requests skip (dial): the first bucket's requests spent no time in it.
  auto dial = histogram_from_buckets({{0.0001, 95}, {0.05, 100}, {HUGE_VAL, 100}}, true);
  CHECK(dial.total_count() == 100);
  CHECK(dial.min() == 0);
  CHECK(dial.percentile(95) == 0);

  // Beyond the last finite bound only a lower bound is known: recorded there.
  auto slow = histogram_from_buckets({{10, 0}, {HUGE_VAL, 3}});
  CHECK(slow.total_count() == 3);
  CHECK(slow.max() == Approx(10));
}
