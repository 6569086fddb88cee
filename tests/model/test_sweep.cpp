// The sweep library (model/sweep.hpp): the grid's shape and order, results that depend only on
// the seed (not on threads or finishing order), the CSV's columns, and p99 growing with the
// offered rate on an M/M/1 queue as the exact result says it must.
#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "sweep.hpp"
#include "sweep_report.hpp"

using namespace headroom;

namespace {

// M/M/1 FCFS: one worker, exponential service of mean 1 ms (mu = 1000/s), no pool, no CPU.
// Its sojourn time is exponential with rate mu - lambda, so p99 = ln(100) / (mu - lambda).
scenario mm1(double lambda) {
  scenario s;
  s.use_pool = false;
  s.wait_timeout = 0;
  s.workers = 1;
  s.arrivals.rate = lambda;
  s.query_delay = distribution::exponential(0.001);
  s.run.requests = 20000;
  s.run.warmup_requests = 2000;
  s.run.max_replications = 80;
  return s;
}

double mm1_p99(double lambda) { return std::log(100.0) / (1000.0 - lambda); }

std::string csv_of(const std::vector<sweep_result>& r) {
  std::ostringstream os;
  write_sweep_csv(os, r);
  return os.str();
}

}  // namespace

TEST_CASE("a sweep has one point per rate x max_open x max_idle x cores, rates varying fastest") {
  scenario s = mm1(100);
  sweep_grid g;
  g.rates = {100, 200, 300};
  g.max_open = {0, 8};
  g.max_idle = {2, 8};
  g.cores = {2, 4};
  const auto pts = sweep_points(s, g);
  REQUIRE(pts.size() == 3 * 2 * 2 * 2);
  for (std::size_t i = 0; i < pts.size(); ++i) CHECK(pts[i].index == i);
  CHECK(pts[0].rate == 100);
  CHECK(pts[1].rate == 200);
  CHECK(pts[3].rate == 100);
  CHECK(pts[3].max_idle == 8);  // after the rates, max_idle moves
  CHECK(pts[6].max_open == 8);  // then max_open
  CHECK(pts[12].cores == 4);    // then the cores
  CHECK(pts[23].rate == 300);
  CHECK(pts[23].max_open == 8);
  CHECK(pts[23].max_idle == 8);
  CHECK(pts[23].cores == 4);
  // An empty list is the scenario's own value.
  sweep_grid rates_only;
  rates_only.rates = {50};
  const auto one = sweep_points(s, rates_only);
  REQUIRE(one.size() == 1);
  CHECK(one[0].max_open == s.pool.max_open);
  CHECK(one[0].max_idle == s.pool.max_idle);
  CHECK(one[0].cores == s.cores);
  CHECK(scenario_at(s, pts[23]).pool.max_idle == 8);
  CHECK(scenario_at(s, pts[23]).arrivals.rate == 300);
}

TEST_CASE("a sweep without rates or with a rate of zero is refused before anything runs") {
  sweep_grid g;
  CHECK_THROWS_AS(sweep_points(mm1(100), g), scenario_error);
  g.rates = {100, 0};
  CHECK_THROWS_WITH(run_sweep(mm1(100), g), "rates: every rate must be > 0 req/s");
}

TEST_CASE("the same seed gives the same sweep whatever the thread count, a new seed another") {
  scenario s = mm1(100);
  s.run.target_half_width = 0.05;
  s.run.live_length = 5;
  s.run.live_warmup = 1;
  s.run.slo_latency = 0.010;
  sweep_grid g;
  g.rates = {300, 500, 700};
  std::vector<std::size_t> seen;
  sweep_options one;
  one.threads = 1;
  one.progress = [&](const sweep_progress& p) {
    CHECK(p.total == 3);
    seen.push_back(p.done);
  };
  const std::string a = csv_of(run_sweep(s, g, one));
  CHECK(seen == std::vector<std::size_t>{1, 2, 3});
  sweep_options two;
  two.threads = 2;
  const std::string b = csv_of(run_sweep(s, g, two));
  // Bit for bit: the CSV carries 9 significant digits of every figure.
  CHECK(a == b);
  s.run.seed = 2;
  CHECK(csv_of(run_sweep(s, g, two)) != a);
}

TEST_CASE("the sweep's CSV has the documented header and one row per point") {
  scenario s = mm1(100);
  s.run.target_half_width = 0.05;
  sweep_grid g;
  g.rates = {200, 400};
  const std::string csv = csv_of(run_sweep(s, g));
  std::istringstream in(csv);
  std::string header, row;
  std::getline(in, header);
  CHECK(header ==
        "rate,max_open,max_idle,cores,stable,replications,p50,p50_ci_low,p50_ci_high,p99,"
        "p99_ci_low,p99_ci_high,live_quantile,live_low,live_median,live_high,p_slo,p_stable,"
        "throughput_rps,error_rate,utilization_cpu,utilization_cpu_service,"
        "utilization_cpu_database,utilization_cpu_generator,utilization_cpu_background,"
        "utilization_workers,dials_per_s,closes_per_s,waits_per_s,wait_timeouts_per_s");
  const auto columns = std::count(header.begin(), header.end(), ',');
  int rows = 0;
  while (std::getline(in, row)) {
    ++rows;
    CHECK(std::count(row.begin(), row.end(), ',') == columns);
  }
  CHECK(rows == 2);
}

TEST_CASE("p99 grows with the offered rate on an M/M/1 queue, as ln(100) / (mu - lambda)") {
  scenario s = mm1(100);
  s.run.target_half_width = 0.03;
  sweep_grid g;
  g.rates = {200, 400, 600, 800};
  const auto r = run_sweep(s, g);
  REQUIRE(r.size() == 4);
  for (std::size_t i = 0; i < r.size(); ++i) {
    const estimate& p99 = r[i].p.all_requests.p99;
    INFO("rate " << r[i].point.rate << ": p99 " << p99.value << ", exact " << mm1_p99(g.rates[i]));
    REQUIRE(r[i].p.stable);
    // The stop rule holds the interval to +-3 %; 8 % leaves room for the histogram's
    // resolution and the 5 % of runs whose interval misses.
    CHECK(p99.value == Approx(mm1_p99(g.rates[i])).epsilon(0.08));
    // Each step's exact p99 rises by 30 % or more, far beyond both intervals.
    if (i > 0) CHECK(p99.ci_low > r[i - 1].p.all_requests.p99.ci_high);
  }
}

TEST_CASE("the knee is the last rate whose one live run meets the SLO with the confidence") {
  // Exact p99 at 500, 700, 900 req/s: 9.2, 15.4, 46 ms; the SLO 20 ms sits between the last two,
  // 30 % above 700's and less than half 900's, so one 20 s run (14,000 to 18,000 requests)
  // lands on the right side of it nearly always.
  scenario s = mm1(100);
  s.run.target_half_width = 0.05;
  s.run.live_length = 20;
  s.run.live_warmup = 2;
  s.run.slo_latency = 0.020;
  sweep_grid g;
  g.rates = {500, 700, 900};
  const auto r = run_sweep(s, g);
  CHECK(r[1].p.live.p_slo >= 0.9);
  CHECK(r[2].p.live.p_slo <= 0.1);
  CHECK(knee_rate(r, 0.9) == 700);
  // Without an SLO there is no knee.
  s.run.slo_latency = 0;
  CHECK(knee_rate(run_sweep(s, {{500}, {}, {}, {}}), 0.9) == 0);
}
