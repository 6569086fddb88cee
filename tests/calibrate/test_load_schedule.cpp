// Tests of load schedules: durations, intended send times for constant, step, ramp, Poisson.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "duration.hpp"
#include "load_schedule.hpp"

using namespace headroom::calibrate;
using headroom::parse_duration;

namespace {
std::vector<double> all_times(const load_schedule& s, arrival_process a, int thread = 0,
                              int threads = 1, std::uint64_t seed = 1) {
  arrival_sequence seq(s, a, thread, threads, seed);
  std::vector<double> t;
  while (auto x = seq.next()) t.push_back(*x);
  return t;
}
}  // namespace

TEST_CASE("durations accept seconds, milliseconds, minutes and plain numbers") {
  CHECK(parse_duration("20s") == 20.0);
  CHECK(parse_duration("500ms") == Approx(0.5));
  CHECK(parse_duration("2m") == 120.0);
  CHECK(parse_duration("1.5") == 1.5);
  CHECK(parse_duration("250us") == Approx(250e-6));
  CHECK_THROWS_AS(parse_duration("fast"), std::invalid_argument);
  CHECK_THROWS_AS(parse_duration("10 parsecs"), std::invalid_argument);
  CHECK_THROWS_AS(load_schedule::constant(0, 10), std::invalid_argument);
  CHECK_THROWS_AS(load_schedule::constant(100, -1), std::invalid_argument);
  CHECK(parse_rate_list("50,500,1000") == std::vector<double>{50, 500, 1000});
  CHECK_THROWS_AS(parse_rate_list("50,,1000"), std::invalid_argument);
}

TEST_CASE("a formatted duration reads back as the same number of seconds") {
  using headroom::format_duration;
  CHECK(format_duration(0.25) == "250ms");
  CHECK(format_duration(5) == "5s");
  CHECK(format_duration(120) == "2m");
  CHECK(format_duration(90) == "90s");
  CHECK(format_duration(0) == "0s");
  for (double s : {250e-6, 0.0123, 1.5, 60.0, 7200.0})
    CHECK(parse_duration(format_duration(s)) == Approx(s).epsilon(1e-3));  // 4 significant digits
}

TEST_CASE("a constant rate sends exactly rate times duration requests, evenly spaced") {
  auto s = load_schedule::constant(200, 10);
  auto t = all_times(s, arrival_process::uniform);
  REQUIRE(t.size() == 2000);
  for (std::size_t i = 0; i < t.size(); ++i) CHECK(t[i] == Approx(i / 200.0).margin(1e-9));
}

TEST_CASE("threads split the evenly spaced schedule between them without gaps or overlaps") {
  auto s = load_schedule::constant(1000, 1);
  std::vector<double> merged;
  for (int k = 0; k < 3; ++k) {
    auto t = all_times(s, arrival_process::uniform, k, 3);
    merged.insert(merged.end(), t.begin(), t.end());
  }
  std::sort(merged.begin(), merged.end());
  REQUIRE(merged.size() == 1000);
  for (std::size_t i = 0; i < merged.size(); ++i)
    CHECK(merged[i] == Approx(i / 1000.0).margin(1e-9));
}

TEST_CASE("steps send each step's rate for its duration") {
  auto s = load_schedule::steps({50, 500, 1000}, 2);
  auto t = all_times(s, arrival_process::uniform);
  CHECK(t.size() == 100 + 1000 + 2000);
  CHECK(std::count_if(t.begin(), t.end(), [](double x) { return x < 2; }) == 100);
  CHECK(std::count_if(t.begin(), t.end(), [](double x) { return x >= 2 && x < 4; }) == 1000);
  CHECK(s.offered_rate() == Approx(3100.0 / 6.0));
}

TEST_CASE("a linear ramp's arrivals follow the rising rate") {
  auto s = load_schedule::ramp(100, 3000, 10);
  auto t = all_times(s, arrival_process::uniform);
  CHECK(t.size() == 15500);  // (100 + 3000) / 2 * 10, the area under the rate
  // In the first second the rate goes from 100 to 390: 245 requests expected.
  auto first = std::count_if(t.begin(), t.end(), [](double x) { return x < 1; });
  CHECK(std::abs(first - 245) <= 1);
  // In the last second, 2710 to 3000: 2855.
  auto last = std::count_if(t.begin(), t.end(), [](double x) { return x >= 9; });
  CHECK(std::abs(last - 2855) <= 1);
  CHECK(std::is_sorted(t.begin(), t.end()));
}

TEST_CASE("Poisson arrivals have the schedule's mean rate and exponential gaps") {
  auto s = load_schedule::constant(1000, 100);
  auto t = all_times(s, arrival_process::poisson, 0, 1, 3);
  // 100,000 expected; Poisson sd is sqrt(1e5) = 316, so 4 sd = 1,265.
  CHECK(std::abs(static_cast<double>(t.size()) - 1e5) < 1265);
  // The coefficient of variation of exponential gaps is 1; with 1e5 gaps its standard error
  // is ~0.5 %, so 3 % is far outside chance.
  double sum = 0, sum2 = 0;
  for (std::size_t i = 1; i < t.size(); ++i) {
    double g = t[i] - t[i - 1];
    sum += g;
    sum2 += g * g;
  }
  double n = static_cast<double>(t.size() - 1);
  double mean = sum / n;
  double cv = std::sqrt(sum2 / n - mean * mean) / mean;
  CHECK(cv == Approx(1.0).epsilon(0.03));
}

TEST_CASE("warmup is sent at the first rate before the measured part") {
  auto s = load_schedule::constant(100, 5).with_warmup(2);
  CHECK(s.warmup() == 2);
  CHECK(s.total_duration() == 7);
  CHECK(s.measured_requests() == Approx(500));
  auto t = all_times(s, arrival_process::uniform);
  CHECK(t.size() == 700);
  CHECK(std::count_if(t.begin(), t.end(), [](double x) { return x >= 2; }) == 500);
}
