// The simulation core on its own: random streams, distributions, the event calendar and the
// processor-sharing CPU. Exact where the answer is exact, else tolerances from the standard error.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <vector>

#include "distribution.hpp"
#include "event_calendar.hpp"
#include "quantile_histogram.hpp"
#include "random_stream.hpp"
#include "request_path_model.hpp"
#include "resources.hpp"
#include "scenario.hpp"

using namespace headroom;

namespace {
struct moments {
  double mean = 0, second = 0;
};
moments sample_moments(const distribution& d, int n, std::uint64_t purpose) {
  random_stream rng(42, 0, purpose);
  moments m;
  for (int i = 0; i < n; ++i) {
    double x = d.sample(rng);
    m.mean += x;
    m.second += x * x;
  }
  m.mean /= n;
  m.second /= n;
  return m;
}
// The sample mean must be within 5 standard errors of the distribution's mean: a wrong
// sampler misses by far more, a right one fails this about once in 3.5 million runs.
void check_mean(const distribution& d, std::uint64_t purpose) {
  const int n = 200000;
  moments m = sample_moments(d, n, purpose);
  double var = d.second_moment() - d.mean() * d.mean();
  double se = std::sqrt(std::max(var, 0.0) / n);
  INFO(d.describe());
  CHECK(std::fabs(m.mean - d.mean()) <= 5 * se + 1e-15);
  // The second moment's sampling error is larger; 3 % is about 5 standard errors for cv <= 1.
  CHECK(m.second == Approx(d.second_moment()).epsilon(0.03));
}
}  // namespace

TEST_CASE("each distribution's samples have the mean and second moment it declares") {
  check_mean(distribution::exponential(0.002), 1);
  check_mean(distribution::deterministic(0.5), 2);
  check_mean(distribution::uniform(0.001, 0.003), 3);
  check_mean(distribution::lognormal_mean_cv(0.0005, 0.8), 4);
  check_mean(distribution::gamma_mean_cv(0.03, 0.3), 5);
  check_mean(distribution::gamma_mean_cv(1.0, 1.5), 6);  // shape < 1 takes the boost path
  check_mean(distribution::exponential(1.0).shifted(0.25), 7);
  check_mean(distribution::quantile_table({0, 0.5, 0.9, 1}, {0.001, 0.002, 0.004, 0.010}), 8);
  check_mean(distribution::histogram({0, 1, 2, 4}, {10, 30, 10}), 9);
  check_mean(distribution::mixture(
                 {0.9, 0.1}, {distribution::exponential(0.5), distribution::exponential(5.5)}),
             10);
}

TEST_CASE("the ziggurat exponential has the exponential CDF, tail included") {
  random_stream rng(11, 0, 0);
  const int n = 1000000;
  std::vector<double> x(n);
  for (double& v : x) v = rng.exponential(1.0);
  std::sort(x.begin(), x.end());
  double d = 0;
  long tail = 0;
  for (int i = 0; i < n; ++i) {
    double F = 1 - std::exp(-x[i]);
    d = std::max({d, std::fabs(F - static_cast<double>(i) / n),
                  std::fabs(F - static_cast<double>(i + 1) / n)});
    if (x[i] > exponential_ziggurat::r) ++tail;
  }
  // Kolmogorov-Smirnov at the 99.9 % level: 1.95 / sqrt(n).
  CHECK(d < 1.95 / std::sqrt(static_cast<double>(n)));
  // The tail past the last layer (drawn separately): expected n e^-r = 454, sd ~21; +-5 sd.
  CHECK(std::fabs(static_cast<double>(tail) - n * std::exp(-exponential_ziggurat::r)) < 110);
}

TEST_CASE("the ziggurat normal has the normal CDF, tails included") {
  random_stream rng(12, 0, 0);
  const int n = 1000000;
  std::vector<double> x(n);
  for (double& v : x) v = rng.normal();
  std::sort(x.begin(), x.end());
  double d = 0, sum = 0;
  long tail = 0;
  for (int i = 0; i < n; ++i) {
    double F = 0.5 * std::erfc(-x[i] / std::sqrt(2.0));
    d = std::max({d, std::fabs(F - static_cast<double>(i) / n),
                  std::fabs(F - static_cast<double>(i + 1) / n)});
    sum += x[i];
    if (std::fabs(x[i]) > normal_ziggurat::r) ++tail;
  }
  CHECK(d < 1.95 / std::sqrt(static_cast<double>(n)));                // Kolmogorov-Smirnov, 99.9 %
  CHECK(std::fabs(sum / n) < 5 / std::sqrt(static_cast<double>(n)));  // 5 standard errors
  // Both tails past the last layer: expected n erfc(r / sqrt 2) = 576, sd ~24; +-5 sd.
  CHECK(std::fabs(static_cast<double>(tail) - n * std::erfc(normal_ziggurat::r / std::sqrt(2.0))) <
        120);
}

TEST_CASE("lognormal by mean and cv has that mean and cv") {
  distribution d = distribution::lognormal_mean_cv(2.0, 0.5);
  CHECK(d.mean() == Approx(2.0).epsilon(1e-12));
  double var = d.second_moment() - 4.0;
  CHECK(std::sqrt(var) / 2.0 == Approx(0.5).epsilon(1e-12));
}

TEST_CASE("an empirical quantile table returns its own quantiles") {
  distribution d = distribution::quantile_table({0, 0.5, 0.99, 1}, {0.0, 0.001, 0.010, 0.020});
  random_stream rng(7, 0, 0);
  std::vector<double> x(100000);
  for (double& v : x) v = d.sample(rng);
  std::sort(x.begin(), x.end());
  // Order statistics of 100,000 draws: the median's standard error here is ~3 us.
  CHECK(x[50000] == Approx(0.001).margin(2e-5));
  CHECK(x[99000] == Approx(0.010).margin(5e-4));
}

TEST_CASE("pooled histogram quantiles match sorted samples within a bucket's width") {
  random_stream rng(21, 0, 0);
  distribution d = distribution::lognormal_mean_cv(0.002, 1.5);
  std::vector<double> a(50000), b(70000);
  for (double& x : a) x = d.sample(rng);
  for (double& x : b) x = d.sample(rng);
  b[0] = 0;  // a zero (a phase not gone through) is counted, below everything
  quantile_histogram h, hb;
  h.add_all(a);
  hb.add_all(b);
  h.merge(hb);
  std::vector<double> all(a);
  all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end());
  REQUIRE(h.count() == all.size());
  for (double p : {0.0, 0.5, 0.9, 0.99, 0.999}) {
    double exact = all[static_cast<std::size_t>(p * static_cast<double>(all.size() - 1))];
    INFO("p = " << p);
    // A bucket spans at most 1/256 of its lower edge: the answer is within 0.4 %.
    CHECK(h.quantile(p) == Approx(exact).epsilon(0.004).margin(1e-12));
  }
  CHECK(h.quantile(1.0) >= all.back());
  CHECK(h.quantile(1.0) <= all.back() * (1 + 1.0 / 256));
}

TEST_CASE("percentiles found through the histogram's buckets equal those found by selection") {
  random_stream rng(22, 0, 0);
  distribution d = distribution::lognormal_mean_cv(0.002, 1.5);
  auto check = [](std::vector<double> v) {
    quantile_histogram h;
    h.add_all(v);
    std::vector<double> copy(v);
    latency_summary a = summarize(copy), b = summarize(v, h);
    INFO("n = " << v.size());
    // Both take the same order statistics and interpolate alike: equal to the last bit.
    CHECK(a.count == b.count);
    CHECK(a.mean == b.mean);
    CHECK(a.max == b.max);
    CHECK(a.p50 == b.p50);
    CHECK(a.p90 == b.p90);
    CHECK(a.p95 == b.p95);
    CHECK(a.p99 == b.p99);
    CHECK(a.p999 == b.p999);
  };
  for (std::size_t n : {1, 2, 3, 5, 11, 100, 1001, 40000}) {
    std::vector<double> v(n);
    for (double& x : v) x = d.sample(rng);
    check(v);
    // Mostly zeros (a phase few requests go through), then many equal values (a
    // deterministic demand alone on the CPU).
    for (std::size_t i = 0; i < n; ++i)
      if (i % 7 != 0) v[i] = 0;
    check(v);
    for (std::size_t i = 0; i < n; ++i)
      if (i % 3 != 0) v[i] = 0.00001;
    check(v);
  }
  check(std::vector<double>(50, 0.0));
  check({0.001, -0.0005, 0.002, 0.0});  // a negative sample: the selection fallback
}

TEST_CASE("bad distribution parameters are refused") {
  CHECK_THROWS(distribution::exponential(-1));
  CHECK_THROWS(distribution::uniform(2, 1));
  CHECK_THROWS(distribution::quantile_table({0.1, 1}, {1, 2}));
  CHECK_THROWS(distribution::mixture({1}, {}));
}

TEST_CASE("streams for different replications and purposes are uncorrelated") {
  // Correlation of 100,000 pairs of uniforms: standard error 1/sqrt(n) = 0.0032; 0.015 is ~5.
  auto corr = [](random_stream a, random_stream b) {
    const int n = 100000;
    double sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; ++i) {
      double x = a.uniform01(), y = b.uniform01();
      sa += x, sb += y, sab += x * y, saa += x * x, sbb += y * y;
    }
    double cov = sab / n - sa / n * sb / n;
    return cov / std::sqrt((saa / n - sa * sa / n / n) * (sbb / n - sb * sb / n / n));
  };
  CHECK(std::fabs(corr(random_stream(1, 0, 1), random_stream(1, 1, 1))) < 0.015);
  CHECK(std::fabs(corr(random_stream(1, 0, 1), random_stream(1, 0, 2))) < 0.015);
  CHECK(std::fabs(corr(random_stream(1, 0, 1), random_stream(2, 0, 1))) < 0.015);
  random_stream a(5, 3, 9), b(5, 3, 9);
  for (int i = 0; i < 1000; ++i) REQUIRE(a.next_u64() == b.next_u64());
}

TEMPLATE_TEST_CASE("the calendar pops events in time order, equal times first-in first-out", "",
                   binary_heap_calendar, quaternary_heap_calendar) {
  TestType cal;
  random_stream rng(3, 0, 0);
  std::vector<double> times;
  for (std::uint32_t i = 0; i < 5000; ++i) {
    // Coarse times so that many are equal.
    double t = std::floor(rng.uniform01() * 100);
    cal.push(t, 0, i);
  }
  double last_t = -1;
  std::uint32_t last_id = 0;
  while (!cal.empty()) {
    event e = cal.pop();
    REQUIRE(e.time >= last_t);
    if (e.time == last_t) REQUIRE(e.id > last_id);
    last_t = e.time;
    last_id = e.id;
  }
}

TEST_CASE("processor sharing: two jobs on one core share it until the shorter finishes") {
  ps_cpu cpu(1);
  cpu.add(0, 1.0, 1);
  cpu.add(0, 2.0, 2);
  // Each runs at half speed: job 1 ends at 2; job 2 then has 1 s left alone: ends at 3.
  CHECK(cpu.next_completion() == Approx(2.0));
  CHECK(cpu.pop(cpu.next_completion()) == 1u);
  CHECK(cpu.next_completion() == Approx(3.0));
  CHECK(cpu.pop(cpu.next_completion()) == 2u);
  CHECK(cpu.busy_integral(3.0) == Approx(3.0));
}

TEST_CASE("processor sharing: fewer jobs than cores each get a whole core") {
  ps_cpu cpu(2);
  cpu.add(0, 1.0, 1);
  cpu.add(0.5, 1.0, 2);
  CHECK(cpu.pop(cpu.next_completion()) == 1u);  // at 1.0: alone on its core
  CHECK(cpu.next_completion() == Approx(1.5));
  // Three jobs on two cores run at 2/3 speed: demand 1 takes 1.5 s.
  ps_cpu three(2);
  for (std::uint32_t j = 0; j < 3; ++j) three.add(0, 1.0, j);
  CHECK(three.next_completion() == Approx(1.5));
}

TEST_CASE("a FCFS station serves in arrival order once its servers are busy") {
  fcfs_station st(2);
  CHECK(st.acquire(0, 1));
  CHECK(st.acquire(0, 2));
  CHECK_FALSE(st.acquire(0, 3));
  CHECK_FALSE(st.acquire(0, 4));
  std::uint32_t next = 0;
  REQUIRE(st.release(1, next));
  CHECK(next == 3u);
  REQUIRE(st.release(2, next));
  CHECK(next == 4u);
  CHECK_FALSE(st.release(3, next));
  CHECK(st.busy() == 1);
}

TEST_CASE("a request failed at its wait deadline enters all requests at the time it failed") {
  // One connection held 1 s by the request at t = 0; the one at t = 0.1 waits until its 0.5 s
  // deadline and fails at 0.6. Both cross a 10 ms network: exact times, no randomness.
  scenario s;
  s.pool.max_open = 1;
  s.pool.max_idle = 1;
  s.wait_timeout = 0.5;
  s.arrivals.process = arrival_process::trace;
  s.arrivals.times = {0.0, 0.1};
  s.query_delay = distribution::deterministic(1.0);
  s.network_rtt = distribution::deterministic(0.01);
  replication_result r = simulate_replication(s, 0);
  REQUIRE(r.measured == 2);
  CHECK(r.errors == 1);
  // Successes: the first request only.
  CHECK(r.phases[phase_total].count == 1);
  CHECK(r.phases[phase_total].max == Approx(1.01).epsilon(1e-12));
  // All requests: 1.01 and 0.5 + 0.01.
  CHECK(r.all_requests.count == 2);
  CHECK(r.all_requests.mean == Approx((1.01 + 0.51) / 2).epsilon(1e-12));
  CHECK(r.all_requests.max == Approx(1.01).epsilon(1e-12));
  CHECK(r.pooled_all.count() == 2);
}

TEST_CASE("without failures both latency sets are the same samples") {
  scenario s;
  s.use_pool = false;
  s.workers = 1;
  s.arrivals.rate = 0.5;
  s.query_delay = distribution::exponential(1.0);
  s.run.requests = 2000;
  replication_result r = simulate_replication(s, 0);
  REQUIRE(r.errors == 0);
  CHECK(r.all_requests.count == r.phases[phase_total].count);
  CHECK(r.all_requests.p99 == r.phases[phase_total].p99);
  CHECK(r.all_requests.mean == r.phases[phase_total].mean);
}

TEST_CASE("the default in-flight limit is the offered rate times 10 s, between 1,000 and 200,000") {
  scenario s;
  s.arrivals.rate = 500;
  CHECK(in_flight_limit(s) == 5000);
  s.arrivals.rate = 10;
  CHECK(in_flight_limit(s) == 1000);
  s.arrivals.rate = 1e6;
  CHECK(in_flight_limit(s) == 200000);
  s.run.max_in_flight = 77;  // set explicitly: used as is
  CHECK(in_flight_limit(s) == 77);
}

TEST_CASE("an overloaded replication trips the default in-flight limit within seconds") {
  // 1,000 req/s into one worker serving 100/s: the backlog grows by 900 requests a second, so
  // it passes 10,000 (1,000/s x 10 s) about 11 s into the run, long before the 200,000
  // requests asked for would have arrived.
  scenario s;
  s.use_pool = false;
  s.workers = 1;
  s.arrivals.rate = 1000;
  s.query_delay = distribution::deterministic(0.01);
  s.run.requests = 200000;
  auto t0 = std::chrono::steady_clock::now();
  replication_result r = simulate_replication(s, 0);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK_FALSE(r.stable);
  INFO(r.unstable_reason);
  CHECK(r.unstable_reason.find("more than 10000 requests in flight") != std::string::npos);
  // ~11,000 arrivals and their events: milliseconds alone; 5 s allows a crowded machine.
  CHECK(wall < 5);
}
